"""The remote nodes, called directly as ComfyUI would call them (no ComfyUI present: hooks are no-ops)."""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from testkit.fal_standin import DEFAULT_KEY, FalStandIn, Fault, Scenario

Serve = Callable[..., FalStandIn]


@pytest.fixture
def remote(pack: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The pack's nodes.remote with short retry delays, and progress text captured in ``remote.texts``."""
    module = importlib.import_module(f"{pack.__name__}.nodes.remote")
    pfal = importlib.import_module(f"{pack.__name__}.pipeline.fal")
    fast = pfal.FalConfig(retry=pfal.RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02),
                          poll_interval=0.02, cancel_check_interval=0.02)
    monkeypatch.setattr(module, "CLIENT_CONFIG", fast)
    texts: list[tuple[str, str | None]] = []
    monkeypatch.setattr(module, "send_progress_text", lambda text, node_id: texts.append((text, node_id)))
    monkeypatch.setattr(module, "texts", texts, raising=False)
    return module


def generate(remote: ModuleType, **overrides: Any) -> tuple[Any, ...]:
    inputs = {"prompt": "a red fox", "num_images": 2, "seed": 7, "guidance_scale": 3.5, "num_inference_steps": 20,
              "expand_prompt": True, "unique_id": "12", **overrides}
    return asyncio.run(remote.AuraFlowFal().generate(**inputs))


def test_nodes_are_registered_with_tooltips(pack: ModuleType, remote: ModuleType) -> None:
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["AuraFlowFal"] == "AuraFlow (fal.ai)"
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["AuraFlowFalResult"] == "AuraFlow (fal.ai) result"
    for cls in remote.NODES:
        assert cls.CATEGORY == "AuraFlow/remote" and cls.DESCRIPTION
        assert len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES) == len(cls.OUTPUT_TOOLTIPS)
        inputs = cls.INPUT_TYPES()
        assert inputs["hidden"] == {"unique_id": "UNIQUE_ID"}
        for section in ("required", "optional"):
            for name, (_, opts) in inputs.get(section, {}).items():
                assert opts.get("tooltip"), f"{cls.__name__}.{name} has no tooltip"
        assert asyncio.iscoroutinefunction(getattr(cls, cls.FUNCTION))
    names = list(remote.AuraFlowFal.INPUT_TYPES()["required"])
    assert names == ["prompt", "num_images", "seed", "guidance_scale", "num_inference_steps", "expand_prompt"]


def test_generate_returns_comfy_images_and_shows_progress(serve: Serve, remote: ModuleType) -> None:
    server = serve()
    images, seed, prompt, request_id = generate(remote)
    assert tuple(images.shape) == (2, 24, 32, 3) and str(images.dtype) == "torch.float32"
    assert images.device.type == "cpu" and 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    assert (seed, prompt) == (7, "a red fox, highly detailed")
    assert request_id in server.requests
    assert server.requests[request_id].arguments == {"prompt": "a red fox", "num_images": 2, "seed": 7,
                                                     "guidance_scale": 3.5, "num_inference_steps": 20,
                                                     "expand_prompt": True}
    lines = [text for text, node in remote.texts if node == "12"]
    assert any("queued, position 3" in t for t in lines)
    assert any("running: step 25/50" in t for t in lines)
    assert any(request_id in t and " s" in t for t in lines)


def test_sync_mode_data_uris(serve: Serve, remote: ModuleType) -> None:
    server = serve(Scenario(image_mode="data"))
    images, *_ , request_id = generate(remote, num_images=1, sync_mode=True)
    assert tuple(images.shape) == (1, 24, 32, 3)
    assert server.requests[request_id].arguments["sync_mode"] is True and server.count("file") == 0


def test_interrupt_cancels_upstream_and_stops(serve: Serve, remote: ModuleType, pack: ModuleType,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(Scenario(never_finish=True))
    common = importlib.import_module(f"{pack.__name__}.nodes._common")
    errors = importlib.import_module(f"{pack.__name__}.pipeline.errors")
    pressed = time.monotonic() + 0.25
    monkeypatch.setattr(common, "interrupt_requested", lambda: time.monotonic() >= pressed)
    with pytest.raises(errors.CancelledError):
        generate(remote)
    assert time.monotonic() - pressed < 0.5
    assert server.count("cancel") == 1 and server.cancelled == list(server.requests)


def test_missing_key_tells_how_to_set_it(serve: Serve, remote: ModuleType) -> None:
    serve(key=None)
    with pytest.raises(RuntimeError) as info:
        generate(remote)
    message = str(info.value)
    assert message.startswith("AuraFlow (fal.ai): ") and "export FAL_KEY=" in message


def test_lost_download_points_to_the_result_node(serve: Serve, remote: ModuleType) -> None:
    server = serve(Scenario(faults=[Fault("file", status=503, times=3)]))
    with pytest.raises(RuntimeError) as info:
        generate(remote, num_images=1)
    (request_id,) = server.requests
    assert request_id in str(info.value) and "'AuraFlow (fal.ai) result' node" in str(info.value)

    images, seed, prompt, rid = asyncio.run(remote.AuraFlowFalResult().fetch(f" {request_id}\n", unique_id="5"))
    assert rid == request_id and tuple(images.shape) == (1, 24, 32, 3) and seed == 7


def test_result_node_refuses_a_malformed_id(serve: Serve, remote: ModuleType) -> None:
    serve()
    with pytest.raises(RuntimeError, match="request_id"):
        asyncio.run(remote.AuraFlowFalResult().fetch("../../admin"))


def test_key_absent_from_everything_the_node_returns_shows_or_logs(serve: Serve, remote: ModuleType,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = DEFAULT_KEY.partition(":")[2]
    serve(Scenario(faults=[Fault("submit", status=429), Fault("result", kind="drop"), Fault("file", status=500)]))
    outputs = generate(remote)
    seen = [repr(outputs[1:]), repr(remote.AuraFlowFal.INPUT_TYPES()), repr(remote.AuraFlowFalResult.INPUT_TYPES())]
    seen += [text for text, _ in remote.texts]

    serve(key=f"wrong:{secret}")  # a key the server refuses: the error must not quote it
    with pytest.raises(RuntimeError) as info:
        generate(remote)
    seen += [str(info.value), repr(info.value), caplog.text]
    assert caplog.records
    for text in seen:
        assert DEFAULT_KEY not in text and secret not in text
