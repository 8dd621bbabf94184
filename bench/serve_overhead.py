"""Server overhead per request: the same tiny job through ``pipeline.serve`` (via fal-client and via our client)
and through ``AuraFlow.generate`` directly, interleaved in one process.

Run from the repository root (needs the dev extras: fal-client)::

    python -m bench.serve_overhead [--rounds 10] [--steps 2] [--size 64]

A round is submit -> result JSON in hand (fal-client ``subscribe``) or images decoded (ours, following the SSE
stream), minus the median direct ``generate`` time of the same job (PNG encoding included, as the server must do
it). No assertions; goal from issue 10: < 20 ms.

fal-client's ``subscribe`` polls the status every 0.1 s by default, so its rounds end at the first poll after the
job is done: for a job of t ms that adds up to 100 ms of waiting on the client, whatever the server does. The run
also times ``subscribe(..., interval=0.005)`` (a public parameter of fal-client) and, from the stored request,
the server's own time (accepted -> result stored, minus the backend's run), which separate the server's cost from
the client's polling.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from pipeline import fal, load_pipeline
from pipeline.serve import BackgroundServer, LocalBackend, RequestStore, Service
from pipeline.tiny import build_diffusers_folder

APP = "fal-ai/aura-flow"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    job = {"prompt": "a lighthouse at dusk", "num_inference_steps": args.steps, "width": args.size,
           "height": args.size, "expand_prompt": False, "seed": 1}

    import fal_client
    import fal_client.client as fal_client_client

    with tempfile.TemporaryDirectory() as tmp:
        pipe = load_pipeline(build_diffusers_folder(Path(tmp) / "tiny"), device="cpu", dtype="fp32")
        server = BackgroundServer(Service(RequestStore.open(Path(tmp) / "q.sqlite3"), LocalBackend(pipe=pipe)))
        server.start()
        fal_client_client.QUEUE_URL_FORMAT = server.url + "/"
        os.environ["AURAFLOW_FAL_QUEUE_URL"] = server.url
        os.environ.setdefault("FAL_KEY", "bench:key")
        official = fal_client.SyncClient(key="bench:key")

        def direct() -> float:
            t = time.perf_counter()
            result = pipe.generate(job["prompt"], num_inference_steps=args.steps, width=args.size,
                                   height=args.size, seed=1)
            for image in result.images:
                image.save(io.BytesIO(), format="PNG")
            return time.perf_counter() - t

        measured_ids: list[str] = []

        def via_official() -> float:
            t = time.perf_counter()
            assert official.subscribe(APP, job, on_enqueue=measured_ids.append)["images"]
            return time.perf_counter() - t

        def via_official_fast_poll() -> float:
            t = time.perf_counter()
            assert official.subscribe(APP, job, interval=0.005)["images"]
            return time.perf_counter() - t

        def via_ours() -> float:
            t = time.perf_counter()
            assert asyncio.run(fal.run(APP, job)).images
            return time.perf_counter() - t

        rounds = {"direct": direct, "fal-client": via_official, "fal-client, 5 ms polls": via_official_fast_poll,
                  "ours": via_ours}
        for f in rounds.values():  # warm-up
            f()
        measured_ids.clear()
        times: dict[str, list[float]] = {name: [] for name in rounds}
        for _ in range(args.rounds):
            for name, f in rounds.items():
                times[name].append(f())
        records = [r for r in map(server.service.store.get, measured_ids) if r is not None]
        server.stop()

    base = statistics.median(times["direct"])
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}; "
          f"job: {args.steps} steps {args.size}px, {args.rounds} rounds")
    print(f"direct generate: median {base * 1000:.1f} ms")
    for name in rounds:
        if name == "direct":
            continue
        med = statistics.median(times[name])
        print(f"via server ({name}): median {med * 1000:.1f} ms, min {min(times[name]) * 1000:.1f} ms; "
              f"overhead {(med - base) * 1000:.1f} ms/request; ratio {med / base:.2f}")
    own = [(r.finished - r.created) - r.inference_time for r in records]
    print(f"server's own time per request (accepted -> result stored, minus the backend run; the fal-client "
          f"rounds): median {statistics.median(own) * 1000:.1f} ms, max {max(own) * 1000:.1f} ms")
    runs = [r.inference_time for r in records]
    print(f"backend run inside the server (same rounds): median {statistics.median(runs) * 1000:.1f} ms vs direct "
          f"{base * 1000:.1f} ms (on a small CPU the client, the server loop and torch share the cores)")


if __name__ == "__main__":
    main()
