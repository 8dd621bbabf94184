"""GGUF weight types -> torch tensors: one function per type, run on the tensor's own device.

Why torch and not ``gguf.quants.dequantize`` (numpy): dequantisation happens in every forward of every layer
(weights stay quantised in memory), so it must run on the GPU where the layer runs. ``Q8_0`` and ``Q4_0`` (the
types in city96/AuraFlow-v0.3-gguf besides F16) and the float types have torch versions here; any other type
falls back to the gguf package on the CPU (correct, slow). ``tests/perf/test_gguf.py`` compares each torch
version with the gguf package's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["dequantize", "TORCH_TYPES"]

# GGMLQuantizationType values (stable in the GGUF spec), so this module imports without the gguf package.
F32, F16, Q4_0, Q8_0, BF16 = 0, 1, 2, 8, 30


def _q8_0(raw: torch.Tensor) -> torch.Tensor:
    """Blocks of 34 bytes: float16 scale ``d``, then 32 int8 values; ``w = d * q``."""
    blocks = raw.reshape(-1, 34)
    d = blocks[:, :2].contiguous().view(torch.float16).to(torch.float32)
    q = blocks[:, 2:].contiguous().view(torch.int8).to(torch.float32)
    return d * q


def _q4_0(raw: torch.Tensor) -> torch.Tensor:
    """Blocks of 18 bytes: float16 ``d``, then 16 bytes: low nibbles are values 0-15, high ones 16-31; ``(n-8)*d``."""
    blocks = raw.reshape(-1, 18)
    d = blocks[:, :2].contiguous().view(torch.float16).to(torch.float32)
    packed = blocks[:, 2:]
    q = torch.cat([packed & 0x0F, packed >> 4], dim=1).to(torch.float32) - 8.0
    return d * q


_FLOATS = {F32: torch.float32, F16: torch.float16, BF16: torch.bfloat16}
_BLOCKS: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {Q8_0: _q8_0, Q4_0: _q4_0}
TORCH_TYPES = (*_FLOATS, *_BLOCKS)


def dequantize(raw: torch.Tensor, qtype: int, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """The weight of logical ``shape`` (torch order) from GGUF bytes ``raw`` of type ``qtype``, as ``dtype``."""
    if qtype in _FLOATS:
        values = raw if raw.dtype == _FLOATS[qtype] else raw.contiguous().view(_FLOATS[qtype])
        return values.reshape(shape).to(dtype)
    block = _BLOCKS.get(qtype)
    if block is not None:
        return block(raw).reshape(shape).to(dtype)
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as numpy_dequantize

    values = numpy_dequantize(raw.cpu().numpy(), GGMLQuantizationType(qtype))
    return torch.from_numpy(values).reshape(shape).to(device=raw.device, dtype=dtype)
