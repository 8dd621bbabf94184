"""Helpers for the serve tests: a tiny model shared per session, slow/gated backends, loopback receivers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pipeline.errors import CancelledError
from pipeline.serve import BackendOutput, LocalBackend

# Small enough that one request takes well under a second on two CPU cores.
TINY_INPUT: dict[str, Any] = {"prompt": "a red fox in the snow", "num_inference_steps": 2, "width": 64, "height": 64}


class SlowPipe:
    """Wraps a loaded pipeline so every sampler step takes at least ``step_delay`` seconds (cancel tests)."""

    def __init__(self, pipe: Any, step_delay: float) -> None:
        self._pipe = pipe
        self.step_delay = step_delay
        self.steps_run: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)

    def generate(self, *args: Any, callback: Callable[[int, int, Any], None] | None = None, **kwargs: Any) -> Any:
        def slow(i: int, n: int, latents: Any) -> None:
            self.steps_run.append(i)
            time.sleep(self.step_delay)
            if callback is not None:
                callback(i, n, latents)

        return self._pipe.generate(*args, callback=slow, **kwargs)


class GatedBackend:
    """The local backend, except that prompts starting with ``block`` wait (checking cancel) until released."""

    def __init__(self, inner: LocalBackend) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.started: list[str] = []

    def run(self, input: Mapping[str, Any], on_progress: Callable[[str], None],
            should_cancel: Callable[[], bool]) -> BackendOutput:
        self.started.append(str(input["prompt"]))
        if str(input["prompt"]).startswith("block"):
            deadline = time.monotonic() + 30
            while not self.release.is_set() and time.monotonic() < deadline:
                if should_cancel():
                    raise CancelledError("cancelled while gated")
                time.sleep(0.01)
        return self.inner.run(input, on_progress, should_cancel)


@dataclass
class Receiver:
    """A loopback webhook receiver that answers ``fail_first`` deliveries with HTTP 500."""

    fail_first: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.received.append(body)
                code = 500 if len(receiver.received) <= receiver.fail_first else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


def wait_until(check: Callable[[], bool], timeout: float = 20.0, interval: float = 0.02) -> bool:
    """Poll ``check`` until it is true or ``timeout`` passes (bounded, for tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()
