"""A bounded burst: 200 concurrent submits from one client process, every request answered exactly once."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from testkit.fal_standin import png_bytes

from pipeline.serve import BackendOutput, BackgroundServer, ImageFile

Start = Callable[..., BackgroundServer]
BURST = 200


class InstantBackend:
    """No model: one 8x8 PNG per request, so the test measures the queue, not the sampler."""

    def __init__(self) -> None:
        self.runs: list[str] = []

    def run(self, input: Mapping[str, Any], on_progress: Callable[[str], None],
            should_cancel: Callable[[], bool]) -> BackendOutput:
        self.runs.append(str(input["prompt"]))
        on_progress("step 1/1")
        return BackendOutput((ImageFile(png_bytes((8, 8)), 8, 8),), seed=int(input.get("seed") or 0),
                             prompt=str(input["prompt"]))


def test_burst_of_concurrent_submits(start_server: Start) -> None:
    backend = InstantBackend()
    server = start_server(backend=backend)

    async def one(client: httpx.AsyncClient, i: int) -> tuple[str, Any]:
        resp = await client.post(f"{server.url}/fal-ai/aura-flow", json={"prompt": f"p{i}", "seed": i})
        resp.raise_for_status()
        req = resp.json()
        for _ in range(600):  # bounded: at most ~60 s of polling
            if (await client.get(req["status_url"])).status_code == 200:
                break
            await asyncio.sleep(0.1)
        return req["request_id"], (await client.get(req["response_url"])).json()

    async def burst() -> list[tuple[str, Any]]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            return await asyncio.gather(*(one(client, i) for i in range(BURST)))

    results = asyncio.run(burst())
    assert len({rid for rid, _ in results}) == BURST
    assert sorted(r["seed"] for _, r in results) == list(range(BURST))
    counts = collections.Counter(backend.runs)
    assert len(counts) == BURST and set(counts.values()) == {1}  # each ran exactly once
    assert server.service.store.count("queued") == 0 and server.service.store.count("done") == BURST
