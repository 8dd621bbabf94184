"""The official fal-client, unchanged but for the host, against the real server (as in the seed's examples).

fal-client builds its submit URL from ``fal_client.client.QUEUE_URL_FORMAT`` (https + FAL_QUEUE_RUN_HOST, fixed
at import); pointing that constant at the loopback server is the only change (tests/fal does the same with the
stand-in). It then follows the URLs the server returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from testkit.serving import TINY_INPUT, GatedBackend, wait_until

from pipeline.serve import BackgroundServer, LocalBackend

fal_client = pytest.importorskip("fal_client", reason="the official fal-client is a dev dependency")
fal_client_client = pytest.importorskip("fal_client.client")

Start = Callable[..., BackgroundServer]
KEY = "serve-key-id:serve-key-secret"


@pytest.fixture
def point_official(monkeypatch: pytest.MonkeyPatch) -> Callable[[BackgroundServer], None]:
    def point(server: BackgroundServer) -> None:
        monkeypatch.setattr(fal_client_client, "QUEUE_URL_FORMAT", server.url + "/")

    return point


def test_subscribe_with_logs(start_server: Start, point_official: Callable[[BackgroundServer], None]) -> None:
    server = start_server()
    point_official(server)
    events: list[Any] = []

    async def go() -> dict:
        client = fal_client.AsyncClient(key=KEY)
        return await client.subscribe("fal-ai/aura-flow", {**TINY_INPUT, "num_inference_steps": 6, "seed": 11},
                                      with_logs=True, on_queue_update=events.append)

    result = asyncio.run(go())
    assert len(result["images"]) == 1 and result["seed"] == 11
    assert result["images"][0]["url"].startswith(server.url + "/files/")
    completed = [e for e in events if isinstance(e, fal_client.Completed)]
    assert completed and "inference_time" in completed[-1].metrics
    logs = [entry["message"] for entry in completed[-1].logs]
    assert "step 6/6" in logs and set(completed[-1].logs[0]) == {"message", "level", "source", "timestamp"}


def test_submit_status_result_and_cancel(start_server: Start, local_backend: LocalBackend,
                                         point_official: Callable[[BackgroundServer], None]) -> None:
    gated = GatedBackend(local_backend)
    server = start_server(backend=gated)
    point_official(server)
    client = fal_client.SyncClient(key=KEY)
    running = client.submit("fal-ai/aura-flow", {**TINY_INPUT, "prompt": "block"})
    queued = client.submit("fal-ai/aura-flow", TINY_INPUT)
    assert wait_until(lambda: gated.started == ["block"])
    assert isinstance(running.status(with_logs=True), fal_client.InProgress)
    status = queued.status()
    assert isinstance(status, fal_client.Queued) and status.position == 0
    queued.cancel()  # removed from the queue: it never runs
    assert isinstance(queued.status(), fal_client.Completed)
    gated.release.set()
    result = running.get()
    assert result["images"][0]["width"] == 64 and gated.started == ["block"]
    with pytest.raises(fal_client_client.FalClientHTTPError) as info:
        queued.get()
    assert info.value.status_code == 400 and "cancelled" in str(info.value.message).lower()
    # fal-client's module helpers take the app id and request id
    assert client.result("fal-ai/aura-flow", running.request_id)["seed"] == result["seed"]


def test_422_names_the_field(start_server: Start, point_official: Callable[[BackgroundServer], None]) -> None:
    point_official(start_server())
    client = fal_client.SyncClient(key=KEY)
    with pytest.raises(fal_client_client.FalClientHTTPError) as info:
        client.subscribe("fal-ai/aura-flow", {"prompt": "p", "guidance_scale": 21})
    detail = info.value.message
    assert info.value.status_code == 422
    assert detail[0]["loc"] == ["body", "guidance_scale"] and detail[0]["type"] == "less_than_equal"
