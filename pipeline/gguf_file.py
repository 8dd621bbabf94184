"""Reading a transformer-only GGUF file (city96/AuraFlow-v0.3-gguf, ComfyUI's ``models/unet``) tensor by tensor.

The GGUF files hold fal's **original** AuraFlow names (auraflow-reference §7), so they go through the same
layout detection and key plan as the original-layout safetensors file; only the tensor reading differs. GGUF
lists dimensions innermost first; :attr:`GGUFFile.shapes` gives them in torch order. Tensors come from the
gguf package's memory map without copying; quantised ones stay bytes (see :mod:`pipeline.quantized`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .dequant import F16, F32, dequantize
from .errors import CorruptCheckpointError, ModelLoadError

__all__ = ["GGUF_SUFFIXES", "GGUFFile", "open_gguf"]

GGUF_SUFFIXES = (".gguf",)


@dataclass
class GGUFFile:
    """An open GGUF file: torch-order shapes, GGML type per tensor, metadata as strings, tensors on demand."""

    path: Path
    shapes: dict[str, tuple[int, ...]]
    qtypes: dict[str, int]
    metadata: dict[str, str]
    _tensors: dict[str, Any]

    def raw(self, name: str) -> torch.Tensor:
        """The stored data: typed for F32/F16, bytes (rows x bytes per row) for every other type."""
        data = self._tensors[name].data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the map is read-only; we never write to it
            return torch.from_numpy(data)

    def get(self, name: str) -> torch.Tensor:
        """The tensor as floats (its own float type for F32/F16, float32 for the rest)."""
        qtype = self.qtypes[name]
        raw = self.raw(name)
        if qtype in (F32, F16):
            return raw.reshape(self.shapes[name])
        return dequantize(raw, qtype, self.shapes[name], torch.float32)


def _field_text(field: Any) -> str | None:
    try:
        value = field.contents()
    except Exception:  # a field type this gguf version cannot render: metadata is optional
        return None
    return value if isinstance(value, str) else str(value) if isinstance(value, int | float) else None


@contextlib.contextmanager
def open_gguf(path: Path) -> Iterator[GGUFFile]:
    """Open ``path`` (needs the optional ``gguf`` package: ``pip install comfyui-auraflow[gguf]`` or ``gguf``)."""
    try:
        from gguf import GGUFReader
    except ImportError as exc:
        raise ModelLoadError(f"{path.name}: reading GGUF files needs the 'gguf' package (pip install gguf).",
                             path=path) from exc
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such file.", path=path)
    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # the reader raises ValueError/struct errors/IndexError on bad files
        raise CorruptCheckpointError(
            f"{path.name} ({path.stat().st_size:,} bytes) is not a readable GGUF file: it is truncated or corrupt "
            f"({exc}). Download it again.", path=path) from exc
    tensors = {t.name: t for t in reader.tensors}
    shapes = {name: tuple(int(d) for d in reversed(t.shape.tolist())) for name, t in tensors.items()}
    qtypes = {name: int(t.tensor_type) for name, t in tensors.items()}
    metadata = {}
    for key, field in reader.fields.items():
        text = _field_text(field)
        if text is not None and not key.startswith("GGUF."):
            metadata[key] = text
    try:
        yield GGUFFile(path, shapes, qtypes, metadata, tensors)
    finally:
        del reader
