"""``expand_prompt``: one entry for the three backends, with the fallback and window rules stated once.

The contract a generation relies on: whatever goes wrong in a backend, the caller gets a prompt back (the
original one, with a warning saying why) unless the user stopped the work. ``strict=True`` is for an explicit
request of one backend (the Prompt Expand node): then a backend that cannot work at all *in this configuration*
(no model configured, a folder that is not a model, no fal key, a refused key, an invalid model id) raises an
error saying why, because falling back silently would hide a setup problem the user can fix. One-off failures
(timeout, server error, an empty, refused or garbled answer) fall back even then: nothing the user configured
is wrong and the next run may well work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import (
    AuthenticationError,
    CancelledError,
    InvalidInputError,
    MissingCredentialsError,
    ModelLoadError,
    RemoteValidationError,
)
from . import _local, _remote
from ._prompts import SYSTEM_PROMPT
from ._template import template_expand
from ._text import AURAFLOW_TOKEN_WINDOW, clean_expansion, fit_to_window, unusable_reason

__all__ = ["BACKENDS", "DEFAULT_FAL_TIMEOUT", "DEFAULT_MAX_TOKENS", "ExpansionResult", "expand_prompt"]

log = logging.getLogger("ComfyUI-AuraFlow.expand")

BACKENDS = ("template", "local", "fal")
# New tokens an LLM may write: the system prompt asks for <= 140 words (~190 LLM tokens); a little headroom.
DEFAULT_MAX_TOKENS = 256
MAX_TOKENS_LIMIT = 4096
# An LLM answer takes seconds; minutes mean a stuck queue, and the generation should go on without it.
DEFAULT_FAL_TIMEOUT = 90.0
SEED_MAX = 0xFFFF_FFFF_FFFF_FFFF

# Errors that mean "this backend cannot work in this configuration" (raised when strict).
_UNAVAILABLE = (InvalidInputError, ModelLoadError, MissingCredentialsError, AuthenticationError, RemoteValidationError)


@dataclass(frozen=True)
class ExpansionResult:
    """What :func:`expand_prompt` returns.

    ``prompt`` is what to generate with; ``expanded`` is False when it is the original prompt (a fallback, or
    nothing to expand); ``truncated`` is True when the text was cut to AuraFlow's window; ``warnings`` are
    one-line, user-facing explanations of both (also logged).
    """

    prompt: str
    backend: str
    warnings: tuple[str, ...] = ()
    truncated: bool = False
    expanded: bool = True


def _check_inputs(backend: str, seed: int, max_tokens: int) -> None:
    if backend not in BACKENDS:
        raise InvalidInputError("backend", backend, f"one of {', '.join(BACKENDS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise InvalidInputError("seed", seed, f"an integer from 0 to {SEED_MAX}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise InvalidInputError("max_tokens", max_tokens, f"an integer from 1 to {MAX_TOKENS_LIMIT}")


def _fallback(prompt: str, backend: str, reason: str, notes: tuple[str, ...] = ()) -> ExpansionResult:
    warning = f"prompt expansion ({backend}) failed, the original prompt is used: {reason.rstrip('. ')}"
    log.warning("%s", warning)
    return ExpansionResult(prompt, backend, (*notes, warning), truncated=False, expanded=False)


def expand_prompt(prompt: str, *, backend: str, seed: int, max_tokens: int = DEFAULT_MAX_TOKENS,
                  system_prompt: str | None = None, tokenizer: Any | None = None, strict: bool = False,
                  local_model: str | Path | None = None, device: Any | None = None, offload: bool = True,
                  fal_endpoint: str = _remote.DEFAULT_FAL_ENDPOINT, fal_model: str | None = None,
                  timeout: float = DEFAULT_FAL_TIMEOUT,
                  should_cancel: Callable[[], bool] | None = None) -> ExpansionResult:
    """Expand a short prompt into the kind of long, concrete description AuraFlow follows best.

    Backends: ``"template"`` (offline word lists, always available), ``"local"`` (a transformers causal LM in
    ``local_model``: a folder, e.g. ComfyUI's ``models/LLM/<name>``, or a cached Hugging Face repo id; on
    ``device``, default CUDA when present), ``"fal"`` (an LLM on ``fal_endpoint``, ``openrouter/router`` with
    ``fal_model`` any OpenRouter id, or ``fal-ai/any-llm``; waits at most ``timeout`` seconds).

    ``seed`` makes template and local answers reproducible (fal's LLMs take no seed). ``max_tokens`` bounds the
    LLM's answer in *its* tokens. ``system_prompt`` replaces our :data:`SYSTEM_PROMPT`. The result is cleaned
    (LLM answers only) and then cut to AuraFlow's 256-token window, counted with ``tokenizer`` (AuraFlow's, or
    anything with ``encode``) when given, else with a conservative estimate that may cut a little early; a cut
    adds a warning. ``should_cancel`` is polled during LLM calls; when it returns True the call raises
    :class:`CancelledError` (a cancel is never turned into a fallback). See the module docstring for ``strict``.
    """
    _check_inputs(backend, seed, max_tokens)
    system = system_prompt.strip() if system_prompt and system_prompt.strip() else SYSTEM_PROMPT
    if not prompt.strip():
        return ExpansionResult(prompt, backend, ("the prompt is empty: nothing to expand",), expanded=False)

    notes: tuple[str, ...] = ()
    try:
        if backend == "template":
            text = template_expand(prompt, seed)
        else:
            if backend == "local":
                generated = _local.generate(prompt, model=local_model, seed=seed, max_tokens=max_tokens,
                                            system_prompt=system, device=device, should_cancel=should_cancel,
                                            offload=offload)
                raw, notes = generated.text, generated.warnings
            else:
                raw = _remote.generate(prompt, endpoint=fal_endpoint, model=fal_model, system_prompt=system,
                                       max_tokens=max_tokens, timeout=timeout, should_cancel=should_cancel)
            text = clean_expansion(raw)
            reason = unusable_reason(text)
            if reason is not None:
                return _fallback(prompt, backend, reason, notes)
    except CancelledError:
        raise
    except _UNAVAILABLE as exc:
        if strict:
            raise
        return _fallback(prompt, backend, str(exc), notes)
    except Exception as exc:  # a failed expansion must never fail the generation that asked for it
        log.debug("prompt expansion (%s) failed", backend, exc_info=True)
        detail = str(exc) or type(exc).__name__
        return _fallback(prompt, backend, f"{type(exc).__name__}: {detail}", notes)

    fitted, cut, before = fit_to_window(text, tokenizer=tokenizer)
    warnings = list(notes)
    if cut:
        how = "" if tokenizer is not None else " (estimated)"
        warnings.append(f"the expanded prompt was {before} tokens{how}, more than AuraFlow's "
                        f"{AURAFLOW_TOKEN_WINDOW}-token window; it was cut at a sentence or word boundary")
    for warning in warnings:
        log.warning("prompt expansion (%s): %s", backend, warning)
    return ExpansionResult(fitted, backend, tuple(warnings), truncated=cut, expanded=fitted != prompt)
