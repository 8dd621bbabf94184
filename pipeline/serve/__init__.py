"""Self-host fal's ``fal-ai/aura-flow`` queue API on your own GPU (issue 10).

Code written for fal (the official clients, our :mod:`pipeline.fal`) points at this server instead of
``queue.fal.run`` and gets the same protocol from local weights: submit, status (+ logs), SSE status stream,
result, cancel, ``fal_webhook``, ``sync_mode``. One route table (:func:`add_routes`) serves standalone
(``python -m pipeline serve``) and inside ComfyUI under a prefix.

Modules, one idea each: :mod:`.schema` (input validation, 422 bodies), :mod:`.queue` (SQLite store),
:mod:`.worker` (backend protocol, the local backend, the worker), :mod:`.webhook`, :mod:`.auth`,
:mod:`.service` (state and response bodies), :mod:`.routes` (HTTP), :mod:`.server` (app, thread, TLS).
Importing this package does not import torch; the local backend loads the model on first use.
"""

from __future__ import annotations

from .auth import KEYS_ENV, authorized, check_bind, load_keys
from .queue import RequestStore
from .routes import add_routes
from .schema import AuraFlowInput, Limits, ValidationFailed, validate_input
from .server import BackgroundServer, build_app, ssl_context
from .service import APP_ID, ServeOptions, Service
from .webhook import WebhookPolicy
from .worker import Backend, BackendOutput, ImageFile, LocalBackend

__all__ = [
    "APP_ID",
    "KEYS_ENV",
    "AuraFlowInput",
    "Backend",
    "BackendOutput",
    "BackgroundServer",
    "ImageFile",
    "Limits",
    "LocalBackend",
    "RequestStore",
    "ServeOptions",
    "Service",
    "ValidationFailed",
    "WebhookPolicy",
    "add_routes",
    "authorized",
    "build_app",
    "check_bind",
    "load_keys",
    "ssl_context",
    "validate_input",
]
