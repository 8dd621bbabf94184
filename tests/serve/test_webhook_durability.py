"""fal_webhook delivery (retried after a failure) and restart durability on the same SQLite file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from testkit.serving import TINY_INPUT, GatedBackend, Receiver, wait_until

from pipeline.serve import BackgroundServer, LocalBackend

Start = Callable[..., BackgroundServer]


def test_webhook_delivered_and_retried_once(start_server: Start) -> None:
    server = start_server()
    with Receiver(fail_first=1) as receiver:
        resp = httpx.post(f"{server.url}/fal-ai/aura-flow", params={"fal_webhook": receiver.url}, json=TINY_INPUT)
        req = resp.json()
        assert req["gateway_request_id"] == req["request_id"]
        assert wait_until(lambda: len(receiver.received) == 2)
        assert wait_until(lambda: server.service.store.get(req["request_id"]).webhook_state == "sent")
    first, second = receiver.received
    assert first == second
    assert second["request_id"] == req["request_id"] and second["status"] == "OK"
    image = second["payload"]["images"][0]
    assert image["url"].startswith(server.url + "/files/") and httpx.get(image["url"]).status_code == 200


def test_webhook_reports_errors_and_bad_urls_are_422(start_server: Start) -> None:
    server = start_server()
    with Receiver() as receiver:
        httpx.post(f"{server.url}/fal-ai/aura-flow", params={"fal_webhook": receiver.url},
                   json={**TINY_INPUT, "width": 512})  # beyond the tiny model's 256 px grid
        assert wait_until(lambda: len(receiver.received) == 1)
    body = receiver.received[0]
    assert body["status"] == "ERROR" and body["payload"]["detail"][0]["loc"] == ["body", "width"]
    bad = httpx.post(f"{server.url}/fal-ai/aura-flow", params={"fal_webhook": "file:///etc/passwd"}, json=TINY_INPUT)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "fal_webhook"]


def test_restart_keeps_results_and_queue(start_server: Start, local_backend: LocalBackend, tmp_path: Path) -> None:
    db = tmp_path / "durable.sqlite3"
    gated = GatedBackend(local_backend)
    first = start_server(backend=gated, db=db)

    def post(body: dict[str, Any]) -> dict[str, Any]:
        return httpx.post(f"{first.url}/fal-ai/aura-flow", json={**TINY_INPUT, **body}).json()

    done = post({"prompt": "finished before the restart", "seed": 5})
    assert wait_until(lambda: httpx.get(done["status_url"]).status_code == 200)
    image_url = httpx.get(done["response_url"]).json()["images"][0]["url"]
    running = post({"prompt": "block: running at the restart"})
    assert wait_until(lambda: gated.started[-1] == "block: running at the restart")
    queued = post({"prompt": "queued at the restart"})
    first.stop()  # the running request is interrupted at its next cancel check and stays queued on disk
    first.service.store.close()

    second = start_server(db=db)  # a new process would do the same: reopen the file

    def rebase(url: str) -> str:
        return url.replace(first.url, second.url)

    assert httpx.get(rebase(done["response_url"])).json()["seed"] == 5
    assert httpx.get(rebase(image_url)).status_code == 200
    for req in (running, queued):
        assert wait_until(lambda req=req: httpx.get(rebase(req["status_url"])).status_code == 200)
        result = httpx.get(rebase(req["response_url"]))
        assert result.status_code == 200 and result.json()["images"][0]["width"] == 64


def test_results_expire(start_server: Start) -> None:
    server = start_server(result_ttl=0.3)
    req = httpx.post(f"{server.url}/fal-ai/aura-flow", json=TINY_INPUT).json()
    assert wait_until(lambda: httpx.get(req["status_url"]).status_code == 200)
    assert wait_until(lambda: httpx.get(req["response_url"]).status_code == 404, timeout=5)
