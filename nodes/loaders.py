"""Loaders family: AuraFlowLoader, over :func:`pipeline.load_pipeline`.

Files come from ComfyUI's own model folders (through ``folder_paths``, so ``extra_model_paths.yaml`` works):
``checkpoints`` (the all-in-one ``aura_flow_0.3.safetensors``), ``diffusion_models`` (transformer-only files,
``.safetensors`` or city96's ``.gguf``, which take their text encoder and VAE from a diffusers folder) and diffusers
folders under ``models/diffusers``. The memory levers of ``pipeline`` (fp8 weight storage, model or sequential
offload) are optional inputs at the end, so workflows saved before they existed load unchanged.

Inside ComfyUI the model goes to ComfyUI's device (``--cpu`` gives the CPU), ComfyUI's own models are unloaded
before ours is read, and ``--lowvram`` turns on text-encoder offload and VAE tiling. One model stays cached per
process, so re-queueing, or a second loader with the same file, does not read 16 GB again.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..pipeline.errors import MissingComponentError, ModelLoadError, UnrecognizedLayoutError
from ..pipeline.gguf_file import GGUF_SUFFIXES
from ..pipeline.offload import OFFLOAD_MODES
from ..pipeline.weights import SAFETENSORS_SUFFIXES
from ._common import CATEGORY_ROOT, MODEL_TYPE, comfy_device, free_comfy_memory, low_vram, node_errors

log = logging.getLogger("ComfyUI-AuraFlow")

FILE_FOLDERS = ("checkpoints", "diffusion_models")
DIFFUSERS_FOLDER = "diffusers"
DIFFUSERS_PREFIX = "diffusers/"  # names of diffusers folders in the list, so they never collide with file names
NO_COMPONENTS = "none"
WEIGHT_DTYPES = ("auto", "bf16", "fp16", "fp32")
WEIGHT_FORMATS = ("default", "fp8_e4m3fn")  # default: the weights in weight_dtype (or GGUF's own types)
# ComfyUI-GGUF's folder name for .gguf transformers, when that pack is installed beside ours
GGUF_FOLDERS = ("diffusion_models", "unet_gguf")
MAX_RESIDENT_BLOCKS = 64  # v0.3 has 36 blocks; more simply keeps all of them resident
# ComfyUI's bundled Pile-T5 SentencePiece model (AuraFlow's tokenizer), a resource of the `comfy` package.
COMFY_TOKENIZER = ("text_encoders", "t5_pile_tokenizer", "tokenizer.model")

_LOAD_HINTS = {
    UnrecognizedLayoutError: "AuraFlow Loader reads AuraFlow checkpoints only (for example aura_flow_0.3."
                             "safetensors); load other models with ComfyUI's own loaders.",
    MissingComponentError: "For a transformer-only file in diffusion_models, pick a diffusers AuraFlow folder "
                           "(models/diffusers) as 'components'; for the tokenizer, put AuraFlow's tokenizer/ "
                           "folder beside the file.",
}


# ---------------------------------------------------------------------------------------------------------------
# ComfyUI's model folders


def _folder_paths() -> Any | None:
    try:
        import folder_paths
    except ImportError:
        return None
    return folder_paths


def _diffusers_roots() -> list[str]:
    fp = _folder_paths()
    if fp is None:
        return []
    try:
        return list(fp.get_folder_paths(DIFFUSERS_FOLDER))
    except Exception:  # an install without the diffusers folder name must still list files
        return []


def _diffusers_folders() -> dict[str, Path]:
    """``diffusers/<name>`` -> folder, for each AuraFlow-like diffusers folder (one holding model_index.json)."""
    found: dict[str, Path] = {}
    for root in map(Path, _diffusers_roots()):
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir()):
            candidates = [child] if (child / "model_index.json").is_file() else (
                sorted(c for c in child.iterdir() if c.is_dir()) if child.is_dir() else [])
            for folder in candidates:
                if (folder / "model_index.json").is_file():
                    found.setdefault(DIFFUSERS_PREFIX + folder.relative_to(root).as_posix(), folder)
    return found


def _gguf_files() -> dict[str, Path]:
    """Relative name -> path of each ``.gguf`` under the diffusion_models (and legacy unet) folders.

    Scanned here rather than through ``get_filename_list``: ComfyUI filters that list by its own extensions,
    which do not include ``.gguf`` unless ComfyUI-GGUF is installed and registers them.
    """
    fp = _folder_paths()
    found: dict[str, Path] = {}
    if fp is None:
        return found
    for folder in GGUF_FOLDERS:
        try:
            roots = list(fp.get_folder_paths(folder))
        except Exception:  # folder name unknown to this ComfyUI
            continue
        for root in map(Path, roots):
            if root.is_dir():
                for file in sorted(root.rglob("*")):
                    if file.suffix.lower() in GGUF_SUFFIXES and file.is_file():
                        found.setdefault(file.relative_to(root).as_posix(), file)
    return found


def model_names() -> list[str]:
    """The loader's choices: .safetensors files in checkpoints and diffusion_models, .gguf transformer files,
    then diffusers folders."""
    fp = _folder_paths()
    names: list[str] = []
    if fp is not None:
        for folder in FILE_FOLDERS:
            try:
                listed = fp.get_filename_list(folder)
            except Exception:  # an unknown folder name on an old ComfyUI
                continue
            names += [n for n in listed if n.lower().endswith(SAFETENSORS_SUFFIXES) and n not in names]
    names += [n for n in _gguf_files() if n not in names]
    return names + list(_diffusers_folders())


def component_names() -> list[str]:
    return [NO_COMPONENTS, *_diffusers_folders()]


def resolve_model(name: str) -> Path:
    """A name from :func:`model_names` -> its path; an existing path passes through (scripts, tests)."""
    if name.startswith(DIFFUSERS_PREFIX):
        folder = _diffusers_folders().get(name)
        if folder is not None:
            return folder
    fp = _folder_paths()
    if fp is not None:
        for folder in FILE_FOLDERS:
            try:
                full = fp.get_full_path(folder, name)
            except Exception:
                full = None
            if full:
                return Path(full)
    gguf = _gguf_files().get(name)
    if gguf is not None:
        return gguf
    if name and Path(name).exists():
        return Path(name)
    raise ModelLoadError(
        f"model {name!r} was not found in models/checkpoints, models/diffusion_models or models/diffusers. Put the "
        "file there (or add the folder to extra_model_paths.yaml), then refresh the node list (R) and pick it.",
        path=name,
    )


def comfy_tokenizer() -> Path | None:
    """ComfyUI's bundled Pile-T5 ``tokenizer.model``, found without importing ComfyUI modules; None outside."""
    if _folder_paths() is None:  # not inside ComfyUI: some other `comfy` package must not be picked up
        return None
    try:
        spec = importlib.util.find_spec("comfy")
    except (ImportError, ValueError):  # ValueError: a `comfy` module without a spec
        return None
    for base in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(base).joinpath(*COMFY_TOKENIZER)
        if candidate.is_file():
            return candidate
    return None


def _tokenizer_for(path: Path, components: Path | None) -> Path | None:
    """A tokenizer to pass for a single file: only when the core would find none itself.

    A tokenizer beside the file, in $AURAFLOW_TOKENIZER or in the components folder wins (it is the one that
    matches these weights); ComfyUI's bundled Pile-T5 model is the fallback most users rely on.
    """
    if path.is_dir():
        return None
    from ..pipeline.tokenizer import find_tokenizer

    try:
        find_tokenizer(explicit=None, weights=path, components=components)
        return None
    except MissingComponentError:
        return comfy_tokenizer()


# ---------------------------------------------------------------------------------------------------------------
# one cached model per process


@dataclass(frozen=True)
class _Key:
    path: str
    stamp: tuple[int, int]
    device: str
    dtype: str
    components: str
    weight_format: str


_cache: dict[_Key, Any] = {}


def _stamp(path: Path) -> tuple[int, int]:
    """Size and mtime: a file replaced under the same name is loaded again."""
    target = path / "model_index.json" if path.is_dir() else path
    stat = os.stat(target)
    return stat.st_size, stat.st_mtime_ns


def clear_cache() -> None:
    """Forget the cached model (the next load reads the file again) and return its memory."""
    _cache.clear()
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def load_cached(path: Path, *, dtype: str, components: Path | None, weight_format: str = "default") -> Any:
    """The model for ``path`` with these options, loading it unless it is the one already cached."""
    from ..pipeline import load_pipeline

    device = comfy_device()
    key = _Key(str(path.resolve()), _stamp(path), str(device), dtype, str(components or ""), weight_format)
    model = _cache.get(key)
    if model is not None:
        return model
    clear_cache()  # one AuraFlow at a time: drop the old one before reading the new one
    free_comfy_memory(0, device, everything=True)
    log.info("AuraFlow: loading %s (%s, weights %s)", path, dtype, weight_format)
    model = load_pipeline(path, device=device, dtype=dtype, components=components,
                          tokenizer=_tokenizer_for(path, components),
                          weight_format=None if weight_format == "default" else weight_format)
    _cache[key] = model
    return model


# ---------------------------------------------------------------------------------------------------------------
# AuraFlowLoader


class AuraFlowLoader:
    """Load an AuraFlow checkpoint (all-in-one file, transformer file + components, or diffusers folder)."""

    NODE_ID = "AuraFlowLoader"
    DISPLAY_NAME = "AuraFlow Loader"
    CATEGORY = f"{CATEGORY_ROOT}/loaders"
    DESCRIPTION = ("Loads AuraFlow v0.3 for the AuraFlow sampling nodes: ComfyUI's all-in-one "
                   "aura_flow_0.3.safetensors from models/checkpoints, a transformer-only file from "
                   "models/diffusion_models (with a diffusers folder as components), or a diffusers folder from "
                   "models/diffusers. The loaded model is kept until another one is loaded.")
    RETURN_TYPES = (MODEL_TYPE,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The AuraFlow model (tokenizer, text encoder, transformer, VAE) for AuraFlow Text Encode, "
                       "Sampler, Decode and Generate.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "model_name": (model_names(), {
                    "tooltip": "An AuraFlow .safetensors file from models/checkpoints or models/diffusion_models, "
                               "or a diffusers folder from models/diffusers (listed as diffusers/<name>). Press R "
                               "after adding files.",
                }),
                "weight_dtype": (list(WEIGHT_DTYPES), {
                    "default": "auto",
                    "tooltip": "Precision of the weights. auto: bf16 on a GPU (about 16 GB for the full model), "
                               "fp32 on the CPU. fp16 halves memory like bf16 but is less stable; fp32 doubles "
                               "memory. The VAE never runs in fp16 (it overflows).",
                }),
                "offload_text_encoder": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "Keep the text encoder (about 2.5 GB in bf16) in system memory and move it to the "
                               "GPU only while encoding a new prompt: more room for sampling, a short transfer "
                               "per new prompt. Always on with --lowvram.",
                }),
                "vae_tiling": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "Decode images in overlapping tiles: much less memory for large images, slightly "
                               "slower, rarely visible seams. Always on with --lowvram.",
                }),
            },
            "optional": {
                "components": (component_names(), {
                    "default": NO_COMPONENTS,
                    "tooltip": "A diffusers AuraFlow folder (models/diffusers) supplying what the chosen file "
                               "lacks: text encoder, VAE and tokenizer for transformer-only files. none: the "
                               "file must be complete (the all-in-one checkpoint is).",
                }),
                "weight_format": (list(WEIGHT_FORMATS), {
                    "default": "default",
                    "tooltip": "How the transformer's weights are stored. default: in weight_dtype (a GGUF file "
                               "keeps its own quantisation). fp8_e4m3fn: the blocks' weights in 8 bits with a "
                               "per-tensor scale, widened layer by layer while sampling: about 6.9 GB instead "
                               "of 13.7 GB, slightly different pictures, somewhat slower.",
                }),
                "offload": (list(OFFLOAD_MODES), {
                    "default": "none",
                    "tooltip": "For GPUs too small for the whole model. none: everything stays on the GPU. "
                               "model: text encoder, transformer and VAE each visit the GPU only for their own "
                               "step (fits about 16 GB). sequential: the transformer is streamed block by block "
                               "from system memory (fits about 12 GB with resident_blocks 24; slower). Pictures "
                               "are unchanged. No effect on the CPU.",
                }),
                "resident_blocks": ("INT", {
                    "default": 0, "min": 0, "max": MAX_RESIDENT_BLOCKS, "step": 1,
                    "tooltip": "With offload sequential: how many of the transformer's 36 blocks stay on the GPU "
                               "(each about 380 MB in bf16). More is faster; lower it if you run out of memory.",
                }),
            },
        }

    def load(self, model_name: str, weight_dtype: str, offload_text_encoder: bool, vae_tiling: bool,
             components: str = NO_COMPONENTS, weight_format: str = "default", offload: str = "none",
             resident_blocks: int = 0) -> tuple[Any]:
        with node_errors(self.DISPLAY_NAME, _LOAD_HINTS):
            path = resolve_model(model_name)
            extra = None if components in ("", NO_COMPONENTS) else resolve_model(components)
            model = load_cached(path, dtype=weight_dtype, components=extra, weight_format=weight_format)
            lean = low_vram()
            model.set_memory_options(offload_text_encoder=bool(offload_text_encoder) or lean,
                                     vae_tiling=bool(vae_tiling) or lean, offload=offload,
                                     resident_blocks=int(resident_blocks))
        return (model,)


NODES = (AuraFlowLoader,)
