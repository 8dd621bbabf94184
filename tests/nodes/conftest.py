"""A ComfyUI models/ folder of tiny random AuraFlow files, the node modules, and a fake ComfyUI around them.

Every node call in these tests runs under ``torch.inference_mode()``, as ComfyUI runs nodes.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from testkit.comfy_models import AIO, build_models_dir
from testkit.fake_comfy import FakeComfy


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_models_dir(tmp_path_factory.mktemp("comfy") / "models")


@pytest.fixture(scope="session")
def comfy_dir(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `comfy` package folder holding only the bundled tokenizer (here: the tiny stack's SentencePiece model)."""
    comfy = tmp_path_factory.mktemp("comfy_pkg") / "comfy"
    target = comfy / "text_encoders" / "t5_pile_tokenizer"
    target.mkdir(parents=True)
    shutil.copy(models_dir / "diffusers" / ".tiny-auraflow-tokenizer" / "tokenizer.model", target)  # build scratch
    return comfy


@pytest.fixture
def fake_comfy(monkeypatch: pytest.MonkeyPatch, models_dir: Path, comfy_dir: Path) -> FakeComfy:
    fake = FakeComfy(models_dir=models_dir, comfy_dir=comfy_dir)
    fake.install(monkeypatch)
    return fake


@pytest.fixture(autouse=True)
def _inference_mode() -> Iterator[None]:
    with torch.inference_mode():
        yield


@pytest.fixture(scope="session")
def loaders(pack: ModuleType) -> ModuleType:
    return importlib.import_module(f"{pack.__name__}.nodes.loaders")


@pytest.fixture(scope="session")
def sampling(pack: ModuleType) -> ModuleType:
    return importlib.import_module(f"{pack.__name__}.nodes.sampling")


@pytest.fixture(scope="session")
def common(pack: ModuleType) -> ModuleType:
    return importlib.import_module(f"{pack.__name__}.nodes._common")


@pytest.fixture(scope="session")
def model(loaders: ModuleType, models_dir: Path) -> object:
    """The all-in-one file loaded by the node (fp32, CPU), shared by the sampling tests."""
    with torch.inference_mode():
        (loaded,) = loaders.AuraFlowLoader().load(str(models_dir / "checkpoints" / AIO), "fp32", False, False)
    return loaded
