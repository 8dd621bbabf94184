"""The one route table of the fal-compatible server, mountable on any aiohttp router under any prefix.

``add_routes(app.router, service, prefix="")`` serves standalone; ``add_routes(PromptServer.instance.routes
…, prefix="/auraflow/fal")`` serves inside ComfyUI. Authentication is checked per handler (not by an app
middleware) so it holds wherever the table is mounted. Routes, relative to the prefix:

=======  =================================================  =============================================
POST     /fal-ai/aura-flow                                  submit; ``?fal_webhook=<url>``
GET      /fal-ai/aura-flow/requests/{id}/status             ``?logs=1``; 202 IN_QUEUE/IN_PROGRESS, 200 COMPLETED
GET      /fal-ai/aura-flow/requests/{id}/status/stream      the same as server-sent events; closes after COMPLETED
GET      /fal-ai/aura-flow/requests/{id}                    the result (its own status code: 200, 422, 500 …)
PUT      /fal-ai/aura-flow/requests/{id}/cancel             queued: removed; running: stopped within one step
GET      /files/{id}/{token}/{name}                         output images (no key: the URL is the secret)
GET      /health                                            queue length, for probes
=======  =================================================  =============================================

Image URLs carry a per-request random token instead of needing the key, like fal's CDN URLs: clients (ours
included) download images without credentials so the key never travels to a file host.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ..fal.endpoints import check_request_id, is_loopback
from ..fal.retry import FAL_REQUEST_ID_HEADER as REQUEST_ID_HEADER
from .auth import authorized
from .queue import DONE, QUEUED, RUNNING
from .schema import ValidationFailed, error, validate_input
from .service import APP_ID, Service

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

UNAUTHORIZED = {"detail": "Missing or invalid key: send 'Authorization: Key <key>' with a key configured on this "
                          "server (AURAFLOW_SERVE_KEYS or its key file)."}
NOT_FOUND = {"detail": "Request not found"}
LOOPBACK_ONLY = {"detail": "Without API keys this server answers only clients on its own machine: set "
                           "AURAFLOW_SERVE_KEYS=<key>[,<key>...] to serve others (they send 'Authorization: Key "
                           "<key>')."}


def base_url(request: web.Request, prefix: str, trust_forwarded: bool) -> str:
    """Where this client reached us (scheme, host, port, prefix): every URL we hand out starts here."""
    scheme, host = request.scheme, request.host
    if trust_forwarded:
        scheme = request.headers.get("X-Forwarded-Proto", scheme).split(",")[0].strip() or scheme
        host = request.headers.get("X-Forwarded-Host", host).split(",")[0].strip() or host
    return f"{scheme}://{host}{prefix}"


def _json(body: Any, status: int = 200, request_id: str | None = None) -> web.Response:
    """A JSON reply. Replies about one request carry its id in ``x-fal-request-id``, as fal's do: the JS client
    takes ``result.requestId`` from that header, and both clients treat its absence on a 5xx as a proxy error."""
    headers = {"Cache-Control": "no-store"}
    if request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id
    return web.json_response(body, status=status, headers=headers)


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it exceeds ``limit`` bytes (checked while reading: chunked bodies have no length)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks, size = [], 0
    # Ends at EOF, or as soon as the body passes the limit.
    while True:
        chunk = await request.content.read(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def add_routes(router: web.UrlDispatcher | web.RouteTableDef, service: Service, prefix: str = "") -> None:
    """Register the table on ``router`` (an app's ``UrlDispatcher`` or a ``RouteTableDef``) under ``prefix``."""
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    opts = service.options

    def guard(handler: Callable[[web.Request, str], Awaitable[web.StreamResponse]], *, needs_key: bool = True
              ) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            if opts.loopback_clients_only and not is_loopback(request.remote):
                return _json(LOOPBACK_ONLY, 403)
            if needs_key and not authorized(request.headers.get("Authorization"), opts.keys):
                return _json(UNAUTHORIZED, 401)
            return await handler(request, base_url(request, prefix, opts.trust_forwarded))

        wrapped.__name__ = handler.__name__
        return wrapped

    def lookup(request: web.Request) -> Any:
        try:
            rid = check_request_id(request.match_info["rid"])
        except ValueError:
            return None
        return service.store.get(rid)

    async def submit(request: web.Request, base: str) -> web.StreamResponse:
        raw = await _read_body(request, opts.max_body)
        if raw is None:
            return _json({"detail": f"Request body larger than {opts.max_body} bytes"}, 413)
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return _json({"detail": [error(None, "Invalid JSON", "json_invalid")]}, 422)
        try:
            payload = validate_input(body, opts.limits)
        except ValidationFailed as exc:
            return _json({"detail": exc.detail}, 422)
        webhook = request.query.get("fal_webhook")
        if webhook is not None:
            parts = urlsplit(webhook)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                return _json({"detail": [error("fal_webhook", "URL scheme should be 'http' or 'https'",
                                               "url_scheme", webhook, where="query")]}, 422)
        if service.queue_full():
            return _json({"detail": "The queue is full; try again later"}, 429)
        record = service.submit(payload.to_json(), webhook=webhook, base_url=base)
        reply = {"status": "IN_QUEUE", "queue_position": service.store.position(record),
                 **service.urls(base, record.id)}
        if webhook is not None:
            reply["gateway_request_id"] = record.id
        return _json(reply, request_id=record.id)

    async def status(request: web.Request, base: str) -> web.StreamResponse:
        record = lookup(request)
        if record is None:
            return _json(NOT_FOUND, 404)
        with_logs = request.query.get("logs", "0").lower() in ("1", "true")
        code, body = service.status_body(record, with_logs=with_logs, base_url=base)
        return _json(body, code, record.id)

    async def stream(request: web.Request, base: str) -> web.StreamResponse:
        record = lookup(request)
        if record is None:
            return _json(NOT_FOUND, 404)
        with_logs = request.query.get("logs", "0").lower() in ("1", "true")
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream",
                                                       "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                                       REQUEST_ID_HEADER: record.id})
        await resp.prepare(request)
        last = None
        started = last_write = time.monotonic()
        try:
            # Ends at COMPLETED, when the client leaves (a write fails), or after max_stream_seconds.
            while time.monotonic() - started < opts.max_stream_seconds:
                record = service.store.get(record.id)
                if record is None:  # expired while streaming
                    break
                _, body = service.status_body(record, with_logs=with_logs, base_url=base)
                text = json.dumps(body)
                if text != last:
                    await resp.write(f"data: {text}\n\n".encode())
                    last, last_write = text, time.monotonic()
                    if record.state == DONE:
                        break
                elif time.monotonic() - last_write >= opts.keepalive:
                    await resp.write(b": keep-alive\n\n")
                    last_write = time.monotonic()
                wait = opts.keepalive - (time.monotonic() - last_write)
                await service.notifier.wait(max(min(wait, opts.keepalive), 0.01))
            await resp.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            pass
        return resp

    async def result(request: web.Request, base: str) -> web.StreamResponse:
        record = lookup(request)
        if record is None:
            return _json(NOT_FOUND, 404)
        if record.state in (QUEUED, RUNNING):
            return _json({"detail": "Request is still in progress"}, 400, record.id)
        return _json(service.result_body(record, base), record.result_status or 200, record.id)

    async def cancel(request: web.Request, base: str) -> web.StreamResponse:
        record = lookup(request)
        if record is None:
            return _json({"status": "NOT_FOUND"}, 404)
        code, body = service.cancel(record.id)
        return _json(body, code, record.id)

    async def file(request: web.Request, base: str) -> web.StreamResponse:
        record = lookup(request)
        name = request.match_info["name"]
        token = request.match_info["token"]
        index_text = name.rsplit("-", 1)[-1].removesuffix(".png")
        if (record is None or not hmac.compare_digest(token.encode(), record.file_token.encode())
                or not index_text.isdigit()):
            return _json({"detail": "File not found"}, 404)
        stored = service.store.get_file(record.id, int(index_text))
        if stored is None:
            return _json({"detail": "File not found"}, 404)
        return web.Response(body=stored.data, content_type=stored.content_type,
                            headers={"Cache-Control": "private, max-age=3600"})

    async def health(request: web.Request, base: str) -> web.StreamResponse:
        running = service.worker.running
        return _json({"ok": True, "queued": service.store.count(QUEUED),
                      "running": running.request_id if running else None})

    root = f"{prefix}/{APP_ID}"
    requests = f"{root}/requests/{{rid}}"
    table = [
        ("POST", root, guard(submit)),
        ("GET", f"{requests}/status/stream", guard(stream)),
        ("GET", f"{requests}/status", guard(status)),
        ("PUT", f"{requests}/cancel", guard(cancel)),
        ("GET", requests, guard(result)),
        ("GET", f"{prefix}/files/{{rid}}/{{token}}/{{name}}", guard(file, needs_key=False)),
        ("GET", f"{prefix}/health", guard(health)),
    ]
    for method, path, handler in table:
        if isinstance(router, web.RouteTableDef):
            # ComfyUI's PromptServer.instance.routes: a table it adds to its app when the server starts.
            router.route(method, path)(handler)
        else:
            router.add_route(method, path, handler)
