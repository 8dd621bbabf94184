"""The fal key route (nodes/web_routes.py) over real HTTP on 127.0.0.1, and its registration rules."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import stat
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

aiohttp_web = pytest.importorskip("aiohttp.web", reason="aiohttp (a dev dependency) runs the test server")

ROUTE = "/auraflow/fal-key"  # the JS calls this path (web/js/auraflow_logic.js KEY_ROUTE)
KEY = "0123abcd-key-id:f00dfeedSECRETpart9876"


@pytest.fixture(scope="module")
def routes_mod(pack):
    return importlib.import_module(f"{pack.__name__}.nodes.web_routes")


@pytest.fixture(scope="module")
def auth_mod(pack):
    return importlib.import_module(f"{pack.__name__}.pipeline.fal.auth")


@pytest.fixture(scope="module")
def base_url(routes_mod) -> Iterator[str]:
    """An aiohttp app with only our route, served from a thread (ComfyUI's server is aiohttp too)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, object] = {}

    async def start() -> None:
        app = aiohttp_web.Application()
        routes = aiohttp_web.RouteTableDef()
        routes_mod.register(routes)
        app.add_routes(routes)
        runner = aiohttp_web.AppRunner(app)
        await runner.setup()
        site = aiohttp_web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state["runner"] = runner
        state["port"] = runner.addresses[0][1]

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield f"http://127.0.0.1:{state['port']}"
    asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(10)  # type: ignore[union-attr]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture
def client(base_url: str, caplog: pytest.LogCaptureFixture) -> Iterator[httpx.Client]:
    """Every test using it also checks that no log record holds the key."""
    caplog.set_level(logging.DEBUG)
    with httpx.Client(base_url=base_url, timeout=10) as c:
        yield c
    assert KEY not in caplog.text, "the key reached a log record"
    assert KEY.split(":")[1] not in caplog.text


def key_path() -> Path:
    return Path(os.environ["AURAFLOW_CONFIG_DIR"]) / "fal_key"


def post(client: httpx.Client, body: object) -> httpx.Response:
    return client.post(ROUTE, json=body)


def test_route_path_matches_the_js(routes_mod) -> None:
    assert routes_mod.ROUTE == ROUTE
    js = (Path(__file__).resolve().parents[2] / "web" / "js" / "auraflow_logic.js").read_text()
    assert f'KEY_ROUTE = "{ROUTE}"' in js


def test_get_without_a_key(client: httpx.Client) -> None:
    r = client.get(ROUTE)
    assert r.status_code == 200
    assert r.json() == {"set": False, "source": None}
    assert r.headers["Cache-Control"] == "no-store"


def test_post_stores_the_key_0600_and_never_echoes_it(client: httpx.Client, auth_mod) -> None:
    r = post(client, {"key": f"  {KEY}\n"})
    assert r.status_code == 200, r.text
    assert r.json() == {"set": True, "source": "file", "shadowed_by_env": False}
    assert KEY not in r.text
    path = key_path()
    assert path.read_text().strip() == KEY
    assert auth_mod.read_key() == KEY
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not [p for p in path.parent.iterdir() if p.name != "fal_key"], "temporary files were left behind"
    status = client.get(ROUTE)
    assert status.json() == {"set": True, "source": "file"}
    assert KEY not in status.text


def test_post_replaces_an_old_key(client: httpx.Client) -> None:
    post(client, {"key": "old-id:old-secret"})
    assert post(client, {"key": KEY}).status_code == 200
    assert key_path().read_text().strip() == KEY


def test_environment_key_shadows_the_file(client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", "env-id:env-secret")
    r = post(client, {"key": KEY})
    assert r.status_code == 200
    assert r.json()["shadowed_by_env"] is True
    assert client.get(ROUTE).json() == {"set": True, "source": "env"}
    assert "env-secret" not in client.get(ROUTE).text


def test_delete_removes_the_file(client: httpx.Client) -> None:
    post(client, {"key": KEY})
    r = client.delete(ROUTE)
    assert r.status_code == 200
    assert r.json() == {"set": False, "source": None, "removed": True}
    assert not key_path().exists()
    assert client.delete(ROUTE).json()["removed"] is False


@pytest.mark.parametrize("method", ["PUT", "PATCH", "OPTIONS"])
def test_other_methods_are_refused(client: httpx.Client, method: str) -> None:
    r = client.request(method, ROUTE, json={"key": KEY})
    assert r.status_code == 405
    assert set(r.headers["Allow"].split(", ")) == {"GET", "POST", "DELETE"}
    assert KEY not in r.text
    assert not key_path().exists()


def test_oversized_body_is_refused(client: httpx.Client, routes_mod) -> None:
    r = post(client, {"key": KEY, "pad": "x" * routes_mod.MAX_BODY})
    assert r.status_code == 413
    assert KEY not in r.text
    assert not key_path().exists()


def test_oversized_chunked_body_is_refused(client: httpx.Client, routes_mod) -> None:
    """No Content-Length: the limit holds while reading, too."""
    def chunks() -> Iterator[bytes]:
        yield b'{"key": "' + KEY.encode() + b'", "pad": "'
        for _ in range(routes_mod.MAX_BODY // 512 + 2):
            yield b"y" * 512
        yield b'"}'

    r = client.post(ROUTE, content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert not key_path().exists()


@pytest.mark.parametrize("content", [
    b"not json " + KEY.encode(),
    b'{"key": "' + KEY.encode() + b'"',  # truncated
    b"\xff\xfe" + KEY.encode(),
    b"",
], ids=["text", "truncated", "not-utf8", "empty"])
def test_bad_json_is_refused_without_echo(client: httpx.Client, content: bytes) -> None:
    r = client.post(ROUTE, content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert "error" in r.json()
    assert KEY not in r.text
    assert not key_path().exists()


@pytest.mark.parametrize("body", [
    {"key": ""},
    {"key": "   \n\t"},
    {"key": KEY[:10] + " " + KEY[10:]},
    {"key": KEY + "\x00"},
    {"key": KEY + "\x7f"},
    {"key": KEY + "é"},
    {"key": 12345},
    {"nokey": KEY},
    [KEY],
    KEY,
], ids=["empty", "whitespace", "space", "nul", "del", "non-ascii", "number", "no-key", "list", "string"])
def test_bad_keys_are_refused_without_echo(client: httpx.Client, body: object) -> None:
    r = post(client, body)
    assert r.status_code == 400, r.text
    message = r.json()["error"]
    assert KEY not in r.text and KEY[:10] not in message and KEY[10:] not in message
    assert not key_path().exists()


def test_post_must_be_json(client: httpx.Client) -> None:
    """A cross-site HTML form cannot send application/json without a CORS preflight."""
    r = client.post(ROUTE, content=f'{{"key": "{KEY}"}}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert KEY not in r.text
    assert not key_path().exists()


def test_unusable_key_file_is_reported_not_read_out(client: httpx.Client) -> None:
    path = key_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(KEY)
    if os.name != "posix":
        pytest.skip("file modes are POSIX")
    path.chmod(0o644)
    status = client.get(ROUTE).json()
    assert status["set"] is False and status["source"] == "file"
    assert "chmod 600" in status["problem"]
    assert KEY not in str(status)


def test_write_key_file_is_0600_even_with_an_open_umask(auth_mod) -> None:
    old = os.umask(0)
    try:
        path = auth_mod.write_key_file(KEY)
    finally:
        os.umask(old)
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth_mod.key_source() == "file"
    assert auth_mod.clear_key_file() is True
    assert auth_mod.key_source() is None


def test_register_twice_adds_one_route(routes_mod) -> None:
    table = aiohttp_web.RouteTableDef()
    routes_mod.register(table)
    routes_mod.register(table)
    assert [r.path for r in table] == [routes_mod.ROUTE]
    app = aiohttp_web.Application()
    routes_mod.register(app.router)
    routes_mod.register(app.router)
    assert len([r for r in app.router.routes() if r.resource.canonical == routes_mod.ROUTE]) == 1


def test_register_with_comfyui_is_a_noop_without_comfyui(routes_mod, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "server", None)  # `import server` raises ImportError
    assert routes_mod.register_with_comfyui() is False


def test_register_with_comfyui_uses_the_prompt_server_routes(routes_mod, monkeypatch: pytest.MonkeyPatch) -> None:
    table = aiohttp_web.RouteTableDef()
    fake = types.ModuleType("server")
    fake.PromptServer = type("PromptServer", (), {"instance": types.SimpleNamespace(routes=table)})
    monkeypatch.setitem(sys.modules, "server", fake)
    assert routes_mod.register_with_comfyui() is True
    assert routes_mod.register_with_comfyui() is True
    assert [r.path for r in table] == [routes_mod.ROUTE]
    fake.PromptServer.instance = None  # ComfyUI not started: nothing to register on
    assert routes_mod.register_with_comfyui() is False
