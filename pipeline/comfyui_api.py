"""Driving a running ComfyUI headless: queue an API-format workflow, follow it, save its images.

Why in the core: scripts and CI jobs run our workflows (``workflows/*.api.json``) against a ComfyUI server
without a browser. This is an HTTP/websocket client of ComfyUI's public API (``POST /prompt``, ``/ws``,
``GET /history/{id}``, ``GET /view``); it does not import ComfyUI. The websocket carries ``executing``,
``progress``, ``executed`` and ``execution_success`` / ``execution_error`` / ``execution_interrupted`` messages
for our ``client_id``; binary frames (previews) are ignored.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .errors import InvalidInputError, RemoteError, RemoteTimeoutError

ProgressCallback = Callable[[str, int, int], None]
"""``on_progress(node_id, value, max)`` for every ComfyUI progress message."""


@dataclass(frozen=True)
class WorkflowRun:
    """A finished run: its prompt id, the files written, and the raw history entry."""

    prompt_id: str
    files: tuple[Path, ...]
    history: Mapping[str, Any]


def load_api_workflow(path: Path, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Read an API-format workflow (``{"<id>": {"class_type", "inputs"}}``), with ``{node_id: {input: value}}``."""
    try:
        graph = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError("workflow", str(path), f"a readable API-format workflow JSON file ({exc})") from exc
    if not isinstance(graph, dict) or not all(isinstance(n, dict) and "class_type" in n for n in graph.values()):
        raise InvalidInputError("workflow", str(path), "API format: {node_id: {class_type, inputs}} (export it with "
                                "'Export (API)' in ComfyUI); the UI format with 'nodes' and 'links' is not accepted")
    for node_id, values in (overrides or {}).items():
        if node_id not in graph:
            raise InvalidInputError("override", node_id, f"a node id of the workflow ({', '.join(graph)})")
        graph[node_id].setdefault("inputs", {}).update(values)
    return graph


async def run_workflow(server: str, graph: Mapping[str, Any], out_dir: Path, *,
                       on_progress: ProgressCallback | None = None, timeout: float = 3600.0) -> WorkflowRun:
    """Queue ``graph`` on the ComfyUI at ``server``, wait for it, download every output image into ``out_dir``."""
    import aiohttp

    base = server.rstrip("/")
    client_id = uuid.uuid4().hex
    ws_url = base.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + f"/ws?clientId={client_id}"
    async with aiohttp.ClientSession() as session, httpx.AsyncClient(base_url=base, timeout=60.0) as http:
        # connect the websocket first so no message of our prompt is missed
        async with session.ws_connect(ws_url, heartbeat=30.0) as ws:
            answer = await http.post("/prompt", json={"prompt": dict(graph), "client_id": client_id})
            body = _json(answer)
            if answer.status_code != 200:
                raise RemoteError(f"ComfyUI refused the workflow: {_describe_error(body)}", status=answer.status_code,
                                  detail=body)
            prompt_id = str(body["prompt_id"])
            try:
                await asyncio.wait_for(_follow(ws, prompt_id, on_progress), timeout)
            except asyncio.TimeoutError as exc:
                raise RemoteTimeoutError(f"workflow {prompt_id} did not finish within {timeout:.0f} s",
                                         request_id=prompt_id) from exc
        history = _json(await http.get(f"/history/{prompt_id}")).get(prompt_id, {})
        files = await _download_outputs(http, history, Path(out_dir))
    return WorkflowRun(prompt_id, files, history)


async def _follow(ws: Any, prompt_id: str, on_progress: ProgressCallback | None) -> None:
    import aiohttp

    async for message in ws:
        if message.type != aiohttp.WSMsgType.TEXT:
            continue  # previews arrive as binary frames
        event = json.loads(message.data)
        kind, data = event.get("type"), event.get("data") or {}
        if data.get("prompt_id") not in (None, prompt_id):
            continue
        if kind == "progress" and on_progress is not None:
            on_progress(str(data.get("node")), int(data.get("value", 0)), int(data.get("max", 0)))
        elif kind == "execution_error":
            raise RemoteError(f"ComfyUI node {data.get('node_id')} ({data.get('node_type')}) failed: "
                              f"{data.get('exception_message', '').strip()}", request_id=prompt_id, detail=data)
        elif kind == "execution_interrupted":
            raise RemoteError("the workflow was interrupted in ComfyUI", request_id=prompt_id)
        elif kind == "execution_success" or (kind == "executing" and data.get("node") is None):
            return
    raise RemoteError("ComfyUI closed the websocket before the workflow finished", request_id=prompt_id)


async def _download_outputs(http: httpx.AsyncClient, history: Mapping[str, Any], out_dir: Path) -> tuple[Path, ...]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for node_output in (history.get("outputs") or {}).values():
        for image in node_output.get("images", ()):
            if image.get("type") not in ("output", None):
                continue  # previews and temp files are not results
            params = {k: image.get(k, "") for k in ("filename", "subfolder", "type")}
            response = await http.get("/view", params=params)
            if response.status_code != 200:
                raise RemoteError(f"could not download {params['filename']} from ComfyUI",
                                  status=response.status_code)
            path = out_dir / Path(str(params["filename"])).name
            path.write_bytes(response.content)
            files.append(path)
    return tuple(files)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise RemoteError(f"ComfyUI answered {response.status_code} with non-JSON", status=response.status_code
                          ) from exc
    return body if isinstance(body, dict) else {}


def _describe_error(body: Mapping[str, Any]) -> str:
    """ComfyUI's validation answer as one line: the error, then each node's errors (which input, what is wrong)."""
    error = body.get("error") or {}
    parts = [str(error.get("message", "unknown error")).strip()]
    for node_id, node in (body.get("node_errors") or {}).items():
        for item in node.get("errors", ()):
            parts.append(f"node {node_id} ({node.get('class_type')}): {item.get('details') or item.get('message')}")
    return "; ".join(parts)


__all__ = ["WorkflowRun", "load_api_workflow", "run_workflow"]
