"""Loading: diffusers folders, the local Hugging Face cache, and refusing what must not be loaded."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from pipeline import (
    CorruptCheckpointError,
    MissingComponentError,
    ModelLoadError,
    UnsafeCheckpointError,
    load_pipeline,
)

SMALL = {"num_inference_steps": 2, "width": 64, "height": 64, "output_type": "np", "seed": 4}


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".bin", ".pth"])
def test_pickled_checkpoints_are_refused_unopened(tmp_path: Path, suffix: str) -> None:
    evil = tmp_path / f"model{suffix}"
    evil.write_bytes(b"\x80\x04 not even read")
    with pytest.raises(UnsafeCheckpointError, match="pickled") as info:
        load_pipeline(evil, device="cpu")
    assert "safetensors" in str(info.value)


def test_truncated_safetensors_is_named(tmp_path: Path, tiny_dir: Path) -> None:
    data = (tiny_dir / "transformer" / "diffusion_pytorch_model.safetensors").read_bytes()
    broken = tmp_path / "aura_flow_0.3.safetensors"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match=r"aura_flow_0\.3\.safetensors.*truncated"):
        load_pipeline(broken, device="cpu")


def test_truncated_component_in_folder_is_named(tmp_path: Path, tiny_dir: Path) -> None:
    copy = shutil.copytree(tiny_dir, tmp_path / "copy")
    vae = copy / "vae" / "diffusion_pytorch_model.safetensors"
    vae.write_bytes(vae.read_bytes()[:-10])
    with pytest.raises(CorruptCheckpointError, match="diffusion_pytorch_model.safetensors"):
        load_pipeline(copy, device="cpu")


def test_folder_without_model_index(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model_index.json"):
        load_pipeline(tmp_path, device="cpu")


def test_folder_missing_a_component(tmp_path: Path, tiny_dir: Path) -> None:
    copy = shutil.copytree(tiny_dir, tmp_path / "copy")
    shutil.rmtree(copy / "vae")
    with pytest.raises(MissingComponentError, match="vae"):
        load_pipeline(copy, device="cpu")


def test_folder_with_only_pickled_weights_is_refused(tmp_path: Path, tiny_dir: Path) -> None:
    copy = shutil.copytree(tiny_dir, tmp_path / "copy")
    weights = copy / "vae" / "diffusion_pytorch_model.safetensors"
    weights.rename(copy / "vae" / "diffusion_pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError):
        load_pipeline(copy, device="cpu")


def test_missing_path_and_uncached_repo(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such file"):
        load_pipeline(tmp_path / "nothing.safetensors", device="cpu")
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache"):
        load_pipeline("fal/AuraFlow-v0.3", device="cpu")


def test_loaded_modules_are_ready(tiny_pipe: Any) -> None:
    for module in (tiny_pipe.transformer, tiny_pipe.text_encoder, tiny_pipe.vae):
        assert not module.training
        assert all(p.device.type == "cpu" and p.dtype == torch.float32 and not p.requires_grad
                   for p in module.parameters())
    # UMT5 ties its input embedding to `shared`: the tie must survive loading from a file without the copy
    assert tiny_pipe.text_encoder.encoder.embed_tokens.weight is tiny_pipe.text_encoder.shared.weight


def test_repo_id_from_local_hub_cache(tmp_path: Path, tiny_dir: Path, tiny_pipe: Any) -> None:
    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = Path(constants.HF_HUB_CACHE) / "models--someone--tiny-auraflow"
    shutil.copytree(tiny_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    cached = load_pipeline("someone/tiny-auraflow", device="cpu", dtype="fp32")
    assert Path(cached.source) == repo / "snapshots" / commit
    assert np.array_equal(cached.generate("a cat", **SMALL).images, tiny_pipe.generate("a cat", **SMALL).images)


def test_bad_dtype_is_named(tiny_dir: Path) -> None:
    with pytest.raises(ValueError, match="dtype"):
        load_pipeline(tiny_dir, device="cpu", dtype="int8")
