"""Queue status payloads, parsed in one place into three frozen dataclasses.

fal reports a request as ``IN_QUEUE`` (with the number of requests ahead), ``IN_PROGRESS`` (with the model's
logs when asked for) or ``COMPLETED``; there is no failed or cancelled state: a failed job is ``COMPLETED`` and
its error arrives when the result is fetched (``shared/notes/fal-queue-api.md`` §4). The same shape comes from
the status URL and from each event of the status stream, so both paths call :func:`parse_status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import RemoteError


@dataclass(frozen=True)
class LogEntry:
    """One line of the model's log; fal also sends ``source``, kept out because nothing shows it."""

    message: str
    level: str = "INFO"
    timestamp: str = ""


@dataclass(frozen=True)
class Queued:
    """Waiting for a runner; ``position`` is the number of requests ahead (0 = next)."""

    position: int


@dataclass(frozen=True)
class InProgress:
    """A runner is working on it; ``logs`` are the model's log lines so far (empty unless logs were asked for)."""

    logs: tuple[LogEntry, ...] = ()


@dataclass(frozen=True)
class Completed:
    """Finished, successfully or not: ``error`` is set when the job failed (the result call returns the details)."""

    logs: tuple[LogEntry, ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None


Status = Queued | InProgress | Completed


def _parse_logs(raw: Any) -> tuple[LogEntry, ...]:
    if not isinstance(raw, list):
        return ()
    entries = []
    for item in raw:
        if isinstance(item, Mapping):
            entries.append(LogEntry(message=str(item.get("message", "")), level=str(item.get("level", "INFO")),
                                    timestamp=str(item.get("timestamp", ""))))
        elif isinstance(item, str):
            entries.append(LogEntry(message=item))
    return tuple(entries)


def parse_status(data: Any) -> Status:
    """Turn one status JSON object into a :data:`Status`; anything else is a :class:`RemoteError`.

    Unknown states are an error rather than "keep waiting", so a protocol change cannot turn into an endless wait.
    """
    if not isinstance(data, Mapping):
        raise RemoteError(f"fal.ai sent a status that is not a JSON object ({type(data).__name__})")
    state = data.get("status")
    if state == "IN_QUEUE":
        position = data.get("queue_position")
        return Queued(position=int(position) if isinstance(position, (int, float)) else 0)
    if state == "IN_PROGRESS":
        return InProgress(logs=_parse_logs(data.get("logs")))
    if state == "COMPLETED":
        metrics = data.get("metrics")
        error = data.get("error")
        error_type = data.get("error_type")
        return Completed(
            logs=_parse_logs(data.get("logs")),
            metrics=dict(metrics) if isinstance(metrics, Mapping) else {},
            error=None if error is None else str(error),
            error_type=None if error_type is None else str(error_type),
        )
    raise RemoteError(f"fal.ai sent an unknown request status {str(state)[:40]!r}")
