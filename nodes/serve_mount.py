"""The fal ``fal-ai/aura-flow`` queue API on ComfyUI's own server, under ``/auraflow/fal`` (issue 10).

Off unless ComfyUI is started with ``AURAFLOW_SERVE_COMFY_MODEL`` set to a model name as AuraFlow Loader lists it;
then ``POST /auraflow/fal/fal-ai/aura-flow`` and the rest of :mod:`pipeline.serve.routes` are served by ComfyUI
(also under ``/api/auraflow/fal``), and clients point at it with
``AURAFLOW_FAL_QUEUE_URL=http://127.0.0.1:8188/auraflow/fal``. Each request runs as a ComfyUI prompt
(:mod:`.comfy_backend`). Settings, read once when ComfyUI imports the pack:

=========================================== ===================================================================
``AURAFLOW_SERVE_COMFY_MODEL``              the model (turns the API on); e.g. ``aura_flow_0.3.safetensors``
``AURAFLOW_SERVE_COMFY_DTYPE``              ``auto`` (default) | ``bf16`` | ``fp16`` | ``fp32``
``AURAFLOW_SERVE_COMFY_COMPONENTS``         a ``diffusers/<name>`` folder for transformer-only files
``AURAFLOW_SERVE_COMFY_OFFLOAD_TEXT_ENCODER`` / ``AURAFLOW_SERVE_COMFY_VAE_TILING``  ``1`` to turn on
``AURAFLOW_SERVE_COMFY_EXPAND_BACKEND``     what ``expand_prompt`` uses: ``template`` (default) | ``local`` | ``fal``
``AURAFLOW_SERVE_COMFY_DB``                 the SQLite queue file (default ``<ComfyUI user dir>/auraflow/fal-queue
                                            .sqlite3``: not the temp folder, which ComfyUI empties at start)
``AURAFLOW_SERVE_KEYS``                     API keys, as for ``python -m pipeline serve``
=========================================== ===================================================================

Keys: with keys set every call needs ``Authorization: Key <key>``; without keys only clients on this machine are
answered (403 otherwise), whatever ``--listen`` says, as the standalone server refuses to listen beyond loopback
without keys. When the API is off, or its settings are wrong, ``/auraflow/fal/...`` still answers, with a JSON
``detail`` saying what to set (404 when off, 500 when misconfigured) instead of ComfyUI's bare 404. A model that
is not (yet) in ComfyUI's lists is not checked here: each request then ends with a 500 naming the setting.

:func:`register_with_comfyui` never raises and does nothing outside ComfyUI; the pack's ``__init__`` calls it.
The service starts and stops with ComfyUI's aiohttp app (``on_startup``/``on_shutdown``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..pipeline.errors import AuraFlowError, InvalidInputError
from ..pipeline.expand import BACKENDS
from ..pipeline.serve import Limits, RequestStore, ServeOptions, Service, add_routes, load_keys
from .comfy_backend import ComfyModelConfig, ComfyUIBackend
from .loaders import NO_COMPONENTS, WEIGHT_DTYPES
from .sampling import MAX_BATCH, SIZE_MIN

log = logging.getLogger("ComfyUI-AuraFlow.serve")

PREFIX = "/auraflow/fal"
MODEL_ENV = "AURAFLOW_SERVE_COMFY_MODEL"
DTYPE_ENV = "AURAFLOW_SERVE_COMFY_DTYPE"
COMPONENTS_ENV = "AURAFLOW_SERVE_COMFY_COMPONENTS"
OFFLOAD_ENV = "AURAFLOW_SERVE_COMFY_OFFLOAD_TEXT_ENCODER"
TILING_ENV = "AURAFLOW_SERVE_COMFY_VAE_TILING"
EXPAND_ENV = "AURAFLOW_SERVE_COMFY_EXPAND_BACKEND"
DB_ENV = "AURAFLOW_SERVE_COMFY_DB"

OFF_DETAIL = (f"The fal-ai/aura-flow API is off in this ComfyUI. Start ComfyUI with {MODEL_ENV}=<an AuraFlow "
              "model as AuraFlow Loader lists it, e.g. aura_flow_0.3.safetensors> to serve it here.")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidInputError(name, value, "1/true/yes/on or 0/false/no/off")


def config_from_env(environ: Mapping[str, str] | None = None) -> ComfyModelConfig | None:
    """The configured model and options; None when the API is off; :class:`InvalidInputError` when wrong."""
    env = os.environ if environ is None else environ
    model = env.get(MODEL_ENV, "").strip()
    if not model:
        return None
    dtype = env.get(DTYPE_ENV, "auto").strip() or "auto"
    if dtype not in WEIGHT_DTYPES:
        raise InvalidInputError(DTYPE_ENV, dtype, " | ".join(WEIGHT_DTYPES))
    expand = env.get(EXPAND_ENV, "template").strip() or "template"
    if expand not in BACKENDS:
        raise InvalidInputError(EXPAND_ENV, expand, " | ".join(BACKENDS))
    return ComfyModelConfig(model_name=model, weight_dtype=dtype,
                            components=env.get(COMPONENTS_ENV, "").strip() or NO_COMPONENTS,
                            offload_text_encoder=_flag(env, OFFLOAD_ENV), vae_tiling=_flag(env, TILING_ENV),
                            expand_backend=expand)


def default_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the queue lives: ``$AURAFLOW_SERVE_COMFY_DB``, else ComfyUI's user directory (kept across restarts)."""
    env = os.environ if environ is None else environ
    if env.get(DB_ENV, "").strip():
        return Path(env[DB_ENV].strip()).expanduser()
    import folder_paths

    return Path(folder_paths.get_user_directory()) / "auraflow" / "fal-queue.sqlite3"


def serve_options(keys: tuple[str, ...]) -> ServeOptions:
    """The standalone defaults, with sizes and batch bounded by what AuraFlowGenerate's inputs accept (so a bad
    request is refused at submit with fal's 422, not later by ComfyUI's validation) and loopback-only without keys."""
    base = Limits()
    limits = Limits(max_images=min(base.max_images, MAX_BATCH), max_steps=base.max_steps,
                    max_guidance=base.max_guidance, min_size=max(base.min_size, SIZE_MIN), max_size=base.max_size,
                    size_multiple=base.size_multiple, max_prompt_chars=base.max_prompt_chars)
    return ServeOptions(limits=limits, keys=keys, loopback_clients_only=not keys)


def _add_unavailable(routes: Any, status: int, detail: str) -> None:
    """One catch-all under the prefix that explains, in fal's error shape, why nothing is served there."""
    from aiohttp import web

    async def unavailable(_request: web.Request) -> web.Response:
        return web.json_response({"detail": detail}, status=status, headers={"Cache-Control": "no-store"})

    routes.route("*", PREFIX + "/{tail:.*}")(unavailable)


def mount(server: Any, environ: Mapping[str, str] | None = None, *, db_path: str | Path | None = None,
          options: ServeOptions | None = None) -> Service | None:
    """Add the API (or its explanation) to ``server.routes`` and tie the service to ``server.app``'s life.

    Returns the service, or None when the API is off or misconfigured (the reason is logged and served).
    ``options`` replaces :func:`serve_options` (tests shorten delays); the keys still come from the environment.
    """
    routes = server.routes
    if any(str(getattr(route, "path", "")).startswith(PREFIX + "/") for route in routes):
        return None  # the pack imported twice: aiohttp would refuse the duplicate routes and ComfyUI not start
    try:
        config = config_from_env(environ)
        keys = load_keys(environ)
    except AuraFlowError as exc:
        log.error("AuraFlow fal API not started: %s", exc)
        _add_unavailable(routes, 500, f"The fal-ai/aura-flow API is misconfigured: {exc}")
        return None
    if config is None:
        _add_unavailable(routes, 404, OFF_DETAIL)
        return None
    try:
        store = RequestStore.open(db_path or default_db_path(environ))
    except Exception as exc:
        log.error("AuraFlow fal API not started: its queue file could not be opened: %s", exc)
        _add_unavailable(routes, 500, f"The fal-ai/aura-flow API could not open its queue file: {exc}")
        return None
    opts = serve_options(keys) if options is None else dataclasses.replace(
        options, keys=keys, loopback_clients_only=not keys)
    service = Service(store, ComfyUIBackend(config, server=server), opts)
    add_routes(routes, service, PREFIX)

    async def start(_app: Any) -> None:
        await service.start()

    async def stop(_app: Any) -> None:
        await service.stop()
        store.close()

    server.app.on_startup.append(start)
    server.app.on_shutdown.append(stop)
    log.info("AuraFlow: fal-ai/aura-flow API at %s (model %s, %s; %s)", PREFIX, config.model_name,
             config.weight_dtype, "API keys required" if keys else "this machine only: no API keys set")
    return service


def register_with_comfyui() -> bool:
    """Mount on ``PromptServer.instance`` when inside ComfyUI; True when the API is on. Never raises."""
    try:
        from server import PromptServer
    except Exception:  # not inside ComfyUI
        return False
    instance = getattr(PromptServer, "instance", None)
    if instance is None or getattr(instance, "routes", None) is None or getattr(instance, "app", None) is None:
        return False
    try:
        return mount(instance) is not None
    except Exception:
        log.warning("could not add the AuraFlow fal API routes under %s", PREFIX, exc_info=True)
        return False
