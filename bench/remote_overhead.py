"""Completion-to-images latency: our fal client vs the official fal-client, against the same loopback stand-in.

Run from the repository root (needs the dev extras: aiohttp, fal-client)::

    python -m bench.remote_overhead [--rounds 10] [--delay 0.5] [--size 1024]

Each round submits one request that the stand-in completes exactly ``--delay`` seconds after submission and
measures the time from that instant (``FalStandIn.completed_at``) to decoded images in hand. Ours follows the
SSE status stream; fal-client 1.0.3 polls every 0.1 s and returns JSON only, so its round also downloads and
decodes the image the way a caller must (httpx + PIL). Rounds alternate between the two. No assertions: it
prints min/median per client and the ratio ours / fal-client (goal: <= 1).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import statistics
import time

import httpx
from PIL import Image

from pipeline import fal
from tests.testkit.fal_standin import DEFAULT_KEY, FalStandIn, Scenario

APP = "fal-ai/aura-flow"


async def ours(server: FalStandIn) -> float:
    result = await fal.run(APP, {"prompt": "bench", "num_images": 1})
    assert result.images
    return time.perf_counter() - server.completed_at(result.request_id)


async def official(server: FalStandIn, client: object) -> float:
    ids: list[str] = []
    data = await client.subscribe(APP, {"prompt": "bench", "num_images": 1}, on_enqueue=ids.append)  # type: ignore[attr-defined]
    async with httpx.AsyncClient() as http:
        for item in data["images"]:
            resp = await http.get(item["url"])
            resp.raise_for_status()
            with Image.open(io.BytesIO(resp.content)) as img:
                img.load()
                img.convert("RGB")
    return time.perf_counter() - server.completed_at(ids[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--delay", type=float, default=0.5, help="seconds from submit to completion")
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels")
    args = parser.parse_args()

    import fal_client
    import fal_client.client as fal_client_module

    scenario = Scenario(queue_positions=(), logs=("generating",), step=args.delay, image_size=(args.size, args.size))
    with FalStandIn(scenario) as server:
        os.environ["FAL_KEY"] = DEFAULT_KEY
        os.environ["AURAFLOW_FAL_QUEUE_URL"] = server.url
        fal_client_module.QUEUE_URL_FORMAT = server.url + "/"  # its only host knob is fixed to https at import

        async def rounds() -> tuple[list[float], list[float]]:
            client = fal_client.AsyncClient(key=DEFAULT_KEY)
            await ours(server)  # warm-up: imports, first connections
            await official(server, client)
            mine, theirs = [], []
            for _ in range(args.rounds):
                mine.append(await ours(server))
                theirs.append(await official(server, client))
            return mine, theirs

        mine, theirs = asyncio.run(rounds())

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"fal-client {fal_client.__version__}")
    print(f"{args.rounds} rounds, completion {args.delay:g} s after submit, 1 image {args.size}x{args.size} PNG")
    print("time from completion to decoded images in hand (ms):")
    for name, values in (("ours (SSE)", mine), ("fal-client (0.1 s poll)", theirs)):
        print(f"  {name:<24} min {min(values) * 1e3:7.1f}   median {statistics.median(values) * 1e3:7.1f}")
    print(f"ratio ours / fal-client: median {statistics.median(mine) / statistics.median(theirs):.2f}, "
          f"min {min(mine) / min(theirs):.2f}")


if __name__ == "__main__":
    main()
