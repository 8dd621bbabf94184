"""AuraFlowLoader: ComfyUI's model folders, three layouts, the cache, the bundled tokenizer, errors with the fix."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
import torch
from testkit.comfy_models import AIO, DIFFUSERS, NOT_AURAFLOW, TRANSFORMER
from testkit.fake_comfy import FakeComfy


@pytest.fixture(autouse=True)
def _fresh_cache(loaders: ModuleType) -> None:
    loaders.clear_cache()


def test_lists_files_and_diffusers_folders_from_comfy_folders(loaders: ModuleType, fake_comfy: FakeComfy) -> None:
    names = loaders.model_names()
    assert names == [NOT_AURAFLOW, AIO, TRANSFORMER, DIFFUSERS]  # checkpoints, diffusion_models, diffusers
    assert loaders.component_names() == ["none", DIFFUSERS]
    choices = loaders.AuraFlowLoader.INPUT_TYPES()["required"]["model_name"][0]
    assert choices == names


def test_lists_nothing_outside_comfyui(loaders: ModuleType) -> None:
    assert loaders.model_names() == [] and loaders.component_names() == ["none"]


@pytest.mark.parametrize("name, components", [(AIO, "none"), (TRANSFORMER, DIFFUSERS), (DIFFUSERS, "none")])
def test_each_layout_loads_on_comfys_device_after_freeing_memory(loaders: ModuleType, fake_comfy: FakeComfy,
                                                                 name: str, components: str) -> None:
    (model,) = loaders.AuraFlowLoader().load(name, "fp32", True, True, components)
    assert model.device == torch.device("cpu") and model.dtype == torch.float32
    assert model.offload_text_encoder and model.vae.use_tiling
    assert ("unload_all", None) in fake_comfy.memory_calls
    assert model.encode_prompt("a cat").embeds.shape[1] == 256


def test_same_file_and_options_load_once(loaders: ModuleType, fake_comfy: FakeComfy) -> None:
    node = loaders.AuraFlowLoader()
    (first,) = node.load(AIO, "auto", False, False)
    (again,) = node.load(AIO, "auto", True, False)  # memory options change in place
    assert again is first and first.offload_text_encoder
    (other,) = node.load(AIO, "bf16", False, False)
    assert other is not first and other.dtype == torch.bfloat16


def test_lowvram_forces_offload_and_tiling(loaders: ModuleType, fake_comfy: FakeComfy,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    fake_comfy.low_vram = True
    fake_comfy.install(monkeypatch)
    (model,) = loaders.AuraFlowLoader().load(AIO, "fp32", False, False)
    assert model.offload_text_encoder and model.vae.use_tiling


def test_single_file_without_tokenizer_uses_comfys_bundled_one(loaders: ModuleType, fake_comfy: FakeComfy,
                                                                models_dir: Path, comfy_dir: Path) -> None:
    """The all-in-one file holds no tokenizer; most users have only ComfyUI's comfy/text_encoders/t5_pile_tokenizer."""
    lone = models_dir / "checkpoints" / "alone" / "lone.safetensors"
    lone.parent.mkdir(exist_ok=True)
    lone.write_bytes((models_dir / "checkpoints" / AIO).read_bytes())
    bundled = comfy_dir / "text_encoders" / "t5_pile_tokenizer" / "tokenizer.model"
    assert loaders.comfy_tokenizer() == bundled
    assert loaders._tokenizer_for(lone, None) == bundled
    assert loaders._tokenizer_for(models_dir / "checkpoints" / AIO, None) is None  # the one beside it wins
    (model,) = loaders.AuraFlowLoader().load("alone/lone.safetensors", "fp32", False, False)
    assert model.tokenizer("a cat")["input_ids"][-1] == model.tokenizer.eos_token_id


def test_bundled_tokenizer_is_not_looked_for_outside_comfyui(loaders: ModuleType) -> None:
    assert loaders.comfy_tokenizer() is None


@pytest.mark.parametrize("name, components, expected", [
    ("missing.safetensors", "none", ["AuraFlow Loader:", "not found in models/checkpoints", "refresh"]),
    (NOT_AURAFLOW, "none", ["AuraFlow Loader:", "AuraFlow checkpoints only", "ComfyUI's own loaders"]),
    (TRANSFORMER, "none", ["AuraFlow Loader:", "holds the transformer only", "as 'components'"]),
])
def test_bad_files_fail_naming_the_node_and_the_fix(loaders: ModuleType, common: ModuleType, fake_comfy: FakeComfy,
                                                    name: str, components: str, expected: list[str]) -> None:
    with pytest.raises(common.AuraFlowNodeError) as caught:
        loaders.AuraFlowLoader().load(name, "fp32", False, False, components)
    for text in expected:
        assert text in str(caught.value)
    # the queue keeps working: the next load succeeds
    (model,) = loaders.AuraFlowLoader().load(AIO, "fp32", False, False)
    assert model is not None


def test_fp8_weight_format_is_its_own_cached_model(loaders: ModuleType, fake_comfy: FakeComfy) -> None:
    node = loaders.AuraFlowLoader()
    (plain,) = node.load(AIO, "fp32", False, False)
    (fp8,) = node.load(AIO, "fp32", False, False, "none", "fp8_e4m3fn")
    assert fp8 is not plain
    def kinds(model: object) -> set[str]:  # by name: the pack's pipeline modules are not the top-level ones
        return {type(m).__name__ for m in model.transformer.modules()}

    assert "Fp8Linear" in kinds(fp8) and "Fp8Linear" not in kinds(plain)
    (again,) = node.load(AIO, "fp32", False, False, "none", "fp8_e4m3fn")
    assert again is fp8


@pytest.mark.parametrize("offload", ["model", "sequential"])
def test_offload_options_reach_the_model(loaders: ModuleType, fake_comfy: FakeComfy, offload: str) -> None:
    (model,) = loaders.AuraFlowLoader().load(AIO, "fp32", False, False, "none", "default", offload, 2)
    assert model.offload == offload
    (model,) = loaders.AuraFlowLoader().load(AIO, "fp32", False, False, "none", "default", "none", 0)
    assert model.offload == "none"


def test_bad_offload_is_a_node_error(loaders: ModuleType, fake_comfy: FakeComfy) -> None:
    with pytest.raises(Exception, match="AuraFlow Loader:.*offload"):
        loaders.AuraFlowLoader().load(AIO, "fp32", False, False, "none", "default", "swap")


def test_gguf_transformer_files_are_listed_and_load(loaders: ModuleType, fake_comfy: FakeComfy,
                                                    models_dir: Path) -> None:
    """city96's .gguf files sit in models/unet (= diffusion_models); ComfyUI's own list filters them out."""
    pytest.importorskip("gguf", reason="the optional gguf package is not installed")
    import json

    from safetensors.torch import load_file

    from pipeline.configs import metadata_for
    from pipeline.export import write_gguf_transformer
    folder = models_dir / "diffusers" / "tiny-auraflow"
    sd = load_file(folder / "transformer" / "diffusion_pytorch_model.safetensors")
    meta = metadata_for(transformer=json.loads((folder / "transformer" / "config.json").read_text()))
    target = models_dir / "diffusion_models" / "gguf" / "tiny-Q8_0.gguf"
    write_gguf_transformer(sd, target, "Q8_0", metadata=meta)
    try:
        assert "gguf/tiny-Q8_0.gguf" in loaders.model_names()
        (model,) = loaders.AuraFlowLoader().load("gguf/tiny-Q8_0.gguf", "fp32", False, False, DIFFUSERS)
        # by name: the pack's copy of pipeline.quantized is another module object than the top-level one
        assert any(type(m).__name__ == "GGUFLinear" for m in model.transformer.modules())
        assert model.encode_prompt("a cat").embeds.shape[1] == 256
    finally:
        target.unlink()
        target.parent.rmdir()
