"""The stand-in speaks fal's real protocol: the official fal-client package runs against it unchanged.

fal-client builds its submit URL from ``fal_client.client.QUEUE_URL_FORMAT`` (``https://`` + FAL_QUEUE_RUN_HOST,
fixed at import) and then uses the URLs the server returns verbatim; pointing that module constant at the
loopback stand-in is the only change, so its submit/status/result/cancel parsing is exercised for real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from testkit.fal_standin import DEFAULT_KEY, FalStandIn, Scenario

fal_client = pytest.importorskip("fal_client", reason="the official fal-client is a dev dependency")
fal_client_client = pytest.importorskip("fal_client.client")

Serve = Callable[..., FalStandIn]


@pytest.fixture
def official(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> Callable[[Scenario], FalStandIn]:
    def start(scenario: Scenario) -> FalStandIn:
        server = serve(scenario)
        monkeypatch.setattr(fal_client_client, "QUEUE_URL_FORMAT", server.url + "/")
        return server

    return start


def test_official_async_client_subscribes(official: Callable[[Scenario], FalStandIn]) -> None:
    server = official(Scenario(step=0.12))
    events: list[object] = []

    async def go() -> dict:
        client = fal_client.AsyncClient(key=DEFAULT_KEY)
        return await client.subscribe("fal-ai/aura-flow", {"prompt": "p", "num_images": 2}, with_logs=True,
                                      on_queue_update=events.append)

    result = asyncio.run(go())
    kinds = {type(e).__name__ for e in events}
    assert {"Queued", "InProgress", "Completed"} <= kinds
    assert any(isinstance(e, fal_client.InProgress) and e.logs for e in events)
    assert len(result["images"]) == 2 and result["prompt"] == "p, highly detailed"
    assert all(c.authorized for c in server.calls) and server.count("submit") == 1


def test_official_sync_client_status_result_and_cancel(official: Callable[[Scenario], FalStandIn]) -> None:
    server = official(Scenario(never_finish=True))
    client = fal_client.SyncClient(key=DEFAULT_KEY)
    handle = client.submit("fal-ai/aura-flow", {"prompt": "p"})
    assert isinstance(handle.status(with_logs=True), (fal_client.Queued, fal_client.InProgress))
    handle.cancel()
    assert server.cancelled == [handle.request_id]
    assert isinstance(handle.status(), fal_client.Completed)


def test_official_client_sees_422_detail(official: Callable[[Scenario], FalStandIn]) -> None:
    detail = [{"loc": ["body", "num_inference_steps"], "msg": "too many", "type": "less_than_equal"}]
    official(Scenario(step=0.0, queue_positions=(), logs=(), result_status=422, result_body={"detail": detail}))
    client = fal_client.SyncClient(key=DEFAULT_KEY)
    with pytest.raises(fal_client_client.FalClientHTTPError) as info:
        client.subscribe("fal-ai/aura-flow", {"prompt": "p"})
    assert info.value.status_code == 422 and info.value.message == detail
