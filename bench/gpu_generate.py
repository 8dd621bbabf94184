"""Real-size AuraFlow v0.3 on one GPU: ours vs diffusers' ``AuraFlowPipeline``, random bf16 weights, no download.

Run from the repository root on a CUDA machine (one command; about 5 minutes on an H100 with the defaults)::

    python -m bench.gpu_generate                       # 1024 x 1024, 50 steps, guidance 3.5, 2 rounds
    python -m bench.gpu_generate --compile             # + torch.compile of our transformer (warm-up reported apart)
    python -m bench.gpu_generate --offload sequential --resident-blocks 24   # the 12 GB-GPU mode, vs resident
    python -m bench.gpu_generate --fp8                 # + our fp8 weight-storage mode, vs bf16

Issue 8 "GPU throughput": the real v0.3 transformer (6.86 B params), Pile-T5-XL-sized UMT5 encoder and SDXL VAE
are built directly on the GPU in bf16 with random weights and shared by both pipelines (same weights, one copy).
Rounds interleave diffusers and ours (and the optional variants) after one untimed warm-up each. Printed: seconds
per image (min/median), ratio ours / diffusers, peak GPU memory (allocator peak, total and above the resident
weights), and the fraction of the H100/H200 dense bf16 peak (989 TFLOP/s) the image's FLOPs represent (the
transformer's FLOPs are counted on the meta device with ``FlopCounterMode``; text encoder and VAE from
auraflow-reference §9: 4.4 PFLOP per image at the defaults). No assertions. ``--model medium --device cpu`` runs
the same code on the medium random config, as a smoke test where there is no GPU.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from typing import Any

import torch

from bench._measure import Series, machine_line

PEAK_BF16_FLOPS = 989e12  # H100 SXM / H200 dense bf16
TEXT_ENCODER_FLOPS = 0.593e12  # per prompt (auraflow-reference §9)
VAE_DECODE_FLOPS_1024 = 10.47e12  # 1024 x 1024 decode; scales with the pixel count

REAL = {
    "transformer": {"sample_size": 64, "patch_size": 2, "in_channels": 4, "out_channels": 4, "num_mmdit_layers": 4,
                    "num_single_dit_layers": 32, "attention_head_dim": 256, "num_attention_heads": 12,
                    "joint_attention_dim": 2048, "caption_projection_dim": 3072, "pos_embed_max_size": 9216},
    "text_encoder": {"vocab_size": 32128, "d_model": 2048, "d_ff": 5120, "d_kv": 64, "num_heads": 32,
                     "num_layers": 24, "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
                     "feed_forward_proj": "gated-gelu", "layer_norm_epsilon": 1e-6, "scalable_attention": True,
                     "is_encoder_decoder": False, "dropout_rate": 0.0, "pad_token_id": 0, "eos_token_id": 2,
                     "tie_word_embeddings": False},
    "vae": {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": [128, 256, 512, 512],
            "layers_per_block": 2, "norm_num_groups": 32, "sample_size": 1024, "scaling_factor": 0.13025,
            "force_upcast": True, "down_block_types": ["DownEncoderBlock2D"] * 4,
            "up_block_types": ["UpDecoderBlock2D"] * 4},
}


def _medium() -> dict[str, dict[str, Any]]:
    cfg = copy.deepcopy(REAL)
    cfg["transformer"].update(num_mmdit_layers=2, num_single_dit_layers=4, attention_head_dim=64,
                              caption_projection_dim=768, joint_attention_dim=256, pos_embed_max_size=1024)
    cfg["text_encoder"].update(d_model=256, d_ff=512, num_heads=4, num_layers=2)
    cfg["vae"].update(block_out_channels=[32, 64, 64, 64], layers_per_block=1)
    return cfg


def build_modules(cfg: dict[str, dict[str, Any]], device: torch.device, dtype: torch.dtype, tokenizer_dir: Any
                  ) -> dict[str, Any]:
    """Random-weight modules created on ``device`` in ``dtype`` (no full-precision copy, no host round trip)."""
    from diffusers import AuraFlowTransformer2DModel, AutoencoderKL
    from transformers import AutoTokenizer, UMT5Config, UMT5EncoderModel

    from pipeline.tiny import train_tokenizer

    train_tokenizer(tokenizer_dir)
    previous = torch.get_default_dtype()
    torch.manual_seed(0)
    try:
        torch.set_default_dtype(dtype)
        with torch.device(device):
            transformer = AuraFlowTransformer2DModel(**cfg["transformer"]).eval().requires_grad_(False)
            text_encoder = UMT5EncoderModel(UMT5Config(**cfg["text_encoder"])).eval().requires_grad_(False)
            vae = AutoencoderKL(**cfg["vae"]).eval().requires_grad_(False)
    finally:
        torch.set_default_dtype(previous)
    # keep activations sane with random weights: scale the blocks' output projections down (timing is unaffected)
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if name.endswith(("to_out.0.weight", "to_add_out.weight", "out_projection.weight")):
                param.mul_(0.1)
    return {"tokenizer": AutoTokenizer.from_pretrained(tokenizer_dir), "text_encoder": text_encoder,
            "transformer": transformer, "vae": vae}


def transformer_flops(cfg: dict[str, Any], size: int, batch: int) -> float:
    """FLOPs of one transformer forward at ``size`` px and ``batch``, counted on the meta device."""
    from diffusers import AuraFlowTransformer2DModel
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = AuraFlowTransformer2DModel(**cfg)
        x = torch.empty(batch, 4, size // 8, size // 8)
        ctx = torch.empty(batch, 256, cfg["joint_attention_dim"])
        t = torch.empty(batch)
        with FlopCounterMode(display=False) as counter:
            model(x, encoder_hidden_states=ctx, timestep=t)
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--guidance", type=float, default=3.5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="torch.compile our transformer (off by default)")
    parser.add_argument("--offload", choices=("model", "sequential"), help="also time ours in this offload mode")
    parser.add_argument("--resident-blocks", type=int, default=0, help="with --offload sequential")
    parser.add_argument("--fp8", action="store_true", help="also time ours with fp8 (e4m3fn) weight storage")
    parser.add_argument("--vae-tiling", action="store_true", help="tiled VAE decode in our runs")
    parser.add_argument("--no-diffusers", action="store_true", help="skip diffusers (saves time)")
    parser.add_argument("--model", choices=("real", "medium"), default="real")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("bench.gpu_generate needs a CUDA GPU (torch.cuda.is_available() is False on this machine). "
                 "Run it on a GPU machine; for a CPU smoke test of the script use --model medium --device cpu.")
    if device.type != "cuda" and args.model == "real":
        sys.exit("The real-size model is only benchmarked on a GPU; use --model medium with --device cpu.")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    cfg = REAL if args.model == "real" else _medium()

    import tempfile
    from pathlib import Path

    from diffusers import AuraFlowPipeline, FlowMatchEulerDiscreteScheduler

    from pipeline.pipeline import AuraFlow
    from pipeline.quantized import quantize_fp8, weight_bytes

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        parts = build_modules(cfg, device, dtype, Path(tmp) / "tokenizer")
        built_s = time.perf_counter() - t0
    ours = AuraFlow(device=device, dtype=dtype, **parts)
    theirs = AuraFlowPipeline(scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.73),
                              **parts)
    theirs.set_progress_bar_config(disable=True)
    if args.vae_tiling:
        ours.set_memory_options(vae_tiling=True)
    call = {"num_inference_steps": args.steps, "width": args.size, "height": args.size,
            "guidance_scale": args.guidance}
    prompt = "a lighthouse at dusk above a stormy sea, oil painting"

    def run_ours(pipe: AuraFlow = ours) -> Any:
        return pipe.generate(prompt, seed=0, output_type="pt", **call).images

    def run_theirs() -> Any:
        if args.vae_tiling:
            theirs.vae.disable_tiling()
        with torch.inference_mode():
            out = theirs(prompt, generator=torch.Generator("cpu").manual_seed(0), output_type="pt", **call).images
        if args.vae_tiling:
            theirs.vae.enable_tiling()
        return out

    contenders: list[tuple[Series, Any]] = [(Series("ours"), run_ours)]
    if not args.no_diffusers:
        contenders.append((Series("diffusers"), run_theirs))
    warmups: dict[str, float] = {}
    if args.compile:
        compiled = AuraFlow(device=device, dtype=dtype, **{**parts, "transformer": torch.compile(parts["transformer"])})
        contenders.append((Series("ours+compile"), lambda: run_ours(compiled)))
    if args.fp8:
        fp8 = AuraFlow(device=device, dtype=dtype,
                       **{**parts, "transformer": quantize_fp8(copy.deepcopy(parts["transformer"]))})
        contenders.append((Series("ours+fp8"), lambda: run_ours(fp8)))
    if args.offload:
        def run_offloaded() -> Any:
            ours.set_memory_options(offload=args.offload, resident_blocks=args.resident_blocks)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            try:
                return run_ours()
            finally:
                ours.set_memory_options(offload="none")
        contenders.append((Series(f"ours+{args.offload}"), run_offloaded))

    for series, fn in contenders:  # warm-up: kernels, allocator, cuDNN/cuBLAS heuristics, compilation
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        warmups[series.name] = time.perf_counter() - start
    for r in range(args.rounds):
        for series, fn in (contenders if r % 2 == 0 else contenders[::-1]):
            if device.type == "cuda":
                torch.cuda.empty_cache()
            series.add(device, fn)

    cfg_batch = 2 if args.guidance > 1 else 1
    flops = (args.steps * transformer_flops(cfg["transformer"], args.size, cfg_batch)
             + TEXT_ENCODER_FLOPS * cfg_batch + VAE_DECODE_FLOPS_1024 * (args.size / 1024) ** 2)
    print(machine_line(device))
    print(f"AuraFlow {args.model} config, random {dtype} weights (built on the device in {built_s:.1f} s; "
          f"transformer {weight_bytes(parts['transformer']) / 1e9:.2f} GB), {args.size}x{args.size}, "
          f"{args.steps} steps, guidance {args.guidance}, {args.rounds} rounds interleaved")
    print(f"FLOPs per image {flops / 1e15:.3f} PFLOP (transformer counted, text encoder + VAE estimated)")
    for series, _ in contenders:
        pct = flops / series.min_s / PEAK_BF16_FLOPS * 100
        total = max(r.peak_total_bytes for r in series.runs)
        print(f"{series.line()}   peak total {total / 2**30:6.2f} GiB   {pct:5.1f} % of bf16 peak   "
              f"warm-up {warmups[series.name]:.1f} s")
    names = {s.name: s for s, _ in contenders}
    if "diffusers" in names:
        peer = names["diffusers"]
        for name, series in names.items():
            if name != "diffusers":
                print(f"ratio {name} / diffusers: min {series.min_s / peer.min_s:.3f}, "
                      f"median {series.median_s / peer.median_s:.3f}")
    for name, series in names.items():
        if name.startswith("ours+"):
            print(f"{name} / ours: {series.min_s / names['ours'].min_s:.2f}x the time")
    if args.fp8:
        print(f"fp8 transformer {weight_bytes(fp8.transformer) / 1e9:.2f} GB; max |fp8 - {dtype}| on the image: "
              f"{float((run_ours(fp8) - run_ours()).abs().max()):.4f}")


if __name__ == "__main__":
    main()
