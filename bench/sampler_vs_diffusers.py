"""Our pipeline vs diffusers' ``AuraFlowPipeline`` on the same random medium model, interleaved in one process.

Run from the repository root::

    python -m bench.sampler_vs_diffusers [--rounds 3] [--steps 8] [--size 256] [--device cpu|cuda]

Issue 3 item 6 / issue 8 "CPU": a random MEDIUM configuration (hidden 768, 2 double + 4 single blocks, ~88 M
transformer parameters; ``pipeline.tiny.MEDIUM``) is saved as a diffusers folder in a temporary directory; our
``load_pipeline`` and diffusers' ``from_pretrained`` both load it. Each round generates one image with each
(same prompt, seed, size, steps, guidance 3.5), alternating which goes first, after one untimed warm-up each.
Prints min/median seconds, the ratio ours / diffusers (goal <= 1.0) and each one's peak memory during a call
(sampled RSS growth on CPU, allocator peak on CUDA), plus the largest pixel difference as a parity check.
No assertions: CPU timings on shared machines vary, so the minimum is the figure to compare.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench._measure import Series, machine_line, ratio_lines
from pipeline import load_pipeline
from pipeline.tiny import MEDIUM, build_diffusers_folder

PROMPT = "a lighthouse at dusk above a stormy sea, oil painting"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--guidance", type=float, default=3.5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16

    from diffusers import AuraFlowPipeline

    with tempfile.TemporaryDirectory() as tmp:
        folder = build_diffusers_folder(Path(tmp) / "medium-auraflow", MEDIUM)
        ours = load_pipeline(folder, device=device, dtype=dtype)
        theirs = AuraFlowPipeline.from_pretrained(folder, torch_dtype=dtype, local_files_only=True).to(device)
        theirs.set_progress_bar_config(disable=True)
        call = {"num_inference_steps": args.steps, "width": args.size, "height": args.size,
                "guidance_scale": args.guidance}

        def run_ours() -> np.ndarray:
            return ours.generate(PROMPT, seed=0, output_type="np", **call).images

        def run_theirs() -> np.ndarray:
            with torch.inference_mode():
                return theirs(PROMPT, generator=torch.Generator("cpu").manual_seed(0), output_type="np",
                              num_images_per_prompt=1, **call).images

        a, b = run_ours(), run_theirs()  # warm-up (first-call allocations, lazy imports); also the parity check
        mine, peer = Series("ours"), Series("diffusers")
        for r in range(args.rounds):
            order = ((mine, run_ours), (peer, run_theirs))
            for series, fn in (order if r % 2 == 0 else order[::-1]):
                series.add(device, fn)

    params = sum(p.numel() for p in ours.transformer.parameters())
    print(machine_line(device))
    print(f"medium random AuraFlow ({params / 1e6:.1f} M transformer params, {dtype}), {args.size}x{args.size}, "
          f"{args.steps} steps, guidance {args.guidance}, {args.rounds} rounds interleaved")
    print(mine.line())
    print(peer.line())
    print(*ratio_lines(mine, peer, "diffusers"), sep="\n")
    print(f"max |ours - diffusers| on the image: {float(np.abs(a - b).max()):.2e}")


if __name__ == "__main__":
    main()
