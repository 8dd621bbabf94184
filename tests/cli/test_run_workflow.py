"""Driving ComfyUI headless with an API-format workflow: queue, follow progress, save images."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from testkit.comfyui_standin import ComfyUIStandIn
from testkit.pack import ROOT

from pipeline import InvalidInputError, RemoteError
from pipeline.cli_workflow import parse_overrides
from pipeline.comfyui_api import load_api_workflow, run_workflow

GRAPH = {
    "1": {"class_type": "AuraFlowGenerate", "inputs": {"prompt": "a cat", "seed": 1}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "AuraFlow"}},
}


def test_run_workflow_follows_progress_and_saves_images(tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    with ComfyUIStandIn(steps=4) as comfy:
        run = asyncio.run(run_workflow(comfy.url, GRAPH, tmp_path, on_progress=lambda *a: seen.append(a)))
    assert seen == [("1", i, 4) for i in range(1, 5)]
    assert [f.name for f in run.files] == ["AuraFlow_2_00001_.png"]
    with Image.open(run.files[0]) as image:
        assert image.size == (16, 16)
    assert comfy.prompts[0]["prompt"] == GRAPH


def test_refused_workflow_names_node_and_reason(tmp_path: Path) -> None:
    graph = {**GRAPH, "3": {"class_type": "NoSuchNode", "inputs": {}}}
    with ComfyUIStandIn() as comfy, pytest.raises(RemoteError, match=r"node 3 \(NoSuchNode\)"):
        asyncio.run(run_workflow(comfy.url, graph, tmp_path))


def test_node_failure_is_reported(tmp_path: Path) -> None:
    with ComfyUIStandIn(fail_node="AuraFlowGenerate") as comfy, pytest.raises(RemoteError, match="width=1000"):
        asyncio.run(run_workflow(comfy.url, GRAPH, tmp_path))


def test_overrides_and_formats(tmp_path: Path) -> None:
    assert parse_overrides(["1.seed=42", '1.prompt="a dog"', "2.filename_prefix=x"]) == {
        "1": {"seed": 42, "prompt": "a dog"}, "2": {"filename_prefix": "x"}}
    with pytest.raises(InvalidInputError):
        parse_overrides(["seed=1"])
    path = tmp_path / "w.json"
    path.write_text(json.dumps(GRAPH))
    assert load_api_workflow(path, {"1": {"seed": 7}})["1"]["inputs"]["seed"] == 7
    path.write_text(json.dumps({"nodes": [], "links": []}))
    with pytest.raises(InvalidInputError, match="API format"):
        load_api_workflow(path)


def test_cli_end_to_end(tmp_path: Path) -> None:
    workflow = tmp_path / "graph.api.json"
    workflow.write_text(json.dumps(GRAPH))
    with ComfyUIStandIn() as comfy:
        out = subprocess.run([sys.executable, "-m", "pipeline", "run-workflow", str(workflow), "--server", comfy.url,
                              "--set", "1.seed=9", "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True,
                             text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
        assert comfy.prompts[0]["prompt"]["1"]["inputs"]["seed"] == 9
    assert json.loads(out.stdout)["files"][0].endswith("AuraFlow_2_00001_.png")
