"""Command line: ``python -m pipeline demo`` (and more subcommands as they land).

``demo`` is the first command on a fresh machine: with no weights and no key it builds a tiny random-weight
AuraFlow in a cache folder and runs the whole local path (load, encode, sample, decode, save), so a user sees
that the install works before downloading 16 GB of weights.
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
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except AuraFlowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
