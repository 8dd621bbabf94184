"""A stand-in for fal.ai's queue API on 127.0.0.1: real HTTP, real SSE, scripted per scenario.

It runs an aiohttp server on its own event loop in a daemon thread, so it serves async tests (``asyncio.run``
in the test), sync clients (fal-client's ``SyncClient``) and benchmarks alike. A request moves through its
life by the clock: one ``Scenario.step`` per queue position, then one per log line, then ``COMPLETED``;
``completed_at(request_id)`` gives the exact ``time.perf_counter()`` instant (benchmarks measure from it).

Faults are injected per route (``submit``, ``status``, ``stream``, ``result``, ``cancel``, ``file``), each a given
number of ``times``: an HTTP status with headers/body, a connection dropped mid-response, or malformed JSON.
Every call is recorded in ``calls`` (route, method, path, whether it carried the right key) for assertions.

Usage::

    with FalStandIn(Scenario(faults=[Fault("status", status=503)])) as server:
        os.environ["AURAFLOW_FAL_QUEUE_URL"] = server.url
        ...
        assert server.count("submit") == 1
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

DEFAULT_KEY = "standin-key-id:standin-key-secret-0123456789"


@dataclass
class Fault:
    """Answer the next ``times`` calls of ``route`` wrongly.

    ``kind``: ``"status"`` (``status``, ``headers``, ``body``), ``"drop"`` (promise a body, send a few bytes and
    close the connection), ``"malformed"`` (200 with a body that is not JSON).
    """

    route: str
    kind: str = "status"
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: str = '{"detail": "stand-in fault"}'
    times: int = 1


@dataclass
class Scenario:
    """What the stand-in does; the defaults are a healthy request that takes about 0.1 s."""

    key: str = DEFAULT_KEY
    queue_positions: Sequence[int] = (2, 1, 0)
    logs: Sequence[str] = ("loading model", "step 25/50", "step 50/50")
    step: float = 0.015
    never_finish: bool = False
    stream: bool = True  # serve /status/stream; False -> 404 there, clients must poll
    keepalive: float = 15.0  # seconds between SSE comment lines
    # the result: None -> an aura-flow output with ``num_images`` images; or a fixed status and JSON body
    result_status: int = 200
    result_body: Any = None
    image_mode: str = "url"  # "url" (served at /files/...) or "data" (data URIs, as with sync_mode)
    image_size: tuple[int, int] = (32, 24)
    image_content_type: str = "image/png"
    faults: list[Fault] = field(default_factory=list)


@dataclass
class Call:
    route: str
    method: str
    path: str
    query: str
    authorized: bool
    has_authorization: bool
    at: float


@dataclass
class _Request:
    request_id: str
    app_path: str
    arguments: dict[str, Any]
    submitted: float
    cancelled: bool = False


def png_bytes(size: tuple[int, int], index: int = 0, fmt: str = "PNG") -> bytes:
    """A small solid image whose colour depends on ``index`` (so tests can tell images apart)."""
    from PIL import Image

    colour = ((50 * index + 40) % 256, 120, 200)
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return buf.getvalue()


class FalStandIn:
    """The server; a context manager that starts and stops it (see the module docstring)."""

    def __init__(self, scenario: Scenario | None = None) -> None:
        self.scenario = scenario or Scenario()
        self.calls: list[Call] = []
        self.requests: dict[str, _Request] = {}
        self.cancelled: list[str] = []
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()
        self._file_cache: dict[int, bytes] = {}

    # -- lifecycle -------------------------------------------------------------------------------------------

    def __enter__(self) -> FalStandIn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        ready = threading.Event()
        errors: list[BaseException] = []
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._setup())
            except BaseException as exc:  # report to the starting thread
                errors.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            assert self._runner is not None
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="fal-standin", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fal stand-in did not start within 10 s")
        if errors:
            raise errors[0]

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    async def _setup(self) -> None:
        app = web.Application()
        app.router.add_put("/{app:.+}/requests/{rid}/cancel", self._cancel)
        app.router.add_get("/{app:.+}/requests/{rid}/status/stream", self._stream)
        app.router.add_get("/{app:.+}/requests/{rid}/status", self._status)
        app.router.add_get("/files/{rid}/{index}", self._file)
        app.router.add_get("/{app:.+}/requests/{rid}", self._result)
        app.router.add_post("/{app:.+}", self._submit)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    # -- what tests read -------------------------------------------------------------------------------------

    def count(self, route: str, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for c in self.calls if c.route == route and (method is None or c.method == method))

    def routes(self) -> list[str]:
        with self._lock:
            return [c.route for c in self.calls]

    def completed_at(self, request_id: str) -> float:
        """The ``perf_counter`` instant the request turns COMPLETED."""
        req = self.requests[request_id]
        sc = self.scenario
        return req.submitted + sc.step * (len(sc.queue_positions) + len(sc.logs))

    # -- helpers ---------------------------------------------------------------------------------------------

    def _record(self, route: str, request: web.Request) -> Call:
        auth = request.headers.get("Authorization")
        call = Call(route=route, method=request.method, path=request.path, query=request.query_string,
                    authorized=auth == f"Key {self.scenario.key}", has_authorization=auth is not None,
                    at=time.perf_counter())
        with self._lock:
            self.calls.append(call)
        return call

    def _take_fault(self, route: str) -> Fault | None:
        with self._lock:
            for fault in self.scenario.faults:
                if fault.route == route and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    async def _apply_fault(self, fault: Fault, request: web.Request) -> web.StreamResponse:
        if fault.kind == "malformed":
            return web.Response(status=200, text='{"status": "IN_QUEUE", "queue_posit', content_type="application/json")
        if fault.kind == "drop":
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            resp.content_length = 4096
            await resp.prepare(request)
            await resp.write(b'{"status": "IN_PROG')
            assert request.transport is not None
            request.transport.close()
            return resp
        return web.Response(status=fault.status, text=fault.body, headers=fault.headers,
                            content_type=None if "Content-Type" in fault.headers else "application/json")

    def _urls(self, request: web.Request, app_path: str, rid: str) -> dict[str, str]:
        root = f"{self.url}/{app_path}/requests/{rid}"
        return {"request_id": rid, "response_url": root, "status_url": f"{root}/status",
                "cancel_url": f"{root}/cancel"}

    def _state(self, req: _Request, with_logs: bool) -> dict[str, Any]:
        sc = self.scenario
        n = int((time.perf_counter() - req.submitted) / sc.step) if sc.step > 0 else 10**9
        logs = [{"message": m, "level": "INFO", "source": "user", "timestamp": "2025-01-01T00:00:00"}
                for m in sc.logs]
        if req.cancelled:
            return {"status": "COMPLETED", "logs": logs if with_logs else None, "metrics": {},
                    "error": "Request cancelled", "error_type": "request_cancelled"}
        if n < len(sc.queue_positions):
            return {"status": "IN_QUEUE", "queue_position": sc.queue_positions[n]}
        shown = n - len(sc.queue_positions)
        if sc.never_finish or shown < len(sc.logs):
            return {"status": "IN_PROGRESS", "logs": logs[: min(shown, len(logs))] if with_logs else None}
        return {"status": "COMPLETED", "logs": logs if with_logs else None, "metrics": {"inference_time": 0.1},
                "error": None, "error_type": None}

    def _lookup(self, request: web.Request) -> _Request | None:
        return self.requests.get(request.match_info["rid"])

    def _unauthorized(self) -> web.Response:
        return web.json_response({"detail": "No user found for Key ID and Secret"}, status=401)

    @staticmethod
    def _wants_logs(request: web.Request) -> bool:
        return request.query.get("logs", "0").lower() in ("1", "true")

    # -- routes ----------------------------------------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        call = self._record("submit", request)
        if not call.authorized:
            return self._unauthorized()
        fault = self._take_fault("submit")
        if fault:
            return await self._apply_fault(fault, request)
        try:
            arguments = await request.json()
        except ValueError:
            return web.json_response({"detail": "body is not JSON"}, status=400)
        rid = str(uuid.uuid4())
        app_path = request.match_info["app"]
        self.requests[rid] = _Request(rid, app_path, arguments, time.perf_counter())
        positions = self.scenario.queue_positions
        body = {**self._urls(request, "/".join(app_path.split("/")[:2]), rid), "status": "IN_QUEUE",
                "queue_position": positions[0] if positions else 0}
        return web.json_response(body)

    async def _status(self, request: web.Request) -> web.StreamResponse:
        call = self._record("status", request)
        if not call.authorized:
            return self._unauthorized()
        fault = self._take_fault("status")
        if fault:
            return await self._apply_fault(fault, request)
        req = self._lookup(request)
        if req is None:
            return web.json_response({"detail": "Request not found"}, status=404)
        state = self._state(req, self._wants_logs(request))
        state.update(self._urls(request, request.match_info["app"], req.request_id))
        return web.json_response(state, status=200 if state["status"] == "COMPLETED" else 202)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        call = self._record("stream", request)
        if not call.authorized:
            return self._unauthorized()
        fault = self._take_fault("stream")
        if fault:
            return await self._apply_fault(fault, request)
        if not self.scenario.stream:
            return web.json_response({"detail": "Not Found"}, status=404)
        req = self._lookup(request)
        if req is None:
            return web.json_response({"detail": "Request not found"}, status=404)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream",
                                                       "Cache-Control": "no-cache"})
        await resp.prepare(request)
        sc = self.scenario
        with_logs = self._wants_logs(request)
        last: str | None = None
        last_write = time.perf_counter()
        # Bounded: ends at COMPLETED, or when the client goes away (write fails), or after 10 minutes.
        while time.perf_counter() - req.submitted < 600:
            state = self._state(req, with_logs)
            text = json.dumps(state)
            if text != last:
                await resp.write(f"data: {text}\n\n".encode())
                last, last_write = text, time.perf_counter()
                if state["status"] == "COMPLETED":
                    break
            elif time.perf_counter() - last_write >= sc.keepalive:
                await resp.write(b": keep-alive\n\n")
                last_write = time.perf_counter()
            # sleep until the next transition (exact, so completion is reported on time), at most 50 ms
            elapsed = time.perf_counter() - req.submitted
            next_edge = (int(elapsed / sc.step) + 1) * sc.step if sc.step > 0 else elapsed
            await asyncio.sleep(min(max(next_edge - elapsed, 0.0), 0.05))
        await resp.write_eof()
        return resp

    async def _result(self, request: web.Request) -> web.StreamResponse:
        call = self._record("result", request)
        if not call.authorized:
            return self._unauthorized()
        fault = self._take_fault("result")
        if fault:
            return await self._apply_fault(fault, request)
        req = self._lookup(request)
        if req is None:
            return web.json_response({"detail": "Request not found"}, status=404)
        if self._state(req, False)["status"] != "COMPLETED":
            return web.json_response({"detail": "Request is still in progress"}, status=400)
        sc = self.scenario
        if sc.result_body is not None or sc.result_status != 200:
            return web.json_response(sc.result_body, status=sc.result_status)
        count = int(req.arguments.get("num_images", 1) or 1)
        images = []
        for i in range(count):
            if sc.image_mode == "data":
                url = f"data:{sc.image_content_type};base64," + base64.b64encode(self._image(i)).decode()
            else:
                url = f"{self.url}/files/{req.request_id}/{i}.png"
            images.append({"url": url, "content_type": sc.image_content_type, "file_name": f"{i}.png",
                           "width": sc.image_size[0], "height": sc.image_size[1]})
        seed = req.arguments.get("seed", 1234)
        prompt = str(req.arguments.get("prompt", ""))
        if req.arguments.get("expand_prompt", True):
            prompt += ", highly detailed"
        return web.json_response({"images": images, "seed": seed, "prompt": prompt})

    def _image(self, index: int) -> bytes:
        if index not in self._file_cache:
            fmt = "JPEG" if self.scenario.image_content_type == "image/jpeg" else "PNG"
            self._file_cache[index] = png_bytes(self.scenario.image_size, index, fmt)
        return self._file_cache[index]

    async def _file(self, request: web.Request) -> web.StreamResponse:
        self._record("file", request)
        fault = self._take_fault("file")
        if fault:
            return await self._apply_fault(fault, request)
        index = int(request.match_info["index"].split(".")[0])
        return web.Response(body=self._image(index), content_type=self.scenario.image_content_type)

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        call = self._record("cancel", request)
        if not call.authorized:
            return self._unauthorized()
        fault = self._take_fault("cancel")
        if fault:
            return await self._apply_fault(fault, request)
        req = self._lookup(request)
        if req is None:
            return web.json_response({"status": "NOT_FOUND"}, status=404)
        if self._state(req, False)["status"] == "COMPLETED":
            return web.json_response({"status": "ALREADY_COMPLETED"}, status=400)
        req.cancelled = True
        self.cancelled.append(req.request_id)
        return web.json_response({"status": "CANCELLATION_REQUESTED"}, status=202)
