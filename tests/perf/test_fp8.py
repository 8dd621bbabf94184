"""fp8 (e4m3fn) weight storage: half the bytes of bf16 for the blocks, images close to the full-precision run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from pipeline import InvalidInputError, load_pipeline
from pipeline.quantized import Fp8Linear, quantize_fp8, weight_bytes


def test_fp8_linear_error_is_e4m3_rounding() -> None:
    linear = torch.nn.Linear(64, 32).requires_grad_(False)
    x = torch.randn(4, 64)
    layer = Fp8Linear(linear)
    assert layer.weight.dtype == torch.float8_e4m3fn and layer.weight.element_size() == 1
    widened = layer.weight.to(torch.float32) * layer.scale
    rel = ((widened - linear.weight).abs() / linear.weight.abs().clamp(min=layer.scale * 2)).max()
    assert float(rel) <= 2**-4 + 1e-6  # 3 mantissa bits: half an ulp is at most 1/16 relative
    expected = linear(x)
    assert float((layer(x) - expected).norm() / expected.norm()) <= 0.05


def test_quantize_fp8_converts_only_block_linears(perf_pipe: Any) -> None:
    import copy

    transformer = copy.deepcopy(perf_pipe.transformer)
    full = weight_bytes(transformer)
    quantize_fp8(transformer)
    assert isinstance(transformer.joint_transformer_blocks[0].attn.to_q, Fp8Linear)
    assert isinstance(transformer.single_transformer_blocks[0].ff.linear_1, Fp8Linear)
    assert type(transformer.proj_out) is torch.nn.Linear and type(transformer.context_embedder) is torch.nn.Linear
    assert weight_bytes(transformer) < full


def test_fp8_load_images_close(tiny_dir: Path, perf_pipe: Any, generate_args: dict[str, Any]) -> None:
    pipe = load_pipeline(tiny_dir, device="cpu", dtype="fp32", weight_format="fp8")
    expected = perf_pipe.generate(**generate_args).images
    got = pipe.generate(**generate_args).images
    diff = float(np.abs(got - expected).max())
    ratio = weight_bytes(pipe.transformer) / weight_bytes(perf_pipe.transformer)
    print(f"fp8: max |image - fp32| = {diff:.2e}, transformer bytes {ratio:.2f}x fp32")
    assert 0 < diff <= 0.02
    assert ratio < 0.6


def test_weight_format_is_checked(tiny_dir: Path) -> None:
    with pytest.raises(InvalidInputError, match="fp8"):
        load_pipeline(tiny_dir, device="cpu", weight_format="int4")
