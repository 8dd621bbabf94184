"""Tiled vs untiled VAE decoding: the seam check and the memory it saves.

Run from the repository root::

    python -m bench.vae_tiling [--size 512] [--tile 256] [--device cpu|cuda] [--rounds 2]

Issue 8 "memory modes": ``AuraFlow.set_memory_options(vae_tiling=True)`` decodes in overlapping tiles (diffusers'
``AutoencoderKL.enable_tiling``: 25 % overlap, linear blend), so 1536 x 1536 fits in bounded memory. Blending
makes tiled pixels differ from an untiled decode; this prints by how much on one image, with the SDXL VAE
architecture AuraFlow uses (random weights: no download) and tiles smaller than the image so seams exist. It also
prints time and peak memory of both decodes. No assertions; a max difference well under 1/255 means no visible
seam, a larger one is reported as it is (random weights exaggerate differences that trained weights smooth).
"""

from __future__ import annotations

import argparse

import torch

from bench._measure import Series, machine_line

SDXL_VAE = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": [128, 256, 512, 512],
            "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
            "layers_per_block": 2, "norm_num_groups": 32, "scaling_factor": 0.13025, "force_upcast": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (multiple of 8)")
    parser.add_argument("--tile", type=int, default=256, help="tile side in pixels (the VAE's sample_size)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)

    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(**SDXL_VAE, sample_size=args.tile).eval().to(device)
    latent = torch.randn(1, 4, args.size // 8, args.size // 8, generator=torch.Generator().manual_seed(0)).to(device)

    def decode(tiled: bool) -> torch.Tensor:
        (vae.enable_tiling if tiled else vae.disable_tiling)()
        with torch.inference_mode():
            out = vae.decode(latent, return_dict=False)[0]
        return (out * 0.5 + 0.5).clamp(0, 1).float().cpu()

    full, tiles = Series("untiled"), Series("tiled")
    for _ in range(args.rounds):
        a = full.add(device, lambda: decode(False))
        b = tiles.add(device, lambda: decode(True))
    diff = (a - b).abs()
    print(machine_line(device))
    print(f"SDXL-architecture VAE (random weights), {args.size}x{args.size}, tiles of {args.tile} px "
          f"(25 % overlap), {args.rounds} rounds")
    print(full.line())
    print(tiles.line())
    print(f"tiled vs untiled (pixels in [0, 1]): max |diff| {float(diff.max()):.4f} "
          f"({float(diff.max()) * 255:.1f}/255), mean {float(diff.mean()):.5f}, "
          f"pixels off by >= 1/255: {float((diff >= 1 / 255).float().mean()) * 100:.1f} %")
    print(f"peak memory tiled / untiled: {tiles.peak_bytes / max(full.peak_bytes, 1):.2f}x")


if __name__ == "__main__":
    main()
