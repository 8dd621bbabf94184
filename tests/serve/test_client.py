"""Our own fal client (:mod:`pipeline.fal`), unchanged, against the real server on a tiny model."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from testkit.serving import TINY_INPUT, GatedBackend, wait_until

from pipeline import fal
from pipeline.errors import RemoteError, RemoteValidationError
from pipeline.serve import BackgroundServer, LocalBackend

from .conftest import FAST_CLIENT

Start = Callable[..., BackgroundServer]


def test_run_end_to_end(start_server: Start, local_backend: LocalBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    gated = GatedBackend(local_backend)
    server = start_server(backend=gated)
    monkeypatch.setenv("AURAFLOW_FAL_QUEUE_URL", server.url)
    monkeypatch.setenv("FAL_KEY", "any:key")  # the client insists on a key; this server has none configured
    # One request blocks the worker, so the next one sees a real queue position.
    blocker = httpx.post(f"{server.url}/fal-ai/aura-flow", json={**TINY_INPUT, "prompt": "block me"}).json()
    assert wait_until(lambda: gated.started == ["block me"])
    updates: list[Any] = []

    async def go() -> fal.FalResult:
        task = asyncio.ensure_future(fal.run("fal-ai/aura-flow", {**TINY_INPUT, "seed": 7, "num_images": 2},
                                             on_update=updates.append, config=FAST_CLIENT, timeout=60))
        await asyncio.sleep(0.3)
        gated.release.set()
        return await task

    result = asyncio.run(go())
    queued = [u for u in updates if isinstance(u, fal.Queued)]
    assert queued and queued[0].position == 0  # one running, none ahead in the queue
    messages = [e.message for u in updates if isinstance(u, fal.Completed) for e in u.logs]
    assert "step 1/2" in messages and "step 2/2" in messages
    assert any(m.lower().startswith("expanded prompt: a red fox in the snow") for m in messages)
    assert [im.size for im in result.images] == [(64, 64), (64, 64)]
    assert result.data["seed"] == 7
    assert result.data["prompt"].lower().startswith("a red fox in the snow") and len(result.data["prompt"]) > 30
    image = result.data["images"][0]
    assert image["content_type"] == "image/png" and image["width"] == 64 and image["file_size"] > 0
    assert image["url"].startswith(server.url + "/files/")
    assert isinstance(next(u for u in updates if isinstance(u, fal.Completed)).metrics["inference_time"], float)
    assert httpx.get(blocker["response_url"]).status_code == 200


def test_same_seed_same_image_and_no_expansion(start_server: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_server()
    monkeypatch.setenv("AURAFLOW_FAL_QUEUE_URL", server.url)
    monkeypatch.setenv("FAL_KEY", "any:key")
    args = {**TINY_INPUT, "seed": 3, "expand_prompt": False}

    async def go() -> list[fal.FalResult]:
        return [await fal.run("fal-ai/aura-flow", args, config=FAST_CLIENT, timeout=60) for _ in range(2)]

    a, b = asyncio.run(go())
    assert a.data["prompt"] == TINY_INPUT["prompt"]
    assert a.images[0].tobytes() == b.images[0].tobytes()


def test_sync_mode_returns_data_uris(start_server: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_server()
    monkeypatch.setenv("AURAFLOW_FAL_QUEUE_URL", server.url)
    monkeypatch.setenv("FAL_KEY", "any:key")
    result = asyncio.run(fal.run("fal-ai/aura-flow", {**TINY_INPUT, "sync_mode": True}, config=FAST_CLIENT,
                                 timeout=60))
    assert result.data["images"][0]["url"].startswith("data:image/png;base64,")
    assert result.images[0].size == (64, 64)


def test_validation_names_the_field(start_server: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_server()
    monkeypatch.setenv("AURAFLOW_FAL_QUEUE_URL", server.url)
    monkeypatch.setenv("FAL_KEY", "any:key")
    with pytest.raises(RemoteValidationError) as info:
        asyncio.run(fal.run("fal-ai/aura-flow", {**TINY_INPUT, "num_inference_steps": 0}, config=FAST_CLIENT))
    assert info.value.fields == ["num_inference_steps"] and info.value.status == 422
    assert server.service.store.count("queued") == 0  # nothing was queued


def test_model_limit_arrives_as_422_result(start_server: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_server()  # the tiny model's grid covers 256 px; the schema allows up to 2048
    monkeypatch.setenv("AURAFLOW_FAL_QUEUE_URL", server.url)
    monkeypatch.setenv("FAL_KEY", "any:key")
    with pytest.raises(RemoteValidationError) as info:
        asyncio.run(fal.run("fal-ai/aura-flow", {**TINY_INPUT, "width": 512}, config=FAST_CLIENT, timeout=60))
    assert info.value.fields == ["width"] and info.value.request_id


def test_unknown_request_ids_are_404(start_server: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_server()
    root = f"{server.url}/fal-ai/aura-flow/requests/00000000-0000-0000-0000-000000000000"
    assert httpx.get(f"{root}/status").status_code == 404
    assert httpx.get(root).status_code == 404
    assert httpx.put(f"{root}/cancel").json() == {"status": "NOT_FOUND"}
    assert httpx.get(f"{server.url}/fal-ai/aura-flow/requests/..%2f..%2fetc/status").status_code == 404
    monkeypatch.setenv("AURAFLOW_FAL_QUEUE_URL", server.url)
    monkeypatch.setenv("FAL_KEY", "any:key")
    with pytest.raises(RemoteError) as info:
        asyncio.run(fal.fetch_json("fal-ai/aura-flow", "00000000-0000-0000-0000-000000000000", config=FAST_CLIENT))
    assert "404" in str(info.value)
