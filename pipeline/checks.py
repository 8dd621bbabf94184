"""Argument checks for generation: fail early, naming the argument, its value and what is allowed.

Everything here raises :class:`InvalidInputError` before any tensor is allocated, so a bad value never turns
into a shape error deep inside torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .errors import InvalidInputError

SEED_MAX = 2**64 - 1  # torch generators take any unsigned 64-bit seed, as ComfyUI's seed widget does
OUTPUT_TYPES = ("pil", "np", "pt", "latent")


def check_size(name: str, value: object, *, multiple: int, max_px: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(name, value, f"an integer number of pixels, a multiple of {multiple}")
    if value < multiple or value % multiple:
        raise InvalidInputError(name, value, f"a multiple of {multiple} between {multiple} and {max_px}")
    if value > max_px:
        raise InvalidInputError(
            name, value, f"at most {max_px} px: the model's position grid covers {max_px} px per side",
            hint="Generate smaller and upscale, or use a model with a larger grid.",
        )
    return value


def check_generation(*, num_images: object, seed: object, guidance_scale: object, num_inference_steps: object,
                     shift: object, denoise: object, output_type: object) -> None:
    if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 1:
        raise InvalidInputError("num_images", num_images, "an integer >= 1")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX):
        raise InvalidInputError("seed", seed, f"None (random) or an integer from 0 to {SEED_MAX}")
    if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int) or num_inference_steps < 1:
        raise InvalidInputError("num_inference_steps", num_inference_steps, "an integer >= 1")
    if not _finite_number(guidance_scale) or guidance_scale < 0:
        raise InvalidInputError("guidance_scale", guidance_scale, "a number >= 0 (<= 1 turns guidance off)")
    if not _finite_number(shift) or shift <= 0:
        raise InvalidInputError("shift", shift, "a number > 0 (AuraFlow uses 1.73)")
    if not _finite_number(denoise) or not 0 < denoise <= 1:
        raise InvalidInputError("denoise", denoise, "a number in (0, 1]: 1 starts from pure noise")
    if output_type not in OUTPUT_TYPES:
        raise InvalidInputError("output_type", output_type, f"one of {', '.join(OUTPUT_TYPES)}")


def check_prompts(name: str, prompt: object) -> list[str]:
    """A string or a non-empty list of strings, as a list."""
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, Sequence) and prompt and all(isinstance(p, str) for p in prompt):
        return list(prompt)
    raise InvalidInputError(name, prompt, "a string or a non-empty list of strings")


def _finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
