"""The fal backend: an LLM on fal.ai's queue (``openrouter/router``, or the older ``fal-ai/any-llm``).

The queue protocol, key handling, retries, deadline and cancel all belong to the shared client in
``pipeline/fal`` (its :func:`run` coroutine); this module only builds the LLM's input, calls
:func:`_call_fal_llm`, and reads ``output`` from the answer. Endpoint schemas: fal-queue-api.md §13.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from ..errors import InvalidInputError, MissingComponentError, RemoteError
from ._prompts import user_message

__all__ = ["DEFAULT_FAL_ENDPOINT", "DEFAULT_FAL_MODELS", "FAL_ENDPOINTS", "build_arguments", "generate"]

T = TypeVar("T")

FAL_ENDPOINTS = ("openrouter/router", "fal-ai/any-llm")
DEFAULT_FAL_ENDPOINT = "openrouter/router"
# openrouter/router takes any OpenRouter model id; a fast, inexpensive model is plenty for a 150-word paragraph.
# fal-ai/any-llm takes only ids from its own fixed list, whose default is gemini-flash-1.5.
DEFAULT_FAL_MODELS = {"openrouter/router": "google/gemini-2.5-flash", "fal-ai/any-llm": "google/gemini-flash-1.5"}
# Some variety without drifting from the user's idea; the router's own default is 1.
TEMPERATURE = 0.7


class UnusableAnswer(Exception):
    """The endpoint answered, but with nothing we can use as a prompt (internal: becomes a fallback warning)."""


def build_arguments(endpoint: str, *, model: str | None, prompt: str, system_prompt: str,
                    max_tokens: int) -> dict[str, Any]:
    """The JSON input for ``endpoint``: router takes ``max_tokens`` and ``temperature``, any-llm does not."""
    if endpoint not in FAL_ENDPOINTS:
        raise InvalidInputError("fal_endpoint", endpoint, f"one of {', '.join(FAL_ENDPOINTS)}")
    arguments: dict[str, Any] = {
        "model": model or DEFAULT_FAL_MODELS[endpoint],
        "prompt": user_message(prompt),
        "system_prompt": system_prompt,
    }
    if endpoint == "openrouter/router":
        arguments["max_tokens"] = max_tokens
        arguments["temperature"] = TEMPERATURE
    return arguments


def _run_blocking(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, also inside a thread whose event loop is running.

    ComfyUI calls synchronous node functions from inside its worker's event loop, where ``asyncio.run`` refuses
    to start; there the coroutine gets a private loop on a helper thread (the node is waiting anyway).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="auraflow-expand") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _call_fal_llm(app_id: str, arguments: dict[str, Any], *, timeout: float,
                  should_cancel: Callable[[], bool] | None) -> Any:
    """Run one request on fal's queue and return its output JSON: the only place that touches the fal client.

    Expects ``pipeline.fal.run(app_id, arguments, *, should_cancel, timeout, fetch_images) -> FalResult`` (a
    coroutine; ``.data`` is the output JSON) that reads the key itself and raises our errors:
    MissingCredentialsError, AuthenticationError, RemoteValidationError, RemoteError, RemoteTimeoutError,
    CancelledError.
    """
    try:
        from ..fal import run as fal_run
    except ImportError as exc:
        raise MissingComponentError(
            "fal client", "the fal queue client (pipeline/fal) is not part of this installation, so the fal "
            "backend cannot run; use the template or local backend"
        ) from exc

    async def call() -> Any:
        return await fal_run(app_id, arguments, should_cancel=should_cancel, timeout=timeout, fetch_images=False)

    result = _run_blocking(call)
    data = getattr(result, "data", result)
    return dict(data) if isinstance(data, Mapping) else data


def read_output(data: Any) -> str:
    """The text of an LLM answer: ``output`` (both endpoints); an ``error`` field is a remote failure."""
    if not isinstance(data, dict):
        raise UnusableAnswer(f"the answer was not a JSON object ({type(data).__name__})")
    error = data.get("error")
    if error:
        raise RemoteError(f"the LLM endpoint reported an error: {error}", detail=error)
    output = data.get("output")
    if not isinstance(output, str):
        raise UnusableAnswer("the answer had no 'output' text")
    return output


def generate(prompt: str, *, endpoint: str, model: str | None, system_prompt: str, max_tokens: int,
             timeout: float, should_cancel: Callable[[], bool] | None) -> str:
    """Ask the LLM on ``endpoint`` to expand ``prompt``; return its raw answer text (cleaned by the caller).

    fal's LLM endpoints take no seed, so an answer is not reproducible; the seed only matters to the other
    backends. The timeout bounds queue wait and generation together.
    """
    arguments = build_arguments(endpoint, model=model, prompt=prompt, system_prompt=system_prompt,
                                max_tokens=max_tokens)
    data = _call_fal_llm(endpoint, arguments, timeout=timeout, should_cancel=should_cancel)
    return read_output(data)
