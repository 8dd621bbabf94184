"""When to retry a queue call, and how long to wait first: pure functions, one test each (tests/fal/test_retry.py).

The codes follow what fal's own clients retry (see ``shared/notes/fal-queue-api.md`` §9) with one deliberate
difference: a *submit* is retried only when the server surely did not queue it, because a queued request is a
billed request and a second POST would run (and bill) the job twice. Status polls, result fetches, image
downloads and cancels are idempotent GET/PUT calls and may be repeated freely.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# 408 request timeout, 409 conflict, 429 too many requests: the server answered "not now" without doing the work.
# 502/503/504: a gateway between us and fal failed; retried on idempotent calls only (see should_retry).
RETRYABLE_STATUSES = frozenset({408, 409, 429, 502, 503, 504})

# A submit is repeated only on answers that mean "nothing was queued": 408/409/429 are explicit refusals and 503
# means the service would not take the request. 502/504 are left out: a gateway reports them when the upstream
# failed or was slow to answer, which it may do *after* it queued the job, so a retry could double-bill.
SUBMIT_RETRYABLE_STATUSES = frozenset({408, 409, 429, 503})

# Gateway errors fal's own servers generate carry this header; a stored model error (e.g. a 503 or 504 the model
# itself returned, which the result URL repeats) carries it too and repeating the call only repeats the error.
FAL_REQUEST_ID_HEADER = "x-fal-request-id"
# fal marks whether repeating the call can help (X-Fal-Retryable: true|false).
FAL_RETRYABLE_HEADER = "x-fal-retryable"
# Set on a 504 when the caller's own start deadline (X-Fal-Request-Timeout) expired: never retried.
FAL_TIMEOUT_TYPE_HEADER = "x-fal-request-timeout-type"


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to try one call and how long to wait in between.

    ``attempts`` counts the first try. Waits grow as ``base_delay * 2**(n-1)`` up to ``max_delay``, scaled by a
    random factor in ``[1 - jitter, 1 + jitter]`` so that many clients refused at once do not come back at once.
    A server's ``Retry-After`` wins over the backoff but is capped at ``max_retry_after`` so a bogus header
    cannot park a node for an hour. Tests inject tiny delays; ``rng`` makes the jitter reproducible.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    jitter: float = 0.5
    rng: Callable[[], float] = field(default=random.random, compare=False, repr=False)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works for plain dicts as well as httpx/aiohttp header maps."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


def should_retry(status: int, headers: Mapping[str, str], body: bytes = b"", *, submit: bool = False) -> bool:
    """True when repeating the call that got ``status`` can succeed and cannot do harm.

    ``submit`` selects the stricter rule for the one non-idempotent call (module docstring). For the other calls
    a 502/503/504 is retried when it comes from the ingress (no ``x-fal-request-id``, or an nginx page), not when
    fal generated it on purpose, which is what fal-client does too.
    """
    if status < 400:
        return False
    retryable = (_header(headers, FAL_RETRYABLE_HEADER) or "").strip().lower()
    if retryable == "false":
        return False
    if status == 504 and _header(headers, FAL_TIMEOUT_TYPE_HEADER):
        return False
    if submit:
        return status in SUBMIT_RETRYABLE_STATUSES
    if status in (408, 409, 429):
        return True
    if status in (502, 503, 504):
        from_fal = _header(headers, FAL_REQUEST_ID_HEADER) is not None
        return not from_fal or b"nginx" in body.lower() or retryable == "true"
    return False


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The server's ``Retry-After`` in seconds (delta-seconds or an HTTP date), or None when absent/unreadable."""
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def backoff_delay(attempt: int, policy: RetryPolicy) -> float:
    """Wait before try number ``attempt + 1`` (``attempt`` >= 1 tries done): capped exponential with jitter."""
    delay = min(policy.base_delay * (2 ** max(attempt - 1, 0)), policy.max_delay)
    factor = 1.0 + policy.jitter * (2.0 * policy.rng() - 1.0)
    return min(max(delay * factor, 0.0), policy.max_delay)


def retry_delay(attempt: int, headers: Mapping[str, str], policy: RetryPolicy, *, now: float | None = None) -> float:
    """``Retry-After`` when the server sent one (capped), the jittered backoff otherwise."""
    after = retry_after_seconds(headers, now=now)
    if after is not None:
        return min(after, policy.max_retry_after)
    return backoff_delay(attempt, policy)
