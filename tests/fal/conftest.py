"""Fixtures for the fal tests: a stand-in server per test, a key in the environment, short retry delays."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from testkit.fal_standin import DEFAULT_KEY, FalStandIn, Scenario

from pipeline.fal import FalConfig, RetryPolicy

# Real delays are 0.5 s and up; these keep every scenario well under a second.
FAST = FalConfig(
    retry=RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, max_retry_after=0.5),
    poll_interval=0.02,
    cancel_check_interval=0.02,
    cancel_timeout=2.0,
    submit_settle_timeout=1.0,
    read_timeout=5.0,
    stream_read_timeout=5.0,
)


@pytest.fixture
def fast_config() -> FalConfig:
    return FAST


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FalStandIn]]:
    """``serve(Scenario(...))`` starts a stand-in, points AURAFLOW_FAL_QUEUE_URL at it and sets FAL_KEY."""
    servers: list[FalStandIn] = []

    def start(scenario: Scenario | None = None, *, key: str | None = DEFAULT_KEY) -> FalStandIn:
        server = FalStandIn(scenario)
        server.start()
        servers.append(server)
        monkeypatch.setenv("AURAFLOW_FAL_QUEUE_URL", server.url)
        if key is not None:
            monkeypatch.setenv("FAL_KEY", key)
        return server

    yield start
    for server in servers:
        server.stop()
