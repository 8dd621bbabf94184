"""The pack inside a real ComfyUI: start it on 127.0.0.1, queue graphs through /prompt, watch the websocket.

Runs only when ``COMFYUI_PATH`` points at a ComfyUI checkout (with its requirements installed in the Python given
by ``COMFYUI_PYTHON``, default this one); skipped otherwise. Nothing is written into that checkout: an
``extra_model_paths.yaml`` in a temp folder adds a ``custom_nodes`` folder holding a symlink to this repository
and model folders holding tiny random AuraFlow files. ComfyUI is started with ``--cpu``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit.comfy_models import AIO, NOT_AURAFLOW, build_models_dir
from testkit.pack import ROOT

COMFYUI_PATH = os.environ.get("COMFYUI_PATH", "")
pytestmark = pytest.mark.skipif(not COMFYUI_PATH or not (Path(COMFYUI_PATH) / "main.py").is_file(),
                                reason="set COMFYUI_PATH to a ComfyUI checkout (and COMFYUI_PYTHON to its Python) "
                                       "to run the pack in a real ComfyUI")
PACK_FOLDER = "ComfyUI-AuraFlow"
STEPS = 4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("comfyui_live")
    (root / "custom_nodes").mkdir()
    (root / "custom_nodes" / PACK_FOLDER).symlink_to(ROOT, target_is_directory=True)
    build_models_dir(root / "models")
    (root / "extra_model_paths.yaml").write_text(
        f"auraflow_test:\n    base_path: {root}\n    custom_nodes: custom_nodes\n    checkpoints: models/checkpoints\n"
        "    diffusion_models: models/diffusion_models\n    diffusers: models/diffusers\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (root / "server.log").open("w")
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"} | {"HF_HUB_OFFLINE": "1"}
    # the fal API under /auraflow/fal, on the tiny model (nodes/serve_mount.py); its queue file in the temp root
    env |= {"AURAFLOW_SERVE_COMFY_MODEL": AIO, "AURAFLOW_SERVE_COMFY_DB": str(root / "fal-queue.sqlite3")}
    env.pop("AURAFLOW_SERVE_KEYS", None)
    proc = subprocess.Popen(
        [os.environ.get("COMFYUI_PYTHON", sys.executable), "main.py", "--cpu", "--listen", "127.0.0.1", "--port",
         str(port), "--disable-api-nodes", "--output-directory", str(root / "output"), "--database-url",
         "sqlite:///:memory:", "--extra-model-paths-config", str(root / "extra_model_paths.yaml"),
         "--preview-method", "latent2rgb"],
        cwd=COMFYUI_PATH, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/object_info/AuraFlowLoader", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (root / "server.log").read_text()[-3000:]
            time.sleep(1)
        yield {"base": base, "root": root, "log": root / "server.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _graph(model: str = AIO, width: int = 64) -> dict[str, Any]:
    loader = {"model_name": model, "weight_dtype": "auto", "offload_text_encoder": False, "vae_tiling": False}
    return {
        "1": {"class_type": "AuraFlowLoader", "inputs": loader},
        "2": {"class_type": "AuraFlowTextEncode", "inputs": {"model": ["1", 0], "prompt": "a lighthouse",
                                                             "negative_prompt": ""}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": width, "height": 64, "batch_size": 2}},
        "4": {"class_type": "AuraFlowSampler", "inputs": {
            "model": ["1", 0], "conditioning": ["2", 0], "seed": 1, "steps": STEPS, "cfg": 3.5, "shift": 1.73,
            "width": 1024, "height": 1024, "batch_size": 1, "denoise": 1.0, "latent_image": ["3", 0]}},
        "5": {"class_type": "AuraFlowDecode", "inputs": {"model": ["1", 0], "latent": ["4", 0]}},
        "6": {"class_type": "AuraFlowGenerate", "inputs": {
            "model": ["1", 0], "prompt": "a red fox", "num_images": 1, "seed": 5, "guidance_scale": 3.5,
            "num_inference_steps": STEPS, "expand_prompt": True, "width": 64, "height": 80, "negative_prompt": "",
            "expansion_backend": "template"}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "af_nodes"}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "af_generate"}},
    }


async def _run(base: str, prompt: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    client = str(uuid.uuid4())
    events: list[tuple[Any, ...]] = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{base}/ws?clientId={client}") as ws:
            async with session.post(f"{base}/prompt", json={"prompt": prompt, "client_id": client}) as response:
                body = await response.json()
                assert response.status == 200 and not body["node_errors"], body  # else ComfyUI runs a part
            prompt_id = body["prompt_id"]
            while True:
                message = await asyncio.wait_for(ws.receive(), 120)
                if message.type == aiohttp.WSMsgType.BINARY:
                    events.append(("binary", int.from_bytes(message.data[:4], "big")))
                    continue
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                kind, payload = data["type"], data.get("data", {})
                if payload.get("prompt_id") not in (None, prompt_id):
                    continue
                events.append((kind, payload))
                if kind in ("execution_error", "execution_interrupted") or (
                        kind == "executing" and payload.get("node") is None):
                    break
        history: dict[str, Any] = {}
        for _ in range(100):  # the history entry is written just after the last websocket message
            async with session.get(f"{base}/history/{prompt_id}") as response:
                history = (await response.json()).get(prompt_id, {})
            if history.get("status", {}).get("completed") is not None:
                break
            await asyncio.sleep(0.1)
    return {"events": events, "history": history}


def test_pack_loads_without_import_errors(server: dict[str, Any]) -> None:
    import httpx

    info = httpx.get(f"{server['base']}/object_info").json()
    for node_id in ("AuraFlowLoader", "AuraFlowTextEncode", "AuraFlowSampler", "AuraFlowDecode", "AuraFlowGenerate"):
        assert info[node_id]["category"].startswith("AuraFlow/")
    assert AIO in info["AuraFlowLoader"]["input"]["required"]["model_name"][0]
    log = server["log"].read_text()
    assert not any(PACK_FOLDER in line and ("Cannot import" in line or "IMPORT FAILED" in line)
                   for line in log.splitlines())


def test_graph_runs_with_progress_previews_and_saved_images(server: dict[str, Any]) -> None:
    from PIL import Image

    run = asyncio.run(_run(server["base"], _graph()))
    assert run["history"]["status"]["status_str"] == "success"
    progress = [(p["node"], p["value"], p["max"]) for kind, p in run["events"] if kind == "progress"]
    assert [(v, m) for node, v, m in progress if node == "4"] == [(i, STEPS) for i in range(1, STEPS + 1)]
    assert [(v, m) for node, v, m in progress if node == "6"] == [(i, STEPS) for i in range(1, STEPS + 1)]
    assert sum(1 for e in run["events"] if e == ("binary", 1)) >= 2 * STEPS  # latent previews
    outputs = run["history"]["outputs"]
    sizes = {node: [Image.open(server["root"] / "output" / img["filename"]).size for img in outputs[node]["images"]]
             for node in ("8", "9")}
    assert sizes == {"8": [(64, 64), (64, 64)], "9": [(64, 80)]}


def test_errors_name_the_node_and_leave_the_queue_working(server: dict[str, Any]) -> None:
    wrong = asyncio.run(_run(server["base"], _graph(model=NOT_AURAFLOW)))
    error = next(p for kind, p in wrong["events"] if kind == "execution_error")
    assert error["node_id"] == "1" and error["exception_message"].startswith("AuraFlow Loader:")
    too_big = asyncio.run(_run(server["base"], _graph(width=512)))
    error = next(p for kind, p in too_big["events"] if kind == "execution_error")
    assert error["node_id"] == "4" and "width=512" in error["exception_message"]
    again = asyncio.run(_run(server["base"], _graph()))
    assert again["history"]["status"]["status_str"] == "success"


def _fal_status(req: dict[str, Any]) -> dict[str, Any]:
    import httpx

    return httpx.get(req["status_url"], params={"logs": "1"}).json()


def _fal_wait(req: dict[str, Any], check: Any, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _fal_status(req)
        if check(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"fal status never matched: {_fal_status(req)}")


def test_fal_api_runs_requests_as_comfyui_prompts(server: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from pipeline import fal

    api = f"{server['base']}/auraflow/fal"
    monkeypatch.setenv("AURAFLOW_FAL_QUEUE_URL", api)
    monkeypatch.setenv("FAL_KEY", "any:key")  # our client wants a key; the mount has none (loopback only)
    updates: list[Any] = []
    result = asyncio.run(fal.run("fal-ai/aura-flow", {"prompt": "a red fox", "seed": 9, "num_inference_steps": STEPS,
                                                      "width": 64, "height": 80, "expand_prompt": False},
                                 on_update=updates.append, timeout=120))
    assert [im.size for im in result.images] == [(64, 80)] and result.data["seed"] == 9
    logs = [e.message for u in updates if isinstance(u, fal.Completed) for e in u.logs]
    assert f"step {STEPS}/{STEPS}" in logs and "running in ComfyUI" in logs
    history = httpx.get(f"{server['base']}/history").json()
    assert any(any(n["class_type"] == "AuraFlowServeOutput" for n in h["prompt"][2].values())
               for h in history.values())


@pytest.mark.parametrize("how", ["cancel", "editor_interrupt"])
def test_fal_api_cancel_and_editor_interrupt_end_the_request(server: dict[str, Any], how: str) -> None:
    import httpx

    api = f"{server['base']}/auraflow/fal"
    req = httpx.post(f"{api}/fal-ai/aura-flow", json={"prompt": "slow", "num_inference_steps": 100, "num_images": 4,
                                                       "width": 256, "height": 256, "expand_prompt": False}).json()
    _fal_wait(req, lambda s: any(e["message"] == "step 2/100" for e in s.get("logs") or []))
    if how == "cancel":
        assert httpx.put(req["cancel_url"]).status_code == 202
    else:
        assert httpx.post(f"{server['base']}/interrupt", json={}).status_code == 200
    final = _fal_wait(req, lambda s: s["status"] == "COMPLETED", timeout=60)
    assert final["error_type"] == "request_cancelled"
    assert not any(e["message"] == "step 100/100" for e in final["logs"])
