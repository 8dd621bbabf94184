"""The same tiny weights in every supported layout load to the same model: images match diffusers (<= 1e-4).

Files are written from the diffusers folder's state dicts with our export functions (the inverse of the key
tables the loader reads), with the head count in the safetensors metadata since shapes do not carry it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.torch import load_file, save_file
from testkit.stacks import diffusers_reference, reference_images

from pipeline import MissingComponentError, UnrecognizedLayoutError, load_pipeline
from pipeline.configs import metadata_for
from pipeline.export import write_comfy_all_in_one, write_original_transformer

ARGS = {"prompt": "a lighthouse at dusk", "seed": 99, "num_inference_steps": 3, "width": 64, "height": 96,
        "guidance_scale": 3.5, "negative_prompt": "blurry"}


def _state_dicts(folder: Path) -> dict[str, dict[str, Any]]:
    return {
        "transformer": load_file(folder / "transformer" / "diffusion_pytorch_model.safetensors"),
        "text_encoder": load_file(folder / "text_encoder" / "model.safetensors"),
        "vae": load_file(folder / "vae" / "diffusion_pytorch_model.safetensors"),
    }


@pytest.fixture(scope="module")
def files(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import json

    root = tmp_path_factory.mktemp("layouts")
    sds = _state_dicts(tiny_dir)
    config = json.loads((tiny_dir / "transformer" / "config.json").read_text())
    meta = metadata_for(transformer=config)
    out = {}
    # ComfyUI all-in-one, with the tokenizer folder beside it (as a user would place it)
    comfy = root / "comfy"
    out["all-in-one"] = write_comfy_all_in_one(sds["transformer"], sds["text_encoder"], sds["vae"],
                                               comfy / "aura_flow_tiny.safetensors", metadata=meta)
    shutil.copytree(tiny_dir / "tokenizer", comfy / "tokenizer")
    # fal's original transformer-only file; the rest comes from elsewhere
    out["original"] = write_original_transformer(sds["transformer"], root / "fal" / "aura_flow_tiny.safetensors",
                                                 metadata=meta)
    # a diffusers-named transformer alone
    save_file(sds["transformer"], str(root / "diffusers_transformer.safetensors"), metadata=meta)
    out["diffusers-transformer"] = root / "diffusers_transformer.safetensors"
    # stand-alone text encoder (ComfyUI text_encoders folder style) and VAE files
    save_file({k: v.contiguous() for k, v in sds["text_encoder"].items()}, str(root / "pile_t5xl.safetensors"))
    out["text_encoder"] = root / "pile_t5xl.safetensors"
    out["vae"] = root / "vae.safetensors"
    save_file(sds["vae"], str(out["vae"]))
    return out


@pytest.fixture(scope="module")
def expected(tiny_dir: Path) -> np.ndarray:
    return reference_images(diffusers_reference(tiny_dir), **ARGS)


def _check(pipe: Any, expected: np.ndarray) -> None:
    got = pipe.generate(output_type="np", **ARGS).images
    diff = float(np.abs(got - expected).max())
    assert diff <= 1e-4, f"max |ours - diffusers| = {diff:.3g}"


def test_comfyui_all_in_one(files: dict[str, Path], expected: np.ndarray) -> None:
    _check(load_pipeline(files["all-in-one"], device="cpu", dtype="fp32"), expected)


def test_original_transformer_with_components_folder(files: dict[str, Path], tiny_dir: Path,
                                                     expected: np.ndarray) -> None:
    _check(load_pipeline(files["original"], device="cpu", dtype="fp32", components=tiny_dir), expected)


def test_original_transformer_with_single_files(files: dict[str, Path], tiny_dir: Path,
                                                expected: np.ndarray) -> None:
    pipe = load_pipeline(files["original"], device="cpu", dtype="fp32", text_encoder=files["text_encoder"],
                         vae=files["vae"], tokenizer=tiny_dir / "tokenizer")
    _check(pipe, expected)


def test_diffusers_transformer_file(files: dict[str, Path], tiny_dir: Path, expected: np.ndarray) -> None:
    _check(load_pipeline(files["diffusers-transformer"], device="cpu", dtype="fp32", components=tiny_dir), expected)


def test_bare_tokenizer_model_beside_file(files: dict[str, Path], tmp_path: Path, tiny_dir: Path,
                                          expected: np.ndarray) -> None:
    """A SentencePiece tokenizer.model alone (no config) tokenizes like the diffusers folder's tokenizer."""
    from pipeline.tiny import train_tokenizer

    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(files["all-in-one"], lone / "model.safetensors")
    spm_dir = train_tokenizer(tmp_path / "spm")  # the same corpus and settings as the tiny stack's
    shutil.copy(spm_dir / "tokenizer.model", lone / "tokenizer.model")
    _check(load_pipeline(lone / "model.safetensors", device="cpu", dtype="fp32"), expected)


def test_transformer_only_file_says_what_is_missing(files: dict[str, Path]) -> None:
    with pytest.raises(MissingComponentError, match="components="):
        load_pipeline(files["original"], device="cpu")


def test_all_in_one_without_tokenizer_says_where_it_looked(files: dict[str, Path], tmp_path: Path) -> None:
    lone = tmp_path / "aura.safetensors"
    shutil.copy(files["all-in-one"], lone)
    with pytest.raises(MissingComponentError, match="tokenizer") as info:
        load_pipeline(lone, device="cpu")
    assert "AURAFLOW_TOKENIZER" in str(info.value) and str(tmp_path) in str(info.value)


def test_tokenizer_from_environment(files: dict[str, Path], tmp_path: Path, tiny_dir: Path,
                                    monkeypatch: pytest.MonkeyPatch, expected: np.ndarray) -> None:
    lone = tmp_path / "aura.safetensors"
    shutil.copy(files["all-in-one"], lone)
    monkeypatch.setenv("AURAFLOW_TOKENIZER", str(tiny_dir / "tokenizer"))
    _check(load_pipeline(lone, device="cpu", dtype="fp32"), expected)


def test_not_auraflow_names_expected_layout_and_keys(tmp_path: Path) -> None:
    import torch

    sdxl = tmp_path / "sd_xl_base.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(2, 2),
               "conditioner.embedders.0.transformer.text_model.embeddings.position_ids": torch.zeros(2)}, str(sdxl))
    with pytest.raises(UnrecognizedLayoutError) as info:
        load_pipeline(sdxl, device="cpu")
    message = str(info.value)
    assert "input_blocks" in message and "AuraFlow" in message
    assert info.value.keys_seen
