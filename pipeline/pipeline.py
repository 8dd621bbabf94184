"""``AuraFlow``: a loaded model (tokenizer, text encoder, transformer, VAE) and the ways to run it.

The maths follows diffusers' ``AuraFlowPipeline`` step for step (see ``encoding``, ``schedule``, ``sampler``),
so the same seed gives the same picture; ``tests/pipeline/test_parity.py`` holds it to <= 1e-4 on decoded
images. What we add: prompt encodings as a reusable value (ComfyUI caches them), the empty negative prompt's
encoding cached per model, image-to-image from raw VAE latents (ComfyUI's LATENT), clear errors for bad input,
and a progress/cancel callback.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .checks import check_generation, check_prompts, check_size
from .encoding import PromptEmbeddings, encode_texts
from .errors import InvalidInputError
from .offload import OFFLOAD_MODES, BlockStreamer, on_device
from .sampler import StepCallback, euler_flow_sample
from .schedule import DEFAULT_SHIFT, partial_sigmas

log = logging.getLogger(__name__)

LATENT_CHANNELS = 4
VAE_SCALE = 8  # pixels per latent cell
SIZE_MULTIPLE = 16  # VAE factor 8 x patch size 2


def to_pil(images: np.ndarray | torch.Tensor) -> list[Any]:
    """``N x H x W x 3`` floats in [0, 1] (an array, or a tensor on any device, e.g. ComfyUI's IMAGE) -> PIL images.

    Rounded to 8 bits as diffusers' ``VaeImageProcessor`` does (``round``, not truncation), so our PNGs equal theirs.
    """
    from PIL import Image

    if isinstance(images, torch.Tensor):
        images = images.detach().to(device="cpu", dtype=torch.float32).numpy()
    return [Image.fromarray(img) for img in (np.clip(images, 0, 1) * 255).round().astype(np.uint8)]


@dataclass(frozen=True)
class GenerationResult:
    """What :meth:`AuraFlow.generate` returns.

    ``images``: a list of PIL images (``"pil"``), a float32 array N x H x W x 3 in [0, 1] (``"np"``), the same
    as a CPU tensor (``"pt"``: ComfyUI's IMAGE layout), or None (``"latent"``). ``latents``: N x 4 x H/8 x W/8,
    unscaled VAE latents (ComfyUI's LATENT convention). ``seed``: the seed used. ``prompt``: as given.
    """

    images: Any
    latents: torch.Tensor
    seed: int
    prompt: str | list[str]


@dataclass
class AuraFlow:
    """A ready AuraFlow model on one device. Build it with :func:`pipeline.load_pipeline`."""

    tokenizer: Any
    text_encoder: torch.nn.Module
    transformer: torch.nn.Module
    vae: torch.nn.Module
    device: torch.device
    dtype: torch.dtype
    shift: float = DEFAULT_SHIFT
    source: str = ""
    offload_text_encoder: bool = False
    """Keep the text encoder on the CPU between encodings (moved to ``device`` only while encoding): frees
    ~2.5 GB of GPU memory for sampling at the cost of a transfer per new prompt."""
    offload: str = "none"
    """``"none"``, ``"model"`` or ``"sequential"``: see :meth:`set_memory_options` and ``offload.py``."""
    _negative_cache: dict[str, PromptEmbeddings] = field(default_factory=dict, repr=False)
    _streamer: BlockStreamer | None = field(default=None, repr=False)
    _resident_blocks: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.offload_text_encoder:
            self.text_encoder.to("cpu")

    # ------------------------------------------------------------------------------------------ memory modes
    def set_memory_options(self, *, offload_text_encoder: bool | None = None, vae_tiling: bool | None = None,
                           offload: str | None = None, resident_blocks: int = 0) -> None:
        """Trade speed for GPU memory; every option leaves the arithmetic, hence the images, unchanged.

        ``offload_text_encoder``: the text encoder stays on the CPU between encodings (~2.5 GB freed for v0.3).
        ``vae_tiling``: decode in overlapping tiles (diffusers' ``AutoencoderKL.enable_tiling``), so 1536 x 1536
        decodes in bounded memory; tiles are blended, so pixels differ slightly from an untiled decode
        (``bench/vae_tiling.py`` reports by how much). ``offload``: ``"model"`` keeps text encoder, transformer
        and VAE in host memory and moves each to the GPU for its own phase; ``"sequential"`` also streams the
        transformer block by block, keeping the first ``resident_blocks`` blocks on the GPU (``offload.py``).
        On CPU every offload mode is a no-op.
        """
        if offload_text_encoder is not None:
            self.offload_text_encoder = offload_text_encoder
            self.text_encoder.to("cpu" if offload_text_encoder or self.offload != "none" else self.device)
        if vae_tiling is not None:
            (self.vae.enable_tiling if vae_tiling else self.vae.disable_tiling)()
        if offload is not None:
            if offload not in OFFLOAD_MODES:
                raise InvalidInputError("offload", offload, f"one of {', '.join(OFFLOAD_MODES)}")
            if resident_blocks < 0:
                raise InvalidInputError("resident_blocks", resident_blocks, "an integer >= 0")
            self._set_offload(offload, resident_blocks)

    def _set_offload(self, mode: str, resident_blocks: int) -> None:
        if (mode, resident_blocks) == (self.offload, self._resident_blocks) and (mode != "sequential"
                                                                               or self._streamer is not None):
            return  # already so: a ComfyUI loader re-run must not re-pin 13 GB of host memory
        self._resident_blocks = resident_blocks
        if self._streamer is not None:
            self._streamer.remove(home=self.device)
            self._streamer = None
        host = torch.device("cpu")
        self.offload = mode
        if self.device == host:
            return  # nothing to move: the weights already live in host memory
        self.text_encoder.to(host if mode != "none" or self.offload_text_encoder else self.device)
        self.vae.to(host if mode != "none" else self.device)
        if mode == "sequential":
            self.transformer.to(host)
            self._streamer = BlockStreamer(self.transformer, self.device, resident_blocks=resident_blocks)
        else:
            self.transformer.to(host if mode == "model" else self.device)

    def _phase(self, part: str) -> contextlib.AbstractContextManager[None]:
        """The part's weights on the GPU for one phase (encode, sample, decode) when it is offloaded."""
        module = getattr(self, part)
        offloaded = {"text_encoder": self.offload != "none" or self.offload_text_encoder,
                     "transformer": self.offload == "model",
                     "vae": self.offload != "none"}[part]
        return on_device(module, self.device) if offloaded else contextlib.nullcontext()

    def _text_encoder_ready(self) -> contextlib.AbstractContextManager[None]:
        return self._phase("text_encoder")

    # ----------------------------------------------------------------------------------------------- geometry
    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def max_size(self) -> int:
        """Largest width/height in pixels: the side of the square position-embedding grid, in pixels."""
        cfg = self.transformer.config
        grid = int(cfg.pos_embed_max_size**0.5)
        return grid * cfg.patch_size * VAE_SCALE

    # ---------------------------------------------------------------------------------------------- encoding
    def encode_prompt(self, prompt: str | Sequence[str]) -> PromptEmbeddings:
        """Encode one prompt or a list; cache the result yourself to skip re-encoding (ComfyUI does)."""
        texts = check_prompts("prompt", prompt)
        with self._text_encoder_ready():
            return encode_texts(self.tokenizer, self.text_encoder, texts, device=self.device, dtype=self.dtype)

    def negative_embeddings(self, negative_prompt: str | Sequence[str] | None, count: int) -> PromptEmbeddings:
        """``count`` rows of negative context; the empty prompt's encoding is computed once per model."""
        if negative_prompt is None or isinstance(negative_prompt, str):
            text = negative_prompt or ""
            cached = self._negative_cache.get(text) if text == "" else None
            if cached is None:
                cached = self.encode_prompt(text)
                if text == "":
                    self._negative_cache[text] = cached
            return PromptEmbeddings(cached.embeds.expand(count, -1, -1), cached.mask.expand(count, -1),
                                    cached.texts * count)
        texts = check_prompts("negative_prompt", negative_prompt)
        if len(texts) != count:
            raise InvalidInputError("negative_prompt", negative_prompt,
                                    f"one string, or a list with one entry per prompt ({count})")
        return self.encode_prompt(texts)

    # -------------------------------------------------------------------------------------------- generation
    def generate(
        self,
        prompt: str | Sequence[str] | None = None,
        *,
        negative_prompt: str | Sequence[str] | None = None,
        prompt_embeds: PromptEmbeddings | None = None,
        negative_prompt_embeds: PromptEmbeddings | None = None,
        num_images: int = 1,
        seed: int | None = None,
        guidance_scale: float = 3.5,
        num_inference_steps: int = 50,
        width: int = 1024,
        height: int = 1024,
        shift: float | None = None,
        latents: torch.Tensor | None = None,
        denoise: float = 1.0,
        output_type: str = "pil",
        callback: StepCallback | None = None,
    ) -> GenerationResult:
        """Text-to-image (and image-to-image from ``latents`` with ``denoise < 1``).

        ``prompt`` may be a list: each prompt gives ``num_images`` images, in diffusers' order (p0, p0, p1,
        p1). Instead of text, pass ``prompt_embeds`` (and ``negative_prompt_embeds``) from
        :meth:`encode_prompt`. Noise for seed ``s`` is one ``torch.randn((N, 4, H/8, W/8))`` draw from a CPU
        generator seeded ``s``: the same picture here, in diffusers and in ComfyUI. ``latents`` are raw VAE
        latents (ComfyUI's LATENT); they set the size and batch, and with ``denoise < 1`` sampling starts
        part-way down a longer schedule from them (ComfyUI's convention: ``num_inference_steps`` are run).
        """
        shift = self.shift if shift is None else shift
        check_generation(num_images=num_images, seed=seed, guidance_scale=guidance_scale,
                         num_inference_steps=num_inference_steps, shift=shift, denoise=denoise,
                         output_type=output_type)
        if latents is not None:
            height, width = self._check_latents(latents)
        elif denoise < 1.0:
            raise InvalidInputError("denoise", denoise, "1.0 unless latents are given to start from",
                                    hint="Pass the encoded image as `latents` for image-to-image.")
        check_size("width", width, multiple=SIZE_MULTIPLE, max_px=self.max_size)
        check_size("height", height, multiple=SIZE_MULTIPLE, max_px=self.max_size)

        positive = self._positive(prompt, prompt_embeds)
        count = len(positive) * num_images
        if latents is not None and latents.shape[0] not in (1, count):
            if len(positive) == 1 and num_images == 1:
                count = latents.shape[0]  # one prompt over a batch of latents (EmptyLatentImage's batch size)
            else:
                raise InvalidInputError("latents", tuple(latents.shape),
                                        f"a batch of 1 or of prompts x num_images = {count}")
        num_prompts = len(positive)
        positive = positive.repeat_each(count // num_prompts)
        if guidance_scale > 1.0:
            negative = (negative_prompt_embeds.to(self.device, self.dtype) if negative_prompt_embeds is not None
                        else self.negative_embeddings(negative_prompt, num_prompts))
            negative = self._match_rows(negative, count)
            context = torch.cat([negative.embeds, positive.embeds])
        else:
            context = positive.embeds

        seed = secrets.randbits(32) if seed is None else seed
        shape = (count, LATENT_CHANNELS, height // VAE_SCALE, width // VAE_SCALE)
        noise = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)
        noise = noise.to(device=self.device, dtype=self.dtype)
        sigmas = partial_sigmas(num_inference_steps, denoise, shift)
        if latents is not None and denoise < 1.0:
            start = latents.to(device=self.device, dtype=torch.float32).expand(shape) * self.scaling_factor
            sigma0 = float(sigmas[0])
            x = (sigma0 * noise.to(torch.float32) + (1.0 - sigma0) * start).to(self.dtype)
        else:
            x = noise
        with self._phase("transformer"):
            x = euler_flow_sample(self.transformer, x, sigmas, context, guidance_scale=float(guidance_scale),
                                  callback=callback)
        # unscale in the VAE's dtype, as diffusers does (an fp16 model's VAE runs in fp32: divide after the cast)
        raw = x.to(next(self.vae.parameters()).dtype) / self.scaling_factor
        images = None if output_type == "latent" else self.decode(raw, output_type=output_type)
        return GenerationResult(images=images, latents=raw.to(torch.float32).cpu(), seed=seed,
                                prompt=prompt if prompt is not None else list(positive.texts))

    # ---------------------------------------------------------------------------------------------- decoding
    @torch.inference_mode()
    def decode(self, latents: torch.Tensor, *, output_type: str = "pil") -> Any:
        """Raw VAE latents (N x 4 x h x w) -> images, as diffusers' VaeImageProcessor post-processes them."""
        if latents.ndim != 4 or latents.shape[1] != LATENT_CHANNELS:
            raise InvalidInputError("latents", tuple(latents.shape), "N x 4 x H/8 x W/8 (AuraFlow/SDXL latents)")
        vae_dtype = next(self.vae.parameters()).dtype
        with self._phase("vae"):
            decoded = self.vae.decode(latents.to(device=self.device, dtype=vae_dtype), return_dict=False)[0]
        images = (decoded * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).to(torch.float32).cpu()
        if output_type == "pt":
            return images
        array = images.numpy()
        if output_type == "np":
            return array
        return to_pil(array)

    # --------------------------------------------------------------------------------------------- internals
    def _positive(self, prompt: str | Sequence[str] | None, embeds: PromptEmbeddings | None) -> PromptEmbeddings:
        if embeds is not None:
            if prompt is not None:
                raise InvalidInputError("prompt", prompt, "None when prompt_embeds are given (pass one of the two)")
            return embeds.to(self.device, self.dtype)
        if prompt is None:
            raise InvalidInputError("prompt", None, "a string or a list of strings (or pass prompt_embeds)")
        return self.encode_prompt(prompt)

    @staticmethod
    def _match_rows(negative: PromptEmbeddings, count: int) -> PromptEmbeddings:
        """Negative rows aligned with the positive batch: one row broadcast, or one per prompt repeated."""
        if len(negative) == count:
            return negative
        if len(negative) == 1:
            return PromptEmbeddings(negative.embeds.expand(count, -1, -1), negative.mask.expand(count, -1),
                                    negative.texts * count)
        if count % len(negative) == 0:
            return negative.repeat_each(count // len(negative))
        raise InvalidInputError("negative_prompt_embeds", f"{len(negative)} rows",
                                f"1 row or one per prompt (batch {count})")

    def _check_latents(self, latents: torch.Tensor) -> tuple[int, int]:
        if not isinstance(latents, torch.Tensor) or latents.ndim != 4 or latents.shape[1] != LATENT_CHANNELS:
            shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
            raise InvalidInputError("latents", shape, "a tensor N x 4 x H/8 x W/8 of raw AuraFlow/SDXL VAE latents")
        return latents.shape[2] * VAE_SCALE, latents.shape[3] * VAE_SCALE
