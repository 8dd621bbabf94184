"""ComfyUIBackend: runs one ``fal-ai/aura-flow`` request as a ComfyUI prompt, on ComfyUI's own queue.

Why a prompt and not our pipeline directly: inside ComfyUI the request then shares the editor's queue (one job on
the GPU at a time, in the order queued), the loader's model cache (the editor and the API use one loaded copy)
and ComfyUI's memory management; the editor's queue panel shows API jobs like any other, and its Interrupt stops
them.

One request, from :meth:`ComfyUIBackend.run` (called by the serve worker in a thread of its own):

1. The configured model must be one AuraFlow Loader lists (else :class:`~pipeline.errors.ModelLoadError`: the
   request ends with HTTP 500 and a ``detail`` naming the setting and the models found, never a traceback).
2. The seed is fixed here (random when absent), as the standalone backend does, and a prompt in API format is
   built: AuraFlowLoader -> AuraFlowGenerate -> AuraFlowServeOutput, with node ids made from a one-time token.
3. It is validated with ComfyUI's ``execution.validate_prompt`` on ComfyUI's event loop and queued with
   ``prompt_queue.put((number, prompt_id, prompt, extra_data, outputs))``, the tuple ``POST /prompt`` queues
   (ComfyUI 0.3.64 ``server.py``). A refusal naming a fal field becomes a 422 for that field.
4. Progress: the backend listens on the Generate node's id (:func:`._common.listen_node`); the node's progress
   bar reports every step there, so "step i/N" lines and the expanded prompt reach the status logs.
5. It polls the queue: where the prompt is (queued behind *n* others, running, finished), and ``should_cancel``.
   Cancel of a prompt still in ComfyUI's queue deletes it there; cancel of the running one sets ComfyUI's
   interrupt flag, but only while that prompt is the one executing (checked under the queue's lock: while it is
   listed as running no other prompt can start, and ComfyUI clears the flag when the next prompt starts).
6. The end comes from ComfyUI's history entry: success -> the images AuraFlowServeOutput left on
   :data:`.serve.BOARD`; ``execution_interrupted`` (our cancel, or Interrupt pressed in the editor) ->
   :class:`~pipeline.errors.CancelledError`, which the worker reports as fal's cancelled request; an
   ``execution_error`` -> :class:`ComfyPromptError` (HTTP 500 with the node's message). A prompt that disappears
   without a result (deleted from the queue in the editor, history cleared) also ends as cancelled, so a request
   never waits for a prompt that will not run.

While the prompt waits in ComfyUI's queue the fal status is ``IN_PROGRESS`` (our own queue has handed it over);
the logs say how many prompts are ahead. ComfyUI modules are imported only inside functions.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..pipeline.errors import AuraFlowError, CancelledError, InvalidInputError, ModelLoadError
from ..pipeline.serve.worker import BackendOutput, CancelCheck, ProgressCallback
from ._common import listen_node
from .serve import BOARD

log = logging.getLogger("ComfyUI-AuraFlow.serve")

# The fal input fields that are also AuraFlowGenerate inputs of the same name (a ComfyUI refusal of one of them
# is reported as fal's 422 for that field).
FAL_FIELDS = ("prompt", "num_images", "seed", "guidance_scale", "num_inference_steps", "expand_prompt", "width",
              "height", "negative_prompt")


class ComfyPromptError(AuraFlowError):
    """ComfyUI refused or failed the prompt built for a request; the message is ComfyUI's (node and reason)."""


@dataclass(frozen=True)
class ComfyModelConfig:
    """What the API's prompts load: AuraFlow Loader's inputs, plus the prompt-expansion backend.

    ``model_name`` is a name exactly as AuraFlow Loader lists it (ComfyUI validates it against that list).
    Use the editor's own settings for the same file (weight dtype in particular) so both share one cached copy:
    the loader keeps one model per process and reloads when the options differ.
    """

    model_name: str
    weight_dtype: str = "auto"
    components: str = "none"
    offload_text_encoder: bool = False
    vae_tiling: bool = False
    expand_backend: str = "template"


@dataclass(frozen=True)
class _Ids:
    load: str
    generate: str
    output: str


class ComfyUIBackend:
    """The serve :class:`~pipeline.serve.worker.Backend` for inside ComfyUI (see the module docstring).

    ``server`` is ComfyUI's ``PromptServer.instance`` (looked up on first use when not given): its
    ``prompt_queue``, ``number`` and ``loop`` are used. ``poll_interval`` is how often the queue is looked at.
    """

    def __init__(self, config: ComfyModelConfig, *, server: Any = None, poll_interval: float = 0.05) -> None:
        self.config = config
        self._server = server
        self.poll_interval = poll_interval

    # -- ComfyUI handles -------------------------------------------------------------------------------------

    def server(self) -> Any:
        if self._server is None:
            from server import PromptServer

            self._server = PromptServer.instance
        return self._server

    def _check_model(self) -> None:
        from .loaders import model_names

        names = model_names()
        if self.config.model_name in names:
            return
        listing = ", ".join(repr(n) for n in names[:20]) or "none found"
        raise ModelLoadError(
            f"the fal API is set to load {self.config.model_name!r} (AURAFLOW_SERVE_COMFY_MODEL), which AuraFlow "
            f"Loader does not list (it lists: {listing}). Put the model in models/checkpoints, "
            "models/diffusion_models or models/diffusers and set the variable to its name as listed.",
            path=self.config.model_name)

    # -- the prompt ------------------------------------------------------------------------------------------

    def build_prompt(self, input: Mapping[str, Any], seed: int, job: str) -> tuple[dict[str, Any], _Ids]:
        """The API-format prompt for one request (every required input given: ComfyUI fills no defaults)."""
        ids = _Ids(f"afserve_{job}_load", f"afserve_{job}_generate", f"afserve_{job}_output")
        cfg = self.config
        prompt = {
            ids.load: {"class_type": "AuraFlowLoader", "_meta": {"title": "AuraFlow Loader (fal API)"}, "inputs": {
                "model_name": cfg.model_name, "weight_dtype": cfg.weight_dtype,
                "offload_text_encoder": cfg.offload_text_encoder, "vae_tiling": cfg.vae_tiling,
                "components": cfg.components}},
            ids.generate: {"class_type": "AuraFlowGenerate", "_meta": {"title": "AuraFlow Generate (fal API)"},
                           "inputs": {
                "model": [ids.load, 0], "prompt": str(input["prompt"]),
                "num_images": int(input.get("num_images", 1)), "seed": int(seed),
                "guidance_scale": float(input.get("guidance_scale", 3.5)),
                "num_inference_steps": int(input.get("num_inference_steps", 50)),
                "expand_prompt": bool(input.get("expand_prompt", True)),
                "width": int(input.get("width", 1024)), "height": int(input.get("height", 1024)),
                "negative_prompt": str(input.get("negative_prompt") or ""),
                "expansion_backend": cfg.expand_backend}},
            ids.output: {"class_type": "AuraFlowServeOutput", "_meta": {"title": "AuraFlow Serve Output (fal API)"},
                         "inputs": {"images": [ids.generate, 0], "seed": [ids.generate, 1],
                                    "prompt": [ids.generate, 2], "job": job}},
        }
        return prompt, ids

    def _validate(self, prompt_id: str, prompt: dict[str, Any]) -> Any:
        """ComfyUI's own validation, on ComfyUI's event loop when it runs (as for ``POST /prompt``)."""
        import execution

        try:
            result = execution.validate_prompt(prompt_id, prompt, None)
        except TypeError:  # before partial execution (ComfyUI < 0.3.4x) it took (prompt_id, prompt)
            result = execution.validate_prompt(prompt_id, prompt)
        if not asyncio.iscoroutine(result):  # older ComfyUI validated synchronously
            return result
        loop = getattr(self.server(), "loop", None)
        if loop is not None and loop.is_running():
            return asyncio.run_coroutine_threadsafe(result, loop).result(timeout=120)
        return asyncio.run(result)

    @staticmethod
    def _refusal(error: Any, node_errors: Any, generate_id: str) -> AuraFlowError:
        for entry in (node_errors or {}).get(generate_id, {}).get("errors", []):
            info = entry.get("extra_info") or {}
            if info.get("input_name") in FAL_FIELDS:
                return InvalidInputError(info["input_name"], info.get("received_value"),
                                         str(entry.get("details") or entry.get("message") or "a valid value"))
        messages = [f"{e.get('message', '')}: {e.get('details', '')}".strip(": ")
                    for n in (node_errors or {}).values() for e in n.get("errors", [])]
        head = error.get("message", "invalid prompt") if isinstance(error, dict) else str(error)
        return ComfyPromptError("ComfyUI refused the prompt: " + "; ".join([head, *messages]))

    # -- the queue -------------------------------------------------------------------------------------------

    def _where(self, queue: Any, prompt_id: str, number: float) -> tuple[str, Any]:
        """("queued", prompts ahead) | ("running", None) | ("done", status dict or None) | ("gone", None).

        Read under the queue's lock so a prompt moving from queued to running to history is seen in one place.
        """
        with queue.mutex:
            volatile = getattr(queue, "get_current_queue_volatile", None) or queue.get_current_queue
            running, queued = volatile()
            if any(item[1] == prompt_id for item in running):
                return "running", None
            if any(item[1] == prompt_id for item in queued):
                ahead = len(running) + sum(1 for item in queued if (item[0], item[1]) < (number, prompt_id))
                return "queued", ahead
            try:
                found = queue.get_history(prompt_id=prompt_id, map_function=lambda entry: entry.get("status"))
            except TypeError:  # no map_function before ComfyUI 0.3.4x
                found = {k: v.get("status") for k, v in queue.get_history(prompt_id=prompt_id).items()}
        if prompt_id in found:
            return "done", found[prompt_id]
        return "gone", None

    @staticmethod
    def _interrupt_if_running(queue: Any, prompt_id: str) -> bool:
        """Set ComfyUI's interrupt flag, only while ``prompt_id`` is the prompt executing."""
        import comfy.model_management as mm

        with queue.mutex:
            running, _ = (getattr(queue, "get_current_queue_volatile", None) or queue.get_current_queue)()
            if any(item[1] == prompt_id for item in running):
                mm.interrupt_current_processing(True)
                return True
        return False

    @staticmethod
    def _delete_queued(queue: Any, prompt_id: str) -> bool:
        return bool(queue.delete_queue_item(lambda item: item[1] == prompt_id))

    # -- run -------------------------------------------------------------------------------------------------

    def run(self, input: Mapping[str, Any], on_progress: ProgressCallback,
            should_cancel: CancelCheck) -> BackendOutput:
        self._check_model()
        if should_cancel():
            raise CancelledError("cancelled before start")
        seed = input.get("seed")
        seed = secrets.randbits(32) if seed is None else int(seed)
        job = secrets.token_hex(8)
        prompt, ids = self.build_prompt(input, seed, job)
        prompt_id = str(uuid.uuid4())
        valid = self._validate(prompt_id, prompt)
        if not valid[0]:
            raise self._refusal(valid[1], valid[3], ids.generate)
        server = self.server()
        queue = server.prompt_queue
        steps: list[str] = []

        def progress(message: str) -> None:
            if message.startswith("step "):
                steps.append(message)
            on_progress(message)

        BOARD.open(job)
        output: BackendOutput | None = None
        try:
            with listen_node(ids.generate, progress):
                with queue.mutex:  # the same numbering as POST /prompt (FIFO with the editor's prompts)
                    number = server.number
                    server.number += 1
                    queue.put((number, prompt_id, prompt, {"auraflow_serve_job": job}, list(valid[2])))
                on_progress(f"generating {input.get('num_images', 1)} image(s), "
                            f"{input.get('num_inference_steps', 50)} steps, {input.get('width', 1024)}x"
                            f"{input.get('height', 1024)}, seed {seed}, as ComfyUI prompt {prompt_id}")
                state, info, interrupted = self._wait(queue, prompt_id, number, on_progress, should_cancel)
        finally:
            output = BOARD.take(job)  # closes the slot whatever happened
        return self._outcome(state, info, output, interrupted, steps, on_progress, should_cancel)

    def _wait(self, queue: Any, prompt_id: str, number: float, on_progress: ProgressCallback,
              should_cancel: CancelCheck) -> tuple[str, Any, bool]:
        """Poll until the prompt is finished or gone; returns (state, status, whether we interrupted it)."""
        interrupted = False
        last: tuple[str, Any] | None = None
        # Ends when ComfyUI finishes, drops or deletes the prompt, or the interpreter exits (ComfyUI's prompt
        # worker is a daemon thread; this one must not keep the process alive after it).
        while True:
            state, info = self._where(queue, prompt_id, number)
            if state in ("done", "gone"):
                return state, info, interrupted
            if (state, info) != last:
                on_progress(f"waiting in ComfyUI's queue, {info} prompt(s) ahead" if state == "queued"
                            else "running in ComfyUI")
                last = (state, info)
            if not threading.main_thread().is_alive():
                self._delete_queued(queue, prompt_id)
                raise CancelledError("ComfyUI is shutting down")
            if should_cancel():
                if state == "queued" and self._delete_queued(queue, prompt_id):
                    raise CancelledError("removed from ComfyUI's queue before it started")
                if state == "running" and not interrupted:
                    interrupted = self._interrupt_if_running(queue, prompt_id)
                    if interrupted:
                        on_progress("interrupting the ComfyUI prompt")
            time.sleep(self.poll_interval)

    @staticmethod
    def _outcome(state: str, status: Any, output: BackendOutput | None, interrupted: bool, steps: list[str],
                 on_progress: ProgressCallback, should_cancel: CancelCheck) -> BackendOutput:
        messages = list((status or {}).get("messages") or []) if isinstance(status, dict) else []
        events = {event: data for event, data in messages}
        if "execution_interrupted" in events or (interrupted and output is None):
            who = "cancelled" if interrupted else "interrupted in ComfyUI (Cancel / Interrupt in the editor)"
            on_progress(f"the ComfyUI prompt was {who}")  # the worker logs only "cancelled": say why
            raise CancelledError(f"the ComfyUI prompt was {who}")
        if "execution_error" in events:
            data = events["execution_error"] or {}
            raise ComfyPromptError(f"ComfyUI failed in {data.get('node_type', 'a node')}: "
                                   f"{data.get('exception_message', 'unknown error')}".strip())
        if output is None:
            if state == "gone":
                on_progress("the ComfyUI prompt was removed before it ran")
                raise CancelledError("the ComfyUI prompt was removed before it ran (deleted from ComfyUI's queue, "
                                     "or its history was cleared)")
            raise ComfyPromptError("the ComfyUI prompt finished without reaching AuraFlow Serve Output")
        if should_cancel():  # cancel wins over a result that arrived while the interrupt was on its way
            raise CancelledError("cancelled")
        if not steps:
            on_progress("ComfyUI reused its cached result for these inputs")
        return output
