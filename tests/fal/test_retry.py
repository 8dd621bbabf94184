"""The retry policy, one behaviour per test (pipeline/fal/retry.py)."""

from __future__ import annotations

import email.utils

import pytest

from pipeline.fal.retry import RetryPolicy, backoff_delay, retry_after_seconds, retry_delay, should_retry


@pytest.mark.parametrize("status", [408, 409, 429, 502, 503, 504])
def test_transient_statuses_are_retried_on_idempotent_calls(status: int) -> None:
    assert should_retry(status, {})


@pytest.mark.parametrize("status", [200, 202, 400, 401, 403, 404, 422, 500])
def test_final_statuses_are_not_retried(status: int) -> None:
    assert not should_retry(status, {})
    assert not should_retry(status, {}, submit=True)


@pytest.mark.parametrize(("status", "expected"), [(408, True), (409, True), (429, True), (503, True),
                                                  (502, False), (504, False)])
def test_submit_is_retried_only_when_nothing_was_queued(status: int, expected: bool) -> None:
    """A gateway 502/504 may come after the job was queued: repeating the POST could bill twice."""
    assert should_retry(status, {}, submit=True) is expected


def test_user_start_deadline_504_is_never_retried() -> None:
    assert not should_retry(504, {"X-Fal-Request-Timeout-Type": "user"})


def test_fal_generated_gateway_errors_are_not_retried_unless_ingress() -> None:
    fal_headers = {"x-fal-request-id": "abc"}
    assert not should_retry(503, fal_headers, b'{"detail": "runner_scheduling_failure"}')
    assert should_retry(502, fal_headers, b"<html><center>nginx</center></html>")
    assert should_retry(503, {**fal_headers, "X-Fal-Retryable": "true"})


def test_retryable_false_header_wins() -> None:
    assert not should_retry(429, {"X-Fal-Retryable": "false"})


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "0.25"}) == 0.25
    date = email.utils.formatdate(1_000_010.0, usegmt=True)
    assert retry_after_seconds({"Retry-After": date}, now=1_000_000.0) == pytest.approx(10.0)
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_retry_after_is_honoured_but_capped() -> None:
    policy = RetryPolicy(max_retry_after=30.0)
    assert retry_delay(1, {"Retry-After": "2"}, policy) == 2.0
    assert retry_delay(1, {"Retry-After": "3600"}, policy) == 30.0


def test_backoff_grows_exponentially_and_stays_bounded() -> None:
    middle = RetryPolicy(base_delay=0.5, max_delay=8.0, jitter=0.5, rng=lambda: 0.5)  # factor 1.0
    assert [backoff_delay(n, middle) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    low = RetryPolicy(base_delay=0.5, max_delay=8.0, jitter=0.5, rng=lambda: 0.0)
    high = RetryPolicy(base_delay=0.5, max_delay=8.0, jitter=0.5, rng=lambda: 1.0)
    assert backoff_delay(1, low) == 0.25
    assert backoff_delay(1, high) == 0.75
    assert backoff_delay(10, high) == 8.0  # jitter never exceeds the cap


def test_backoff_without_retry_after_uses_policy() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0, rng=lambda: 0.5)
    assert retry_delay(2, {}, policy) == pytest.approx(0.2)
