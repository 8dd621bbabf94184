"""The tiny random AuraFlow (``tiny_dir``, tests/conftest.py) for the levers: offload, fp8, GGUF, tiling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def perf_pipe(tiny_dir: Path) -> Any:
    """A load of its own: the lever tests switch memory modes on it, which the pipeline tests must not see."""
    from pipeline import load_pipeline

    return load_pipeline(tiny_dir, device="cpu", dtype="fp32")


@pytest.fixture
def generate_args() -> dict[str, Any]:
    """One small call shared by the lever tests: guidance on, a negative prompt, two images."""
    return {"prompt": "a lighthouse at dusk", "negative_prompt": "blurry", "seed": 7, "num_inference_steps": 3,
            "width": 64, "height": 64, "num_images": 2, "output_type": "np"}
