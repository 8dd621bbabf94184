"""``load_pipeline``: any supported AuraFlow checkpoint -> a ready :class:`~pipeline.pipeline.AuraFlow`.

Sources, told apart by what is on disk:

* a **diffusers folder** (``model_index.json`` + ``transformer/``, ``text_encoder/``, ``tokenizer/``, ``vae/``);
* a **single ``.safetensors`` file**: ComfyUI's all-in-one (``model.``, ``vae.``,
  ``text_encoders.pile_t5xl.transformer.``), fal's original transformer-only layout (``double_layers.…``), or a
  diffusers transformer alone; parts the file lacks come from ``components`` (a diffusers folder or repo id)
  or from single files given as ``text_encoder=`` / ``vae=``;
* a **GGUF file** (city96's transformer-only AuraFlow GGUF, original names; needs the optional ``gguf``
  package): quantised weights stay quantised and are dequantised per layer at forward (``quantized.py``); the
  other parts come from ``components`` / ``text_encoder=`` / ``vae=`` as for a transformer-only file;
* a **Hugging Face repo id** already in the local cache (never downloaded here).

``weight_format="fp8"`` stores the transformer blocks' Linear weights as float8_e4m3fn (half of bf16), widened
per layer at forward; it is built on the CPU and moved, so the GPU never holds the full-precision weights.

Modules are built on the meta device and filled tensor by tensor (``weights.py``): one copy of the weights.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from .errors import MissingComponentError, ModelLoadError, UnrecognizedLayoutError
from .gguf_file import GGUF_SUFFIXES
from .pipeline import AuraFlow
from .quantized import FP8_FORMATS, quantize_fp8
from .schedule import DEFAULT_SHIFT
from .tokenizer import find_tokenizer, open_tokenizer
from .weights import (
    PICKLE_SUFFIXES,
    SAFETENSORS_SUFFIXES,
    SafetensorsFile,
    Source,
    build_empty,
    fill_module,
    open_safetensors,
    read_json,
    refuse_pickle,
)

log = logging.getLogger(__name__)

COMPONENTS = ("transformer", "text_encoder", "tokenizer", "vae")
DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}


def default_device_and_dtype(device: torch.device | str | None, dtype: torch.dtype | str | None
                             ) -> tuple[torch.device, torch.dtype]:
    """CUDA + bf16 when a GPU is there, else CPU + fp32 (CPU half precision is slow and inexact)."""
    device = torch.device(device) if device is not None else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(dtype, str):
        if dtype not in DTYPES and dtype != "auto":
            from .errors import InvalidInputError

            raise InvalidInputError("dtype", dtype, f"auto or one of {', '.join(DTYPES)}")
        dtype = DTYPES.get(dtype)
    if dtype is None:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    return device, dtype


def load_pipeline(
    source: str | Path,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
    tokenizer: str | Path | None = None,
    components: str | Path | None = None,
    text_encoder: str | Path | None = None,
    vae: str | Path | None = None,
    num_attention_heads: int | None = None,
    weight_format: str | None = None,
) -> AuraFlow:
    """Load AuraFlow from ``source`` (a diffusers folder, a ``.safetensors`` file or a cached repo id).

    ``components``: a diffusers folder (or cached repo id) supplying whatever a single file lacks.
    ``tokenizer``: a tokenizer folder or ``tokenizer.model``; else one is searched for (see ``tokenizer.py``).
    ``num_attention_heads``: only for non-standard single files whose head split is not the real 12 x 256.
    ``weight_format``: None (the weights in ``dtype``) or ``"fp8"`` / ``"fp8_e4m3fn"`` (transformer blocks
    stored in float8, per-tensor scale; see ``quantized.py``).
    """
    device, dtype = default_device_and_dtype(device, dtype)
    if weight_format is not None and weight_format not in FP8_FORMATS:
        from .errors import InvalidInputError

        raise InvalidInputError("weight_format", weight_format, f"None or one of {', '.join(FP8_FORMATS)}")
    # fp8: fill the transformer in host memory, then quantise layer by layer straight onto the device
    t_device = torch.device("cpu") if weight_format is not None else device
    path = _resolve(source)
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelLoadError(f"{path} is a folder without model_index.json: not a diffusers AuraFlow folder. "
                                 "Point at the folder that holds model_index.json, or at a .safetensors file.",
                                 path=path)
        parts = _folder_parts(path, device, dtype, tokenizer, transformer_device=t_device)
    else:
        parts = _single_file_parts(path, device, dtype, tokenizer=tokenizer, components=components,
                                   text_encoder=text_encoder, vae=vae, num_attention_heads=num_attention_heads,
                                   transformer_device=t_device)
    if weight_format is not None:
        parts["transformer"] = quantize_fp8(parts["transformer"], FP8_FORMATS[weight_format], device).to(device)
    return AuraFlow(device=device, dtype=dtype, source=str(path), **parts)


# ------------------------------------------------------------------------------------------------ sources
def _resolve(source: str | Path) -> Path:
    path = Path(source).expanduser()
    if path.exists():
        if path.is_file():
            refuse_pickle(path)
        return path
    text = str(source)
    file_suffixes = PICKLE_SUFFIXES + SAFETENSORS_SUFFIXES + GGUF_SUFFIXES
    if path.suffix.lower() in file_suffixes or "/" not in text or text.count("/") != 1 \
            or text.startswith((".", "/", "~")):
        raise ModelLoadError(f"{source}: no such file or folder.", path=source)
    return _hub_snapshot(text)


def _hub_snapshot(repo_id: str) -> Path:
    """The local cache's snapshot of ``repo_id``; downloading is left to the user, explicitly."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as exc:  # huggingface_hub raises several types for "not cached"
        raise ModelLoadError(
            f"{repo_id}: not a local path, and not in the local Hugging Face cache. Download it first "
            f"(for example `hf download {repo_id}`), or give the path of a diffusers folder or .safetensors file.",
            path=repo_id,
        ) from exc
    if (folder / "model_index.json").is_file():
        return folder
    singles = sorted(folder.glob("*.safetensors"))
    if len(singles) == 1:
        return singles[0]
    raise ModelLoadError(f"{repo_id}: the cached snapshot has no model_index.json and no single .safetensors "
                         "file to load.", path=folder)


# ---------------------------------------------------------------------------------------- diffusers folder
def _folder_parts(folder: Path, device: torch.device, dtype: torch.dtype, tokenizer: str | Path | None, *,
                  transformer_device: torch.device) -> dict[str, Any]:
    index = read_json(folder / "model_index.json", "model_index.json")
    absent = [c for c in COMPONENTS if c not in index or not (folder / c).is_dir()]
    if absent:
        raise MissingComponentError(absent[0], f"{folder}: the diffusers folder lacks {', '.join(absent)} "
                                    f"(an AuraFlow folder has {', '.join(COMPONENTS)}).", path=folder)
    scheduler_cfg = folder / "scheduler" / "scheduler_config.json"
    shift = float(read_json(scheduler_cfg, "scheduler config").get("shift", DEFAULT_SHIFT)) \
        if scheduler_cfg.is_file() else DEFAULT_SHIFT
    return {
        "transformer": _load_folder_component(folder / "transformer", _transformer_factory, transformer_device,
                                              dtype),
        "text_encoder": _load_folder_component(folder / "text_encoder", _text_encoder_factory, device, dtype),
        "vae": _load_folder_component(folder / "vae", _vae_factory, device, _vae_dtype(dtype)),
        "tokenizer": open_tokenizer(Path(tokenizer) if tokenizer else folder / "tokenizer"),
        "shift": shift,
    }


def _load_folder_component(sub: Path, factory: Callable[[dict[str, Any]], torch.nn.Module], device: torch.device,
                           dtype: torch.dtype) -> torch.nn.Module:
    config = read_json(sub / "config.json", f"{sub.name} config")
    files = _weight_files(sub, dtype)
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(open_safetensors(f)) for f in files]
        sources = _merge_sources(readers)
        module = build_empty(lambda: factory(config))
        return fill_module(module, sources, dtype=dtype, device=device, what=sub.name, path=sub)


def _weight_files(sub: Path, dtype: torch.dtype) -> list[Path]:
    """The component's safetensors files: the fp16 variant when loading in half precision, sharded or not."""
    half = dtype in (torch.float16, torch.bfloat16)
    indexes = sorted(sub.glob("*.safetensors.index*.json"))
    singles = [p for p in sorted(sub.glob("*.safetensors")) if "-of-" not in p.name]
    for variant_first in ((True, False) if half else (False, True)):
        for index in indexes:
            if (".fp16." in index.name) == variant_first:
                shards = sorted(set(read_json(index, index.name).get("weight_map", {}).values()))
                return [sub / s for s in shards]
        for single in singles:
            if (".fp16." in single.name) == variant_first:
                return [single]
    pickled = [p.name for p in sub.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES]
    if pickled:
        refuse_pickle(sub / pickled[0])
    raise MissingComponentError(sub.name, f"{sub}: no .safetensors weights found.", path=sub)


def _merge_sources(readers: list[SafetensorsFile]) -> dict[str, Source]:
    sources: dict[str, Source] = {}
    for reader in readers:
        for key in reader.shapes:
            sources[key] = (lambda r=reader, k=key: r.get(k))
    return sources


def _transformer_factory(config: Mapping[str, Any]) -> torch.nn.Module:
    from diffusers import AuraFlowTransformer2DModel

    return AuraFlowTransformer2DModel.from_config(_plain(config))


def _vae_factory(config: Mapping[str, Any]) -> torch.nn.Module:
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_config(_plain(config))


def _text_encoder_factory(config: Mapping[str, Any]) -> torch.nn.Module:
    from transformers import UMT5Config, UMT5EncoderModel

    cfg = {k: v for k, v in config.items() if not k.startswith("_")}
    return UMT5EncoderModel(UMT5Config(**cfg))


def _plain(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def _vae_dtype(dtype: torch.dtype) -> torch.dtype:
    # The SDXL VAE overflows in fp16 (diffusers upcasts it: force_upcast); bf16 and fp32 are fine.
    return torch.float32 if dtype == torch.float16 else dtype


# ------------------------------------------------------------------------------------------- single files
def _single_file_parts(path: Path, device: torch.device, dtype: torch.dtype, *, tokenizer: str | Path | None,
                       components: str | Path | None, text_encoder: str | Path | None, vae: str | Path | None,
                       num_attention_heads: int | None, transformer_device: torch.device) -> dict[str, Any]:
    companion = _resolve(components) if components is not None else None
    if companion is not None and not (companion / "model_index.json").is_file():
        raise ModelLoadError(f"components={components}: expected a diffusers AuraFlow folder (with "
                             "model_index.json).", path=companion)
    parts: dict[str, Any] = {"shift": DEFAULT_SHIFT}
    if path.suffix.lower() in GGUF_SUFFIXES:
        from .gguf_loading import gguf_transformer

        parts["transformer"] = gguf_transformer(path, transformer_device, dtype, _transformer_factory,
                                                num_attention_heads=num_attention_heads)
    else:
        _safetensors_parts(parts, path, device, dtype, text_encoder=text_encoder, vae=vae,
                           num_attention_heads=num_attention_heads, transformer_device=transformer_device)
    if "text_encoder" not in parts:
        parts["text_encoder"] = _extra_component("text_encoder", text_encoder, companion, path, device, dtype)
    if "vae" not in parts:
        parts["vae"] = _extra_component("vae", vae, companion, path, device, _vae_dtype(dtype))
    if companion is not None and (companion / "scheduler" / "scheduler_config.json").is_file():
        parts["shift"] = float(read_json(companion / "scheduler" / "scheduler_config.json", "scheduler config")
                               .get("shift", DEFAULT_SHIFT))
    parts["tokenizer"] = open_tokenizer(find_tokenizer(explicit=Path(tokenizer) if tokenizer else None,
                                                       weights=path, components=companion))
    return parts


def _safetensors_parts(parts: dict[str, Any], path: Path, device: torch.device, dtype: torch.dtype, *,
                       text_encoder: str | Path | None, vae: str | Path | None, num_attention_heads: int | None,
                       transformer_device: torch.device) -> None:
    with open_safetensors(path) as reader:
        from . import configs, layouts  # after opening: a broken file is reported as such first

        layout = layouts.detect_single_file(reader.shapes, path=path)
        plan = layouts.transformer_plan(reader.shapes, layout, path=path)
        config = configs.transformer_config(layouts.plan_shapes(plan), reader.metadata,
                                            num_attention_heads=num_attention_heads)
        parts["transformer"] = _fill_from_plan(reader, plan, lambda: _transformer_factory(config),
                                               transformer_device, dtype, "transformer")
        if layout.text_encoder_prefix is not None and text_encoder is None:
            te_plan = layouts.text_encoder_plan(reader.shapes, layout.text_encoder_prefix, path=path)
            te_config = configs.text_encoder_config(layouts.plan_shapes(te_plan), reader.metadata)
            parts["text_encoder"] = _fill_from_plan(reader, te_plan, lambda: _text_encoder_factory(te_config),
                                                    device, dtype, "text encoder")
        if layout.vae_prefix is not None and vae is None:
            vae_plan = layouts.vae_plan(reader.shapes, layout.vae_prefix, path=path)
            vae_config = configs.vae_config(layouts.plan_shapes(vae_plan), reader.metadata)
            parts["vae"] = _fill_from_plan(reader, vae_plan, lambda: _vae_factory(vae_config), device,
                                           _vae_dtype(dtype), "VAE")


def _fill_from_plan(reader: SafetensorsFile, plan: Mapping[str, Any],
                    factory: Callable[[], torch.nn.Module], device: torch.device, dtype: torch.dtype,
                    what: str) -> torch.nn.Module:
    def source(entry: Any) -> Source:
        if entry.transform is None:
            return lambda: reader.get(entry.source)
        return lambda: entry.transform(reader.get(entry.source))

    sources = {target: source(entry) for target, entry in plan.items()}
    return fill_module(build_empty(factory), sources, dtype=dtype, device=device, what=what, path=reader.path)


def _extra_component(name: str, single: str | Path | None, companion: Path | None, weights: Path,
                     device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """A text encoder or VAE the main file lacks: from its own single file, or from the companion folder."""
    from . import configs, layouts

    factory = _text_encoder_factory if name == "text_encoder" else _vae_factory
    if single is not None:
        file = Path(single)
        with open_safetensors(file) as reader:
            prefix = _part_prefix(reader, name)
            if name == "text_encoder":
                plan = layouts.text_encoder_plan(reader.shapes, prefix, path=file)
                config = configs.text_encoder_config(layouts.plan_shapes(plan), reader.metadata)
            else:
                plan = layouts.vae_plan(reader.shapes, prefix, path=file)
                config = configs.vae_config(layouts.plan_shapes(plan), reader.metadata)
            return _fill_from_plan(reader, plan, lambda: factory(config), device, dtype, name.replace("_", " "))
    if companion is not None:
        return _load_folder_component(companion / name, factory, device, dtype)
    raise MissingComponentError(
        name,
        f"{weights.name} holds the transformer only; AuraFlow also needs a {name.replace('_', ' ')}. Pass "
        f"components=<a diffusers AuraFlow folder or cached repo id> or {name}=<its .safetensors file>.",
        path=weights,
    )


# Where a stand-alone text encoder or VAE file keeps its tensors: bare, or under a prefix another tool saved.
_PART_MARKERS = {
    "text_encoder": ("encoder.block.0.layer.0.SelfAttention.q.weight",
                     ("", "text_encoders.pile_t5xl.transformer.", "transformer.")),
    "vae": ("decoder.conv_in.weight", ("", "vae.", "first_stage_model.")),
}


def _part_prefix(reader: SafetensorsFile, name: str) -> str:
    marker, prefixes = _PART_MARKERS[name]
    for prefix in prefixes:
        if prefix + marker in reader.shapes:
            return prefix
    sample = ", ".join(list(reader.shapes)[:5])
    raise UnrecognizedLayoutError(
        f"{reader.path.name}: expected a {name.replace('_', ' ')} file (a tensor named {marker!r}, bare or under "
        f"{', '.join(repr(p) for p in prefixes if p)}); found keys such as {sample}.",
        path=reader.path, expected=f"{name} weights", keys_seen=list(reader.shapes)[:5],
    )
