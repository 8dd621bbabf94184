"""Who may use the server: API keys (``Authorization: Key …``, as fal's clients send) and where it may listen.

Keys come from ``AURAFLOW_SERVE_KEYS`` (comma-separated) and/or a key file (one key per line, ``#`` comments),
read once at start. Every queue call must then carry one of them; the comparison is :func:`hmac.compare_digest`
against every configured key (no early exit), so response timing says nothing about how much of a guess was
right. Without keys the server is open, which is only acceptable when nothing but this machine can reach it:
:func:`check_bind` refuses any other host. Keys never appear in a log line, an error or a response.

fal's clients send ``Key <key>``; ``Bearer <key>`` is accepted too for hand-written scripts.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import InvalidInputError
from ..fal.endpoints import is_loopback

KEYS_ENV = "AURAFLOW_SERVE_KEYS"


def load_keys(environ: Mapping[str, str] | None = None, key_file: str | Path | None = None) -> tuple[str, ...]:
    """All configured keys (environment first, then the file); empty when none is set."""
    env = os.environ if environ is None else environ
    keys = [k.strip() for k in env.get(KEYS_ENV, "").split(",") if k.strip()]
    if key_file is not None:
        path = Path(key_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError("key_file", str(path), f"a readable file of keys ({exc.strerror})") from None
        keys += [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for key in keys:
        if not all(33 <= ord(ch) < 127 for ch in key):
            # Never echo the key itself: say where it came from and what is wrong.
            raise InvalidInputError("keys", "(hidden)", "printable ASCII keys without spaces (HTTP header values)")
    return tuple(dict.fromkeys(keys))


def check_bind(host: str, keys: Sequence[str]) -> None:
    """Refuse to listen beyond this machine without keys: an open GPU endpoint on a network is anyone's GPU."""
    if not keys and not is_loopback(host):
        raise InvalidInputError(
            "host", host, "a loopback address (127.0.0.1, ::1, localhost) while no API keys are configured",
            hint=f"Set {KEYS_ENV}=<key>[,<key>...] or pass --key-file to serve on {host}; clients then send "
                 "'Authorization: Key <key>' (fal clients: FAL_KEY=<key>).")


def authorized(header: str | None, keys: Sequence[str]) -> bool:
    """True when no keys are configured, or ``header`` carries one of them (constant-time per key)."""
    if not keys:
        return True
    if not header:
        return False
    scheme, _, presented = header.strip().partition(" ")
    if scheme.lower() not in ("key", "bearer"):
        return False
    given = presented.strip().encode("utf-8", "surrogateescape")
    match = False
    for key in keys:
        match |= hmac.compare_digest(given, key.encode())
    return match
