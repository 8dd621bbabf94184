"""The standalone server: an aiohttp app around one :class:`~.service.Service`, in the foreground (the CLI) or in
a background thread (tests, benchmarks, notebooks).

``python -m pipeline serve --model SOURCE`` loads the model first (a bad path fails before anything listens),
opens the SQLite store (re-queueing what a previous run left running), refuses a non-loopback host without keys
(:func:`.auth.check_bind`), and serves until Ctrl-C; a stop lets the running request finish its current step
and leaves it queued for the next start. With ``--tls-cert/--tls-key`` it speaks https, which fal's own clients
require (``FAL_QUEUE_RUN_HOST`` is always reached over https).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from pathlib import Path

from aiohttp import web

from .routes import add_routes
from .service import Service

log = logging.getLogger("ComfyUI-AuraFlow.serve")


def build_app(service: Service, *, prefix: str = "") -> web.Application:
    """An app serving the route table, starting the service with the app and stopping it first on shutdown."""
    app = web.Application(client_max_size=service.options.max_body + 1024)
    add_routes(app.router, service, prefix)

    async def on_startup(_app: web.Application) -> None:
        await service.start()

    async def on_shutdown(_app: web.Application) -> None:
        await service.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app


def ssl_context(cert: str | Path | None, key: str | Path | None) -> ssl.SSLContext | None:
    """A server TLS context from a PEM certificate (chain) and key; None when neither is given."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        from ..errors import InvalidInputError

        raise InvalidInputError("tls", "one of --tls-cert/--tls-key", "both a certificate and its key")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


class BackgroundServer:
    """The app on its own event loop in a daemon thread; ``url`` once started. A context manager."""

    def __init__(self, service: Service, *, host: str = "127.0.0.1", port: int = 0, prefix: str = "",
                 tls: ssl.SSLContext | None = None) -> None:
        self.service = service
        self.host, self.port, self.prefix, self.tls = host, port, prefix, tls
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> None:
        ready = threading.Event()
        errors: list[BaseException] = []
        loop = self._loop = asyncio.new_event_loop()

        async def setup() -> None:
            self._runner = web.AppRunner(build_app(self.service, prefix=self.prefix), access_log=None,
                                         shutdown_timeout=1.0)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.tls)
            await site.start()
            port = self._runner.addresses[0][1]
            scheme = "https" if self.tls else "http"
            self.url = f"{scheme}://{self.host}:{port}{self.prefix}"

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(setup())
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

        self._thread = threading.Thread(target=serve, name="auraflow-serve", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError(f"the server did not start within {timeout:g} s")
        if errors:
            raise errors[0]

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving: the worker ends after its current step; the store is left for a restart to reopen."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        self._thread = None
