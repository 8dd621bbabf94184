"""pipeline.fal against the loopback stand-in: real HTTP and SSE, one scenario per test."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from testkit.fal_standin import DEFAULT_KEY, FalStandIn, Fault, Scenario

from pipeline import fal
from pipeline.errors import (
    AuthenticationError,
    CancelledError,
    InvalidInputError,
    MissingCredentialsError,
    RemoteError,
    RemoteTimeoutError,
    RemoteValidationError,
    ResultDownloadError,
)

APP = "fal-ai/aura-flow"
ARGS = {"prompt": "a lighthouse", "num_images": 2, "seed": 42}
Serve = Callable[..., FalStandIn]


def run(config: fal.FalConfig, **kwargs: object) -> fal.FalResult:
    return asyncio.run(fal.run(APP, kwargs.pop("arguments", ARGS), config=config, **kwargs))  # type: ignore[arg-type]


def test_happy_path_reports_queue_then_logs_then_images(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve()
    updates: list[fal.Status] = []
    handles: list[fal.RequestHandle] = []
    result = run(fast_config, on_update=updates.append, on_submit=handles.append)

    assert [u.position for u in updates if isinstance(u, fal.Queued)] == [2, 1, 0]
    logs = [u.logs[-1].message for u in updates if isinstance(u, fal.InProgress) and u.logs]
    assert logs == ["loading model", "step 25/50"]
    assert isinstance(updates[-1], fal.Completed) and updates[-1].logs[-1].message == "step 50/50"
    assert handles[0].request_id == result.request_id
    assert result.data["seed"] == 42 and result.data["prompt"] == "a lighthouse, highly detailed"
    assert [img.size for img in result.images] == [(32, 24), (32, 24)]
    assert result.images[0].mode == "RGB" and result.images[0].getpixel((0, 0)) != result.images[1].getpixel((0, 0))
    assert server.routes() == ["submit", "stream", "result", "file", "file"]
    # the key goes to the queue, never to the image host
    assert all(c.authorized for c in server.calls if c.route != "file")
    assert not any(c.has_authorization for c in server.calls if c.route == "file")


def test_polling_when_the_stream_is_unavailable(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve(Scenario(stream=False))
    updates: list[fal.Status] = []
    result = run(fast_config, on_update=updates.append)
    assert len(result.images) == 2
    assert server.count("status") >= 2 and isinstance(updates[-1], fal.Completed)


def test_stream_dropped_mid_response_falls_back_to_polling(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve(Scenario(faults=[Fault("stream", kind="drop")]))
    result = run(fast_config)
    assert len(result.images) == 2
    assert server.count("stream") == 1 and server.count("status") >= 1 and server.count("submit") == 1


def test_401_is_one_readable_error_without_the_key(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve(key="wrong-id:wrong-secret-value")
    with pytest.raises(AuthenticationError) as info:
        run(fast_config)
    message = str(info.value)
    assert "401" in message and "FAL_KEY" in message and "No user found" in message
    assert "wrong-secret-value" not in message
    assert server.count("submit") == 1


def test_422_at_result_names_the_field(serve: Serve, fast_config: fal.FalConfig) -> None:
    detail = [{"loc": ["body", "guidance_scale"], "msg": "Input should be less than or equal to 20",
               "type": "less_than_equal", "ctx": {"le": 20}, "input": 21}]
    server = serve(Scenario(result_status=422, result_body={"detail": detail}))
    with pytest.raises(RemoteValidationError) as info:
        run(fast_config, arguments={**ARGS, "guidance_scale": 21})
    error = info.value
    assert error.fields == ["guidance_scale"] and error.status == 422 and error.request_id
    assert "guidance_scale: Input should be less than or equal to 20 (got 21)" in str(error)
    assert server.count("result") == 1  # a validation error is final


def test_429_with_retry_after_then_success(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve(Scenario(faults=[Fault("submit", status=429, headers={"Retry-After": "0.2"},
                                          body='{"detail": "Too many requests"}')]))
    result = run(fast_config)
    submits = [c.at for c in server.calls if c.route == "submit"]
    assert len(submits) == 2 and submits[1] - submits[0] >= 0.19  # Retry-After honoured over the 10 ms backoff
    assert len(result.images) == 2


@pytest.mark.parametrize("route", ["status", "result", "file"])
def test_502_and_503_then_success(serve: Serve, fast_config: fal.FalConfig, route: str) -> None:
    server = serve(Scenario(stream=False, faults=[Fault(route, status=502, body="<html>bad gateway</html>",
                                                        headers={"Content-Type": "text/html"}),
                                                  Fault(route, status=503)]))
    result = run(fast_config)
    assert len(result.images) == 2
    assert server.count("submit") == 1


@pytest.mark.parametrize("status", [502, 504])
def test_submit_is_not_repeated_when_it_may_have_been_queued(serve: Serve, fast_config: fal.FalConfig,
                                                             status: int) -> None:
    server = serve(Scenario(faults=[Fault("submit", status=status, times=5)]))
    with pytest.raises(RemoteError, match=str(status)):
        run(fast_config)
    assert server.count("submit") == 1


def test_submit_dropped_mid_response_is_not_repeated(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve(Scenario(faults=[Fault("submit", kind="drop")]))
    with pytest.raises(RemoteError, match="may have been queued") as info:
        run(fast_config)
    assert "dashboard" in str(info.value)
    assert server.count("submit") == 1


def test_submit_with_malformed_json_is_not_repeated(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve(Scenario(faults=[Fault("submit", kind="malformed")]))
    with pytest.raises(RemoteError, match="no readable request id"):
        run(fast_config)
    assert server.count("submit") == 1


def test_dropped_connection_mid_result_is_retried(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve(Scenario(faults=[Fault("result", kind="drop")]))
    result = run(fast_config)
    assert len(result.images) == 2 and server.count("result") == 2


def test_malformed_json_status_and_result_are_retried(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve(Scenario(stream=False, faults=[Fault("status", kind="malformed"),
                                                  Fault("result", kind="malformed")]))
    result = run(fast_config)
    assert len(result.images) == 2 and server.count("result") == 2


def test_malformed_stream_event_falls_back_to_polling(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve(Scenario(faults=[Fault("stream", kind="malformed")]))
    assert len(run(fast_config).images) == 2
    assert server.count("status") >= 1


def test_image_url_that_fails_once(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve(Scenario(faults=[Fault("file", status=500), Fault("file", kind="drop")]))
    result = run(fast_config)
    assert len(result.images) == 2 and server.count("file") == 4  # 2 images + a 500 + a drop


def test_lost_download_names_the_request_and_can_be_fetched_later(serve: Serve,
                                                                  fast_config: fal.FalConfig) -> None:
    server = serve(Scenario(faults=[Fault("file", status=503, times=4)]))
    handles: list[fal.RequestHandle] = []
    with pytest.raises(ResultDownloadError) as info:
        run(fast_config, arguments={**ARGS, "num_images": 1}, on_submit=handles.append)
    rid = handles[0].request_id
    assert info.value.request_id == rid and rid in str(info.value) and "HTTP 503" in str(info.value)
    assert server.count("cancel") == 0  # a completed request is never cancelled

    later = asyncio.run(fal.fetch_result(APP, rid, config=fast_config))
    assert later.request_id == rid and len(later.images) == 1


def test_image_with_wrong_content_type_is_refused(serve: Serve, fast_config: fal.FalConfig) -> None:
    serve(Scenario(faults=[Fault("file", status=200, body="<html>login</html>", times=9,
                                 headers={"Content-Type": "text/html"})]))
    with pytest.raises(ResultDownloadError, match="text/html"):
        run(fast_config)


def test_data_uri_result(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve(Scenario(image_mode="data", image_content_type="image/jpeg"))
    result = run(fast_config, arguments={**ARGS, "sync_mode": True})
    assert [img.size for img in result.images] == [(32, 24), (32, 24)]
    assert server.count("file") == 0
    assert "data:" not in repr(result)


def test_cancel_while_running_sends_put_cancel_and_stops_fast(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve(Scenario(never_finish=True))
    flag = {"at": None}
    started = time.monotonic()

    def should_cancel() -> bool:
        if time.monotonic() - started > 0.3:
            flag["at"] = flag["at"] or time.monotonic()
            return True
        return False

    with pytest.raises(CancelledError, match="cancelled by the user"):
        run(fast_config, should_cancel=should_cancel)
    assert time.monotonic() - flag["at"] < 0.5
    assert server.cancelled == list(server.requests) and server.count("cancel") == 1


def test_default_cancel_check_is_at_most_half_a_second(serve: Serve) -> None:
    serve(Scenario(never_finish=True))
    checks: list[float] = []

    def should_cancel() -> bool:
        checks.append(time.monotonic())
        return len(checks) >= 4

    with pytest.raises(CancelledError):
        asyncio.run(fal.run(APP, ARGS, should_cancel=should_cancel))
    gaps = [b - a for a, b in zip(checks, checks[1:])]
    assert max(gaps) <= 0.5


def test_overall_timeout_cancels_upstream(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve(Scenario(never_finish=True))
    with pytest.raises(RemoteTimeoutError) as info:
        run(fast_config, timeout=0.4)
    assert isinstance(info.value, TimeoutError) and info.value.request_id in server.cancelled


def test_json_only_results_for_text_models(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve(Scenario(result_body={"output": "a lighthouse at dusk, volumetric fog"}))
    result = asyncio.run(fal.run("openrouter/router", {"model": "x", "prompt": "p"}, fetch_images=False,
                                 config=fast_config))
    assert result.data["output"].startswith("a lighthouse") and result.images == ()
    assert asyncio.run(fal.fetch_json("openrouter/router", result.request_id, config=fast_config)) == result.data
    assert server.count("file") == 0


def test_submit_then_cancel_by_id(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve(Scenario(never_finish=True))
    handle = asyncio.run(fal.submit(APP, ARGS, config=fast_config))
    assert asyncio.run(fal.cancel(APP, handle.request_id, config=fast_config)) is True
    assert server.cancelled == [handle.request_id]


def test_missing_key_fails_before_any_request(serve: Serve, fast_config: fal.FalConfig) -> None:
    server = serve(key=None)
    with pytest.raises(MissingCredentialsError, match="FAL_KEY"):
        run(fast_config)
    assert server.calls == []


def test_plain_http_to_another_host_is_refused(fast_config: fal.FalConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", DEFAULT_KEY)
    with pytest.raises(InvalidInputError, match="loopback"):
        run(replace(fast_config, base_url="http://queue.example.org"))


def test_key_never_logged_or_raised(serve: Serve, fast_config: fal.FalConfig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = serve(Scenario(faults=[Fault("submit", status=429), Fault("result", kind="drop"),
                                    Fault("file", status=503)]))
    result = run(fast_config)
    with pytest.raises(CancelledError) as info:
        run(replace(fast_config), should_cancel=lambda: True)
    secret = DEFAULT_KEY.partition(":")[2]
    assert server.count("submit") >= 3 and caplog.records
    for text in (caplog.text, repr(result), str(info.value), repr(info.value)):
        assert DEFAULT_KEY not in text and secret not in text
