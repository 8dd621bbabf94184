"""fal.ai queue client (no fal-client dependency, no torch): submit, follow, fetch, download, cancel.

Typical use::

    result = await fal.run("fal-ai/aura-flow", {"prompt": "..."}, on_update=print, should_cancel=stop_flag)
    result.images          # RGB PIL images
    text = (await fal.run("openrouter/router", {...}, fetch_images=False)).data["output"]

Protocol notes: ``shared/notes/fal-queue-api.md``; design rules: :mod:`.client`'s docstring.
"""

from __future__ import annotations

from .auth import key_file_path, read_key
from .client import (
    DEFAULT_TIMEOUT,
    FalConfig,
    FalResult,
    cancel,
    download_images,
    fetch_json,
    fetch_result,
    run,
    submit,
)
from .endpoints import DEFAULT_QUEUE_URL, QUEUE_URL_ENV, RequestHandle, queue_base_url
from .retry import RetryPolicy
from .statuses import Completed, InProgress, LogEntry, Queued, Status, parse_status

__all__ = [
    "DEFAULT_QUEUE_URL",
    "DEFAULT_TIMEOUT",
    "QUEUE_URL_ENV",
    "Completed",
    "FalConfig",
    "FalResult",
    "InProgress",
    "LogEntry",
    "Queued",
    "RequestHandle",
    "RetryPolicy",
    "Status",
    "cancel",
    "download_images",
    "fetch_json",
    "fetch_result",
    "key_file_path",
    "parse_status",
    "queue_base_url",
    "read_key",
    "run",
    "submit",
]
