"""Loading holds the weights once: peak resident memory while loading <= 1.2 x the weights' bytes.

Measured in a fresh interpreter (so nothing else in the test session counts): resident memory after the
imports, then the lifetime peak after ``load_pipeline``. The model classes are imported before the first
reading, since importing library code is not holding weights. The peak includes whatever the libraries
allocate while building modules, so this bounds the whole load, not only our tensor copies.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from testkit.pack import ROOT

from pipeline.tiny import TinyConfig, build_diffusers_folder

# ~150 MB of fp32 weights: large enough that a second copy would stand far above the noise of the libraries.
MEMORY_CONFIG = TinyConfig(hidden_heads=8, head_dim=64, num_mmdit_layers=1, num_single_dit_layers=3,
                           pos_embed_max_size=1024, text_d_model=256, text_layers=2, text_heads=4, text_d_kv=64,
                           text_d_ff=512, vae_channels=(32, 64, 64, 64), vae_groups=32)

PROBE = """
import json, resource, sys, torch
# library code is imported before measuring: importing it is not holding weights (it costs ~150 MB by itself)
from diffusers import AuraFlowTransformer2DModel, AutoencoderKL
from transformers import AutoTokenizer, UMT5Config, UMT5EncoderModel
import transformers.models.llama.tokenization_llama
from pipeline import load_pipeline
import pipeline.loading
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()
def peak_rss():
    # VmHWM belongs to this address space; ru_maxrss would carry the parent's (pytest's) peak across exec
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
before = rss()
pipe = load_pipeline(sys.argv[1], device="cpu", dtype="fp32")
peak = peak_rss()
weights = sum(p.numel() * p.element_size() for m in (pipe.transformer, pipe.text_encoder, pipe.vae)
              for p in m.parameters())
print(json.dumps({"before": before, "peak": peak, "weights": weights}))
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc to read resident memory")
def test_peak_memory_while_loading(tmp_path: Path) -> None:
    folder = build_diffusers_folder(tmp_path / "memory-model", MEMORY_CONFIG)
    out = subprocess.run([sys.executable, "-c", PROBE, str(folder)], cwd=ROOT, capture_output=True, text=True,
                         check=False, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["weights"] > 100e6
    growth = figures["peak"] - figures["before"]
    ratio = growth / figures["weights"]
    print(f"loading peak growth {growth / 1e6:.0f} MB for {figures['weights'] / 1e6:.0f} MB of weights: {ratio:.2f}x")
    assert ratio <= 1.2, f"peak {growth / 1e6:.0f} MB while loading {figures['weights'] / 1e6:.0f} MB ({ratio:.2f}x)"
