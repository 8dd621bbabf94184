"""The fal API mounted on (a stand-in for) ComfyUI's server: requests run as ComfyUI prompts of our nodes.

Real HTTP on 127.0.0.1 against the routes as ComfyUI would serve them (``/auraflow/fal`` and ``/api/...``), a fake
prompt queue and prompt worker thread (``testkit.fake_comfy_server``) running the queued prompt's nodes through
the pack's classes on the tiny random model: submit -> status with step logs -> result, our own client through
``AURAFLOW_FAL_QUEUE_URL``, cancel while in ComfyUI's queue and while running, Interrupt from the editor, errors
and the switched-off API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import io
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from PIL import Image
from testkit.comfy_models import AIO
from testkit.fake_comfy import FakeComfy, InterruptProcessingException
from testkit.fake_comfy_server import AppThread, FakeExecutor, FakePromptServer, install_server

from pipeline import fal
from pipeline.fal import FalConfig, RetryPolicy

TINY = {"prompt": "a red fox in the snow", "num_inference_steps": 2, "width": 64, "height": 64,
        "expand_prompt": False}
FAST_CLIENT = FalConfig(retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05, max_retry_after=0.5),
                        poll_interval=0.02, cancel_check_interval=0.02, cancel_timeout=2.0,
                        submit_settle_timeout=1.0, read_timeout=10.0, stream_read_timeout=10.0)


class Gate:
    """An editor node that holds ComfyUI's prompt worker until released (or interrupted, as ComfyUI nodes are)."""

    NODE_ID = "TestGate"
    OUTPUT_NODE = True
    FUNCTION = "wait"
    RETURN_TYPES = ()
    release = threading.Event()
    comfy: FakeComfy | None = None

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {}}

    def wait(self) -> tuple[()]:
        deadline = time.monotonic() + 20
        while not self.release.is_set() and time.monotonic() < deadline:
            if self.comfy is not None and self.comfy.interrupted:
                raise InterruptProcessingException()
            time.sleep(0.01)
        return ()


@dataclass
class Mounted:
    server: FakePromptServer
    executor: FakeExecutor
    app: AppThread
    service: Any
    url: str

    def submit(self, **extra: Any) -> dict[str, Any]:
        resp = httpx.post(f"{self.url}/fal-ai/aura-flow", json={**TINY, **extra})
        assert resp.status_code == 200, resp.text
        return resp.json()

    def editor_prompt(self, prompt_id: str = "editor-1") -> None:
        """Queue a prompt as the editor's POST /prompt does (number from the server's counter)."""
        number = self.server.number
        self.server.number += 1
        self.server.prompt_queue.put((number, prompt_id, {"1": {"class_type": "TestGate", "inputs": {}}}, {},
                                      ["1"]))


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def done(req: dict[str, Any]) -> dict[str, Any]:
    """Poll status (with logs) until COMPLETED; the final status body."""
    def check() -> dict[str, Any] | None:
        resp = httpx.get(req["status_url"], params={"logs": "1"})
        return resp.json() if resp.status_code == 200 else None

    return wait_for(check)


def messages(status: dict[str, Any]) -> list[str]:
    return [entry["message"] for entry in status["logs"] or []]


@pytest.fixture
def serve_mount(pack: ModuleType) -> ModuleType:
    return importlib.import_module(f"{pack.__name__}.nodes.serve_mount")


@pytest.fixture
def mount(pack: ModuleType, serve_mount: ModuleType, fake_comfy: FakeComfy, monkeypatch: pytest.MonkeyPatch,
          tmp_path: Path) -> Iterator[Callable[..., Mounted]]:
    """``mount(**env)``: the API mounted on a fresh fake PromptServer with ``env`` set, served, its worker running."""
    started: list[Mounted] = []
    Gate.release = threading.Event()
    Gate.comfy = fake_comfy

    def start(*, db: Path | None = None, **env: str) -> Mounted:
        settings = {"AURAFLOW_SERVE_COMFY_MODEL": AIO, "AURAFLOW_SERVE_COMFY_DTYPE": "fp32",
                    "AURAFLOW_SERVE_COMFY_DB": str(db or tmp_path / "queue.sqlite3"), **env}
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        mappings = {**pack.NODE_CLASS_MAPPINGS, "TestGate": Gate}
        server = install_server(monkeypatch, mappings)
        fast = dataclasses.replace(serve_mount.serve_options(()), keepalive=0.2, purge_interval=0.5)
        service = serve_mount.mount(server, options=fast)
        server.add_routes_to_app()
        app = AppThread(server).start()
        executor = FakeExecutor(server, fake_comfy, mappings).start()
        mounted = Mounted(server, executor, app, service, app.url + serve_mount.PREFIX)
        started.append(mounted)
        return mounted

    yield start
    Gate.release.set()
    for mounted in started:
        mounted.app.stop()
        mounted.executor.stop()


def test_submit_status_logs_result_through_comfyui_prompt(mount: Callable[..., Mounted]) -> None:
    api = mount()
    req = api.submit(seed=11, num_images=2)
    assert req["status"] == "IN_QUEUE" and req["status_url"].startswith(api.url + "/fal-ai/aura-flow/requests/")
    status = done(req)
    logs = messages(status)
    assert status["error"] is None and "running in ComfyUI" in logs
    assert logs.index("step 1/2") < logs.index("step 2/2")
    result = httpx.get(req["response_url"])
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["seed"] == 11 and body["prompt"] == TINY["prompt"] and len(body["images"]) == 2
    image = httpx.get(body["images"][0]["url"])
    assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).size == (64, 64)
    # it ran as one ComfyUI prompt of our three nodes, queued the way POST /prompt queues
    (entry,) = api.server.prompt_queue.history.values()
    number, prompt_id, prompt, _extra, outputs = entry["prompt"]
    assert entry["status"]["status_str"] == "success" and api.executor.executed == [prompt_id]
    assert sorted(node["class_type"] for node in prompt.values()) == ["AuraFlowGenerate", "AuraFlowLoader",
                                                                      "AuraFlowServeOutput"]
    assert [prompt[o]["class_type"] for o in outputs] == ["AuraFlowServeOutput"] and api.server.number == number + 1
    # ComfyUI serves every route again under /api
    assert httpx.get(req["status_url"].replace("/auraflow/fal/", "/api/auraflow/fal/")).status_code == 200


def test_our_client_through_the_env_var(mount: Callable[..., Mounted], monkeypatch: pytest.MonkeyPatch) -> None:
    api = mount()
    monkeypatch.setenv("AURAFLOW_FAL_QUEUE_URL", api.url)
    monkeypatch.setenv("FAL_KEY", "any:key")  # our client insists on a key; this mount has none configured
    updates: list[Any] = []
    result = asyncio.run(fal.run("fal-ai/aura-flow", {**TINY, "seed": 5, "expand_prompt": True},
                                 on_update=updates.append, config=FAST_CLIENT, timeout=60))
    assert [im.size for im in result.images] == [(64, 64)] and result.data["seed"] == 5
    assert result.data["prompt"].lower().startswith("a red fox in the snow") and len(result.data["prompt"]) > 30
    logs = [e.message for u in updates if isinstance(u, fal.Completed) for e in u.logs]
    assert "step 2/2" in logs and any(m.startswith("expanded prompt: ") for m in logs)


def test_cancel_while_in_comfyui_queue_removes_the_prompt(mount: Callable[..., Mounted]) -> None:
    api = mount()
    api.editor_prompt()
    wait_for(lambda: api.server.prompt_queue.currently_running)
    req = api.submit()
    status = wait_for(lambda: (s := httpx.get(req["status_url"], params={"logs": "1"}).json())
                      and "waiting in ComfyUI's queue, 1 prompt(s) ahead" in messages(s) and s)
    assert status["status"] == "IN_PROGRESS"
    second = api.submit()  # still in our own queue: our worker runs one request at a time
    assert httpx.get(second["status_url"]).json()["status"] == "IN_QUEUE"
    assert httpx.put(second["cancel_url"]).json() == {"status": "OK"}
    cancel = httpx.put(req["cancel_url"])
    assert cancel.status_code == 202 and cancel.json() == {"status": "CANCELLATION_REQUESTED"}
    final = done(req)
    assert final["error_type"] == "request_cancelled"
    assert api.server.prompt_queue.queue == []  # gone from ComfyUI's queue before it ran
    Gate.release.set()
    wait_for(lambda: api.executor.executed == ["editor-1"])
    time.sleep(0.2)
    assert api.executor.executed == ["editor-1"]
    assert httpx.get(req["response_url"]).json()["detail"] == "Request cancelled"


def test_cancel_while_running_interrupts_only_our_prompt(mount: Callable[..., Mounted], fake_comfy: FakeComfy
                                                         ) -> None:
    api = mount()
    fake_comfy.on_preview = lambda _n: time.sleep(0.05)  # ~0.05 s per step
    req = api.submit(num_inference_steps=60)
    wait_for(lambda: "step 3/60" in messages(httpx.get(req["status_url"], params={"logs": "1"}).json()))
    assert httpx.put(req["cancel_url"]).status_code == 202
    final = done(req)
    logs = messages(final)
    assert final["error_type"] == "request_cancelled" and "interrupting the ComfyUI prompt" in logs
    assert "step 60/60" not in logs
    (entry,) = api.server.prompt_queue.history.values()
    assert [m[0] for m in entry["status"]["messages"]][-1] == "execution_interrupted"
    # the flag did not outlive our prompt: the next one (the editor's, then ours) runs to the end
    fake_comfy.on_preview = None
    Gate.release.set()
    api.editor_prompt("editor-after")
    wait_for(lambda: "editor-after" in api.executor.executed)
    assert done(api.submit())["error"] is None


def test_interrupt_in_the_editor_ends_the_request_cancelled(mount: Callable[..., Mounted], fake_comfy: FakeComfy
                                                            ) -> None:
    api = mount()
    fake_comfy.on_preview = lambda n: time.sleep(0.05)
    req = api.submit(num_inference_steps=60)
    wait_for(lambda: "step 2/60" in messages(httpx.get(req["status_url"], params={"logs": "1"}).json()))
    fake_comfy.interrupted = True  # what the editor's Interrupt button (POST /interrupt) does
    final = done(req)
    assert final["error_type"] == "request_cancelled"
    assert "the ComfyUI prompt was interrupted in ComfyUI (Cancel / Interrupt in the editor)" in messages(final)
    assert httpx.get(req["response_url"]).status_code == 400


def test_prompt_deleted_from_the_editor_queue_ends_the_request(mount: Callable[..., Mounted]) -> None:
    api = mount()
    api.editor_prompt()
    wait_for(lambda: api.server.prompt_queue.currently_running)
    req = api.submit()
    wait_for(lambda: api.server.prompt_queue.queue)
    api.server.prompt_queue.delete_queue_item(lambda item: True)  # the queue panel's delete
    assert done(req)["error_type"] == "request_cancelled"


def test_unknown_model_and_failing_node_give_clear_errors(mount: Callable[..., Mounted]) -> None:
    api = mount(AURAFLOW_SERVE_COMFY_MODEL="missing.safetensors")
    req = api.submit()
    assert done(req)["error_type"] == "internal_server_error"
    result = httpx.get(req["response_url"])
    assert result.status_code == 500
    detail = result.json()["detail"]
    assert "AURAFLOW_SERVE_COMFY_MODEL" in detail and AIO in detail and "Traceback" not in detail
    assert api.server.prompt_queue.history == {}  # refused before anything was queued in ComfyUI


def test_node_failure_is_a_500_with_the_node_message(mount: Callable[..., Mounted]) -> None:
    api = mount()
    req = api.submit(width=2048, height=2048)  # beyond the tiny model's position grid: AuraFlow Generate refuses
    done(req)
    result = httpx.get(req["response_url"])
    assert result.status_code == 500 and "AuraFlow Generate" in result.json()["detail"], result.text


def test_sizes_the_node_refuses_are_422_at_submit(mount: Callable[..., Mounted]) -> None:
    api = mount()
    resp = httpx.post(f"{api.url}/fal-ai/aura-flow", json={**TINY, "width": 32})
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "width"]


def test_keys_are_required_when_configured(mount: Callable[..., Mounted]) -> None:
    api = mount(AURAFLOW_SERVE_KEYS="k-one,k-two")
    assert httpx.post(f"{api.url}/fal-ai/aura-flow", json=TINY).status_code == 401
    resp = httpx.post(f"{api.url}/fal-ai/aura-flow", json=TINY, headers={"Authorization": "Key k-two"})
    assert resp.status_code == 200 and not api.service.options.loopback_clients_only


def test_results_survive_a_restart(mount: Callable[..., Mounted], tmp_path: Path) -> None:
    db = tmp_path / "kept.sqlite3"
    first = mount(db=db)
    req = first.submit(seed=3)
    done(req)
    first.app.stop()
    second = mount(db=db)
    resp = httpx.get(req["response_url"].replace(first.url, second.url))
    assert resp.status_code == 200 and resp.json()["seed"] == 3


def _serve_off(serve_mount: ModuleType, monkeypatch: pytest.MonkeyPatch, pack: ModuleType) -> tuple[Any, AppThread]:
    server = install_server(monkeypatch, dict(pack.NODE_CLASS_MAPPINGS))
    assert serve_mount.register_with_comfyui() is False
    server.add_routes_to_app()
    return server, AppThread(server).start()


def test_off_unless_a_model_is_configured(serve_mount: ModuleType, fake_comfy: FakeComfy,
                                          monkeypatch: pytest.MonkeyPatch, pack: ModuleType) -> None:
    monkeypatch.delenv("AURAFLOW_SERVE_COMFY_MODEL", raising=False)
    _server, app = _serve_off(serve_mount, monkeypatch, pack)
    try:
        resp = httpx.post(f"{app.url}/auraflow/fal/fal-ai/aura-flow", json=TINY)
        assert resp.status_code == 404 and "AURAFLOW_SERVE_COMFY_MODEL" in resp.json()["detail"]
    finally:
        app.stop()


def test_misconfigured_says_what_is_wrong(serve_mount: ModuleType, fake_comfy: FakeComfy,
                                          monkeypatch: pytest.MonkeyPatch, pack: ModuleType) -> None:
    monkeypatch.setenv("AURAFLOW_SERVE_COMFY_MODEL", AIO)
    monkeypatch.setenv("AURAFLOW_SERVE_COMFY_DTYPE", "fp8")
    _server, app = _serve_off(serve_mount, monkeypatch, pack)
    try:
        resp = httpx.get(f"{app.url}/auraflow/fal/fal-ai/aura-flow/requests/x/status")
        assert resp.status_code == 500 and "AURAFLOW_SERVE_COMFY_DTYPE" in resp.json()["detail"]
    finally:
        app.stop()


def test_registration_is_a_no_op_outside_comfyui_and_never_twice(serve_mount: ModuleType, mount: Callable[..., Mounted]
                                                                 ) -> None:
    api = mount()
    assert serve_mount.mount(api.server) is None  # a second import of the pack adds nothing (aiohttp would refuse)


def test_register_outside_comfyui(serve_mount: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "server", None)  # `from server import PromptServer` fails
    assert serve_mount.register_with_comfyui() is False


def test_serve_output_node_in_a_hand_built_graph_does_nothing(pack: ModuleType, fake_comfy: FakeComfy) -> None:
    import torch

    serve = importlib.import_module(f"{pack.__name__}.nodes.serve")
    out = serve.AuraFlowServeOutput().deliver(torch.zeros(1, 8, 8, 3), 1, "x", "", "7")
    assert out == {"ui": {}}


def test_without_keys_other_machines_get_403(mount: Callable[..., Mounted], serve_mount: ModuleType) -> None:
    from unittest import mock

    from aiohttp.test_utils import make_mocked_request

    api = mount()
    health = next(r.handler for r in api.server.routes if r.path == serve_mount.PREFIX + "/health")
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        ("10.1.2.3", 40000) if name == "peername" else default)
    resp = asyncio.run(health(make_mocked_request("GET", serve_mount.PREFIX + "/health", transport=transport)))
    assert resp.status == 403 and b"AURAFLOW_SERVE_KEYS" in resp.body
    assert httpx.get(f"{api.url}/health").status_code == 200  # 127.0.0.1 is answered


def test_official_fal_client_against_the_mount(mount: Callable[..., Mounted], monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    """fal-client, its queue URL pointed at the prefix (as tests/serve does with the standalone server)."""
    fal_client = pytest.importorskip("fal_client", reason="the official fal-client is a dev dependency")
    client_module = pytest.importorskip("fal_client.client")
    api = mount()
    monkeypatch.setattr(client_module, "QUEUE_URL_FORMAT", api.url + "/")
    events: list[Any] = []
    result = fal_client.SyncClient(key="any:key").subscribe("fal-ai/aura-flow", {**TINY, "seed": 4}, with_logs=True,
                                                            on_queue_update=events.append)
    assert result["seed"] == 4 and result["images"][0]["url"].startswith(api.url + "/files/")
    completed = [e for e in events if isinstance(e, fal_client.Completed)]
    assert "step 2/2" in [entry["message"] for entry in completed[-1].logs]
