"""Reading weights safely: ``.safetensors`` only, one tensor at a time, into modules built without memory.

Why not ``from_pretrained``: it would hold a second copy of the weights while loading on some paths, hides
which file is broken, and cannot read ComfyUI's or fal's single-file layouts. Here modules are created on
the ``meta`` device (no storage) and every parameter is filled straight from the file by direct assignment
(what ``load_state_dict(assign=True)`` does), converted to the target dtype/device tensor by tensor, so peak
memory stays near one copy of the weights (``tests/pipeline/test_loading_memory.py`` measures it).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import CorruptCheckpointError, ModelLoadError, UnsafeCheckpointError

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pt2", ".pickle")
SAFETENSORS_SUFFIXES = (".safetensors", ".sft")


def refuse_pickle(path: Path) -> None:
    """Raise for pickled checkpoints: unpickling a file runs code from it, so we never open one."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnsafeCheckpointError(
            f"{path.name}: pickled checkpoints ({', '.join(PICKLE_SUFFIXES)}) are refused because loading them can "
            "run arbitrary code. Use the .safetensors version of these weights (AuraFlow v0.3 is published as "
            "safetensors), or convert the file with a tool you trust.",
            path=path,
        )


@dataclass
class SafetensorsFile:
    """An open ``.safetensors`` file: tensor names, shapes and metadata, and tensors on demand.

    Tensors come from the safetensors library's memory map: on CPU they are backed by the file's pages rather
    than copied, so loading in the file's dtype costs almost no extra resident memory (measured: peak growth
    0.18x the weights' bytes in fp32, ``tests/pipeline/test_loading_memory.py`` bounds it at 1.2x).
    """

    path: Path
    _handle: Any
    shapes: dict[str, tuple[int, ...]]
    metadata: dict[str, str]

    def get(self, key: str) -> torch.Tensor:
        try:
            return self._handle.get_tensor(key)
        except Exception as exc:  # the Rust binding raises its own error type for bad data
            raise CorruptCheckpointError(f"{self.path.name}: tensor {key!r} could not be read ({exc}).",
                                         path=self.path) from exc


@contextlib.contextmanager
def open_safetensors(path: Path) -> Iterator[SafetensorsFile]:
    """Open ``path`` for reading tensor by tensor; a truncated or malformed file gets a message naming it."""
    from safetensors import safe_open

    path = Path(path)
    refuse_pickle(path)
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        raise ModelLoadError(f"{path.name}: expected a .safetensors file.", path=path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such file.", path=path)
    try:
        handle_cm = safe_open(str(path), framework="pt", device="cpu")
        handle = handle_cm.__enter__()
    except Exception as exc:
        size = path.stat().st_size
        raise CorruptCheckpointError(
            f"{path.name} ({size:,} bytes) is not a readable .safetensors file: it is truncated (an interrupted "
            f"download?) or corrupt ({exc}). Download it again.", path=path,
        ) from exc
    try:
        shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
        yield SafetensorsFile(path, handle, shapes, dict(handle.metadata() or {}))
    finally:
        handle_cm.__exit__(None, None, None)


Source = Callable[[], torch.Tensor]
"""A deferred tensor read: called once, when the parameter it fills is loaded."""


def build_empty(factory: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Construct a module without allocating its parameters (meta device)."""
    with torch.device("meta"):
        return factory()


def fill_module(module: torch.nn.Module, sources: Mapping[str, Source], *, dtype: torch.dtype,
                device: torch.device, what: str, path: Path | None = None) -> torch.nn.Module:
    """Assign every parameter of a meta-built ``module`` from ``sources``, one tensor at a time.

    Missing or unexpected names are a load error naming a few of them (a wrong layout or a damaged file);
    weights tied by the model class (UMT5's embedding) are re-tied afterwards.
    """
    expected = dict(module.state_dict(keep_vars=True))
    tied = _tied_targets(module)
    # a file may carry both names of a tied weight (UMT5's embedding): read it once and re-tie
    sources = {k: v for k, v in sources.items() if not (k in tied and tied[k] in sources)}
    missing = [k for k in expected if k not in sources and k not in tied]
    unexpected = [k for k in sources if k not in expected]
    if missing or unexpected:
        details = []
        if missing:
            details.append(f"missing {len(missing)} tensor(s), e.g. {', '.join(missing[:4])}")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected, e.g. {', '.join(unexpected[:4])}")
        raise ModelLoadError(f"{what}: the weights do not fit the model ({'; '.join(details)}).", path=path)
    fp32_names = _kept_in_fp32(module, expected, dtype)
    for name, read in sources.items():
        target = expected[name]
        tensor = read()
        if tuple(tensor.shape) != tuple(target.shape):
            raise ModelLoadError(f"{what}: tensor {name!r} has shape {tuple(tensor.shape)}, the model needs "
                                 f"{tuple(target.shape)}.", path=path)
        target_dtype = None if not tensor.is_floating_point() else (torch.float32 if name in fp32_names else dtype)
        tensor = tensor.to(device=device, dtype=target_dtype)
        _assign(module, name, tensor)
        del tensor
    _retie(module, tied)
    leftovers = [n for n, t in module.state_dict(keep_vars=True).items() if t.device.type == "meta"]
    if leftovers:
        raise ModelLoadError(f"{what}: no weights for {', '.join(leftovers[:4])}.", path=path)
    return module.eval().requires_grad_(False)


def _assign(module: torch.nn.Module, name: str, tensor: torch.Tensor) -> None:
    """Put ``tensor`` in place of the (meta) parameter or buffer ``name``, without copying it."""
    owner_name, _, attr = name.rpartition(".")
    owner = module.get_submodule(owner_name) if owner_name else module
    if attr in owner._parameters:
        owner._parameters[attr] = torch.nn.Parameter(tensor, requires_grad=False)
    else:
        owner._buffers[attr] = tensor


def _kept_in_fp32(module: torch.nn.Module, names: Mapping[str, Any], dtype: torch.dtype) -> set[str]:
    """Parameters the model class says must stay float32 in half precision, as ``from_pretrained`` keeps them.

    transformers' UMT5 lists its feed-forward output ``wo`` (fp16 overflows there) in ``_keep_in_fp32_modules``
    (fp16 only); ``_keep_in_fp32_modules_strict`` applies to bf16 as well. diffusers models use the same names.
    """
    keep: set[str] = set()
    if dtype == torch.float16:
        keep.update(getattr(module, "_keep_in_fp32_modules", None) or ())
    if dtype in (torch.float16, torch.bfloat16):
        keep.update(getattr(module, "_keep_in_fp32_modules_strict", None) or ())
    return {name for name in names if keep.intersection(name.split("."))}


def _tied_targets(module: torch.nn.Module) -> dict[str, str]:
    tied = getattr(module, "_tied_weights_keys", None)
    return dict(tied) if isinstance(tied, Mapping) else {}


def _retie(module: torch.nn.Module, tied: Mapping[str, str]) -> None:
    for target, source in tied.items():
        owner_name, _, attr = target.rpartition(".")
        owner = module.get_submodule(owner_name) if owner_name else module
        src_owner_name, _, src_attr = source.rpartition(".")
        src_owner = module.get_submodule(src_owner_name) if src_owner_name else module
        setattr(owner, attr, getattr(src_owner, src_attr))


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelLoadError(f"{what}: {path} is missing.", path=path) from exc
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{what}: {path} is not valid JSON ({exc}).", path=path) from exc
