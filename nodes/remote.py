"""Remote family: AuraFlow on fal.ai's queue (``fal-ai/aura-flow``), over :mod:`pipeline.fal`.

Both nodes are ``async`` functions. ComfyUI (>= 0.3.44, our minimum) runs every node from inside its worker's
event loop, so a sync node calling ``asyncio.run`` would fail there ("cannot be called from a running event
loop"); an async FUNCTION is awaited on that loop instead. The HTTP clients are created inside each call.

The key is read server-side from the environment or the user's key file (``pipeline.fal.auth``), never from a
widget: widget values are saved in workflows and PNG metadata.
"""

from __future__ import annotations

import time
from typing import Any

from ..pipeline import fal
from ..pipeline.errors import ResultDownloadError
from . import _common
from ._common import CATEGORY_ROOT, SEED_MAX, node_errors, send_progress_text
from ._ui_events import send_fal_status, send_prompt_used

APP_ID = "fal-ai/aura-flow"
CATEGORY = f"{CATEGORY_ROOT}/remote"
# Tests swap this for short retry delays; None = the client's defaults (real use).
CLIENT_CONFIG: fal.FalConfig | None = None
TIMEOUT_S = fal.DEFAULT_TIMEOUT

_OUTPUT_TOOLTIPS = (
    "The generated images (a batch), as ComfyUI images (RGB, 0..1).",
    "The seed fal.ai used. Sending it again with the same settings gives a similar image, not necessarily an "
    "identical one: remote results are not reproducible bit for bit.",
    "The prompt the model actually saw: the expanded prompt when expand_prompt is on, else yours.",
    "fal.ai's id for this request. Keep it: the 'AuraFlow (fal.ai) result' node fetches the output again with it "
    "(for about an hour) if the download failed.",
)


class _Reporter:
    """Shows queue position, then the model's last log line, with elapsed time, as text on the node.

    ``should_cancel`` is polled by the client every quarter second; it also refreshes the elapsed time once a
    second, so the text keeps moving while fal sends nothing.
    """

    def __init__(self, node_id: str | None, what: str) -> None:
        self.node_id = node_id
        self.what = what
        self.start = time.monotonic()
        self.request_id: str | None = None
        self.line = "submitting"
        # the same news as structured data for web/js/fal_status.js (see _ui_events)
        self.phase = "submitting"
        self.position: int | None = None
        self.logs: tuple[str, ...] = ()
        self.error: str | None = None
        self._shown_at = 0.0

    def on_submit(self, handle: fal.RequestHandle) -> None:
        self.request_id = handle.request_id
        self.line = "queued"
        self.phase = "queued"
        self._show()

    def on_update(self, status: fal.Status) -> None:
        if isinstance(status, fal.Queued):
            self.line = f"queued, position {status.position + 1}"
            self.phase, self.position = "queued", status.position + 1
        elif isinstance(status, fal.InProgress):
            self.line = "running" + (f": {status.logs[-1].message}" if status.logs else "")
            self.phase, self.position = "running", None
            self.logs = tuple(entry.message for entry in status.logs)
        else:
            self.line = "downloading" if status.error is None else f"failed: {status.error}"
            self.phase = "downloading" if status.error is None else "failed"
            self.position, self.error = None, status.error
            self.logs = tuple(entry.message for entry in status.logs) or self.logs
        self._show()

    def should_cancel(self) -> bool:
        if time.monotonic() - self._shown_at >= 1.0:
            self._show()
        return _common.interrupt_requested()

    def _show(self) -> None:
        self._shown_at = time.monotonic()
        elapsed = self._shown_at - self.start
        rid = f"\nrequest {self.request_id}" if self.request_id else ""
        send_progress_text(f"{self.what} · {self.line} · {elapsed:.0f} s{rid}", self.node_id)
        send_fal_status(self.node_id, phase=self.phase, elapsed_s=elapsed, position=self.position, logs=self.logs,
                        request_id=self.request_id, error=self.error)


def _outputs(result: fal.FalResult) -> tuple[Any, int, str, str]:
    """FalResult → (IMAGE [B, H, W, 3] float32 0..1 on the CPU, seed, prompt, request id)."""
    import numpy as np
    import torch

    sizes = {img.size for img in result.images}
    if len(sizes) != 1:
        raise ResultDownloadError(f"fal request {result.request_id} returned images of different sizes "
                                  f"{sorted(sizes)}; a ComfyUI batch needs one size", request_id=result.request_id)
    batch = np.stack([np.asarray(img, dtype=np.float32) / 255.0 for img in result.images])
    seed = result.data.get("seed")
    return (torch.from_numpy(batch), int(seed) if isinstance(seed, (int, float)) else 0,
            str(result.data.get("prompt", "")), result.request_id)


def _with_result_hint(exc: ResultDownloadError) -> ResultDownloadError:
    return ResultDownloadError(f"{exc} Use the 'AuraFlow (fal.ai) result' node with request id "
                               f"{exc.request_id} to fetch it.", request_id=exc.request_id, status=exc.status)


_RETURN_TYPES = ("IMAGE", "INT", "STRING", "STRING")
_RETURN_NAMES = ("images", "seed", "prompt", "request_id")


class AuraFlowFal:
    """Generate with AuraFlow v0.3 on fal.ai: no local weights or GPU needed, billed per image by fal."""

    NODE_ID = "AuraFlowFal"
    DISPLAY_NAME = "AuraFlow (fal.ai)"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Generates images with AuraFlow v0.3 on fal.ai (endpoint fal-ai/aura-flow). Needs a fal key in "
                   "the FAL_KEY environment variable of the ComfyUI process (never in a widget). Shows the queue "
                   "position and the model's log while waiting; Cancel stops the request on fal.ai too.")
    RETURN_TYPES = _RETURN_TYPES
    RETURN_NAMES = _RETURN_NAMES
    OUTPUT_TOOLTIPS = _OUTPUT_TOOLTIPS
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "prompt": ("STRING", {"multiline": True, "default": "",
                                      "tooltip": "What to draw. Sent to fal.ai as is (and expanded there when "
                                                 "expand_prompt is on)."}),
                "num_images": ("INT", {"default": 1, "min": 1, "max": 4,
                                       "tooltip": "Images per request, returned as one batch. Each is billed."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True,
                                 "tooltip": "Sent to fal.ai as the seed. It decides whether ComfyUI re-runs the "
                                            "node (same inputs = cached result, no new request); remote results "
                                            "are not reproducible bit for bit even with the same seed."}),
                "guidance_scale": ("FLOAT", {"default": 3.5, "min": 0.0, "max": 20.0, "step": 0.1,
                                             "tooltip": "Classifier-free guidance: higher follows the prompt more "
                                                        "literally, too high burns colours. fal's default 3.5."}),
                "num_inference_steps": ("INT", {"default": 50, "min": 1, "max": 150,
                                                "tooltip": "Denoising steps: more is slower, with diminishing "
                                                           "returns past ~30-50. fal's default 50; fal.ai may "
                                                           "reject values outside its own limits."}),
                "expand_prompt": ("BOOLEAN", {"default": True,
                                              "tooltip": "Let fal.ai rewrite the prompt into a longer, more "
                                                         "detailed one before generating (fal recommends it). "
                                                         "The prompt output shows what was used."}),
            },
            "optional": {
                "sync_mode": ("BOOLEAN", {"default": False,
                                          "tooltip": "Return the images inline (data URIs) instead of as links: "
                                                     "fal.ai then keeps no copy, so the result node cannot fetch "
                                                     "them again later."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    async def generate(self, prompt: str, num_images: int, seed: int, guidance_scale: float,
                       num_inference_steps: int, expand_prompt: bool, sync_mode: bool = False,
                       unique_id: str | None = None) -> tuple[Any, int, str, str]:
        arguments: dict[str, Any] = {
            "prompt": prompt,
            "num_images": int(num_images),
            "seed": int(seed),
            "guidance_scale": float(guidance_scale),
            "num_inference_steps": int(num_inference_steps),
            "expand_prompt": bool(expand_prompt),
        }
        if sync_mode:
            arguments["sync_mode"] = True
        reporter = _Reporter(unique_id, "fal.ai")
        with node_errors(self.DISPLAY_NAME):
            try:
                result = await fal.run(APP_ID, arguments, on_submit=reporter.on_submit, on_update=reporter.on_update,
                                       should_cancel=reporter.should_cancel, timeout=TIMEOUT_S,
                                       config=CLIENT_CONFIG)
                outputs = _outputs(result)
            except ResultDownloadError as exc:
                raise _with_result_hint(exc) from exc
        send_prompt_used(unique_id, outputs[2])
        return outputs


class AuraFlowFalResult:
    """Fetch the output of an earlier AuraFlow (fal.ai) request by its id: the recovery path for billed results."""

    NODE_ID = "AuraFlowFalResult"
    DISPLAY_NAME = "AuraFlow (fal.ai) result"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Fetches the images of an earlier fal-ai/aura-flow request by its request id (waiting if it is "
                   "still running), e.g. after a failed download. fal.ai keeps results for about an hour; results "
                   "made with sync_mode are not kept.")
    RETURN_TYPES = _RETURN_TYPES
    RETURN_NAMES = _RETURN_NAMES
    OUTPUT_TOOLTIPS = _OUTPUT_TOOLTIPS
    FUNCTION = "fetch"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "request_id": ("STRING", {"default": "",
                                          "tooltip": "The request id from an 'AuraFlow (fal.ai)' node's request_id "
                                                     "output or its error message, e.g. "
                                                     "764cabcf-b745-4b3e-ae38-1200304cf45b."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    async def fetch(self, request_id: str, unique_id: str | None = None) -> tuple[Any, int, str, str]:
        reporter = _Reporter(unique_id, "fal.ai result")
        reporter.request_id = request_id.strip()
        with node_errors(self.DISPLAY_NAME):
            result = await fal.fetch_result(APP_ID, request_id, on_update=reporter.on_update,
                                            should_cancel=reporter.should_cancel, timeout=TIMEOUT_S,
                                            config=CLIENT_CONFIG)
            outputs = _outputs(result)
        send_prompt_used(unique_id, outputs[2])
        return outputs


NODES = (AuraFlowFal, AuraFlowFalResult)
