"""Time from file to ready, and peak host memory: our loader vs diffusers' ``from_pretrained``, same weights.

Run from the repository root::

    python -m bench.load_vs_diffusers [--rounds 3]

Issue 8 "Load": the random MEDIUM model (``pipeline.tiny.MEDIUM``) is written once as a diffusers folder and as a
ComfyUI all-in-one ``.safetensors``; each load runs in a fresh interpreter (so the lifetime peak ``VmHWM`` is the
load's own, and no file cache of a previous load in the same process helps), with the libraries imported before
the clock starts. Contenders, interleaved per round: ours on the all-in-one file, ours on the folder, diffusers'
``AuraFlowPipeline.from_pretrained`` on the folder. Printed: min/median seconds, peak RSS growth over the
post-import baseline, the weights' bytes, and ratios against diffusers. CPU, fp32. No assertions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from bench._measure import machine_line

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, sys, time, torch
from diffusers import AuraFlowPipeline, AuraFlowTransformer2DModel, AutoencoderKL
from transformers import AutoTokenizer, UMT5EncoderModel
import transformers.models.llama.tokenization_llama
from pipeline import load_pipeline
import pipeline.loading
from bench._measure import hwm_bytes, rss_bytes
kind, source = sys.argv[1], sys.argv[2]
before = rss_bytes()
start = time.perf_counter()
if kind == "diffusers":
    pipe = AuraFlowPipeline.from_pretrained(source, torch_dtype=torch.float32, local_files_only=True)
    modules = (pipe.transformer, pipe.text_encoder, pipe.vae)
else:
    pipe = load_pipeline(source, device="cpu", dtype="fp32")
    modules = (pipe.transformer, pipe.text_encoder, pipe.vae)
seconds = time.perf_counter() - start
weights = sum(p.numel() * p.element_size() for m in modules for p in m.parameters())
print(json.dumps({"seconds": seconds, "growth": hwm_bytes() - before, "weights": weights}))
"""


def _once(kind: str, source: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", PROBE, kind, str(source)], cwd=ROOT, capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise SystemExit(f"{kind} load failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from safetensors.torch import load_file

    from pipeline.configs import metadata_for
    from pipeline.export import write_comfy_all_in_one
    from pipeline.tiny import MEDIUM, build_diffusers_folder

    with tempfile.TemporaryDirectory() as tmp:
        folder = build_diffusers_folder(Path(tmp) / "medium-auraflow", MEDIUM)
        config = json.loads((folder / "transformer" / "config.json").read_text())
        single = write_comfy_all_in_one(load_file(folder / "transformer" / "diffusion_pytorch_model.safetensors"),
                                        load_file(folder / "text_encoder" / "model.safetensors"),
                                        load_file(folder / "vae" / "diffusion_pytorch_model.safetensors"),
                                        Path(tmp) / "comfy" / "aura_flow_medium.safetensors",
                                        metadata=metadata_for(transformer=config))
        (single.parent / "tokenizer").symlink_to(folder / "tokenizer", target_is_directory=True)
        contenders = {"ours: all-in-one file": ("ours", single), "ours: diffusers folder": ("ours", folder),
                      "diffusers: folder": ("diffusers", folder)}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
        for r in range(args.rounds):
            names = list(contenders) if r % 2 == 0 else list(contenders)[::-1]
            for name in names:
                results[name].append(_once(*contenders[name]))

    print(machine_line(torch.device("cpu")))
    weights = results["diffusers: folder"][0]["weights"]
    print(f"medium random AuraFlow, {weights / 1e6:.0f} MB of fp32 weights, fresh interpreter per load, "
          f"{args.rounds} rounds interleaved")
    peer = results["diffusers: folder"]
    peer_min = min(r["seconds"] for r in peer)
    peer_peak = max(r["growth"] for r in peer)
    for name, runs in results.items():
        secs = [r["seconds"] for r in runs]
        peak = max(r["growth"] for r in runs)
        print(f"  {name:<24} min {min(secs):6.3f} s   median {statistics.median(secs):6.3f} s   "
              f"peak RSS +{peak / 2**20:7.1f} MiB ({peak / weights:.2f}x weights)   "
              f"time {min(secs) / peer_min:.2f}x, memory {peak / max(peer_peak, 1):.2f}x diffusers")


if __name__ == "__main__":
    main()
