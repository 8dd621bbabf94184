"""GGUF transformer files (city96's AuraFlow layout): detection, per-layer dequantisation, images vs safetensors.

Files are written with ``gguf.GGUFWriter`` from the tiny stack's weights in fal's original names
(``pipeline.export.write_gguf_transformer``): F16 must give nearly the fp32 images (fp16 rounding of the
weights only); Q8_0 is reported and bounded. Quantised weights must still be bytes after loading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf", reason="the optional gguf package is not installed (pip install gguf)")

from safetensors.torch import load_file  # noqa: E402

from pipeline import CorruptCheckpointError, load_pipeline  # noqa: E402
from pipeline.configs import metadata_for  # noqa: E402
from pipeline.dequant import dequantize  # noqa: E402
from pipeline.export import write_gguf_transformer  # noqa: E402
from pipeline.quantized import GGUFLinear, weight_bytes  # noqa: E402


@pytest.fixture(scope="module")
def gguf_files(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gguf")
    sd = load_file(tiny_dir / "transformer" / "diffusion_pytorch_model.safetensors")
    meta = metadata_for(transformer=json.loads((tiny_dir / "transformer" / "config.json").read_text()))
    return {q: write_gguf_transformer(sd, root / f"aura_tiny-{q}.gguf", q, metadata=meta)
            for q in ("F16", "Q8_0", "Q4_0")}


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0"])
def test_torch_dequantize_matches_gguf(qtype: str) -> None:
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as reference
    from gguf.quants import quantize

    kind = GGMLQuantizationType[qtype]
    array = np.random.default_rng(0).standard_normal((6, 96)).astype(np.float32)
    raw = quantize(array, kind)
    got = dequantize(torch.from_numpy(raw), int(kind), (6, 96), torch.float32)
    assert torch.equal(got, torch.from_numpy(reference(raw, kind)))


@pytest.mark.parametrize(("qtype", "bound"), [("F16", 1e-3), ("Q8_0", 0.02), ("Q4_0", 0.2)])
def test_gguf_images_close_to_safetensors(qtype: str, bound: float, gguf_files: dict[str, Path], tiny_dir: Path,
                                          perf_pipe: Any, generate_args: dict[str, Any]) -> None:
    pipe = load_pipeline(gguf_files[qtype], device="cpu", dtype="fp32", components=tiny_dir)
    quantised = [m for m in pipe.transformer.modules() if isinstance(m, GGUFLinear)]
    if qtype == "F16":
        assert not quantised
    else:
        assert quantised and all(m.weight.dtype == torch.uint8 for m in quantised)  # still bytes after loading
    expected = perf_pipe.generate(**generate_args).images
    got = pipe.generate(**generate_args).images
    diff = float(np.abs(got - expected).max())
    ratio = weight_bytes(pipe.transformer) / weight_bytes(perf_pipe.transformer)
    print(f"GGUF {qtype}: max |image - fp32 safetensors| = {diff:.2e}, transformer bytes {ratio:.2f}x fp32")
    assert diff <= bound


def test_truncated_gguf_is_named(gguf_files: dict[str, Path], tmp_path: Path, tiny_dir: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(gguf_files["Q8_0"].read_bytes()[:200])
    with pytest.raises(CorruptCheckpointError, match="broken.gguf"):
        load_pipeline(broken, device="cpu", components=tiny_dir)
