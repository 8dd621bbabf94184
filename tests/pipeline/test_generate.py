"""Generation behaviour beyond parity: seeds, callbacks and cancel, latents in and out, bad input."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch

from pipeline import CancelledError, InvalidInputError

SMALL = {"num_inference_steps": 3, "width": 64, "height": 64}


def test_seed_reproducible_and_reported(tiny_pipe: Any) -> None:
    a = tiny_pipe.generate("a cat", seed=7, output_type="np", **SMALL)
    b = tiny_pipe.generate("a cat", seed=7, output_type="np", **SMALL)
    c = tiny_pipe.generate("a cat", seed=8, output_type="np", **SMALL)
    assert a.seed == 7 and np.array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    random = tiny_pipe.generate("a cat", output_type="latent", **SMALL)
    assert isinstance(random.seed, int) and random.images is None


class _ZeroVelocity(torch.nn.Module):
    """A stand-in transformer predicting zero velocity: the sampler then returns its initial noise unchanged."""

    def forward(self, x: torch.Tensor, **_: Any) -> tuple[torch.Tensor]:
        return (torch.zeros_like(x),)


def test_noise_is_one_cpu_randn_draw(tiny_pipe: Any) -> None:
    """For seed s the initial noise is exactly randn((N, 4, H/8, W/8), CPU generator seeded s), whole batch."""
    still = dataclasses.replace(tiny_pipe, transformer=_ZeroVelocity())
    still.transformer.config = tiny_pipe.transformer.config
    result = still.generate(["a cat", "a dog"], seed=5, num_images=2, output_type="latent", **SMALL)
    expected = torch.randn((4, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(5))
    assert torch.allclose(result.latents * tiny_pipe.scaling_factor, expected, rtol=0, atol=1e-6)


def test_output_types(tiny_pipe: Any) -> None:
    pil = tiny_pipe.generate("a cat", seed=1, **SMALL)
    pt = tiny_pipe.generate("a cat", seed=1, output_type="pt", **SMALL)
    assert pil.images[0].size == (64, 64)
    assert pt.images.shape == (1, 64, 64, 3) and pt.images.dtype == torch.float32
    assert 0.0 <= float(pt.images.min()) and float(pt.images.max()) <= 1.0
    assert np.array_equal(np.asarray(pil.images[0]), (pt.images[0].numpy() * 255).round().astype(np.uint8))
    assert pt.latents.shape == (1, 4, 8, 8)


def test_callback_every_step_and_cancel(tiny_pipe: Any) -> None:
    seen: list[tuple[int, int]] = []
    tiny_pipe.generate("a cat", seed=1, callback=lambda i, n, x: seen.append((i, n)), **SMALL)
    assert seen == [(1, 3), (2, 3), (3, 3)]

    def stop(step: int, total: int, latents: torch.Tensor) -> None:
        if step == 2:
            raise CancelledError("stopped by the user")

    with pytest.raises(CancelledError):
        tiny_pipe.generate("a cat", seed=1, callback=stop, **SMALL)


def test_prompt_embeddings_reuse_matches_text(tiny_pipe: Any) -> None:
    embeds = tiny_pipe.encode_prompt("a cat")
    negative = tiny_pipe.encode_prompt("blurry")
    by_text = tiny_pipe.generate("a cat", negative_prompt="blurry", seed=3, output_type="np", **SMALL)
    by_embeds = tiny_pipe.generate(prompt_embeds=embeds, negative_prompt_embeds=negative, seed=3, output_type="np",
                                   **SMALL)
    assert np.array_equal(by_text.images, by_embeds.images)
    assert "" in tiny_pipe._negative_cache  # the empty negative prompt is encoded once per model


def test_latents_round_trip_and_img2img(tiny_pipe: Any) -> None:
    base = tiny_pipe.generate("a cat", seed=2, output_type="latent", **SMALL).latents
    # denoise 1.0 from given latents ignores their content (pure noise), like ComfyUI's KSampler
    empty = tiny_pipe.generate("a cat", seed=2, latents=torch.zeros_like(base), output_type="latent",
                               num_inference_steps=3).latents
    assert torch.allclose(empty, base, atol=1e-6)
    # denoise < 1 starts from the latents: the result stays closer to them than a fresh sample does
    other = tiny_pipe.generate("a dog", seed=9, output_type="latent", **SMALL).latents
    partial = tiny_pipe.generate("a dog", seed=9, latents=base, denoise=0.3, output_type="latent",
                                 num_inference_steps=3).latents
    assert (partial - base).abs().mean() < (other - base).abs().mean()
    # a batch of latents with one prompt gives one image per latent (EmptyLatentImage's batch size)
    batch = tiny_pipe.generate("a cat", seed=2, latents=torch.zeros(3, 4, 8, 12), output_type="np",
                               num_inference_steps=2)
    assert batch.images.shape == (3, 64, 96, 3)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"width": 65}, "width"),
    ({"height": 8}, "height"),
    ({"width": 4096}, "width"),
    ({"height": 272}, "height"),
    ({"num_inference_steps": 0}, "num_inference_steps"),
    ({"guidance_scale": -1}, "guidance_scale"),
    ({"num_images": 0}, "num_images"),
    ({"denoise": 0}, "denoise"),
    ({"denoise": 1.5}, "denoise"),
    ({"denoise": 0.5}, "denoise"),
    ({"seed": -1}, "seed"),
    ({"shift": 0}, "shift"),
    ({"output_type": "jpeg"}, "output_type"),
    ({"latents": torch.zeros(1, 16, 8, 8)}, "latents"),
    ({"negative_prompt": ["a", "b", "c"]}, "negative_prompt"),
])
def test_bad_input_names_field_and_allowed(tiny_pipe: Any, kwargs: dict[str, Any], field: str) -> None:
    args = {"prompt": "a cat", "num_inference_steps": 2, "width": 64, "height": 64, **kwargs}
    with pytest.raises(InvalidInputError) as info:
        tiny_pipe.generate(**args)
    assert info.value.field == field
    assert field in str(info.value) and "allowed" in str(info.value)


def test_grid_limit_is_the_models(tiny_pipe: Any) -> None:
    assert tiny_pipe.max_size == 256  # 16 x 16 patch grid x 2 x 8
    tiny_pipe.generate("a cat", width=256, height=16, num_inference_steps=1, output_type="latent")
    with pytest.raises(InvalidInputError, match="position grid"):
        tiny_pipe.generate("a cat", width=272, height=16, num_inference_steps=1)


def test_memory_options_keep_results(tiny_pipe: Any) -> None:
    """Offloading the text encoder and tiling the VAE change where work happens, not the picture (at this size)."""
    before = tiny_pipe.generate("a cat", seed=11, output_type="np", **SMALL).images
    tiny_pipe.set_memory_options(offload_text_encoder=True, vae_tiling=True)
    try:
        after = tiny_pipe.generate("a cat", seed=11, output_type="np", **SMALL).images
        assert tiny_pipe.vae.use_tiling
    finally:
        tiny_pipe.set_memory_options(offload_text_encoder=False, vae_tiling=False)
    assert np.array_equal(before, after)
