"""One tiny random AuraFlow, saved as a diffusers folder and loaded, shared by the pipeline tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from testkit.stacks import tiny_folder


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_folder(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_pipe(tiny_dir: Path) -> Any:
    from pipeline import load_pipeline

    return load_pipeline(tiny_dir, device="cpu", dtype="fp32")
