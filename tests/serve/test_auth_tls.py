"""Keys (401 without/with a wrong key, nothing run, no key echoed), loopback-only without keys, body limits, TLS."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from testkit.serving import TINY_INPUT
from testkit.tls import self_signed

from pipeline import fal
from pipeline.__main__ import main
from pipeline.errors import AuthenticationError, InvalidInputError
from pipeline.serve import BackgroundServer, ServeOptions, authorized, check_bind, load_keys, ssl_context

from .conftest import FAST_CLIENT, FAST_OPTIONS

Start = Callable[..., BackgroundServer]
KEY = "local-key-id:local-key-secret-0123456789"
WRONG = "wrong-key-id:guess-secret-9876543210"


def test_keys_required_when_configured(start_server: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURAFLOW_SERVE_KEYS", f" {KEY} , other:key ")
    keys = load_keys()
    assert keys == (KEY, "other:key")
    server = start_server(options=ServeOptions(keys=keys, keepalive=FAST_OPTIONS.keepalive))
    url = f"{server.url}/fal-ai/aura-flow"
    for headers in ({}, {"Authorization": f"Key {WRONG}"}, {"Authorization": KEY}):
        resp = httpx.post(url, json=TINY_INPUT, headers=headers)
        assert resp.status_code == 401
        assert WRONG not in resp.text and KEY not in resp.text and "secret" not in resp.text
    assert server.service.store.count("queued") == 0 and server.service.worker.running is None
    assert httpx.get(f"{server.url}/health").status_code == 401

    monkeypatch.setenv("AURAFLOW_FAL_QUEUE_URL", server.url)
    monkeypatch.setenv("FAL_KEY", WRONG)
    with pytest.raises(AuthenticationError) as info:
        asyncio.run(fal.run("fal-ai/aura-flow", TINY_INPUT, config=FAST_CLIENT))
    assert WRONG not in str(info.value)
    monkeypatch.setenv("FAL_KEY", KEY)
    result = asyncio.run(fal.run("fal-ai/aura-flow", TINY_INPUT, config=FAST_CLIENT, timeout=60))
    assert result.images[0].size == (64, 64)  # images are fetched without the key (the URL carries a token)


def test_authorized_compares_every_key() -> None:
    assert authorized(None, ())
    assert authorized(f"Key {KEY}", (KEY,)) and authorized(f"Bearer {KEY}", ("x", KEY))
    assert not authorized(f"Key {KEY}x", (KEY,)) and not authorized(KEY, (KEY,)) and not authorized(None, (KEY,))


def test_refuses_network_bind_without_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for host in ("0.0.0.0", "192.168.1.10", "::"):
        with pytest.raises(InvalidInputError, match="loopback"):
            check_bind(host, ())
    check_bind("127.0.0.1", ())
    check_bind("0.0.0.0", (KEY,))
    assert main(["serve", "--model", str(tmp_path / "none"), "--host", "0.0.0.0"]) == 2
    assert "AURAFLOW_SERVE_KEYS" in capsys.readouterr().err
    key_file = tmp_path / "keys"
    key_file.write_text(f"# serve keys\n{KEY}\n")
    assert load_keys({}, key_file) == (KEY,)
    key_file.write_text("has space\n")
    with pytest.raises(InvalidInputError) as info:
        load_keys({}, key_file)
    assert "has space" not in str(info.value)


def test_oversized_and_malformed_bodies(start_server: Start) -> None:
    server = start_server(options=ServeOptions(max_body=1024))
    url = f"{server.url}/fal-ai/aura-flow"
    assert httpx.post(url, json={"prompt": "x" * 5000}).status_code == 413

    def chunks() -> object:
        yield b'{"prompt": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}'

    assert httpx.post(url, content=chunks()).status_code == 413  # chunked: no Content-Length to trust
    bad = httpx.post(url, content=b"{not json")
    assert bad.status_code == 422 and bad.json()["detail"][0]["type"] == "json_invalid"
    assert server.service.store.count("queued") == 0


def test_tls_with_both_clients(start_server: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = self_signed(tmp_path)
    if made is None:
        pytest.skip("no way to make a test certificate: neither `cryptography` nor the openssl tool is available")
    cert, key = made
    server = start_server(tls=ssl_context(cert, key))
    assert server.url.startswith("https://127.0.0.1:")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # httpx (ours and fal-client's) trusts the test's CA
    monkeypatch.setenv("AURAFLOW_FAL_QUEUE_URL", server.url)
    monkeypatch.setenv("FAL_KEY", "any:key")
    result = asyncio.run(fal.run("fal-ai/aura-flow", TINY_INPUT, config=FAST_CLIENT, timeout=60))
    assert result.data["images"][0]["url"].startswith(server.url + "/files/") and result.images

    fal_client = pytest.importorskip("fal_client")
    fal_client_client = pytest.importorskip("fal_client.client")
    monkeypatch.setattr(fal_client_client, "QUEUE_URL_FORMAT", server.url + "/")
    out = fal_client.SyncClient(key="any:key").subscribe("fal-ai/aura-flow", TINY_INPUT)
    assert out["images"][0]["url"].startswith("https://")
