"""The one exception hierarchy of ComfyUI-AuraFlow.

Every error the core raises on purpose is an :class:`AuraFlowError`, so callers (our ComfyUI nodes, the CLI,
scripts) can catch at the level they care about and show the message as it is: each message says what was
wrong and what is allowed, and none ever contains a credential.

    AuraFlowError
    ├── InvalidInputError (ValueError)        a bad argument: field, value, what is allowed
    ├── ModelLoadError                        weights or configs could not be loaded: path
    │   ├── UnsafeCheckpointError             a pickled checkpoint, refused without unpickling
    │   ├── CorruptCheckpointError            a truncated or malformed .safetensors file
    │   ├── UnrecognizedLayoutError           not AuraFlow: the layout expected and a few keys seen
    │   └── MissingComponentError             a tokenizer, text encoder, VAE ... was not found
    ├── RemoteError                           a fal.ai (or compatible) queue call failed: status, detail, request id
    │   ├── MissingCredentialsError           no key configured
    │   ├── AuthenticationError               401 / 403
    │   ├── RemoteValidationError             422 with fal's ``detail`` list
    │   ├── RemoteTimeoutError (TimeoutError) an overall deadline passed
    │   └── ResultDownloadError               a finished (billed) result could not be fetched: keeps the request id
    └── CancelledError                        the user stopped the work (callback, interrupt, cancel)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "AuraFlowError",
    "AuthenticationError",
    "CancelledError",
    "CorruptCheckpointError",
    "InvalidInputError",
    "MissingComponentError",
    "MissingCredentialsError",
    "ModelLoadError",
    "RemoteError",
    "RemoteTimeoutError",
    "RemoteValidationError",
    "ResultDownloadError",
    "UnrecognizedLayoutError",
    "UnsafeCheckpointError",
]


class AuraFlowError(Exception):
    """Root of every error raised on purpose by this pack."""


class InvalidInputError(AuraFlowError, ValueError):
    """An argument is outside what the model or API accepts.

    Also a ``ValueError`` so generic callers that validate arguments keep working.
    """

    def __init__(self, field: str, value: Any, allowed: str, *, hint: str | None = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        message = f"{field}={value!r} is not allowed: {allowed}."
        if hint:
            message += f" {hint}"
        super().__init__(message)


class ModelLoadError(AuraFlowError):
    """Weights, configs or a tokenizer could not be loaded from ``path``."""

    def __init__(self, message: str, *, path: object | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(message)


class UnsafeCheckpointError(ModelLoadError):
    """A pickled checkpoint (.ckpt, .pt, .bin, ...): refused, never unpickled, because unpickling runs code."""


class CorruptCheckpointError(ModelLoadError):
    """A ``.safetensors`` file whose header or data is truncated or malformed."""


class UnrecognizedLayoutError(ModelLoadError):
    """The file holds tensors, but not in any AuraFlow layout we know."""

    def __init__(self, message: str, *, path: object | None = None, expected: str = "",
                 keys_seen: Iterable[str] = ()) -> None:
        self.expected = expected
        self.keys_seen = list(keys_seen)
        super().__init__(message, path=path)


class MissingComponentError(ModelLoadError):
    """A part of the pipeline (tokenizer, text encoder, VAE, ...) is absent; the message lists where we looked."""

    def __init__(self, component: str, message: str, *, path: object | None = None) -> None:
        self.component = component
        super().__init__(message, path=path)


class RemoteError(AuraFlowError):
    """A call to a fal.ai-compatible queue failed.

    ``status`` is the HTTP status (None for transport failures), ``detail`` fal's error payload (string or
    list), ``request_id`` the queue request it concerns, so a billed result can still be fetched later.
    """

    def __init__(self, message: str, *, status: int | None = None, detail: Any = None,
                 request_id: str | None = None) -> None:
        self.status = status
        self.detail = detail
        self.request_id = request_id
        super().__init__(message)


class MissingCredentialsError(RemoteError):
    """No fal key was found in the environment or the user-level key file."""


class AuthenticationError(RemoteError):
    """The server refused the key (401) or the account (403, e.g. exhausted balance)."""


class RemoteValidationError(RemoteError):
    """The server rejected the input (422); ``fields`` lists the offending input names."""

    def __init__(self, message: str, *, fields: Iterable[str] = (), **kwargs: Any) -> None:
        self.fields = list(fields)
        super().__init__(message, **kwargs)


class RemoteTimeoutError(RemoteError, TimeoutError):
    """An overall deadline passed; also a ``TimeoutError`` for generic callers."""


class ResultDownloadError(RemoteError):
    """The request completed (and was billed) but its result or images could not be downloaded.

    The message names the request id so the result can be fetched again later.
    """


class CancelledError(AuraFlowError):
    """The user stopped the work: a progress callback raised it, or an interrupt or cancel was requested."""
