"""Structured events for the pack's web extension (``web/js/``), sent over ComfyUI's websocket.

``send_progress_text`` (``_common``) puts one line of text on a node, which any frontend shows. These events
carry the same news as data, so ``web/js/fal_status.js`` can show a log tail and a ticking clock, and
``web/js/prompt_display.js`` can show the prompt a generation node used. Event names and payloads are the
contract with the JS (``web/js/auraflow_logic.js``): change both together.

Outside ComfyUI (pytest, scripts) every function here does nothing. Nothing here may carry the fal key.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("ComfyUI-AuraFlow")

FAL_STATUS_EVENT = "auraflow.fal_status"
PROMPT_EVENT = "auraflow.prompt"
# fal's logs are cumulative: send only the tail, each line cut, so a chatty model cannot flood the websocket.
LOG_TAIL_LINES = 20
LOG_LINE_CHARS = 300


def send_ui_event(event: str, data: dict[str, Any]) -> None:
    """Send ``data`` to the browser that queued the running prompt (``PromptServer.send_sync``); no-op outside."""
    try:
        from server import PromptServer
    except ImportError:
        return
    instance = getattr(PromptServer, "instance", None)
    if instance is None or not hasattr(instance, "send_sync"):
        return
    try:
        instance.send_sync(event, data, getattr(instance, "client_id", None))
    except Exception:  # the display is a nicety: it must never fail a generation
        log.debug("could not send %s", event, exc_info=True)


def send_fal_status(node_id: str | None, *, phase: str, elapsed_s: float, position: int | None = None,
                    logs: Sequence[str] = (), request_id: str | None = None, error: str | None = None) -> None:
    """The remote node's state: ``phase`` is submitting | queued | running | downloading | failed.

    ``position`` counts from 1 (the next to run is 1); ``logs`` are the model's log messages so far.
    """
    if node_id is None:
        return
    tail = [str(line)[:LOG_LINE_CHARS] for line in list(logs)[-LOG_TAIL_LINES:]]
    send_ui_event(FAL_STATUS_EVENT, {"node": str(node_id), "phase": phase, "elapsed_s": round(float(elapsed_s), 1),
                                     "position": position, "logs": tail, "request_id": request_id,
                                     "error": error})


def send_prompt_used(node_id: str | None, prompt: str) -> None:
    """The prompt a generation or expansion node actually used, to show on that node."""
    if node_id is not None:
        send_ui_event(PROMPT_EVENT, {"node": str(node_id), "prompt": str(prompt)})
