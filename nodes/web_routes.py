"""HTTP routes for the web extension: the fal key setting (``web/js/fal_key_setting.js``).

``/auraflow/fal-key`` (ComfyUI also serves it as ``/api/auraflow/fal-key``, which the frontend's ``fetchApi`` uses):

- ``GET`` → ``{"set": bool, "source": "env" | "file" | null}`` plus ``"problem"`` when the key file exists but
  cannot be used (e.g. readable by others). Never the key.
- ``POST`` ``{"key": "<key_id>:<key_secret>"}`` (``Content-Type: application/json``, at most ``MAX_BODY`` bytes) →
  stores it in the user-level key file (``pipeline.fal.auth.write_key_file``: 0600, outside the pack folder)
  and answers ``{"set": true, "source": "file", "shadowed_by_env": bool}``; an environment key still wins.
- ``DELETE`` → removes the key file: ``{"set": bool, "source": ..., "removed": bool}``.

Refusals: 405 (other methods), 413 (body too large), 415 (not JSON: a cross-site form cannot send JSON without a
CORS preflight, which ComfyUI does not grant), 400 (bad JSON, no/empty key, spaces or control characters). No
answer, log line or error message contains the key. aiohttp is imported inside functions, so the pack imports
without it; :func:`register_with_comfyui` is a no-op outside ComfyUI.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from ..pipeline.errors import MissingCredentialsError
from ..pipeline.fal import auth

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("ComfyUI-AuraFlow")

ROUTE = "/auraflow/fal-key"
# A fal key is ~70 characters; 4 KiB is plenty for {"key": ...} and small enough to refuse junk unread.
MAX_BODY = 4096
METHODS = ("GET", "POST", "DELETE")
_NO_STORE = {"Cache-Control": "no-store"}


def _json(data: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    from aiohttp import web

    return web.json_response(data, status=status, headers={**_NO_STORE, **(headers or {})})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"error": message}, status=status, headers=headers)


def key_status() -> dict[str, Any]:
    """What the setting shows: whether a key is set and where from. Reads the key only to validate it."""
    source = auth.key_source()
    status: dict[str, Any] = {"set": False, "source": source}
    if source is None:
        return status
    try:
        auth.read_key()
    except MissingCredentialsError as exc:
        status["problem"] = str(exc)  # auth's messages name files and variables, never the key
    else:
        status["set"] = True
    return status


async def _read_body(request: web.Request) -> bytes | None:
    """The body, or None when it is larger than MAX_BODY (checked before and while reading)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(MAX_BODY + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            return None


def _key_from_body(body: bytes) -> str:
    """The key in ``{"key": ...}``; ValueError with a message that never quotes the body."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError('the body is not JSON; send {"key": "<key_id>:<key_secret>"}') from None
    if not isinstance(data, dict) or not isinstance(data.get("key"), str):
        raise ValueError('send a JSON object {"key": "<key_id>:<key_secret>"} with the key as a string')
    key = data["key"].strip()
    if not key:
        raise ValueError("the key is empty")
    if not all(33 <= ord(ch) < 127 for ch in key):
        raise ValueError("the key contains spaces, control or non-ASCII characters; a fal key is "
                         "'<key_id>:<key_secret>' in plain ASCII")
    return key


async def _post(request: web.Request) -> web.Response:
    if request.content_type != "application/json":
        return _error(415, "send the key as JSON (Content-Type: application/json)")
    body = await _read_body(request)
    if body is None:
        return _error(413, f"the body is larger than {MAX_BODY} bytes")
    try:
        key = _key_from_body(body)
        path = auth.write_key_file(key)
    except ValueError as exc:
        return _error(400, str(exc))
    except MissingCredentialsError as exc:  # the same checks as read_key; its messages never quote the key
        return _error(400, str(exc))
    except OSError as exc:
        log.warning("could not write the fal key file %s: %s", auth.key_file_path(), exc.strerror)
        return _error(500, f"could not write the key file {auth.key_file_path()}: {exc.strerror}")
    shadowed = auth.key_source() == "env"
    note = " (a key in the environment still takes precedence)" if shadowed else ""
    log.info("fal key stored in %s%s", path, note)
    return _json({"set": True, "source": "file", "shadowed_by_env": shadowed})


async def _delete(request: web.Request) -> web.Response:
    try:
        removed = auth.clear_key_file()
    except OSError as exc:
        return _error(500, f"could not remove the key file {auth.key_file_path()}: {exc.strerror}")
    if removed:
        log.info("fal key file %s removed", auth.key_file_path())
    return _json({**key_status(), "removed": removed})


async def fal_key_handler(request: web.Request) -> web.Response:
    """One handler for every method on ROUTE, so any other method gets a 405 with ``Allow``."""
    if request.method == "GET":
        return _json(key_status())
    if request.method == "POST":
        return await _post(request)
    if request.method == "DELETE":
        return await _delete(request)
    return _error(405, f"method {request.method} is not allowed here", headers={"Allow": ", ".join(METHODS)})


def register(routes: Any) -> None:
    """Add ROUTE to an aiohttp ``RouteTableDef`` (ComfyUI's ``PromptServer.instance.routes``) or router.

    A second call for the same table does nothing: aiohttp refuses a duplicate ``*`` route at start-up, which
    would stop ComfyUI from starting if the pack were ever imported twice.
    """
    if hasattr(routes, "add_route"):  # an app router (UrlDispatcher)
        if any(getattr(r, "resource", None) is not None and r.resource.canonical == ROUTE for r in routes.routes()):
            return
        routes.add_route("*", ROUTE, fal_key_handler)
        return
    if any(getattr(r, "path", None) == ROUTE for r in routes):
        return
    routes.route("*", ROUTE)(fal_key_handler)


def register_with_comfyui() -> bool:
    """Register on ComfyUI's server when there is one; True if registered. Never raises (import must not fail)."""
    try:
        from server import PromptServer
    except Exception:  # not inside ComfyUI (or an unrelated module named `server`)
        return False
    routes = getattr(getattr(PromptServer, "instance", None), "routes", None)
    if routes is None:
        return False
    try:
        register(routes)
    except Exception:
        log.warning("could not add the %s route; the fal key setting will not work", ROUTE, exc_info=True)
        return False
    return True
