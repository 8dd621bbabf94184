"""The remote node's structured events for the web extension (nodes/_ui_events.py), with a stand-in ComfyUI server."""

from __future__ import annotations

import asyncio
import importlib
import sys
import types
from types import ModuleType
from typing import Any

import pytest
from testkit.fal_standin import DEFAULT_KEY


class FakePromptServer:
    """What ComfyUI's PromptServer.instance offers the pack: send_sync and send_progress_text, recorded."""

    def __init__(self) -> None:
        self.client_id = "browser-1"
        self.events: list[tuple[str, dict[str, Any], str | None]] = []
        self.texts: list[tuple[str, str]] = []

    def send_sync(self, event: str, data: dict[str, Any], sid: str | None = None) -> None:
        self.events.append((event, data, sid))

    def send_progress_text(self, text: str, node_id: str) -> None:
        self.texts.append((text, node_id))


@pytest.fixture
def comfy_server(monkeypatch: pytest.MonkeyPatch) -> FakePromptServer:
    instance = FakePromptServer()
    module = types.ModuleType("server")
    module.PromptServer = type("PromptServer", (), {"instance": instance})
    monkeypatch.setitem(sys.modules, "server", module)
    return instance


@pytest.fixture
def remote(pack: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = importlib.import_module(f"{pack.__name__}.nodes.remote")
    pfal = importlib.import_module(f"{pack.__name__}.pipeline.fal")
    fast = pfal.FalConfig(retry=pfal.RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02),
                          poll_interval=0.02, cancel_check_interval=0.02)
    monkeypatch.setattr(module, "CLIENT_CONFIG", fast)
    return module


def test_generate_sends_status_and_prompt_events(serve, remote: ModuleType, comfy_server: FakePromptServer) -> None:
    serve()
    _, _, prompt, request_id = asyncio.run(remote.AuraFlowFal().generate(
        prompt="a red fox", num_images=1, seed=7, guidance_scale=3.5, num_inference_steps=20, expand_prompt=True,
        unique_id="12"))
    statuses = [data for event, data, _ in comfy_server.events if event == "auraflow.fal_status"]
    assert statuses, "no status event was sent"
    assert {d["node"] for d in statuses} == {"12"}
    phases = [d["phase"] for d in statuses]
    assert "queued" in phases and phases[-1] in ("running", "downloading")
    assert all(set(d) == {"node", "phase", "elapsed_s", "position", "logs", "request_id", "error"} for d in statuses)
    assert statuses[-1]["request_id"] == request_id
    prompts = [data for event, data, _ in comfy_server.events if event == "auraflow.prompt"]
    assert prompts == [{"node": "12", "prompt": prompt}]
    assert {sid for *_, sid in comfy_server.events} == {"browser-1"}, "events go to the browser that queued"
    assert comfy_server.texts, "the plain progress text is still sent"
    assert DEFAULT_KEY not in repr(comfy_server.events) + repr(comfy_server.texts)


def test_status_event_trims_the_log(pack: ModuleType, comfy_server: FakePromptServer) -> None:
    events = importlib.import_module(f"{pack.__name__}.nodes._ui_events")
    events.send_fal_status("3", phase="running", elapsed_s=1.26, logs=[f"line {i} " + "x" * 1000 for i in range(50)])
    (_, data, _), = comfy_server.events
    assert len(data["logs"]) == events.LOG_TAIL_LINES and data["logs"][-1].startswith("line 49")
    assert max(map(len, data["logs"])) == events.LOG_LINE_CHARS
    assert data["elapsed_s"] == 1.3
    events.send_fal_status(None, phase="running", elapsed_s=0)  # no node: nothing to show it on
    assert len(comfy_server.events) == 1


def test_events_are_noops_without_comfyui(pack: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    events = importlib.import_module(f"{pack.__name__}.nodes._ui_events")
    monkeypatch.setitem(sys.modules, "server", None)
    events.send_prompt_used("1", "a cat")  # must not raise


def test_a_failing_send_never_fails_the_node(pack: ModuleType, comfy_server: FakePromptServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    events = importlib.import_module(f"{pack.__name__}.nodes._ui_events")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("socket closed")

    monkeypatch.setattr(comfy_server, "send_sync", broken)
    events.send_prompt_used("1", "a cat")
