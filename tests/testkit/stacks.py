"""Tiny random AuraFlow stacks on disk, built once per test session, and diffusers' reference pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pipeline.tiny import TINY, TinyConfig, build_diffusers_folder


def tiny_folder(root: Path, config: TinyConfig = TINY, seed: int = 0) -> Path:
    return build_diffusers_folder(root / "tiny-auraflow", config, seed=seed)


def diffusers_reference(folder: Path) -> Any:
    """diffusers' own AuraFlowPipeline on the same weights (fp32, CPU): the reference we match."""
    from diffusers import AuraFlowPipeline

    return AuraFlowPipeline.from_pretrained(folder, dtype=torch.float32, local_files_only=True)


def reference_images(pipe: Any, **kwargs: Any) -> Any:
    """Run diffusers with our argument names mapped to its own, seeded with one CPU generator."""
    seed = kwargs.pop("seed")
    mapping = {"num_images": "num_images_per_prompt"}
    args = {mapping.get(k, k): v for k, v in kwargs.items()}
    shift = args.pop("shift", None)
    scheduler = pipe.scheduler
    if shift is not None:
        pipe.scheduler = type(scheduler).from_config(scheduler.config, shift=shift)
    try:
        with torch.inference_mode():
            return pipe(generator=torch.Generator("cpu").manual_seed(seed), output_type="np", **args).images
    finally:
        pipe.scheduler = scheduler
