"""``python -m pipeline generate``: local and remote runs, fal-shaped JSON on stdout, PNG metadata, bad flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
from PIL import Image
from testkit.fal_standin import DEFAULT_KEY, FalStandIn, Scenario
from testkit.pack import ROOT
from testkit.stacks import tiny_folder


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True,
                          check=False, timeout=300, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_folder(tmp_path_factory.mktemp("cli"))


def test_local_generate_prints_fal_shaped_json(model: Path, tmp_path: Path) -> None:
    out = _cli("generate", "--model", str(model), "--prompt", "a cat", "--num-images", "2", "--seed", "3",
               "--num-inference-steps", "2", "--width", "64", "--height", "48", "--no-expand-prompt",
               "--out", str(tmp_path / "png"))
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["seed"] == 3 and data["prompt"] == "a cat" and len(data["images"]) == 2
    for entry in data["images"]:
        assert set(entry) == {"url", "file_name", "content_type", "file_size", "width", "height"}
        path = Path(urlparse(entry["url"]).path)
        with Image.open(path) as image:
            assert image.size == (64, 48) == (entry["width"], entry["height"])
            parameters = json.loads(image.text["parameters"])
        assert parameters["seed"] == 3 and parameters["num_inference_steps"] == 2
    assert "2/2" in out.stderr  # the progress bar


def test_local_expand_prompt_is_reported(model: Path, tmp_path: Path) -> None:
    out = _cli("generate", "--model", str(model), "--prompt", "a fox", "--seed", "1", "--num-inference-steps", "1",
               "--width", "32", "--height", "32", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    prompt = json.loads(out.stdout)["prompt"]
    assert prompt.lower().startswith("a fox") and len(prompt) > len("a fox")


def test_remote_generate_against_standin_never_leaks_key(tmp_path: Path) -> None:
    with FalStandIn(Scenario()) as server:
        out = _cli("generate", "--remote", "--prompt", "a cat", "--seed", "5", "--out", str(tmp_path),
                   env={"AURAFLOW_FAL_QUEUE_URL": server.url, "FAL_KEY": DEFAULT_KEY})
        assert out.returncode == 0, out.stderr
        assert server.count("submit") == 1
    data = json.loads(out.stdout)
    assert data["images"] and data["seed"] == 5
    secret = DEFAULT_KEY.split(":")[1]
    assert secret not in out.stdout and secret not in out.stderr
    for entry in data["images"]:
        with Image.open(Path(urlparse(entry["url"]).path)) as image:
            assert secret not in json.dumps(image.text)


@pytest.mark.parametrize("args", [
    ("generate", "--prompt", "x"),
    ("generate", "--model", "m", "--remote", "--prompt", "x"),
    ("generate", "--model", "m", "--prompt", "x", "--num-images", "two"),
    ("frobnicate",),
])
def test_bad_flags_exit_nonzero_with_one_line(args: tuple[str, ...]) -> None:
    out = _cli(*args)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_remote_rejects_local_only_flags(tmp_path: Path) -> None:
    out = _cli("generate", "--remote", "--prompt", "x", "--width", "512", "--out", str(tmp_path),
               env={"FAL_KEY": DEFAULT_KEY})
    assert out.returncode == 2
    assert "--width" in out.stderr and len(out.stderr.strip().splitlines()) == 1
