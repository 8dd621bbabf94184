"""Serve family: AuraFlowServeOutput, the node through which a prompt queued by the fal API mount hands back images.

The mount (:mod:`.comfy_backend`) runs each ``fal-ai/aura-flow`` request as a ComfyUI prompt: AuraFlowLoader ->
AuraFlowGenerate -> AuraFlowServeOutput. The images must come back to the waiting request in memory, as encoded
PNGs with the seed and the prompt used; ComfyUI's own output nodes would write files into the user's output or
temp folder and carry neither. So the prompt names a one-time *job* token, the backend opens a slot for it on
:data:`BOARD` before queueing, and this node fills the slot. The token is also what keeps ComfyUI's cache from
reusing this node's previous run.

A graph built by hand in the editor has no job (the widget is empty or stale): the node then does nothing but say
so, on the node and in the log. It is listed under ``AuraFlow/serve`` only so that ComfyUI can validate and run the
mount's prompts; users have no reason to add it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from ..pipeline.pipeline import to_pil
from ..pipeline.serve.worker import BackendOutput, encode_png
from ._common import CATEGORY_ROOT, SEED_MAX, send_progress_text

log = logging.getLogger("ComfyUI-AuraFlow")


@dataclass
class _Slot:
    output: BackendOutput | None = None


class JobBoard:
    """Slots keyed by job token, opened by the backend and filled by the node (another thread); thread-safe."""

    def __init__(self) -> None:
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()

    def open(self, job: str) -> None:
        with self._lock:
            self._slots[job] = _Slot()

    def fill(self, job: str, output: BackendOutput) -> bool:
        """Store ``output`` for ``job``; False when nobody waits for that job."""
        with self._lock:
            slot = self._slots.get(job)
            if slot is None:
                return False
            slot.output = output
            return True

    def take(self, job: str) -> BackendOutput | None:
        """Close the slot and return what the node left there (None if it never ran)."""
        with self._lock:
            slot = self._slots.pop(job, None)
        return None if slot is None else slot.output

    def waiting(self, job: str) -> bool:
        """True while a slot is open for ``job`` and still empty."""
        with self._lock:
            slot = self._slots.get(job)
            return slot is not None and slot.output is None


BOARD = JobBoard()


class AuraFlowServeOutput:
    """Hand a generation back to the fal-compatible API request that queued this prompt."""

    NODE_ID = "AuraFlowServeOutput"
    DISPLAY_NAME = "AuraFlow Serve Output (fal API)"
    CATEGORY = f"{CATEGORY_ROOT}/serve"
    DESCRIPTION = ("Used by the pack's fal-ai/aura-flow API inside ComfyUI (set AURAFLOW_SERVE_COMFY_MODEL): the "
                   "prompts it queues end in this node, which returns the images, seed and prompt to the waiting "
                   "API request. In a graph of your own it does nothing; use Save Image or Preview Image instead.")
    RETURN_TYPES = ()
    RETURN_NAMES = ()
    OUTPUT_TOOLTIPS = ()
    OUTPUT_NODE = True
    FUNCTION = "deliver"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The images to return (AuraFlow Generate's images)."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "forceInput": True,
                                 "tooltip": "The seed used (AuraFlow Generate's seed output), returned with the "
                                            "images as fal does."}),
                "prompt": ("STRING", {"default": "", "forceInput": True,
                                      "tooltip": "The prompt the model saw (AuraFlow Generate's prompt output)."}),
                "job": ("STRING", {"default": "",
                                   "tooltip": "Set by the fal API mount for each request; one-time token naming "
                                              "the request waiting for these images. Leave empty."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def deliver(self, images: Any, seed: int, prompt: str, job: str, unique_id: str | None = None
                ) -> dict[str, Any]:
        if not job or not BOARD.waiting(job):
            message = ("AuraFlow Serve Output: no API request waits for this job; the node only works in prompts "
                       "queued by the fal API mount.")
            log.warning(message)
            send_progress_text(message, unique_id)
            return {"ui": {}}
        output = BackendOutput(images=tuple(encode_png(im) for im in to_pil(images)), seed=int(seed),
                               prompt=str(prompt))
        if not BOARD.fill(job, output):  # the request gave up while the images were encoded
            log.info("AuraFlow Serve Output: job %s was abandoned before its images arrived", job)
        return {"ui": {}}


NODES = (AuraFlowServeOutput,)
