"""Shared fixtures: the pack loaded the way ComfyUI loads it, a clean environment per test."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from testkit.pack import load_pack
from testkit.stacks import tiny_folder


@pytest.fixture(scope="session")
def pack() -> ModuleType:
    return load_pack()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny random AuraFlow saved as a diffusers folder, built once per run for every test that reads it."""
    return tiny_folder(tmp_path_factory.mktemp("tiny"))


_SECRET_ENV = ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET", "AURAFLOW_FAL_QUEUE_URL", "AURAFLOW_SERVE_KEYS")
_PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "SSL_CERT_FILE")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees a real key, a proxy, or the user's caches; nothing can reach the internet through a hub."""
    for var in _SECRET_ENV + _PROXY_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("AURAFLOW_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    # huggingface_hub reads its cache location once at import: point the live constant at an empty folder too.
    try:
        from huggingface_hub import constants
    except ImportError:
        return
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hf" / "hub"))
