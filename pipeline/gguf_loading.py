"""A GGUF transformer -> ``AuraFlowTransformer2DModel`` whose quantised Linear weights stay quantised.

Same plan as the original-layout safetensors file (``layouts.transformer_plan``), different reading: before the
meta-built model is filled, every Linear whose weight is quantised in the file (Q8_0, Q4_0, ...) is swapped for a
:class:`~pipeline.quantized.GGUFLinear` holding the file's bytes; float tensors (F32/F16/BF16) and anything that
needs a transform (``modF``'s swapped halves) are read as floats and cast to ``dtype`` like any checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .dequant import F16, F32
from .gguf_file import GGUFFile, open_gguf
from .quantized import GGUFLinear
from .weights import Source, build_empty, fill_module

FLOAT_TYPES = (F32, F16)


def gguf_transformer(path: Path, device: torch.device, dtype: torch.dtype,
                     factory: Callable[[Mapping[str, Any]], nn.Module], *,
                     num_attention_heads: int | None = None) -> nn.Module:
    from . import configs, layouts

    with open_gguf(path) as gf:
        layout = layouts.detect_single_file(gf.shapes, path=path)
        plan = layouts.transformer_plan(gf.shapes, layout, path=path)
        config = configs.transformer_config(layouts.plan_shapes(plan), gf.metadata,
                                            num_attention_heads=num_attention_heads)
        module = build_empty(lambda: factory(config))
        sources: dict[str, Source] = {}
        for target, entry in plan.items():
            if not _keep_quantised(module, gf, target, entry):
                sources[target] = _float_source(gf, entry)
                continue
            raw = gf.raw(entry.source)
            owner_name = target.rpartition(".")[0]
            linear = module.get_submodule(owner_name)
            with torch.device("meta"):
                layer = GGUFLinear(linear.in_features, linear.out_features, gf.qtypes[entry.source],
                                   tuple(raw.shape), bias=linear.bias is not None)
            parent, _, child = owner_name.rpartition(".")
            setattr(module.get_submodule(parent) if parent else module, child, layer)
            sources[target] = lambda r=raw: r
        return fill_module(module, sources, dtype=dtype, device=device, what="transformer (GGUF)", path=path)


def _keep_quantised(module: nn.Module, gf: GGUFFile, target: str, entry: Any) -> bool:
    if gf.qtypes[entry.source] in FLOAT_TYPES or entry.transform is not None or not target.endswith(".weight"):
        return False
    owner = module.get_submodule(target.rpartition(".")[0])
    return type(owner) is nn.Linear


def _float_source(gf: GGUFFile, entry: Any) -> Source:
    if entry.transform is None:
        return lambda: gf.get(entry.source)
    return lambda: entry.transform(gf.get(entry.source))


