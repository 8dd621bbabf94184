"""The official JavaScript client (npm ``@fal-ai/client``, pinned in tests/serve/js/package.json) runs the seed's
example against the standalone server over TLS, with a certificate made here and trusted by Node through
``NODE_EXTRA_CA_CERTS`` (verification stays on). The seed's call is verbatim: it sends only the prompt, so the
server's defaults apply (50 steps, 1024 px); :class:`TinyGrid` renders sizes beyond the tiny weights' 256 px grid
at 64 px on the server side and says so in the logs. The JS side is tests/serve/js/aura_flow.test.mjs, run with
``node --test``. Needs ``npm ci --prefix tests/serve/js`` once (.ci/run does it); without node_modules this test
fails saying so, unless ``AURAFLOW_SKIP_JS_CLIENT=1``. Skipped where Node.js is not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from testkit.pack import ROOT
from testkit.serving import SlowPipe
from testkit.tls import self_signed

from pipeline.serve import BackendOutput, BackgroundServer, LocalBackend, ServeOptions, ssl_context

from .conftest import FAST_OPTIONS

NODE = shutil.which("node")
JS_DIR = ROOT / "tests" / "serve" / "js"
JS_TEST = JS_DIR / "aura_flow.test.mjs"
CLIENT_PACKAGE = JS_DIR / "node_modules" / "@fal-ai" / "client" / "package.json"
KEY = "js-key-id:js-key-secret-0123456789"
# Every sampler step takes at least this long, so the JS polls (every 0.5 s) see IN_QUEUE and IN_PROGRESS (the
# seed's 50 steps: >= 2.5 s) and cancel lands while a request runs; the whole file takes ~10 s.
STEP_DELAY = 0.05

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js (`node`) is not installed; the JS client test needs it")

Start = Callable[..., BackgroundServer]


class TinyGrid:
    """The local backend, except that a side beyond the tiny weights' position grid is rendered at ``px``.

    The seed's example asks for the server's default 1024 x 1024, which the tiny test model cannot make (its grid
    stops at 256 px); everything else (queue, seed, prompt expansion, steps, logs) is the real backend's.
    """

    def __init__(self, inner: LocalBackend, grid_px: int = 256, px: int = 64) -> None:
        self.inner, self.grid_px, self.px = inner, grid_px, px

    def run(self, input: Mapping[str, Any], on_progress: Callable[[str], None],
            should_cancel: Callable[[], bool]) -> BackendOutput:
        fitted = {**input}
        for side in ("width", "height"):
            if int(fitted.get(side, 1024)) > self.grid_px:
                fitted[side] = self.px
        if fitted != dict(input):
            on_progress(f"test weights: {input.get('width', 1024)}x{input.get('height', 1024)} rendered as "
                        f"{fitted['width']}x{fitted['height']}")
        return self.inner.run(fitted, on_progress, should_cancel)


def _require_js_client() -> None:
    """Fail (not skip) where the pinned client is not installed, so CI cannot pass without it."""
    if CLIENT_PACKAGE.is_file():
        return
    if os.environ.get("AURAFLOW_SKIP_JS_CLIENT") == "1":
        pytest.skip("AURAFLOW_SKIP_JS_CLIENT=1 and @fal-ai/client is not installed")
    pytest.fail("the official JS client is not installed: run `npm ci --prefix tests/serve/js` "
                "(or set AURAFLOW_SKIP_JS_CLIENT=1 to skip this test)", pytrace=False)


@pytest.fixture
def tls_server(start_server: Start, tiny_pipe: Any, tmp_path: Path) -> tuple[BackgroundServer, Path]:
    made = self_signed(tmp_path)
    if made is None:
        pytest.skip("no way to make a test certificate: neither `cryptography` nor the openssl tool is available")
    cert, key = made
    backend = TinyGrid(LocalBackend(pipe=SlowPipe(tiny_pipe, step_delay=STEP_DELAY)))
    server = start_server(backend=backend, tls=ssl_context(cert, key),
                          options=ServeOptions(keys=(KEY,), keepalive=FAST_OPTIONS.keepalive,
                                               purge_interval=FAST_OPTIONS.purge_interval))
    assert server.url.startswith("https://127.0.0.1:")
    return server, cert


def _node_env(**extra: str) -> dict[str, str]:
    """The caller's environment minus anything that would send a real key or weaken TLS, plus ``extra``."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("FAL_", "NODE_TLS_", "NODE_EXTRA_CA_")) and name != "NODE_OPTIONS"}
    return {**env, **extra}


def test_official_js_client_runs_the_seed_example(tls_server: tuple[BackgroundServer, Path]) -> None:
    _require_js_client()
    server, cert = tls_server
    env = _node_env(AURAFLOW_SERVE_URL=server.url, AURAFLOW_SERVE_KEY=KEY, NODE_EXTRA_CA_CERTS=str(cert))
    out = subprocess.run([NODE, "--test", "--test-reporter=tap", str(JS_TEST)], cwd=JS_DIR, env=env,
                         capture_output=True, text=True, timeout=180, check=False)
    report = f"node --test exited {out.returncode}:\n{out.stdout[-6000:]}\n{out.stderr[-3000:]}"
    assert out.returncode == 0, report
    passed = re.search(r"^# pass (\d+)$", out.stdout, flags=re.M)
    todo = re.search(r"^# todo (\d+)$", out.stdout, flags=re.M)
    assert "# fail 0" in out.stdout and passed and int(passed.group(1)) >= 4, report
    assert todo is None or todo.group(1) == "0", report
    assert server.service.store.count("queued") == 0


def test_node_checks_the_certificate(tls_server: tuple[BackgroundServer, Path]) -> None:
    """Without the test certificate Node refuses the server: the test above passes by trusting it, not by a bypass."""
    server, _cert = tls_server
    probe = ("fetch(process.argv[1]).then(() => process.exit(0),"
             " (e) => { console.log(e.cause && e.cause.code); process.exit(3); });")
    out = subprocess.run([NODE, "-e", probe, f"{server.url}/health"], cwd=JS_DIR, env=_node_env(),
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "CERT" in out.stdout, out.stdout
