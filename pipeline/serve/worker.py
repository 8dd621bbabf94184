"""One worker over a backend: takes the oldest queued request, runs it, stores the outcome.

A *backend* is anything with ``run(input, on_progress, should_cancel) -> BackendOutput`` (:class:`Backend`). The
standalone server uses :class:`LocalBackend` (our :class:`~pipeline.pipeline.AuraFlow`); the ComfyUI mount plugs
in a backend that queues a ComfyUI prompt instead. ``run`` is blocking and is called in a thread
(``asyncio.to_thread``) so status polls, streams and submits keep being answered while the GPU works.

Cancel: ``should_cancel`` turns True when the client cancels; the local backend checks it in the sampler's step
callback and raises :class:`~pipeline.errors.CancelledError`, so a running job stops within one step. Shutdown
uses the same path but leaves the request marked running, so the next start re-queues it instead of reporting
it cancelled.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from ..errors import AuraFlowError, CancelledError, InvalidInputError
from .queue import Record, RequestStore, StoredFile
from .schema import error as detail_entry

log = logging.getLogger("ComfyUI-AuraFlow.serve")

ProgressCallback = Callable[[str], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class ImageFile:
    """One encoded output image."""

    data: bytes
    width: int
    height: int
    content_type: str = "image/png"


@dataclass(frozen=True)
class BackendOutput:
    """What a backend returns: the images (encoded), the seed used and the prompt actually generated from."""

    images: tuple[ImageFile, ...]
    seed: int
    prompt: str


class Backend(Protocol):
    """Runs one validated ``fal-ai/aura-flow`` input (a dict as :class:`~.schema.AuraFlowInput` stores it)."""

    def run(self, input: Mapping[str, Any], on_progress: ProgressCallback,
            should_cancel: CancelCheck) -> BackendOutput: ...


def encode_png(image: Any) -> ImageFile:
    """A PIL image as PNG bytes (lossless, what fal's aura-flow returns)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return ImageFile(buf.getvalue(), image.width, image.height)


class LocalBackend:
    """Our own pipeline in this process: loads the model once (on first use, or given ready), then generates.

    ``expand_backend`` is what ``expand_prompt=true`` uses: ``"template"`` (default: offline, instant), ``"local"``
    or ``"fal"`` (see :func:`pipeline.expand.expand_prompt`); fal does not say which LLM it uses.
    """

    def __init__(self, source: str | Path | None = None, *, pipe: Any = None, device: str | None = None,
                 dtype: str | None = None, expand_backend: str = "template") -> None:
        if source is None and pipe is None:
            raise InvalidInputError("source", None, "a model source or a loaded pipeline")
        self.source = source
        self.device = device
        self.dtype = dtype
        self.expand_backend = expand_backend
        self._pipe = pipe
        self._load_lock = threading.Lock()

    def pipe(self) -> Any:
        """The loaded pipeline (loaded here on first call)."""
        with self._load_lock:
            if self._pipe is None:
                from ..loading import load_pipeline

                self._pipe = load_pipeline(self.source, device=self.device, dtype=self.dtype)  # type: ignore[arg-type]
            return self._pipe

    def run(self, input: Mapping[str, Any], on_progress: ProgressCallback,
            should_cancel: CancelCheck) -> BackendOutput:
        if self._pipe is None:
            on_progress(f"loading model {self.source}")
        pipe = self.pipe()
        if should_cancel():
            raise CancelledError("cancelled before start")
        # The seed is fixed here, before expansion, so the same seed reproduces the same expanded prompt too.
        seed = input.get("seed")
        seed = secrets.randbits(32) if seed is None else int(seed)
        prompt = str(input["prompt"])
        if input.get("expand_prompt", True):
            from ..expand import expand_prompt

            expanded = expand_prompt(prompt, backend=self.expand_backend, seed=seed, tokenizer=pipe.tokenizer,
                                     should_cancel=should_cancel)
            prompt = expanded.prompt
            on_progress(f"expanded prompt: {prompt}")
            for warning in expanded.warnings:
                on_progress(f"prompt expansion: {warning}")
        total = int(input.get("num_inference_steps", 50))

        def step(i: int, n: int, _latents: object) -> None:
            on_progress(f"step {i}/{n}")
            if should_cancel():
                raise CancelledError(f"cancelled at step {i}/{n}")

        on_progress(f"generating {input.get('num_images', 1)} image(s), {total} steps, "
                    f"{input.get('width', 1024)}x{input.get('height', 1024)}, seed {seed}")
        result = pipe.generate(prompt, negative_prompt=input.get("negative_prompt") or None,
                               num_images=int(input.get("num_images", 1)), seed=seed,
                               guidance_scale=float(input.get("guidance_scale", 3.5)), num_inference_steps=total,
                               width=int(input.get("width", 1024)), height=int(input.get("height", 1024)),
                               callback=step)
        return BackendOutput(images=tuple(encode_png(im) for im in result.images), seed=result.seed, prompt=prompt)


class Notifier:
    """Wakes everything waiting for "something changed" (SSE streams, the idle worker); callable from any thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def notify(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fire()
        else:
            loop.call_soon_threadsafe(self._fire)

    def _fire(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """True when notified within ``timeout`` seconds."""
        event = self._event
        if event is None:
            await asyncio.sleep(timeout)
            return False
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True


def log_entry(message: str, level: str = "INFO") -> dict[str, Any]:
    """A log line in fal's shape (``message, level, source, timestamp``)."""
    return {"message": message, "level": level, "source": "user",
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}


@dataclass
class RunningJob:
    """The request the worker is on: its live logs and its cancel flags (read from the event loop and the thread)."""

    request_id: str
    started: float = field(default_factory=time.perf_counter)
    logs: list[dict[str, Any]] = field(default_factory=list)
    cancel_requested: bool = False
    shutting_down: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_log(self, message: str) -> None:
        with self.lock:
            self.logs.append(log_entry(message))

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.logs)

    def should_cancel(self) -> bool:
        return self.cancel_requested or self.shutting_down


CANCELLED_BODY = {"detail": "Request cancelled", "error_type": "request_cancelled"}
CANCELLED_STATUS = 400


class Worker:
    """Runs queued requests one at a time (one GPU, one model); see the module docstring."""

    def __init__(self, store: RequestStore, backend: Backend, notifier: Notifier,
                 on_finished: Callable[[str], None] | None = None, idle_poll: float = 1.0) -> None:
        self.store = store
        self.backend = backend
        self.notifier = notifier
        self.on_finished = on_finished
        self.idle_poll = idle_poll
        self.running: RunningJob | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="auraflow-serve-worker")

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current step; the running request stays queued for the next start."""
        self._stopping = True
        if self.running is not None:
            self.running.shutting_down = True
        self.notifier.notify()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except asyncio.TimeoutError:
                log.warning("worker did not stop within %.0f s", timeout)
                self._task.cancel()

    def cancel_running(self, rid: str) -> bool:
        """Ask the running job to stop (True when ``rid`` is the one running)."""
        job = self.running
        if job is None or job.request_id != rid:
            return False
        job.cancel_requested = True
        job.add_log("cancellation requested")
        return True

    async def _loop(self) -> None:
        # Ends when stop() is called: every turn either runs one job or waits at most idle_poll seconds.
        while not self._stopping:
            record = self.store.claim_next()
            if record is None:
                await self.notifier.wait(self.idle_poll)
                continue
            try:
                await self._run(record)
            except Exception:  # a storage failure must not kill the worker for every later request
                log.exception("worker failed on request %s", record.id)

    async def _run(self, record: Record) -> None:
        job = RunningJob(record.id)
        self.running = job
        self.notifier.notify()

        def progress(message: str) -> None:
            job.add_log(message)
            self.notifier.notify()

        try:
            output = await asyncio.to_thread(self.backend.run, record.input, progress, job.should_cancel)
        except CancelledError:
            if job.shutting_down and not job.cancel_requested:
                log.info("request %s interrupted by shutdown; it will run again on the next start", record.id)
                self.running = None
                return
            job.add_log("cancelled")
            self._finish(record, job, CANCELLED_BODY, CANCELLED_STATUS, "Request cancelled", "request_cancelled")
            return
        except InvalidInputError as exc:
            body = {"detail": [detail_entry(exc.field, str(exc), "value_error", _jsonable(exc.value))]}
            self._finish(record, job, body, 422, str(exc), "validation_error")
            return
        except AuraFlowError as exc:
            self._finish(record, job, {"detail": str(exc), "error_type": "internal_server_error"}, 500, str(exc),
                         "internal_server_error")
            return
        except Exception as exc:
            log.exception("request %s failed", record.id)
            text = f"{type(exc).__name__}: {exc}"[:500]
            self._finish(record, job, {"detail": text, "error_type": "internal_server_error"}, 500, text,
                         "internal_server_error")
            return
        inference_time = time.perf_counter() - job.started
        job.add_log(f"done in {inference_time:.2f} s")
        sync = bool(record.input.get("sync_mode"))
        images, files = [], []
        for i, im in enumerate(output.images):
            name = f"{record.id[:8]}-{i}.png"
            if sync:
                url = f"data:{im.content_type};base64,{base64.b64encode(im.data).decode()}"
            else:
                url = f"files/{record.id}/{record.file_token}/{name}"  # made absolute when served
                files.append(StoredFile(im.content_type, im.data))
            images.append({"url": url, "content_type": im.content_type, "file_name": name,
                           "file_size": len(im.data), "width": im.width, "height": im.height})
        result = {"images": images, "seed": output.seed, "prompt": output.prompt}
        self._finish(record, job, result, 200, None, None, files=files, inference_time=inference_time)

    def _finish(self, record: Record, job: RunningJob, body: Any, status: int, error: str | None,
                error_type: str | None, *, files: list[StoredFile] | None = None,
                inference_time: float | None = None) -> None:
        if inference_time is None:
            inference_time = time.perf_counter() - job.started
        self.store.finish(record.id, result=body, status=status, error=error, error_type=error_type,
                          logs=job.snapshot(), inference_time=inference_time, files=files or ())
        self.running = None
        self.notifier.notify()
        if self.on_finished is not None:
            self.on_finished(record.id)


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else repr(value)
