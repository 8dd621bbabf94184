"""The fal backend: input building, answer handling and every fallback, with the client faked; then the real
client against the loopback stand-in (skipped until ``pipeline/fal`` and ``testkit/fal_standin`` are merged)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from typing import Any

import pytest

from pipeline import (
    AuthenticationError,
    CancelledError,
    MissingCredentialsError,
    RemoteError,
    RemoteTimeoutError,
    RemoteValidationError,
    expand_prompt,
)
from pipeline.expand import SYSTEM_PROMPT, _remote

ANSWER = ("A red fox curls up in deep, fresh snow at the edge of a pine forest, its orange fur bright against the "
          "white ground. Low golden light comes from the left and throws long blue shadows.")


class FakeFal:
    """Stands in for ``_call_fal_llm``: records calls, answers with ``reply`` or raises it."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.calls: list[tuple[str, dict[str, Any], float]] = []

    def __call__(self, app_id: str, arguments: dict[str, Any], *, timeout: float, should_cancel: Any) -> Any:
        self.calls.append((app_id, arguments, timeout))
        if isinstance(self.reply, BaseException):
            raise self.reply
        return self.reply


def _fake(monkeypatch: pytest.MonkeyPatch, reply: Any) -> FakeFal:
    fake = FakeFal(reply)
    monkeypatch.setattr(_remote, "_call_fal_llm", fake)
    return fake


def test_router_input_and_cleaned_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake(monkeypatch, {"output": f"Sure! Here is your prompt:\n\n\"{ANSWER}\""})
    result = expand_prompt("a fox in snow", backend="fal", seed=3, max_tokens=300, timeout=12.0)
    assert result.prompt == ANSWER and result.expanded and result.warnings == ()
    app_id, arguments, timeout = fake.calls[0]
    assert app_id == "openrouter/router" and timeout == 12.0
    assert arguments == {"model": "google/gemini-2.5-flash", "prompt": "Image idea: a fox in snow",
                         "system_prompt": SYSTEM_PROMPT, "max_tokens": 300, "temperature": 0.7}


def test_any_llm_input_has_its_own_default_model_and_no_max_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake(monkeypatch, {"output": ANSWER, "partial": False})
    result = expand_prompt("a fox", backend="fal", seed=0, fal_endpoint="fal-ai/any-llm", system_prompt="Be brief.")
    assert result.prompt == ANSWER
    app_id, arguments, _ = fake.calls[0]
    assert app_id == "fal-ai/any-llm"
    assert arguments == {"model": "google/gemini-flash-1.5", "prompt": "Image idea: a fox",
                         "system_prompt": "Be brief."}


@pytest.mark.parametrize(("reply", "reason"), [
    (MissingCredentialsError("no fal key: set FAL_KEY"), "no fal key"),
    (AuthenticationError("fal.ai refused the key (401)", status=401), "refused the key"),
    (RemoteValidationError("model: unknown model id", fields=["model"]), "unknown model id"),
])
def test_configuration_problems_fall_back_or_raise_when_strict(monkeypatch: pytest.MonkeyPatch,
                                                               reply: Exception, reason: str) -> None:
    _fake(monkeypatch, reply)
    result = expand_prompt("a fox", backend="fal", seed=0)
    assert result.prompt == "a fox" and not result.expanded and not result.truncated
    assert len(result.warnings) == 1 and reason in result.warnings[0]
    assert result.warnings[0].startswith("prompt expansion (fal) failed, the original prompt is used")
    with pytest.raises(type(reply)):
        expand_prompt("a fox", backend="fal", seed=0, strict=True)


@pytest.mark.parametrize(("reply", "reason"), [
    (RemoteTimeoutError("fal request abc did not complete in time"), "did not complete in time"),
    (RemoteError("fal.ai status failed: HTTP 500", status=500), "HTTP 500"),
    ({"output": ""}, "the answer was empty"),
    ({"output": "  \n  "}, "the answer was empty"),
    ({"output": None, "error": "model overloaded"}, "model overloaded"),
    ({"partial": True}, "no 'output' text"),
    ({"output": "I'm sorry, I can't help with that."}, "refusal"),
    ({"output": "{} [] 0x00 ### 1234"}, "does not read as text"),
    (["not", "a", "dict"], "not a JSON object"),
])
def test_one_off_failures_fall_back_even_when_strict(monkeypatch: pytest.MonkeyPatch, reply: Any,
                                                     reason: str) -> None:
    _fake(monkeypatch, reply)
    for strict in (False, True):
        result = expand_prompt("a fox", backend="fal", seed=0, strict=strict)
        assert result.prompt == "a fox" and not result.expanded
        assert reason in result.warnings[-1]


def test_cancel_is_never_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, CancelledError("stopped"))
    with pytest.raises(CancelledError):
        expand_prompt("a fox", backend="fal", seed=0)


def test_a_long_answer_is_cut_to_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, {"output": " ".join([ANSWER] * 8)})
    result = expand_prompt("a fox", backend="fal", seed=0)
    assert result.truncated and result.prompt.endswith((" shadows.", " ground."))  # at a sentence end
    assert "256-token window" in result.warnings[0]


def test_without_the_client_the_backend_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pipeline.fal", None)  # import of pipeline.fal now raises ImportError
    result = expand_prompt("a fox", backend="fal", seed=0)
    assert result.prompt == "a fox" and "fal queue client" in result.warnings[0]


def test_the_coroutine_runs_inside_a_running_event_loop() -> None:
    """ComfyUI calls sync node functions from inside its worker's event loop; asyncio.run would refuse there."""

    async def answer() -> str:
        await asyncio.sleep(0)
        return "ok"

    async def node_function() -> str:
        return _remote._run_blocking(answer)

    assert _remote._run_blocking(answer) == "ok"
    assert asyncio.run(node_function()) == "ok"


# ---------------------------------------------------------------------------------------------------------------
# The real client against the loopback stand-in

_MISSING = [name for name in ("pipeline.fal", "testkit.fal_standin") if importlib.util.find_spec(name) is None]
needs_client = pytest.mark.skipif(
    bool(_MISSING), reason=f"{' and '.join(_MISSING)} not in this branch yet (fal client lands from branch 'fal')"
)


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from testkit.fal_standin import DEFAULT_KEY, FalStandIn, Scenario

    servers: list[Any] = []

    def start(result_body: Any = None, *, key: str | None = DEFAULT_KEY, **scenario: Any) -> Any:
        server = FalStandIn(Scenario(result_body=result_body, queue_positions=(0,), logs=(), step=0.01, **scenario))
        server.start()
        servers.append(server)
        monkeypatch.setenv("AURAFLOW_FAL_QUEUE_URL", server.url)
        if key is not None:
            monkeypatch.setenv("FAL_KEY", key)
        return server

    yield start
    for server in servers:
        server.stop()


@needs_client
def test_standin_router_round_trip(standin: Any) -> None:
    server = standin({"output": f"Here's an expanded prompt: {ANSWER}"})
    result = expand_prompt("a fox in snow", backend="fal", seed=0, max_tokens=200, timeout=10)
    assert result.prompt == ANSWER and result.warnings == ()
    (request,) = server.requests.values()
    assert request.app_path == "openrouter/router"
    assert request.arguments["model"] == "google/gemini-2.5-flash" and request.arguments["max_tokens"] == 200


@needs_client
def test_standin_without_key_falls_back_and_strict_says_why(standin: Any) -> None:
    server = standin({"output": ANSWER}, key=None)
    result = expand_prompt("a fox", backend="fal", seed=0, timeout=10)
    assert result.prompt == "a fox" and "FAL_KEY" in result.warnings[0]
    with pytest.raises(MissingCredentialsError):
        expand_prompt("a fox", backend="fal", seed=0, timeout=10, strict=True)
    assert server.count("submit") == 0


@needs_client
def test_standin_empty_answer_falls_back(standin: Any) -> None:
    standin({"output": ""})
    result = expand_prompt("a fox", backend="fal", seed=0, timeout=10, strict=True)
    assert result.prompt == "a fox" and "empty" in result.warnings[0]


@needs_client
def test_standin_timeout_falls_back_and_cancels_upstream(standin: Any) -> None:
    server = standin({"output": ANSWER}, never_finish=True)
    result = expand_prompt("a fox", backend="fal", seed=0, timeout=0.5, strict=True)
    assert result.prompt == "a fox" and "RemoteTimeoutError" in result.warnings[0]
    assert server.count("cancel") >= 1
