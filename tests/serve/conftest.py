"""Fixtures for the serve tests: one tiny random AuraFlow per session, and real servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit.stacks import tiny_folder

from pipeline.fal import FalConfig, RetryPolicy
from pipeline.serve import BackgroundServer, LocalBackend, RequestStore, ServeOptions, Service, WebhookPolicy

FAST_CLIENT = FalConfig(
    retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, max_retry_after=0.5),
    poll_interval=0.02, cancel_check_interval=0.02, cancel_timeout=2.0, submit_settle_timeout=1.0,
    read_timeout=10.0, stream_read_timeout=10.0,
)
FAST_OPTIONS = ServeOptions(keepalive=0.2, purge_interval=0.5,
                            webhook=WebhookPolicy(attempts=3, base_delay=0.05, max_delay=0.1, timeout=2.0))


@pytest.fixture(scope="session")
def tiny_pipe(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from pipeline import load_pipeline

    pipe = load_pipeline(tiny_folder(tmp_path_factory.mktemp("serve-tiny")), device="cpu", dtype="fp32")
    pipe.generate("warm-up", num_inference_steps=1, width=64, height=64)  # first-call costs out of timed tests
    return pipe


@pytest.fixture
def local_backend(tiny_pipe: Any) -> LocalBackend:
    return LocalBackend(pipe=tiny_pipe)


@pytest.fixture
def start_server(tmp_path: Path, local_backend: LocalBackend) -> Iterator[Callable[..., BackgroundServer]]:
    """``start_server(backend=..., options=..., db=..., tls=...)``: a started server, stopped after the test."""
    servers: list[BackgroundServer] = []

    def start(*, backend: Any = None, options: ServeOptions = FAST_OPTIONS, db: Path | None = None,
              tls: Any = None, result_ttl: float = 3600.0) -> BackgroundServer:
        store = RequestStore.open(db or tmp_path / "queue.sqlite3", result_ttl=result_ttl)
        server = BackgroundServer(Service(store, backend or local_backend, options), tls=tls)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
        server.service.store.close()
