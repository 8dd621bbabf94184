"""The input schema (fal's 422 shape, every field named) and the ``python -m pipeline serve`` command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from testkit.serving import TINY_INPUT, wait_until

from pipeline.serve import AuraFlowInput, Limits, ValidationFailed, validate_input

ROOT = Path(__file__).resolve().parents[2]


def _fields(body: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as info:
        validate_input(body)
    return [(e["loc"][-1], e["type"]) for e in info.value.detail]


def test_defaults_are_the_seeds() -> None:
    parsed = validate_input({"prompt": "p", "unknown_field": 1, "seed": None})
    assert parsed == AuraFlowInput(prompt="p")
    assert (parsed.num_images, parsed.guidance_scale, parsed.num_inference_steps, parsed.expand_prompt) == (
        1, 3.5, 50, True)


@pytest.mark.parametrize(("body", "expected"), [
    ({}, [("prompt", "missing")]),
    ({"prompt": 3}, [("prompt", "string_type")]),
    ({"prompt": "p", "num_images": 0}, [("num_images", "greater_than_equal")]),
    ({"prompt": "p", "num_images": 1.5}, [("num_images", "int_type")]),
    ({"prompt": "p", "num_images": True}, [("num_images", "int_type")]),
    ({"prompt": "p", "seed": -1}, [("seed", "greater_than_equal")]),
    ({"prompt": "p", "guidance_scale": "high"}, [("guidance_scale", "float_type")]),
    ({"prompt": "p", "guidance_scale": 20.5}, [("guidance_scale", "less_than_equal")]),
    ({"prompt": "p", "num_inference_steps": 101}, [("num_inference_steps", "less_than_equal")]),
    ({"prompt": "p", "expand_prompt": "yes"}, [("expand_prompt", "bool_type")]),
    ({"prompt": "p", "sync_mode": 1}, [("sync_mode", "bool_type")]),
    ({"prompt": "p", "width": 1000}, [("width", "multiple_of")]),
    ({"prompt": "p", "height": 4096}, [("height", "less_than_equal")]),
    ({"prompt": "p", "negative_prompt": ["x"]}, [("negative_prompt", "string_type")]),
    ({"num_images": 0, "seed": "x"}, [("prompt", "missing"), ("num_images", "greater_than_equal"),
                                      ("seed", "int_type")]),
])
def test_each_field_is_named(body: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert _fields(body) == expected


def test_body_must_be_an_object_and_limits_are_configurable() -> None:
    assert _fields([1, 2]) == [("body", "model_attributes_type")]
    assert validate_input({"prompt": "p", "num_images": 8}, Limits(max_images=8)).num_images == 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_command(tiny_pipe: Any, tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("AURAFLOW_SERVE_KEYS",)}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--model", tiny_pipe.source, "--port",
                             str(port), "--db", str(tmp_path / "q.sqlite3"), "--device", "cpu", "--dtype", "fp32"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return httpx.get(f"{url}/health").status_code == 200
            except httpx.TransportError:
                return proc.poll() is not None
        assert wait_until(up, timeout=60) and proc.poll() is None
        req = httpx.post(f"{url}/fal-ai/aura-flow", json=TINY_INPUT).json()
        assert wait_until(lambda: httpx.get(req["status_url"]).status_code == 200, timeout=30)
        assert httpx.get(req["response_url"]).json()["images"][0]["width"] == 64
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert f"serving fal-ai/aura-flow at {url}" in err and "loopback only" in err
