"""Prompt expansion for AuraFlow: short idea in, long concrete description out (template, local LM, or fal).

Importing this package loads neither torch nor transformers nor the fal client; the local and fal backends
import them when first used.
"""

from __future__ import annotations

from ._core import BACKENDS, DEFAULT_FAL_TIMEOUT, DEFAULT_MAX_TOKENS, ExpansionResult, expand_prompt
from ._local import free_local_model, loaded_model
from ._prompts import SYSTEM_PROMPT
from ._remote import DEFAULT_FAL_ENDPOINT, DEFAULT_FAL_MODELS, FAL_ENDPOINTS
from ._text import AURAFLOW_TOKEN_WINDOW, clean_expansion, count_tokens, estimate_tokens, fit_to_window

__all__ = [
    "AURAFLOW_TOKEN_WINDOW",
    "BACKENDS",
    "DEFAULT_FAL_ENDPOINT",
    "DEFAULT_FAL_MODELS",
    "DEFAULT_FAL_TIMEOUT",
    "DEFAULT_MAX_TOKENS",
    "FAL_ENDPOINTS",
    "SYSTEM_PROMPT",
    "ExpansionResult",
    "clean_expansion",
    "count_tokens",
    "estimate_tokens",
    "expand_prompt",
    "fit_to_window",
    "free_local_model",
    "loaded_model",
]
