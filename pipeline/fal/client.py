"""An async client for fal.ai's queue: submit, follow, fetch, download, cancel.

Read as a script (:func:`run`): submit once → follow the status stream (SSE; polling if the stream is missing or
breaks) → fetch the result JSON → download the images. Every step runs under one :class:`_Watch`, which checks the
caller's ``should_cancel`` every ``cancel_check_interval`` seconds and the overall deadline, so a ComfyUI
interrupt stops the node within a fraction of a second; on a stop while the job is queued or running the client
sends ``PUT cancel_url`` once, so nothing keeps running (and billing) upstream.

Rules that protect the user's money and results:

* **No double submit.** ``POST`` to the queue is the only call that is not idempotent. It is repeated only when
  the server surely did not queue it: the connection could not be opened, or the answer was 408/409/429/503
  (``retry.SUBMIT_RETRYABLE_STATUSES``). A broken connection after the body was sent, a read timeout, a 502/504
  from a gateway or an unreadable 2xx body may all hide a queued job; those raise an error that says so instead.
* **No lost results.** Once a request is ``COMPLETED`` it is billed; any later failure (result JSON, image
  download, a cancel or the deadline while downloading) raises an error that names the request id, and
  :func:`fetch_result` gets it again later.
* **The key only goes to the queue host**: image URLs are fetched by a second HTTP client without credentials,
  and URLs returned by the queue are used only when they point at the configured queue host.

HTTP clients are created per call: an ``httpx.AsyncClient`` belongs to the event loop that created it, and
ComfyUI runs each prompt on a fresh loop (fal-client's shared client fails there with "event loop is closed").
The TLS context, which is not tied to a loop, is made once (:func:`_tls_context`): loading the CA bundle costs
~40 ms, more than the rest of a call's overhead.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import io
import json
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from ..errors import (
    AuraFlowError,
    AuthenticationError,
    CancelledError,
    InvalidInputError,
    RemoteError,
    RemoteTimeoutError,
    RemoteValidationError,
    ResultDownloadError,
)
from .auth import FalKeyAuth, read_key, redact
from .endpoints import RequestHandle, check_request_id, check_url_scheme, queue_base_url, split_app_id
from .retry import RetryPolicy, backoff_delay, retry_delay, should_retry
from .statuses import Completed, Status, parse_status

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger("ComfyUI-AuraFlow.fal")

USER_AGENT = "ComfyUI-AuraFlow (fal queue client)"
# A whole generation, queue wait included. Queues can be long at busy times; a hung job still ends here.
DEFAULT_TIMEOUT = 900.0

T = TypeVar("T")
UpdateCallback = Callable[[Status], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class FalConfig:
    """Knobs of the client; the defaults are for real use, tests inject short delays.

    ``base_url`` None means ``AURAFLOW_FAL_QUEUE_URL`` or https://queue.fal.run, read at call time.
    ``poll_interval`` is used only when the status stream is unavailable: fal-client polls every 0.1 s; the stream
    reports completion as it happens, so polling can afford a gentler pace. ``stream_read_timeout`` must exceed
    fal's 15 s keep-alive so a quiet but healthy stream is not dropped.
    """

    base_url: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    use_stream: bool = True
    poll_interval: float = 0.5
    cancel_check_interval: float = 0.25
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    stream_read_timeout: float = 45.0
    # A cancel must not hold up a stop for long: two tries within this many seconds, then move on.
    cancel_timeout: float = 5.0
    # When a stop arrives during submit, wait this long for the server's answer so the job can be cancelled by id.
    submit_settle_timeout: float = 5.0


@dataclass(frozen=True)
class FalResult:
    """One finished request: its id, the model's JSON output, and the decoded images (empty for text models)."""

    request_id: str
    data: Mapping[str, Any]
    images: tuple[Image.Image, ...] = ()

    def __repr__(self) -> str:
        # The data can hold megabytes of data URIs; show its shape, not its content.
        return f"FalResult(request_id={self.request_id!r}, keys={sorted(self.data)!r}, images={len(self.images)})"


# ---------------------------------------------------------------------------------------------------------------
# error rendering


def _describe_detail(detail: Any) -> tuple[str, list[str]]:
    """fal's ``detail`` as one readable line, and the input fields it names (422 validation lists)."""
    if isinstance(detail, list):
        parts, fields = [], []
        for item in detail:
            if not isinstance(item, Mapping):
                parts.append(str(item))
                continue
            loc = [str(p) for p in item.get("loc", []) if p != "body"]
            name = ".".join(loc) or "input"
            fields.append(name)
            text = f"{name}: {item.get('msg', 'invalid value')}"
            if "input" in item and not isinstance(item["input"], (dict, list)):
                text += f" (got {item['input']!r})"
            parts.append(text)
        return "; ".join(parts), fields
    if isinstance(detail, Mapping):
        return json.dumps(detail)[:300], []
    return str(detail)[:300], []


def _response_detail(resp: httpx.Response) -> Any:
    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip()
        return text[:300] if text else resp.reason_phrase
    if isinstance(body, Mapping) and "detail" in body:
        return body["detail"]
    return body


def _raise_for_status(resp: httpx.Response, what: str, request_id: str | None = None) -> None:
    """Turn a 4xx/5xx into one readable error: the status, fal's ``detail``, the field names for a 422."""
    status = resp.status_code
    if status < 400:
        return
    detail = _response_detail(resp)
    text, fields = _describe_detail(detail)
    text = redact(text)
    about = f" for request {request_id}" if request_id else ""
    if status == 401:
        raise AuthenticationError(f"fal.ai refused the key (HTTP 401): {text}. Check FAL_KEY: it is "
                                  "'<key_id>:<key_secret>' from https://fal.ai/dashboard/keys.",
                                  status=status, detail=detail, request_id=request_id)
    if status == 403:
        raise AuthenticationError(f"fal.ai refused the account (HTTP 403): {text}. Check the balance and account "
                                  "status at https://fal.ai/dashboard.", status=status, detail=detail,
                                  request_id=request_id)
    if status == 422:
        raise RemoteValidationError(f"fal.ai rejected the input{about}: {text}", fields=fields, status=status,
                                    detail=detail, request_id=request_id)
    raise RemoteError(f"fal.ai {what} failed{about} with HTTP {status}: {text}", status=status, detail=detail,
                      request_id=request_id)


def _lost(request_id: str, problem: str) -> ResultDownloadError:
    """The error for a completed (billed) request whose output we could not bring home."""
    return ResultDownloadError(
        f"fal request {request_id} completed but {problem}. fal.ai keeps results for a limited time (about an "
        "hour; images in sync mode are not kept): fetch it again with this request id.", request_id=request_id)


# ---------------------------------------------------------------------------------------------------------------
# waiting under a deadline and a cancel flag


class _Stop(Exception):
    """Internal: the watch ended a step because of the user's cancel or the overall deadline."""

    def __init__(self, cancelled: bool) -> None:
        self.cancelled = cancelled
        super().__init__("cancel" if cancelled else "timeout")


class _Watch:
    """Runs awaitables while checking ``should_cancel`` and the deadline every ``interval`` seconds."""

    def __init__(self, timeout: float, should_cancel: CancelCheck | None, interval: float) -> None:
        if not timeout > 0:
            raise InvalidInputError("timeout", timeout, "a positive number of seconds")
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.should_cancel = should_cancel
        self.interval = interval

    async def run(self, aw: Awaitable[T], *, keep_on_stop: bool = False) -> T:
        """The awaitable's result; :class:`_Stop` when cancelled or out of time (the step is then cancelled,
        unless ``keep_on_stop``: the caller still wants its outcome, e.g. a submit whose id is on its way)."""
        task = asyncio.ensure_future(aw)
        try:
            # Ends: every turn waits one interval (or what is left of the deadline), then stops at the deadline.
            while True:
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    raise _Stop(cancelled=False)
                done, _ = await asyncio.wait({task}, timeout=min(self.interval, remaining))
                if done:
                    return task.result()
                if self.should_cancel is not None and self.should_cancel():
                    raise _Stop(cancelled=True)
        except _Stop:
            if not keep_on_stop:
                await _cancel_task(task)
            raise
        except BaseException:
            await _cancel_task(task)
            raise


async def _cancel_task(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait for it to end; its outcome is consumed (the caller is already raising)."""
    if task.done():
        if not task.cancelled():
            task.exception()  # mark retrieved without re-raising into a traceback
        return
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


def _stop_error(stop: _Stop, watch: _Watch, request_id: str | None, *, completed: bool) -> AuraFlowError:
    rid = request_id or "(no id yet)"
    if completed:
        reason = "cancelled" if stop.cancelled else f"out of time ({watch.timeout:g} s)"
        error = _lost(rid, f"fetching its output was {reason}")
        if stop.cancelled:
            return CancelledError(str(error))
        return RemoteTimeoutError(str(error), request_id=request_id)
    if stop.cancelled:
        return CancelledError(f"fal request {rid} was cancelled by the user (cancel sent to fal.ai)")
    return RemoteTimeoutError(f"fal request {rid} did not finish within {watch.timeout:g} s; it was cancelled "
                              "on fal.ai", request_id=request_id)


# ---------------------------------------------------------------------------------------------------------------
# one client session: two httpx clients (the queue with the key, files without)


def _tls_context() -> ssl.SSLContext:
    """The context httpx would make for each client (certifi, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), made once
    per setting. Loading the CA bundle takes ~40 ms per client; a session has two and a node makes one per run."""
    return _tls_context_for(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=4)
def _tls_context_for(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context()  # reads the same two variables


class _Session:
    def __init__(self, config: FalConfig) -> None:
        self.config = config
        self.base_url = config.base_url.rstrip("/") if config.base_url else queue_base_url()
        check_url_scheme(self.base_url, field="base_url")
        timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        headers = {"User-Agent": USER_AGENT}
        # follow_redirects=False on the keyed client: a redirect must not carry the key to another host.
        tls = _tls_context()
        self.queue = httpx.AsyncClient(auth=FalKeyAuth(), timeout=timeout, headers=headers, follow_redirects=False,
                                       verify=tls)
        self.files = httpx.AsyncClient(timeout=timeout, headers=headers, follow_redirects=True, verify=tls)

    async def __aenter__(self) -> _Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.queue.aclose()
        await self.files.aclose()

    async def send(self, client: httpx.AsyncClient, method: str, url: str, *, what: str,
                   request_id: str | None = None, submit: bool = False, policy: RetryPolicy | None = None,
                   retry_5xx: bool = False, **kwargs: Any) -> httpx.Response:
        """One HTTP call with the retry rules of ``retry.py``; returns the last response, whatever its status.

        ``retry_5xx`` also repeats any 5xx: right for static files on a CDN, wrong for the result URL, which
        repeats the model's own stored error.
        """
        policy = policy or self.config.retry
        attempts = max(policy.attempts, 1)
        for attempt in range(1, attempts + 1):
            try:
                resp = await client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                # Only a connection that never opened proves a submit did not arrive.
                never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
                if (never_sent or not submit) and attempt < attempts:
                    delay = backoff_delay(attempt, policy)
                    log.debug("fal %s: %s, retrying in %.2f s (%d/%d)", what, type(exc).__name__, delay, attempt,
                              attempts)
                    await asyncio.sleep(delay)
                    continue
                if submit and not never_sent:
                    raise RemoteError(
                        f"the connection to fal.ai broke while submitting ({type(exc).__name__}). The request may "
                        "have been queued (and billed): check https://fal.ai/dashboard/requests before trying "
                        "again; it was not resent automatically so it cannot run twice.") from exc
                raise RemoteError(f"fal.ai {what} failed: {type(exc).__name__}: {redact(str(exc))[:200]}",
                                  request_id=request_id) from exc
            if (resp.status_code >= 400 and attempt < attempts
                    and (should_retry(resp.status_code, resp.headers, resp.content[:4096], submit=submit)
                         or (retry_5xx and resp.status_code >= 500))):
                delay = retry_delay(attempt, resp.headers, policy)
                log.debug("fal %s: HTTP %d, retrying in %.2f s (%d/%d)", what, resp.status_code, delay, attempt,
                          attempts)
                await asyncio.sleep(delay)
                continue
            return resp
        raise AssertionError("unreachable: the last attempt returns or raises")

    # -- submit ----------------------------------------------------------------------------------------------

    async def submit(self, app_id: str, arguments: Mapping[str, Any]) -> RequestHandle:
        submit_path, _ = split_app_id(app_id)
        resp = await self.send(self.queue, "POST", f"{self.base_url}/{submit_path}", what="submit", submit=True,
                               json=dict(arguments))
        _raise_for_status(resp, "submit")
        try:
            body = resp.json()
            handle = RequestHandle.from_submit(self.base_url, app_id, body)
        except (ValueError, AttributeError, InvalidInputError) as exc:
            raise RemoteError(
                f"fal.ai accepted the submit (HTTP {resp.status_code}) but its reply has no readable request id. "
                "The request may be running: check https://fal.ai/dashboard/requests; it was not resent.",
                status=resp.status_code) from exc
        log.info("fal request %s queued for %s", handle.request_id, app_id)
        return handle

    # -- follow ----------------------------------------------------------------------------------------------

    async def wait_completed(self, handle: RequestHandle, on_update: UpdateCallback | None,
                             deadline: float) -> Completed:
        """Follow the request to ``COMPLETED``: the SSE stream first, polling when it is unusable."""
        if self.config.use_stream:
            try:
                completed = await self._follow_stream(handle, on_update)
            except _StreamUnusable as exc:
                log.debug("fal status stream for %s unusable (%s); polling", handle.request_id, exc)
            else:
                if completed is not None:
                    return completed
                log.debug("fal status stream for %s ended early; polling", handle.request_id)
        return await self._poll(handle, on_update, deadline)

    async def _follow_stream(self, handle: RequestHandle, on_update: UpdateCallback | None) -> Completed | None:
        cfg = self.config
        timeout = httpx.Timeout(cfg.stream_read_timeout, connect=cfg.connect_timeout)
        try:
            async with self.queue.stream("GET", f"{handle.status_url}/stream", params={"logs": "1"},
                                         headers={"Accept": "text/event-stream"}, timeout=timeout) as resp:
                ctype = resp.headers.get("content-type", "")
                if resp.status_code != 200 or not ctype.startswith("text/event-stream"):
                    raise _StreamUnusable(f"HTTP {resp.status_code} {ctype or 'no content type'}")
                data_lines: list[str] = []
                # Ends when the server closes the stream (it does after COMPLETED) or a read times out.
                async for line in resp.aiter_lines():
                    if line:
                        if not line.startswith(":"):  # ':' lines are keep-alive comments
                            name, _, value = line.partition(":")
                            if name == "data":
                                data_lines.append(value[1:] if value.startswith(" ") else value)
                        continue
                    if not data_lines:
                        continue
                    status = parse_status(json.loads("\n".join(data_lines)))
                    data_lines = []
                    if on_update is not None:
                        on_update(status)
                    if isinstance(status, Completed):
                        return status
        except (httpx.TransportError, ValueError, RemoteError) as exc:
            raise _StreamUnusable(type(exc).__name__) from exc
        return None

    async def _poll(self, handle: RequestHandle, on_update: UpdateCallback | None, deadline: float) -> Completed:
        policy = self.config.retry
        unreadable = 0
        rid = handle.request_id
        while time.monotonic() < deadline:
            resp = await self.send(self.queue, "GET", handle.status_url, what="status", request_id=rid,
                                   params={"logs": "1"})
            _raise_for_status(resp, "status", rid)
            try:
                payload = resp.json()
            except ValueError:
                unreadable += 1
                if unreadable >= max(policy.attempts, 1):
                    raise RemoteError(f"fal.ai sent {unreadable} unreadable status replies for request {rid}",
                                      status=resp.status_code, request_id=rid) from None
                await asyncio.sleep(backoff_delay(unreadable, policy))
                continue
            unreadable = 0
            try:
                status = parse_status(payload)
            except RemoteError as exc:
                raise RemoteError(f"{exc} (request {rid})", request_id=rid) from exc
            if on_update is not None:
                on_update(status)
            if isinstance(status, Completed):
                return status
            await asyncio.sleep(self.config.poll_interval)
        raise RemoteTimeoutError(f"fal request {rid} did not complete in time", request_id=rid)

    # -- result ----------------------------------------------------------------------------------------------

    async def fetch_json(self, handle: RequestHandle) -> dict[str, Any]:
        """The result JSON; retried on transport errors, gateway errors and unreadable bodies (a GET is safe)."""
        policy = self.config.retry
        rid = handle.request_id
        attempts = max(policy.attempts, 1)
        for attempt in range(1, attempts + 1):
            try:
                resp = await self.send(self.queue, "GET", handle.response_url, what="result", request_id=rid)
            except RemoteError as exc:
                raise _lost(rid, f"its result could not be fetched ({exc})") from exc
            _raise_for_status(resp, "result", rid)
            try:
                data = resp.json()
            except ValueError:
                if attempt < attempts:
                    await asyncio.sleep(backoff_delay(attempt, policy))
                    continue
                raise _lost(rid, "its result was not readable JSON") from None
            if not isinstance(data, dict):
                raise _lost(rid, f"its result is a JSON {type(data).__name__}, not an object")
            return data
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def download_images(self, data: Mapping[str, Any], request_id: str) -> tuple[Image.Image, ...]:
        items = data.get("images")
        if not isinstance(items, list) or not items:
            raise _lost(request_id, "its result lists no images")
        tasks = [asyncio.ensure_future(self._image(item, i, request_id)) for i, item in enumerate(items)]
        try:
            return tuple(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                await _cancel_task(task)

    async def _image(self, item: Any, index: int, request_id: str) -> Image.Image:
        url = item.get("url") if isinstance(item, Mapping) else item
        if not isinstance(url, str) or not url:
            raise _lost(request_id, f"image {index} has no URL")
        if url.startswith("data:"):
            raw, ctype = _decode_data_uri(url, index, request_id)
        else:
            try:
                check_url_scheme(url, field="image url")
            except InvalidInputError:
                raise _lost(request_id, f"image {index} has an unusable URL scheme") from None
            try:
                resp = await self.send(self.files, "GET", url, what="image download", request_id=request_id,
                                       retry_5xx=True)
            except RemoteError as exc:
                raise _lost(request_id, f"image {index} could not be downloaded ({exc})") from exc
            if resp.status_code >= 400:
                raise _lost(request_id, f"downloading image {index} failed with HTTP {resp.status_code}")
            raw, ctype = resp.content, resp.headers.get("content-type", "")
        ctype = ctype.split(";")[0].strip().lower()
        if ctype and not (ctype.startswith("image/") or ctype == "application/octet-stream"):
            raise _lost(request_id, f"image {index} came back as {ctype!r}, not an image")
        try:
            return await asyncio.to_thread(_decode_image, raw)
        except Exception as exc:  # PIL raises many types for a broken file
            raise _lost(request_id, f"image {index} could not be decoded ({type(exc).__name__})") from exc

    # -- cancel ----------------------------------------------------------------------------------------------

    async def cancel(self, handle: RequestHandle) -> bool:
        """Best effort ``PUT cancel_url``: True when fal accepted it; never raises (a stop must not fail)."""
        policy = RetryPolicy(attempts=2, base_delay=min(self.config.retry.base_delay, 0.5),
                             max_delay=1.0, max_retry_after=1.0, rng=self.config.retry.rng)
        try:
            resp = await asyncio.wait_for(
                self.send(self.queue, "PUT", handle.cancel_url, what="cancel", request_id=handle.request_id,
                          policy=policy), timeout=self.config.cancel_timeout)
        except (AuraFlowError, asyncio.TimeoutError) as exc:
            log.warning("could not cancel fal request %s: %s", handle.request_id, exc or "timed out")
            return False
        if resp.is_success:
            log.info("cancelled fal request %s", handle.request_id)
            return True
        log.warning("fal.ai did not cancel request %s (HTTP %d)", handle.request_id, resp.status_code)
        return False


class _StreamUnusable(Exception):
    """Internal: the status stream is missing or broke; the caller falls back to polling."""


def _decode_data_uri(uri: str, index: int, request_id: str) -> tuple[bytes, str]:
    """``data:[<type>][;base64],<payload>`` → bytes and media type (sync_mode results)."""
    header, sep, payload = uri[5:].partition(",")
    if not sep:
        raise _lost(request_id, f"image {index} is a malformed data URI")
    params = header.split(";")
    ctype = params[0] or "text/plain"
    if "base64" not in params[1:]:
        raise _lost(request_id, f"image {index} is a data URI that is not base64")
    try:
        return base64.b64decode(payload, validate=True), ctype
    except (binascii.Error, ValueError):
        raise _lost(request_id, f"image {index} is a data URI with broken base64") from None


def _decode_image(raw: bytes) -> Image.Image:
    from PIL import Image

    with Image.open(io.BytesIO(raw)) as img:
        img.load()
        return img.convert("RGB")


# ---------------------------------------------------------------------------------------------------------------
# public API


async def _follow_and_collect(session: _Session, watch: _Watch, handle: RequestHandle,
                              on_update: UpdateCallback | None, fetch_images: bool) -> FalResult:
    rid = handle.request_id
    try:
        await watch.run(session.wait_completed(handle, on_update, watch.deadline))
    except _Stop as stop:
        await session.cancel(handle)
        raise _stop_error(stop, watch, rid, completed=False) from None
    except (CancelledError, asyncio.CancelledError):
        # the caller's callback raised our CancelledError, or the caller's task was cancelled: stop upstream too
        await session.cancel(handle)
        raise
    # COMPLETED: billed. From here every failure names the request id and nothing is cancelled upstream.
    try:
        data = await watch.run(session.fetch_json(handle))
        images = await watch.run(session.download_images(data, rid)) if fetch_images else ()
    except _Stop as stop:
        raise _stop_error(stop, watch, rid, completed=True) from None
    return FalResult(request_id=rid, data=data, images=images)


async def run(app_id: str, arguments: Mapping[str, Any], *, on_submit: Callable[[RequestHandle], None] | None = None,
              on_update: UpdateCallback | None = None, should_cancel: CancelCheck | None = None,
              timeout: float = DEFAULT_TIMEOUT, fetch_images: bool = True,
              config: FalConfig | None = None) -> FalResult:
    """Submit ``arguments`` to ``app_id`` on the queue, wait, and return the output (and images).

    ``on_submit`` receives the request handle as soon as the job is queued (keep its id: it is how a result is
    recovered); ``on_update`` every status (queue position, logs, completion); ``should_cancel`` is polled at
    least every ``config.cancel_check_interval`` seconds, and when it returns True the job is cancelled on fal.ai
    and :class:`CancelledError` raised. ``timeout`` bounds everything; on expiry the job is cancelled too and
    :class:`RemoteTimeoutError` raised. ``fetch_images=False`` for models whose output has no images (LLMs).
    """
    config = config or FalConfig()
    read_key()  # fail before any network traffic when no key is set
    split_app_id(app_id)
    watch = _Watch(timeout, should_cancel, config.cancel_check_interval)
    async with _Session(config) as session:
        submit_task = asyncio.ensure_future(session.submit(app_id, arguments))
        try:
            handle = await watch.run(submit_task, keep_on_stop=True)
        except _Stop as stop:
            # The POST may already be queued: give it a moment to answer so the job can be cancelled by id.
            done, _ = await asyncio.wait({submit_task}, timeout=config.submit_settle_timeout)
            pending = None
            if done and not submit_task.exception():
                pending = submit_task.result()
                await session.cancel(pending)
            else:
                await _cancel_task(submit_task)
            raise _stop_error(stop, watch, pending.request_id if pending else None, completed=False) from None
        if on_submit is not None:
            on_submit(handle)
        return await _follow_and_collect(session, watch, handle, on_update, fetch_images)


async def fetch_result(app_id: str, request_id: str, *, on_update: UpdateCallback | None = None,
                       should_cancel: CancelCheck | None = None, timeout: float = DEFAULT_TIMEOUT,
                       fetch_images: bool = True, config: FalConfig | None = None) -> FalResult:
    """The output of an earlier request, waiting for it first if it has not completed yet.

    This is how a billed result is recovered after a failed download or a restart (within fal's retention).
    A stop while it is still running cancels it on fal.ai, as :func:`run` does.
    """
    config = config or FalConfig()
    read_key()
    watch = _Watch(timeout, should_cancel, config.cancel_check_interval)
    async with _Session(config) as session:
        handle = RequestHandle.build(session.base_url, app_id, request_id)
        return await _follow_and_collect(session, watch, handle, on_update, fetch_images)


async def submit(app_id: str, arguments: Mapping[str, Any], *, config: FalConfig | None = None) -> RequestHandle:
    """Queue a request and return its handle without waiting (follow it later with :func:`fetch_result`)."""
    config = config or FalConfig()
    read_key()
    async with _Session(config) as session:
        return await session.submit(app_id, arguments)


async def fetch_json(app_id: str, request_id: str, *, config: FalConfig | None = None) -> dict[str, Any]:
    """Only the result JSON of a completed request: no waiting, no image download."""
    config = config or FalConfig()
    read_key()
    async with _Session(config) as session:
        return await session.fetch_json(RequestHandle.build(session.base_url, app_id, request_id))


async def download_images(data: Mapping[str, Any], *, request_id: str = "unknown",
                          config: FalConfig | None = None) -> tuple[Image.Image, ...]:
    """Decode ``data["images"]`` (URLs or data URIs) into RGB PIL images; no key is sent to image hosts."""
    async with _Session(config or FalConfig()) as session:
        return await session.download_images(data, request_id)


async def cancel(app_id: str, request_id: str, *, config: FalConfig | None = None) -> bool:
    """Ask fal.ai to cancel a request (best effort): True when accepted."""
    config = config or FalConfig()
    read_key()
    async with _Session(config) as session:
        return await session.cancel(RequestHandle.build(session.base_url, app_id, check_request_id(request_id)))
