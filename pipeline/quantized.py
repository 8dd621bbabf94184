"""Linear layers whose weights are stored small and widened per layer at forward: fp8 and GGUF.

Why per layer: the point is memory. Real v0.3's transformer is 13.7 GB in bf16; stored as float8_e4m3fn it is
~6.9 GB, as GGUF Q8_0 ~7.3 GB. Each layer widens its own weight to the compute dtype just before its matmul and
drops it after, so at most one full-precision weight exists at a time (tens of MB). The maths is otherwise the
module's own (``F.linear``), so the only difference from a bf16/fp32 run is the storage rounding
(``tests/perf/test_fp8.py`` and ``test_gguf.py`` report and bound it).

* :class:`Fp8Linear`: float8_e4m3fn weight with one float32 scale per tensor (``amax / 448``: e4m3's largest
  finite value), so small weights keep their 3 mantissa bits instead of flushing to zero.
* :class:`GGUFLinear`: the raw GGUF bytes of a quantised weight (``Q8_0``, ``Q4_0``, ... as city96's AuraFlow
  files hold them), dequantised by :mod:`pipeline.dequant`.

Only Linear layers inside the transformer blocks are converted (>98 % of the parameters); the embedders and the
final layer are small and stay in full precision, as ComfyUI's fp8 modes also leave them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .dequant import dequantize

__all__ = ["FP8_FORMATS", "Fp8Linear", "GGUFLinear", "quantize_fp8", "weight_bytes"]

FP8_FORMATS = {"fp8": torch.float8_e4m3fn, "fp8_e4m3fn": torch.float8_e4m3fn}
_E4M3_MAX = float(torch.finfo(torch.float8_e4m3fn).max)  # 448
BLOCK_CONTAINERS = ("joint_transformer_blocks", "single_transformer_blocks")


class Fp8Linear(nn.Module):
    """``nn.Linear`` with a float8_e4m3fn weight and a per-tensor float32 scale; bias kept in compute dtype."""

    def __init__(self, linear: nn.Linear, fp8_dtype: torch.dtype = torch.float8_e4m3fn) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach()
        amax = weight.abs().max().to(torch.float32)
        scale = (amax / _E4M3_MAX).clamp(min=torch.finfo(torch.float32).tiny)
        self.register_buffer("weight", (weight.to(torch.float32) / scale).to(fp8_dtype))
        self.register_buffer("scale", scale)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.to(x.dtype) * self.scale.to(x.dtype)
        return F.linear(x, weight, None if self.bias is None else self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, storage={self.weight.dtype}"


class GGUFLinear(nn.Module):
    """``nn.Linear`` whose weight is GGUF bytes of type ``qtype`` (a ``gguf.GGMLQuantizationType`` value).

    The ``weight`` buffer holds the raw blocks (uint8, one row of blocks per output feature); its name is the
    Linear's, so state-dict plans and offloading treat it like any weight.
    """

    def __init__(self, in_features: int, out_features: int, qtype: int, raw_shape: tuple[int, ...],
                 bias: bool) -> None:
        super().__init__()
        self.in_features, self.out_features, self.qtype = in_features, out_features, int(qtype)
        self.register_buffer("weight", torch.empty(raw_shape, dtype=torch.uint8))
        self.bias = nn.Parameter(torch.empty(out_features), requires_grad=False) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = dequantize(self.weight, self.qtype, (self.out_features, self.in_features), x.dtype)
        return F.linear(x, weight, None if self.bias is None else self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        from gguf import GGMLQuantizationType

        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"qtype={GGMLQuantizationType(self.qtype).name}")


def _block_linears(module: nn.Module) -> list[tuple[nn.Module, str, nn.Linear]]:
    found = []
    for container in BLOCK_CONTAINERS:
        blocks = getattr(module, container, None)
        if blocks is None:
            continue
        for owner in blocks.modules():
            for name, child in owner.named_children():
                if type(child) is nn.Linear:
                    found.append((owner, name, child))
    return found


def quantize_fp8(module: nn.Module, fp8_dtype: torch.dtype = torch.float8_e4m3fn,
                 device: torch.device | str | None = None) -> nn.Module:
    """Replace the transformer blocks' Linear layers by :class:`Fp8Linear`, one at a time, in place.

    ``device``: where the fp8 layers go (e.g. CUDA after quantising on the CPU, so the GPU never holds the full
    precision weights). Returns ``module``.
    """
    for owner, name, linear in _block_linears(module):
        layer = Fp8Linear(linear, fp8_dtype)
        setattr(owner, name, layer.to(device) if device is not None else layer)
        del linear
    return module


def weight_bytes(module: nn.Module) -> int:
    """Bytes held by the module's parameters and buffers (what the weights cost in memory)."""
    tensors = {id(t): t for t in [*module.parameters(), *module.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values())
