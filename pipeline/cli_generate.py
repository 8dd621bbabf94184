"""``python -m pipeline generate``: one AuraFlow run from the shell, local weights or fal.ai, fal-shaped output.

Flags are named after the inputs of fal's ``fal-ai/aura-flow`` (``--num-images``, ``--guidance-scale``, ...) so a
command moves between ``--model SOURCE`` and ``--remote`` unchanged. PNGs carry the generation parameters in a
``parameters`` text chunk (JSON; never a key), a progress bar goes to stderr, and stdout gets one JSON object
shaped like fal's output (``images`` with url/file_name/content_type/file_size/width/height, ``seed``,
``prompt``), so scripts written against fal's response keep working.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from .errors import InvalidInputError

APP_ID = "fal-ai/aura-flow"


def add_parser(commands: Any) -> None:
    p = commands.add_parser("generate", help="generate images locally (--model) or on fal.ai (--remote)",
                            description="Generate AuraFlow images; prints fal-shaped JSON on stdout.")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--model", metavar="SOURCE",
                       help="local weights: diffusers folder, .safetensors file, or cached repo id")
    where.add_argument("--remote", action="store_true", help="run fal-ai/aura-flow on fal.ai (needs FAL_KEY)")
    p.add_argument("--prompt", required=True)
    p.add_argument("--negative-prompt", default=None, help="local only (fal's endpoint has no negative prompt)")
    p.add_argument("--num-images", type=int, default=1)
    p.add_argument("--seed", type=int, default=None, help="random when omitted; the seed used is printed")
    p.add_argument("--guidance-scale", type=float, default=3.5)
    p.add_argument("--num-inference-steps", type=int, default=50)
    p.add_argument("--expand-prompt", action=argparse.BooleanOptionalAction, default=True,
                   help="expand the prompt first, as fal does by default (local: offline template backend)")
    p.add_argument("--width", type=int, default=1024, help="local only")
    p.add_argument("--height", type=int, default=1024, help="local only")
    p.add_argument("--tokenizer", default=None, help="local single files: tokenizer folder or tokenizer.model")
    p.add_argument("--components", default=None, help="local transformer-only files: diffusers folder for the rest")
    p.add_argument("--out", default="auraflow-out", help="folder for the PNGs (created)")
    p.set_defaults(run=run)


def _progress(step: int, total: int, _latents: object = None) -> None:
    bar = "#" * (20 * step // total)
    print(f"\r  [{bar:<20}] {step}/{total}", end="" if step < total else "\n", file=sys.stderr, flush=True)


def _save(images: list[Any], out: Path, seed: int, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    from PIL.PngImagePlugin import PngInfo

    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    entries = []
    for i, image in enumerate(images):
        info = PngInfo()
        info.add_text("parameters", json.dumps({**parameters, "seed": seed, "index": i}))
        path = out / f"auraflow-{stamp}-{seed}-{i}.png"
        image.convert("RGB").save(path, pnginfo=info)
        entries.append({"url": path.resolve().as_uri(), "file_name": path.name, "content_type": "image/png",
                        "file_size": path.stat().st_size, "width": image.width, "height": image.height})
    return entries


def _run_local(args: argparse.Namespace) -> tuple[list[Any], int, str]:
    from .expand import expand_prompt
    from .loading import load_pipeline

    pipe = load_pipeline(args.model, tokenizer=args.tokenizer, components=args.components)
    prompt = args.prompt
    if args.expand_prompt:
        seed_for_expansion = args.seed if args.seed is not None else 0
        expansion = expand_prompt(prompt, backend="template", seed=seed_for_expansion, tokenizer=pipe.tokenizer)
        for warning in expansion.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        prompt = expansion.prompt
    result = pipe.generate(prompt, negative_prompt=args.negative_prompt, num_images=args.num_images, seed=args.seed,
                           guidance_scale=args.guidance_scale, num_inference_steps=args.num_inference_steps,
                           width=args.width, height=args.height, callback=_progress)
    return list(result.images), result.seed, prompt


def _run_remote(args: argparse.Namespace) -> tuple[list[Any], int, str]:
    from . import fal

    local_only = [flag for flag, value, default in (("--negative-prompt", args.negative_prompt, None),
                                                    ("--width", args.width, 1024), ("--height", args.height, 1024),
                                                    ("--tokenizer", args.tokenizer, None),
                                                    ("--components", args.components, None)) if value != default]
    if local_only:
        raise InvalidInputError(local_only[0], "given", "only with --model: fal-ai/aura-flow has no such input")
    arguments: dict[str, Any] = {"prompt": args.prompt, "num_images": args.num_images,
                                 "guidance_scale": args.guidance_scale,
                                 "num_inference_steps": args.num_inference_steps,
                                 "expand_prompt": args.expand_prompt}
    if args.seed is not None:
        arguments["seed"] = args.seed

    def on_update(status: Any) -> None:
        position = getattr(status, "position", None)
        if position is not None:
            print(f"\r  queued, position {position}   ", end="", file=sys.stderr, flush=True)
        for entry in getattr(status, "logs", None) or ():
            print(f"\r  {getattr(entry, 'message', entry)}", file=sys.stderr)

    result = asyncio.run(fal.run(APP_ID, arguments, on_update=on_update,
                                 on_submit=lambda h: print(f"request {h.request_id}", file=sys.stderr)))
    return list(result.images), int(result.data.get("seed", args.seed or 0)), str(result.data.get("prompt", ""))


def run(args: argparse.Namespace) -> int:
    images, seed, prompt = (_run_remote if args.remote else _run_local)(args)
    parameters = {"prompt": prompt, "original_prompt": args.prompt, "negative_prompt": args.negative_prompt,
                  "num_inference_steps": args.num_inference_steps, "guidance_scale": args.guidance_scale,
                  "expand_prompt": args.expand_prompt,
                  "model": "fal-ai/aura-flow" if args.remote else Path(str(args.model)).name}
    entries = _save(images, Path(args.out), seed, parameters)
    print(json.dumps({"images": entries, "seed": seed, "prompt": prompt}, indent=2))
    return 0
