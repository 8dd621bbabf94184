"""Cancel while queued and while running (stops within one step), and the SSE status stream."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from testkit.serving import TINY_INPUT, GatedBackend, SlowPipe, wait_until

from pipeline.serve import BackgroundServer, LocalBackend

Start = Callable[..., BackgroundServer]


def _submit(server: BackgroundServer, **extra: Any) -> dict[str, Any]:
    resp = httpx.post(f"{server.url}/fal-ai/aura-flow", json={**TINY_INPUT, **extra})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_cancel_queued_never_runs(start_server: Start, local_backend: LocalBackend) -> None:
    gated = GatedBackend(local_backend)
    server = start_server(backend=gated)
    first = _submit(server, prompt="block")
    second = _submit(server, prompt="second")
    assert second["queue_position"] in (0, 1)
    cancel = httpx.put(second["cancel_url"])
    assert cancel.status_code == 200 and cancel.json() == {"status": "OK"}
    status = httpx.get(second["status_url"]).json()
    assert status["status"] == "COMPLETED" and status["error_type"] == "request_cancelled"
    assert httpx.put(second["cancel_url"]).json() == {"status": "ALREADY_COMPLETED"}
    gated.release.set()
    assert wait_until(lambda: httpx.get(first["status_url"]).status_code == 200)
    time.sleep(0.1)
    assert gated.started == ["block"]
    assert httpx.get(second["response_url"]).status_code == 400


def test_cancel_running_stops_within_one_step(start_server: Start, tiny_pipe: Any) -> None:
    from pipeline.serve import LocalBackend

    slow = SlowPipe(tiny_pipe, step_delay=0.05)
    server = start_server(backend=LocalBackend(pipe=slow))
    req = _submit(server, num_inference_steps=100)
    assert wait_until(lambda: len(slow.steps_run) >= 3)
    resp = httpx.put(req["cancel_url"])
    at_cancel = len(slow.steps_run)
    assert resp.status_code == 202 and resp.json() == {"status": "CANCELLATION_REQUESTED"}
    assert wait_until(lambda: httpx.get(req["status_url"]).status_code == 200, timeout=5)
    assert len(slow.steps_run) <= at_cancel + 1  # the step under way when the cancel arrived, no more
    status = httpx.get(req["status_url"], params={"logs": "1"}).json()
    assert status["error_type"] == "request_cancelled"
    assert [m["message"] for m in status["logs"]][-1] == "cancelled"
    assert httpx.get(req["response_url"]).json()["detail"] == "Request cancelled"


def test_stream_reports_progress_and_closes_after_completed(start_server: Start, tiny_pipe: Any) -> None:
    import threading

    from pipeline.serve import LocalBackend, ServeOptions

    # The gate keeps the job silent for a while (keep-alive comments), then it runs 4 logged steps.
    gated = GatedBackend(LocalBackend(pipe=SlowPipe(tiny_pipe, step_delay=0.05)))
    server = start_server(backend=gated, options=ServeOptions(keepalive=0.1))
    req = _submit(server, prompt="block until released", num_inference_steps=4)
    timer = threading.Timer(0.6, gated.release.set)
    timer.start()
    events, comments = [], 0
    started = time.monotonic()
    try:
        with httpx.stream("GET", req["status_url"] + "/stream", params={"logs": "1"}, timeout=20) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            for line in resp.iter_lines():  # ends when the server closes the stream
                if line.startswith(":"):
                    comments += 1
                elif line.startswith("data: "):
                    events.append(json.loads(line[6:]))
    finally:
        timer.cancel()
    assert time.monotonic() - started < 15
    assert events[-1]["status"] == "COMPLETED" and events[-1]["error"] is None
    assert [e["status"] for e in events].count("COMPLETED") == 1
    progress = [e for e in events if e["status"] == "IN_PROGRESS"]
    assert any(any(m["message"] == "step 2/4" for m in e["logs"]) for e in progress)
    assert comments >= 2  # keep-alive comments while the job was silent


def test_stream_of_finished_request_sends_one_event(start_server: Start) -> None:
    server = start_server()
    req = _submit(server)
    assert wait_until(lambda: httpx.get(req["status_url"]).status_code == 200)
    with httpx.stream("GET", req["status_url"] + "/stream", timeout=10) as resp:
        lines = [line for line in resp.iter_lines() if line]
    assert len(lines) == 1 and json.loads(lines[0][6:])["status"] == "COMPLETED"


def test_replies_about_a_request_carry_its_id_header(start_server: Start) -> None:
    """fal's replies carry ``x-fal-request-id``: the JS client reads ``result.requestId`` from it, and both clients
    retry a 5xx only when it is missing (a proxy error). Unknown ids get no header: there is no such request."""
    server = start_server()
    req = _submit(server)
    rid = req["request_id"]
    submit = httpx.post(f"{server.url}/fal-ai/aura-flow", json=TINY_INPUT)
    assert submit.headers["x-fal-request-id"] == submit.json()["request_id"]
    assert wait_until(lambda: httpx.get(req["status_url"]).status_code == 200)
    for resp in (httpx.get(req["status_url"]), httpx.get(req["response_url"]), httpx.put(req["cancel_url"])):
        assert resp.headers.get("x-fal-request-id") == rid, (resp.request.url, dict(resp.headers))
    with httpx.stream("GET", req["status_url"] + "/stream") as resp:
        assert resp.headers.get("x-fal-request-id") == rid
    missing = httpx.get(f"{server.url}/fal-ai/aura-flow/requests/{'0' * 8}-0000-0000-0000-{'0' * 12}/status")
    assert missing.status_code == 404 and "x-fal-request-id" not in missing.headers
