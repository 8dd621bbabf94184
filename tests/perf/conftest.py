"""The tiny random AuraFlow for the performance levers: offload, fp8 storage, GGUF, tiling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from testkit.stacks import tiny_folder


@pytest.fixture(scope="session")
def perf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_folder(tmp_path_factory.mktemp("perf-tiny"))


@pytest.fixture(scope="session")
def perf_pipe(perf_dir: Path) -> Any:
    from pipeline import load_pipeline

    return load_pipeline(perf_dir, device="cpu", dtype="fp32")


@pytest.fixture
def generate_args() -> dict[str, Any]:
    """One small call shared by the lever tests: guidance on, a negative prompt, two images."""
    return {"prompt": "a lighthouse at dusk", "negative_prompt": "blurry", "seed": 7, "num_inference_steps": 3,
            "width": 64, "height": 64, "num_images": 2, "output_type": "np"}
