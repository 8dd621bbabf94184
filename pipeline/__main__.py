"""Command line: ``python -m pipeline demo`` and ``python -m pipeline serve``.

``demo`` is the first command on a fresh machine: with no weights and no key it builds a tiny random-weight
AuraFlow in a cache folder and runs the whole local path (load, encode, sample, decode, save), so a user sees
that the install works before downloading 16 GB of weights.

``serve`` self-hosts fal's ``fal-ai/aura-flow`` queue API on local weights (:mod:`pipeline.serve`), so code
written for fal runs against this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .errors import AuraFlowError


def _cache_dir() -> Path:
    """``$AURAFLOW_CACHE``, else ``$XDG_CACHE_HOME/comfyui-auraflow`` (``~/.cache`` by default)."""
    if os.environ.get("AURAFLOW_CACHE"):
        return Path(os.environ["AURAFLOW_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "comfyui-auraflow"


def _progress(step: int, total: int, _latents: object) -> None:
    bar = "#" * (20 * step // total)
    print(f"\r  sampling [{bar:<20}] {step}/{total}", end="" if step < total else "\n", file=sys.stderr)


def demo(args: argparse.Namespace) -> int:
    from .loading import load_pipeline
    from .tiny import build_diffusers_folder

    folder = _cache_dir() / "tiny-random-auraflow"
    if not (folder / "model_index.json").is_file():
        print(f"building a tiny random-weight AuraFlow in {folder} ...", file=sys.stderr)
        build_diffusers_folder(folder)
    started = time.perf_counter()
    pipe = load_pipeline(folder)
    print(f"loaded {folder} on {pipe.device} ({str(pipe.dtype).removeprefix('torch.')})", file=sys.stderr)
    result = pipe.generate(args.prompt, num_images=args.num_images, seed=args.seed, num_inference_steps=args.steps,
                           width=args.size, height=args.size, callback=_progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = []
    for i, image in enumerate(result.images):
        path = out / f"demo-{result.seed}-{i}.png"
        image.save(path)
        images.append({"url": path.resolve().as_uri(), "file_name": path.name, "content_type": "image/png",
                       "file_size": path.stat().st_size, "width": image.width, "height": image.height})
    print(json.dumps({"images": images, "seed": result.seed, "prompt": result.prompt}, indent=2))
    print(
        f"done in {time.perf_counter() - started:.1f} s. These pictures are noise: the model has random weights.\n"
        "For real images load AuraFlow v0.3 weights (a diffusers folder, ComfyUI's aura_flow_0.3.safetensors, or "
        "a cached `fal/AuraFlow-v0.3`) with pipeline.load_pipeline(...), use the ComfyUI nodes, or generate "
        "remotely on fal.ai with FAL_KEY set.",
        file=sys.stderr,
    )
    return 0


class _OneLineErrors(argparse.ArgumentParser):
    """Bad flags end with one line on stderr and exit status 2 (argparse would print the whole usage first)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def serve(args: argparse.Namespace) -> int:
    import logging

    from aiohttp import web

    from .serve import (
        KEYS_ENV,
        LocalBackend,
        RequestStore,
        ServeOptions,
        Service,
        build_app,
        check_bind,
        load_keys,
        ssl_context,
    )

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keys = load_keys(key_file=args.key_file)
    check_bind(args.host, keys)  # before the minutes a model load can take
    tls = ssl_context(args.tls_cert, args.tls_key)
    backend = LocalBackend(args.model, device=args.device, dtype=args.dtype, expand_backend=args.expand_backend)
    print(f"loading {args.model} ...", file=sys.stderr)
    pipe = backend.pipe()
    print(f"loaded on {pipe.device} ({str(pipe.dtype).removeprefix('torch.')})", file=sys.stderr)
    db = Path(args.db) if args.db else _cache_dir() / "serve.sqlite3"
    store = RequestStore.open(db, result_ttl=args.result_ttl)
    options = ServeOptions(keys=keys, trust_forwarded=args.trust_forwarded)
    app = build_app(Service(store, backend, options))
    scheme = "https" if tls else "http"
    url = f"{scheme}://{args.host}:{args.port}"
    auth = (f"{len(keys)} key(s); clients send 'Authorization: Key <key>'" if keys else
            f"no keys ({KEYS_ENV} unset): loopback only, anyone on this machine can submit")
    print(f"serving fal-ai/aura-flow at {url} ({auth}); queue in {db}\n"
          f"  our client / ComfyUI nodes: AURAFLOW_FAL_QUEUE_URL={url}\n"
          f"  fal-client: FAL_QUEUE_RUN_HOST={args.host}:{args.port} (https only: needs --tls-cert/--tls-key)",
          file=sys.stderr)
    try:
        web.run_app(app, host=args.host, port=args.port, ssl_context=tls, access_log=None, print=None,
                    shutdown_timeout=5.0)
    finally:
        store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _OneLineErrors(prog="python -m pipeline", description="ComfyUI-AuraFlow core")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("demo", help="run the whole local path on a tiny random-weight model (no downloads)")
    p.add_argument("--prompt", default="a lighthouse at dusk above a stormy sea, oil painting")
    p.add_argument("--num-images", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--out", default="auraflow-demo")
    p.set_defaults(run=demo)
    from . import cli_generate, cli_workflow

    cli_generate.add_parser(commands)
    cli_workflow.add_parser(commands)
    p = commands.add_parser("serve", help="serve fal's fal-ai/aura-flow queue API from local weights")
    p.add_argument("--model", required=True, help="a diffusers folder, a .safetensors file or a cached repo id")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (non-loopback needs API keys)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--db", default=None, help="SQLite queue file (default: the cache folder's serve.sqlite3)")
    p.add_argument("--result-ttl", type=float, default=3600.0, help="seconds finished results are kept")
    p.add_argument("--key-file", default=None, help="file with one API key per line (adds to AURAFLOW_SERVE_KEYS)")
    p.add_argument("--tls-cert", default=None, help="PEM certificate (chain) for https")
    p.add_argument("--tls-key", default=None, help="PEM private key for --tls-cert")
    p.add_argument("--trust-forwarded", action="store_true",
                   help="build URLs from X-Forwarded-Proto/Host (only behind your own reverse proxy)")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available)")
    p.add_argument("--dtype", default=None, help="auto, bf16, fp16 or fp32")
    p.add_argument("--expand-backend", default="template", choices=("template", "local", "fal"),
                   help="what expand_prompt=true uses (fal does not publish its expander)")
    p.set_defaults(run=serve)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except AuraFlowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
