"""A stand-in for a running ComfyUI's HTTP/websocket API on 127.0.0.1 (real HTTP, real websocket).

It implements what a headless client uses: ``POST /prompt`` (400 with ``node_errors`` for an unknown class),
``/ws?clientId=`` (``execution_start``, ``executing``, ``progress`` x steps, ``executed``, ``execution_success``,
then ``executing`` with node None, plus a binary preview frame), ``GET /history/{id}`` and ``GET /view``.
Runs in a daemon thread with its own event loop, like ``fal_standin``.
"""

from __future__ import annotations

import asyncio
import io
import threading
import uuid
from typing import Any

from aiohttp import WSMsgType, web
from PIL import Image

KNOWN = {"AuraFlowLoader", "AuraFlowTextEncode", "AuraFlowSampler", "AuraFlowDecode", "AuraFlowGenerate",
         "SaveImage", "VAEDecode", "EmptyLatentImage"}


class ComfyUIStandIn:
    def __init__(self, steps: int = 3, fail_node: str | None = None) -> None:
        self.steps = steps
        self.fail_node = fail_node
        self.prompts: list[dict[str, Any]] = []
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._history: dict[str, Any] = {}
        self._png = io.BytesIO()
        Image.new("RGB", (16, 16), (200, 30, 30)).save(self._png, format="PNG")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.url = ""

    def __enter__(self) -> ComfyUIStandIn:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/prompt", self._prompt)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/history/{id}", self._history_get)
        app.router.add_get("/view", self._view)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets[request.query["clientId"]] = ws
        async for message in ws:
            if message.type == WSMsgType.CLOSE:
                break
        return ws

    async def _prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        graph = body["prompt"]
        unknown = {i: n["class_type"] for i, n in graph.items() if n["class_type"] not in KNOWN}
        if unknown:
            node_id, cls = next(iter(unknown.items()))
            return web.json_response({"error": {"type": "invalid_prompt", "message": f"Cannot execute because "
                                                f"node {cls} does not exist."},
                                      "node_errors": {node_id: {"errors": [{"message": "unknown node",
                                                                            "details": cls}],
                                                                "class_type": cls}}}, status=400)
        self.prompts.append(body)
        prompt_id = uuid.uuid4().hex
        asyncio.get_running_loop().create_task(self._execute(body["client_id"], prompt_id, graph))
        return web.json_response({"prompt_id": prompt_id, "number": len(self.prompts), "node_errors": {}})

    async def _execute(self, client_id: str, prompt_id: str, graph: dict[str, Any]) -> None:
        ws = self._sockets[client_id]

        async def send(kind: str, **data: Any) -> None:
            await ws.send_json({"type": kind, "data": {"prompt_id": prompt_id, **data}})

        await send("execution_start")
        for node_id, node in graph.items():
            await send("executing", node=node_id)
            if node["class_type"] == self.fail_node:
                await send("execution_error", node_id=node_id, node_type=node["class_type"],
                           exception_message="AuraFlowSampler: width=1000 is not allowed: a multiple of 16.")
                return
            if node["class_type"] in ("AuraFlowSampler", "AuraFlowGenerate"):
                for step in range(1, self.steps + 1):
                    await send("progress", node=node_id, value=step, max=self.steps)
                    await ws.send_bytes(b"\x00\x00\x00\x01preview")
        outputs = {i: {"images": [{"filename": f"AuraFlow_{i}_00001_.png", "subfolder": "", "type": "output"}]}
                   for i, n in graph.items() if n["class_type"] == "SaveImage"}
        self._history[prompt_id] = {"outputs": outputs, "status": {"status_str": "success"}}
        await send("execution_success")
        await send("executing", node=None)

    async def _history_get(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["id"]
        return web.json_response({prompt_id: self._history[prompt_id]} if prompt_id in self._history else {})

    async def _view(self, request: web.Request) -> web.Response:
        if request.query.get("type") != "output":
            return web.Response(status=404)
        return web.Response(body=self._png.getvalue(), content_type="image/png")
