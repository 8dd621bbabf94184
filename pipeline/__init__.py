"""ComfyUI-AuraFlow core: loading, sampling, remote generation. Never imports ComfyUI.

Heavy modules (torch, diffusers, transformers) load on first use of a name that needs them, so that the remote
client and the CLI's argument errors stay fast; ``__all__`` is the public surface.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import errors as _errors
from .errors import *  # noqa: F403  (the hierarchy is the public error surface; errors.__all__ lists it)

# public name -> module that defines it (imported lazily)
_LAZY = {
    "load_pipeline": ".loading",
    "AuraFlow": ".pipeline",
    "GenerationResult": ".pipeline",
    "PromptEmbeddings": ".encoding",
    "flow_sigmas": ".schedule",
    "expand_prompt": ".expand",
    "ExpansionResult": ".expand",
}

__all__ = [*_errors.__all__, *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
