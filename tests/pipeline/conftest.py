"""The tiny random AuraFlow (``tiny_dir``, tests/conftest.py) loaded once, shared by the pipeline tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_pipe(tiny_dir: Path) -> Any:
    from pipeline import load_pipeline

    return load_pipeline(tiny_dir, device="cpu", dtype="fp32")
