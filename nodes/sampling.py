"""Sampling family: AuraFlowTextEncode, AuraFlowSampler, AuraFlowDecode and the one-node AuraFlowGenerate.

Thin adapters over :class:`pipeline.pipeline.AuraFlow` (``encode_prompt``, ``negative_embeddings``,
``generate``, ``decode``). What they add is ComfyUI's side of a run: a progress bar advanced every step (with a
latent preview when ComfyUI has a previewer), Cancel honoured within one step, ComfyUI's models unloaded to make
room before sampling, and ComfyUI's types: LATENT ``{"samples": N x 4 x H/8 x W/8}`` holding raw (unscaled) VAE
latents, as ``EmptyLatentImage``, ``VAEEncode`` and ``VAEDecode`` use them, and IMAGE ``N x H x W x 3`` float32
in 0..1 on the CPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..pipeline.errors import CancelledError, InvalidInputError
from ..pipeline.expand import BACKENDS
from ._common import (
    CATEGORY_ROOT,
    CONDITIONING_TYPE,
    MODEL_TYPE,
    SEED_MAX,
    Progress,
    free_comfy_memory,
    interrupt_requested,
    node_errors,
    report,
    send_progress_text,
)
from ._ui_events import send_prompt_used
from .expand import expand_for_generation

log = logging.getLogger("ComfyUI-AuraFlow")

SIZE_STEP = 16  # VAE factor 8 x patch size 2: the transformer needs sides that are multiples of 16
SIZE_MIN = 64  # small sizes are poor with v0.3 but valid; they keep tests and quick looks fast
SIZE_MAX = 4096  # the widget's limit; the model's own (1536 px for v0.3) is checked when sampling
DEFAULT_SIZE = 1024
MAX_BATCH = 16
# Activation memory per image of one megapixel with guidance on (two transformer passes), a rough upper bound
# measured on v0.3 in bf16; it only tells ComfyUI how much of its own models to unload.
_BYTES_PER_MEGAPIXEL = 3 * 1024**3

_MODEL_TOOLTIP = "The AuraFlow model from AuraFlow Loader."
_SIZE_HINTS = {InvalidInputError: "Change the widget named above (sizes are multiples of 16 up to the model's "
                                  "limit; v0.3 covers 1536 px per side)."}


@dataclass(frozen=True)
class AuraFlowConditioning:
    """What AuraFlowTextEncode outputs: encoded positive and negative prompts (:class:`PromptEmbeddings`).

    A value of its own, so ComfyUI caches it: changing only the seed or the steps re-runs the sampler, not the
    text encoder.
    """

    positive: Any
    negative: Any


class _StepReporter:
    """The sampler callback: stops on Cancel, advances the progress bar, sends a latent preview when it can."""

    def __init__(self, total: int, node_id: str | None, device: Any) -> None:
        self.progress = Progress(total, node_id)
        self.previewer = _previewer(device)

    def __call__(self, step: int, total: int, latents: Any) -> None:
        if interrupt_requested():
            raise CancelledError(f"stopped by the user after step {step} of {total}")
        preview = None
        if self.previewer is not None:
            try:
                preview = self.previewer.decode_latent_to_preview_image("JPEG", latents)
            except Exception:  # a preview is a nicety; never let it stop the sampler
                log.warning("latent preview failed; continuing without previews", exc_info=True)
                self.previewer = None
        self.progress.total = max(int(total), 1)
        self.progress.update(step, preview)  # inside ComfyUI this also raises on Cancel


def _previewer(device: Any) -> Any | None:
    """ComfyUI's latent previewer for SDXL-space latents (AuraFlow's), per --preview-method; None outside."""
    try:
        import comfy.latent_formats
        import latent_preview
    except ImportError:
        return None
    try:
        return latent_preview.get_previewer(device, comfy.latent_formats.SDXL())
    except Exception:
        log.warning("no latent previews: ComfyUI's previewer could not be created", exc_info=True)
        return None


def _make_room(model: Any, count: int, width: int, height: int) -> None:
    free_comfy_memory(int(_BYTES_PER_MEGAPIXEL * count * width * height / 1024**2), model.device)


def _size_input(name: str) -> tuple[str, dict[str, Any]]:
    return ("INT", {"default": DEFAULT_SIZE, "min": SIZE_MIN, "max": SIZE_MAX, "step": SIZE_STEP,
                    "tooltip": f"Image {name} in pixels, a multiple of 16. AuraFlow v0.3 is trained around 1024 "
                               "and covers at most 1536 px per side; time and memory grow with width x height."})


_SEED_TOOLTIP = ("Seed of the starting noise: the same seed and settings give the same image (on the same device "
                 "and precision), matching diffusers' AuraFlowPipeline with a CPU generator of that seed.")
_STEPS_TOOLTIP = "Denoising steps: more is slower, with diminishing returns past ~30-50."
_CFG_TOOLTIP = ("Classifier-free guidance: higher follows the prompt more literally, too high burns colours. "
                "3.5 is AuraFlow's default; 1 or less turns guidance off (twice as fast, ignores the negative).")


# ---------------------------------------------------------------------------------------------------------------
# AuraFlowTextEncode


_PROMPT_INPUT = ("STRING", {"multiline": True, "default": "",
                             "tooltip": "What to draw. AuraFlow reads up to 256 tokens (about 180 words) and "
                                        "follows long, concrete descriptions well."})


class AuraFlowTextEncode:
    """Encode a prompt and a negative prompt once; the sampler reuses them for every seed and step count."""

    NODE_ID = "AuraFlowTextEncode"
    DISPLAY_NAME = "AuraFlow Text Encode"
    CATEGORY = f"{CATEGORY_ROOT}/conditioning"
    DESCRIPTION = ("Encodes the prompt and the negative prompt with AuraFlow's text encoder (256 tokens; longer "
                   "prompts are cut, with a warning in the log). ComfyUI keeps the result, so changing only the "
                   "seed or the steps does not encode again.")
    RETURN_TYPES = (CONDITIONING_TYPE,)
    RETURN_NAMES = ("conditioning",)
    OUTPUT_TOOLTIPS = ("The encoded prompt and negative prompt, for AuraFlow Sampler.",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "model": (MODEL_TYPE, {"tooltip": _MODEL_TOOLTIP}),
                "prompt": _PROMPT_INPUT,
                "negative_prompt": ("STRING", {"multiline": True, "default": "",
                                               "tooltip": "What to steer away from (used only when cfg > 1). "
                                                          "Empty is AuraFlow's default."}),
            },
        }

    def encode(self, model: Any, prompt: str, negative_prompt: str) -> tuple[AuraFlowConditioning]:
        with node_errors(self.DISPLAY_NAME):
            positive = model.encode_prompt(prompt)
            negative = model.negative_embeddings(negative_prompt, 1)
        return (AuraFlowConditioning(positive, negative),)


# ---------------------------------------------------------------------------------------------------------------
# AuraFlowSampler


class AuraFlowSampler:
    """Sample AuraFlow latents (text-to-image, or image-to-image from a LATENT with denoise < 1)."""

    NODE_ID = "AuraFlowSampler"
    DISPLAY_NAME = "AuraFlow Sampler"
    CATEGORY = f"{CATEGORY_ROOT}/sampling"
    DESCRIPTION = ("Runs AuraFlow's flow-matching Euler sampler (as diffusers' AuraFlowPipeline does) and outputs a "
                   "ComfyUI LATENT. Without latent_image it starts from noise at width x height; with one (Empty "
                   "Latent Image, VAE Encode with the SDXL VAE, another sampler) its size and batch are used, and "
                   "denoise < 1 keeps part of it (image-to-image). Shows progress every step; Cancel stops within "
                   "one step.")
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The sampled latents in ComfyUI's format (raw SDXL-VAE space): decode with AuraFlow Decode "
                       "or ComfyUI's VAE Decode (SDXL VAE).",)
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "model": (MODEL_TYPE, {"tooltip": _MODEL_TOOLTIP}),
                "conditioning": (CONDITIONING_TYPE, {"tooltip": "Prompt and negative prompt from AuraFlow Text "
                                                                "Encode."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True,
                                 "tooltip": _SEED_TOOLTIP}),
                "steps": ("INT", {"default": 50, "min": 1, "max": 200, "tooltip": _STEPS_TOOLTIP}),
                "cfg": ("FLOAT", {"default": 3.5, "min": 0.0, "max": 20.0, "step": 0.1, "round": 0.01,
                                  "tooltip": _CFG_TOOLTIP}),
                "shift": ("FLOAT", {"default": 1.73, "min": 0.01, "max": 20.0, "step": 0.01,
                                    "tooltip": "Timestep shift of the flow schedule: higher spends more steps at "
                                               "high noise (composition), lower on detail. AuraFlow uses 1.73."}),
                "width": _size_input("width"),
                "height": _size_input("height"),
                "batch_size": ("INT", {"default": 1, "min": 1, "max": MAX_BATCH,
                                       "tooltip": "Images per run (one seed; the batch is one noise draw). With a "
                                                  "latent_image of several images, its batch is used instead."}),
                "denoise": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 1.0, "step": 0.01,
                                      "tooltip": "How much to change latent_image: 1 replaces it entirely (only its "
                                                 "size is used), 0.3-0.7 keeps its composition. Below 1 needs a "
                                                 "latent_image; 'steps' steps are run either way."}),
            },
            "optional": {
                "latent_image": ("LATENT", {"tooltip": "Optional start: its size and batch replace width, height "
                                                       "and batch_size; with denoise < 1 its content is kept in "
                                                       "part. Must be SDXL-VAE latents (4 channels)."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def sample(self, model: Any, conditioning: AuraFlowConditioning, seed: int, steps: int, cfg: float,
               shift: float, width: int, height: int, batch_size: int, denoise: float,
               latent_image: dict[str, Any] | None = None, unique_id: str | None = None) -> tuple[dict[str, Any]]:
        latents = None if latent_image is None else latent_image["samples"]
        num_images = int(batch_size) if latents is None or latents.shape[0] == 1 else 1
        if latents is not None:
            height, width = int(latents.shape[-2]) * 8, int(latents.shape[-1]) * 8
        with node_errors(self.DISPLAY_NAME, _SIZE_HINTS):
            _make_room(model, max(num_images, 1 if latents is None else latents.shape[0]), width, height)
            result = model.generate(
                prompt_embeds=conditioning.positive, negative_prompt_embeds=conditioning.negative,
                num_images=num_images, seed=int(seed), guidance_scale=float(cfg), num_inference_steps=int(steps),
                width=int(width), height=int(height), shift=float(shift), latents=latents, denoise=float(denoise),
                output_type="latent", callback=_StepReporter(int(steps), unique_id, model.device),
            )
        return ({"samples": result.latents},)


# ---------------------------------------------------------------------------------------------------------------
# AuraFlowDecode


class AuraFlowDecode:
    """Decode a LATENT with the AuraFlow model's own VAE (the SDXL VAE, run in bf16/fp32)."""

    NODE_ID = "AuraFlowDecode"
    DISPLAY_NAME = "AuraFlow Decode"
    CATEGORY = f"{CATEGORY_ROOT}/sampling"
    DESCRIPTION = ("Decodes latents with the VAE inside the AuraFlow model, so no separate VAE file is needed. The "
                   "same as ComfyUI's VAE Decode with the SDXL VAE. Turn on vae_tiling in the loader for large "
                   "images.")
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("The decoded images (a batch), as ComfyUI images (RGB, 0..1).",)
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "model": (MODEL_TYPE, {"tooltip": _MODEL_TOOLTIP}),
                "latent": ("LATENT", {"tooltip": "Latents from AuraFlow Sampler (or any SDXL-VAE LATENT)."}),
            },
        }

    def decode(self, model: Any, latent: dict[str, Any]) -> tuple[Any]:
        with node_errors(self.DISPLAY_NAME):
            return (model.decode(latent["samples"], output_type="pt"),)


# ---------------------------------------------------------------------------------------------------------------
# AuraFlowGenerate


class AuraFlowGenerate:
    """Prompt in, images out, locally: the same inputs and outputs as AuraFlow (fal.ai), so graphs can swap them."""

    NODE_ID = "AuraFlowGenerate"
    DISPLAY_NAME = "AuraFlow Generate"
    CATEGORY = f"{CATEGORY_ROOT}/sampling"
    DESCRIPTION = ("Text-to-image in one node on your own hardware: encode, sample, decode. Its inputs and first "
                   "three outputs match the AuraFlow (fal.ai) node, so a graph switches between local and remote "
                   "by swapping the node. expand_prompt rewrites the prompt first (expansion_backend: offline "
                   "template by default; falls back to your prompt with a warning if the backend fails).")
    RETURN_TYPES = ("IMAGE", "INT", "STRING")
    RETURN_NAMES = ("images", "seed", "prompt")
    OUTPUT_TOOLTIPS = (
        "The generated images (a batch), as ComfyUI images (RGB, 0..1).",
        "The seed used: the same seed and settings give the same images again (same device and precision).",
        "The prompt the model actually saw: the expanded prompt when expand_prompt is on, else yours.",
    )
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "model": (MODEL_TYPE, {"tooltip": _MODEL_TOOLTIP}),
                "prompt": _PROMPT_INPUT,
                "num_images": ("INT", {"default": 1, "min": 1, "max": MAX_BATCH,
                                       "tooltip": "Images per run, returned as one batch (one seed, one noise "
                                                  "draw). Memory and time grow with it."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True,
                                 "tooltip": _SEED_TOOLTIP + " Also picks the prompt expansion's variation."}),
                "guidance_scale": ("FLOAT", {"default": 3.5, "min": 0.0, "max": 20.0, "step": 0.1, "round": 0.01,
                                             "tooltip": _CFG_TOOLTIP}),
                "num_inference_steps": ("INT", {"default": 50, "min": 1, "max": 200, "tooltip": _STEPS_TOOLTIP}),
                "expand_prompt": ("BOOLEAN", {"default": False,
                                              "tooltip": "Rewrite the prompt into a longer, more detailed one "
                                                         "before generating (see expansion_backend). The prompt "
                                                         "output shows what was used."}),
                "width": _size_input("width"),
                "height": _size_input("height"),
                "negative_prompt": ("STRING", {"multiline": True, "default": "",
                                               "tooltip": "What to steer away from (used only when "
                                                          "guidance_scale > 1). Empty is AuraFlow's default."}),
                "expansion_backend": (list(BACKENDS), {
                    "default": "template",
                    "tooltip": "How expand_prompt rewrites: template (offline word lists, instant), local (a "
                               "language model from models/LLM) or fal (an LLM on fal.ai; needs FAL_KEY). Use the "
                               "AuraFlow Prompt Expand node for more control.",
                }),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def generate(self, model: Any, prompt: str, num_images: int, seed: int, guidance_scale: float,
                 num_inference_steps: int, expand_prompt: bool, width: int, height: int, negative_prompt: str = "",
                 expansion_backend: str = "template", unique_id: str | None = None) -> tuple[Any, int, str]:
        used = prompt
        if expand_prompt:
            used, warnings = expand_for_generation(prompt, int(seed), {"backend": expansion_backend},
                                                   tokenizer=model.tokenizer, node_id=unique_id)
            for warning in warnings:
                log.warning("AuraFlow Generate: %s", warning)
            if warnings:
                send_progress_text("⚠ " + "\n⚠ ".join(warnings), unique_id)
            report(unique_id, f"expanded prompt: {used}")
            for warning in warnings:
                report(unique_id, f"prompt expansion: {warning}")
        with node_errors(self.DISPLAY_NAME, _SIZE_HINTS):
            _make_room(model, int(num_images), int(width), int(height))
            result = model.generate(
                used, negative_prompt=negative_prompt, num_images=int(num_images), seed=int(seed),
                guidance_scale=float(guidance_scale), num_inference_steps=int(num_inference_steps),
                width=int(width), height=int(height), output_type="pt",
                callback=_StepReporter(int(num_inference_steps), unique_id, model.device),
            )
        send_prompt_used(unique_id, used)
        return (result.images, result.seed, used)


NODES = (AuraFlowTextEncode, AuraFlowSampler, AuraFlowDecode, AuraFlowGenerate)
