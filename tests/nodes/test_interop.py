"""Our LATENT and IMAGE follow ComfyUI's conventions, checked against ComfyUI's core nodes re-enacted on diffusers.

Without ComfyUI at hand, its nodes are re-enacted from their definitions (comfyui-notes §4, ComfyUI ``nodes.py``):
``EmptyLatentImage`` = zeros ``[B, 4, H/8, W/8]``; ``VAEEncode`` = the VAE's latent of ``2 * pixels - 1``
(channels first), **unscaled**; ``VAEDecode`` = ``clamp((vae.decode(samples) + 1) / 2)`` moved to channels-last,
also on unscaled latents. The VAE is diffusers' ``AutoencoderKL`` read independently from the same weights.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

ARGS = {"seed": 11, "steps": 2, "cfg": 3.5, "shift": 1.73}


@pytest.fixture(scope="module")
def sdxl_vae(models_dir: Path) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(models_dir / "diffusers" / "tiny-auraflow" / "vae").eval()


def empty_latent_image(width: int, height: int, batch_size: int = 1) -> dict[str, torch.Tensor]:
    return {"samples": torch.zeros([batch_size, 4, height // 8, width // 8])}


def vae_encode(vae: Any, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"samples": vae.encode(pixels.movedim(-1, 1) * 2.0 - 1.0).latent_dist.mode()}


def vae_decode(vae: Any, samples: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.clamp((vae.decode(samples["samples"]).sample + 1.0) / 2.0, 0.0, 1.0).movedim(1, -1)


def _sample(sampling: ModuleType, model: Any, *, width: int = 64, height: int = 64, batch_size: int = 1,
            denoise: float = 1.0, latent: dict[str, Any] | None = None, steps: int = ARGS["steps"]) -> torch.Tensor:
    (cond,) = sampling.AuraFlowTextEncode().encode(model, "a bowl of ramen", "")
    (out,) = sampling.AuraFlowSampler().sample(model, cond, ARGS["seed"], steps, ARGS["cfg"], ARGS["shift"],
                                               width, height, batch_size, denoise, latent)
    return out["samples"]


def test_our_latent_decodes_like_comfys_vae_decode(sampling: ModuleType, model: Any, sdxl_vae: Any) -> None:
    samples = _sample(sampling, model, width=64, height=80, batch_size=2)
    (ours,) = sampling.AuraFlowDecode().decode(model, {"samples": samples})
    theirs = vae_decode(sdxl_vae, {"samples": samples})
    assert ours.shape == theirs.shape == (2, 80, 64, 3)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    # the latents are raw: decoding them as if they were scaled gives another picture
    scaled = vae_decode(sdxl_vae, {"samples": samples * sdxl_vae.config.scaling_factor})
    assert (scaled - ours).abs().mean() > 1e-3


def test_sampler_takes_empty_latent_image(sampling: ModuleType, model: Any) -> None:
    """EmptyLatentImage's size and batch replace the widgets; at denoise 1 it is the same run as without it."""
    from_empty = _sample(sampling, model, width=1024, height=1024, latent=empty_latent_image(48, 64, batch_size=3))
    plain = _sample(sampling, model, width=48, height=64, batch_size=3)
    assert from_empty.shape == (3, 4, 8, 6)
    torch.testing.assert_close(from_empty, plain, rtol=0, atol=0)


def test_sampler_refines_vae_encode_latents(sampling: ModuleType, model: Any, sdxl_vae: Any) -> None:
    """VAEEncode's raw latents are taken as they are: a batch of 1 broadcasts, results are the core's img2img."""
    pixels = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(0))
    encoded = vae_encode(sdxl_vae, pixels)
    out = _sample(sampling, model, latent=encoded, denoise=0.4, batch_size=2)
    assert out.shape == (2, 4, 8, 8) and torch.isfinite(out).all()
    (cond,) = sampling.AuraFlowTextEncode().encode(model, "a bowl of ramen", "")
    core = model.generate(prompt_embeds=cond.positive, negative_prompt_embeds=cond.negative, num_images=2,
                          seed=ARGS["seed"], guidance_scale=ARGS["cfg"], num_inference_steps=ARGS["steps"],
                          latents=encoded["samples"], denoise=0.4, output_type="latent")
    torch.testing.assert_close(out, core.latents, rtol=0, atol=0)


def test_low_denoise_keeps_the_input(sampling: ModuleType, model: Any, sdxl_vae: Any) -> None:
    """Low denoise stays near the input latent, denoise 1 replaces it. The tiny random VAE's latents are far
    smaller than the real SDXL VAE's (unit variance once scaled by 0.13025), so they are brought to that size."""
    pixels = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(0))
    start = vae_encode(sdxl_vae, pixels)["samples"]
    start = start / (start.std() * sdxl_vae.config.scaling_factor)
    near = _sample(sampling, model, latent={"samples": start}, denoise=0.02)
    far = _sample(sampling, model, latent={"samples": start}, denoise=1.0)
    close, replaced = (near - start).norm() / start.norm(), (far - start).norm() / start.norm()
    assert close < 0.1 < replaced


def test_latents_of_another_vae_fail_naming_the_node(sampling: ModuleType, model: Any, common: ModuleType) -> None:
    sd3_like = {"samples": torch.zeros(1, 16, 8, 8)}
    with pytest.raises(common.AuraFlowNodeError, match="AuraFlow Sampler: latents=.*4 x H/8"):
        _sample(sampling, model, latent=sd3_like, denoise=0.5)
