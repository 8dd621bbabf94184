"""Write AuraFlow single files in the layouts :func:`pipeline.layouts.detect_single_file` reads.

Why we write them at all: tests need every layout built from one set of random weights (auraflow-reference
§12), and users who hold a diffusers folder can make the ComfyUI all-in-one or a transformer-only original file.
The renames are the inverse converters in :mod:`pipeline.layouts`, so readers and writers share one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import save_file

from .layouts import diffusers_transformer_to_original, diffusers_vae_to_ldm

__all__ = [
    "COMFY_TEXT_ENCODER_PREFIX",
    "COMFY_TRANSFORMER_PREFIX",
    "COMFY_VAE_PREFIX",
    "write_comfy_all_in_one",
    "write_gguf_transformer",
    "write_original_transformer",
]

COMFY_TRANSFORMER_PREFIX = "model."
COMFY_VAE_PREFIX = "vae."
COMFY_TEXT_ENCODER_PREFIX = "text_encoders.pile_t5xl.transformer."


def _save(tensors: dict[str, torch.Tensor], path: str | Path, metadata: Mapping[str, str] | None) -> Path:
    """safetensors refuses views and shared storage; every tensor is written as its own contiguous copy."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(path),
              metadata=dict(metadata) if metadata else None)
    return path


def write_original_transformer(transformer_sd: Mapping[str, torch.Tensor], path: str | Path,
                               metadata: Mapping[str, str] | None = None) -> Path:
    """Write a diffusers ``AuraFlowTransformer2DModel`` state dict as fal's original, unprefixed file.

    ``metadata`` should carry the head count (:func:`pipeline.configs.metadata_for`); without it readers fall
    back to 256-wide heads.
    """
    return _save(diffusers_transformer_to_original(transformer_sd), path, metadata)


def write_comfy_all_in_one(transformer_sd: Mapping[str, torch.Tensor],
                           text_encoder_sd: Mapping[str, torch.Tensor] | None,
                           vae_sd: Mapping[str, torch.Tensor] | None, path: str | Path,
                           metadata: Mapping[str, str] | None = None) -> Path:
    """Write diffusers/transformers state dicts as a ComfyUI all-in-one checkpoint (``CheckpointLoaderSimple``).

    ``model.`` + original transformer names, ``vae.`` + LDM names, ``text_encoders.pile_t5xl.transformer.`` + T5
    names with one ``shared.weight`` embedding (the tied ``encoder.embed_tokens.weight`` copy is dropped when
    equal, as in ComfyUI's files). ``text_encoder_sd`` or ``vae_sd`` may be None to write a partial file.
    """
    tensors = {COMFY_TRANSFORMER_PREFIX + k: v for k, v in diffusers_transformer_to_original(transformer_sd).items()}
    if vae_sd is not None:
        tensors.update({COMFY_VAE_PREFIX + k: v for k, v in diffusers_vae_to_ldm(vae_sd).items()})
    if text_encoder_sd is not None:
        text = dict(text_encoder_sd)
        embedded = text.get("encoder.embed_tokens.weight")
        if embedded is not None and "shared.weight" in text and torch.equal(embedded, text["shared.weight"]):
            del text["encoder.embed_tokens.weight"]
        tensors.update({COMFY_TEXT_ENCODER_PREFIX + k: v for k, v in text.items()})
    return _save(tensors, path, metadata)


def write_gguf_transformer(transformer_sd: Mapping[str, torch.Tensor], path: str | Path, qtype: str = "F16",
                           metadata: Mapping[str, str] | None = None) -> Path:
    """Write a diffusers transformer state dict as a GGUF file like city96's AuraFlow ones (original names).

    ``qtype`` (``"F16"``, ``"BF16"``, ``"Q8_0"``, ``"Q4_0"``, any ``gguf.GGMLQuantizationType`` name) applies to
    2-D weights whose rows split into whole blocks; the rest is written F32, as city96's converter keeps small and
    odd-shaped tensors in full precision. Needs the optional ``gguf`` package. Used by tests and benchmarks.
    """
    import numpy as np
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize

    kind = GGMLQuantizationType[qtype]
    block = GGML_QUANT_SIZES[kind][0]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(str(path), "aura")
    for key, value in (metadata or {}).items():
        writer.add_string(key, str(value))
    for name, tensor in diffusers_transformer_to_original(transformer_sd).items():
        array = tensor.detach().to(torch.float32).contiguous().numpy()
        if array.ndim == 2 and array.shape[-1] % block == 0:
            if kind == GGMLQuantizationType.F16:
                writer.add_tensor(name, array.astype(np.float16))
            else:
                data = quantize(array, kind)
                writer.add_tensor(name, data, raw_shape=data.shape, raw_dtype=kind)
        else:
            writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
