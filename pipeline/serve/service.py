"""The server's state in one object: the store, the worker, webhooks, and the protocol's response bodies.

Routes (:mod:`.routes`) only translate HTTP to calls on a :class:`Service`; the same service runs standalone
(:mod:`.server`) or mounted on ComfyUI's aiohttp app, where only the backend differs. Response bodies follow
fal's queue protocol (``shared/notes/fal-queue-api.md`` §3-7), checked against the official fal-client in
``tests/serve/test_official_client.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from .queue import DONE, QUEUED, RUNNING, WEBHOOK_FAILED, WEBHOOK_SENT, Record, RequestStore
from .schema import Limits
from .webhook import WebhookPolicy, deliver, webhook_payload
from .worker import CANCELLED_BODY, CANCELLED_STATUS, Backend, Notifier, Worker

log = logging.getLogger("ComfyUI-AuraFlow.serve")

APP_ID = "fal-ai/aura-flow"


@dataclass(frozen=True)
class ServeOptions:
    """Server knobs; the defaults are for real use, tests shorten the delays.

    ``trust_forwarded``: build URLs from ``X-Forwarded-Proto``/``X-Forwarded-Host`` (only behind a reverse proxy
    you run: otherwise any client could choose the URLs other clients are sent to in webhooks).
    ``keepalive``: seconds between SSE comment lines (fal sends one every 15 s). ``max_body``: bytes; an aura-flow
    input is a prompt and a few numbers, so 256 KiB is generous and keeps a flood of large bodies cheap to refuse.
    ``max_queue``: queued requests beyond which submits get 429. ``loopback_clients_only``: answer only clients on
    this machine (403 for others); the ComfyUI mount sets it when no keys are configured, since it cannot choose
    where ComfyUI listens the way the standalone server refuses a non-loopback bind (:func:`.auth.check_bind`).
    """

    limits: Limits = field(default_factory=Limits)
    keys: tuple[str, ...] = ()
    trust_forwarded: bool = False
    keepalive: float = 15.0
    max_body: int = 256 * 1024
    max_queue: int = 10_000
    max_stream_seconds: float = 6 * 3600.0
    purge_interval: float = 60.0
    webhook: WebhookPolicy = field(default_factory=WebhookPolicy)
    loopback_clients_only: bool = False


class Service:
    """Queue + worker + webhooks for ``fal-ai/aura-flow``; :meth:`start`/:meth:`stop` on the serving loop."""

    def __init__(self, store: RequestStore, backend: Backend, options: ServeOptions | None = None) -> None:
        self.store = store
        self.options = options or ServeOptions()
        self.notifier = Notifier()
        self.worker = Worker(store, backend, self.notifier, on_finished=self._schedule_webhook)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.notifier.bind(asyncio.get_running_loop())
        self.worker.start()
        for record in self.store.pending_webhooks():
            self._schedule_webhook(record.id)
        self._spawn(self._purge_loop())

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        await self.worker.stop()
        # Undelivered webhooks stay pending in the store and are resumed on the next start.
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        self.notifier.notify()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _purge_loop(self) -> None:
        # Ends when stop() cancels it.
        while True:
            await asyncio.sleep(self.options.purge_interval)
            try:
                self.store.purge_expired()
            except Exception:
                log.exception("purging expired results failed")

    # -- submit / cancel -------------------------------------------------------------------------------------

    def queue_full(self) -> bool:
        return self.store.count(QUEUED) >= self.options.max_queue

    def submit(self, input_json: dict[str, Any], *, webhook: str | None, base_url: str) -> Record:
        record = self.store.add(input_json, webhook=webhook, base_url=base_url)
        self.notifier.notify()  # wakes the idle worker
        return record

    def cancel(self, rid: str) -> tuple[int, dict[str, str]]:
        """fal's cancel answers: queued -> removed (OK), running -> stopping, done -> ALREADY_COMPLETED."""
        record = self.store.get(rid)
        if record is None:
            return 404, {"status": "NOT_FOUND"}
        if record.state == QUEUED and self.store.cancel_queued(rid, CANCELLED_BODY, CANCELLED_STATUS):
            self.notifier.notify()
            self._schedule_webhook(rid)
            return 200, {"status": "OK"}
        if self.worker.cancel_running(rid):
            self.notifier.notify()
            return 202, {"status": "CANCELLATION_REQUESTED"}
        return 400, {"status": "ALREADY_COMPLETED"}

    # -- bodies ----------------------------------------------------------------------------------------------

    @staticmethod
    def urls(base_url: str, rid: str) -> dict[str, str]:
        root = f"{base_url}/{APP_ID}/requests/{rid}"
        return {"request_id": rid, "response_url": root, "status_url": f"{root}/status", "cancel_url": f"{root}/cancel"}

    def status_body(self, record: Record, *, with_logs: bool, base_url: str) -> tuple[int, dict[str, Any]]:
        """HTTP status and body of ``GET …/status``: 202 while queued or running, 200 once completed."""
        body: dict[str, Any]
        if record.state == DONE:
            body = {"status": "COMPLETED", "logs": record.logs if with_logs else None,
                    "metrics": {"inference_time": record.inference_time} if record.inference_time is not None
                    else {}, "error": record.error, "error_type": record.error_type}
            code = 200
        elif record.state == RUNNING:
            job = self.worker.running
            logs = job.snapshot() if job is not None and job.request_id == record.id else []
            body, code = {"status": "IN_PROGRESS", "logs": logs if with_logs else None}, 202
        else:
            body, code = {"status": "IN_QUEUE", "queue_position": self.store.position(record)}, 202
        body.update(self.urls(base_url, record.id))
        return code, body

    @staticmethod
    def result_body(record: Record, base_url: str) -> Any:
        """The stored result with image paths made absolute for the client that asks."""
        return absolute_urls(record.result, base_url)

    # -- webhooks --------------------------------------------------------------------------------------------

    def _schedule_webhook(self, rid: str) -> None:
        record = self.store.get(rid)
        if record is None or not record.webhook or not self._started:
            return
        self._spawn(self._send_webhook(record))

    async def _send_webhook(self, record: Record) -> None:
        assert record.webhook is not None and record.result_status is not None
        payload = webhook_payload(record.id, record.result_status, absolute_urls(record.result, record.base_url),
                                  record.error)
        ok = await deliver(record.webhook, payload, self.options.webhook)
        self.store.set_webhook_state(record.id, WEBHOOK_SENT if ok else WEBHOOK_FAILED)


def absolute_urls(result: Any, base_url: str) -> Any:
    """Relative ``images[].url`` (``files/…``, stored so one result can be served under any host) -> absolute."""
    if not isinstance(result, dict) or not isinstance(result.get("images"), list):
        return result
    images = []
    for image in result["images"]:
        url = image.get("url", "") if isinstance(image, dict) else ""
        if isinstance(url, str) and url.startswith("files/"):
            image = {**image, "url": f"{base_url}/{url}"}
        images.append(image)
    return {**result, "images": images}
