"""Status parsing, key lookup and URL rules (pipeline/fal/statuses.py, auth.py, endpoints.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.errors import InvalidInputError, MissingCredentialsError, RemoteError
from pipeline.fal.auth import FalKeyAuth, key_file_path, read_key
from pipeline.fal.endpoints import RequestHandle, queue_base_url, split_app_id
from pipeline.fal.statuses import Completed, InProgress, LogEntry, Queued, parse_status

# -- statuses ----------------------------------------------------------------------------------------------------


def test_parse_each_status() -> None:
    assert parse_status({"status": "IN_QUEUE", "queue_position": 3}) == Queued(3)
    assert parse_status({"status": "IN_PROGRESS", "logs": None}) == InProgress(())
    progress = parse_status({"status": "IN_PROGRESS", "logs": [{"message": "step 1", "level": "INFO"}]})
    assert progress == InProgress((LogEntry("step 1", "INFO", ""),))
    done = parse_status({"status": "COMPLETED", "logs": None, "metrics": {"inference_time": 1.5}})
    assert done == Completed((), {"inference_time": 1.5}, None, None)
    failed = parse_status({"status": "COMPLETED", "error": "boom", "error_type": "internal_server_error"})
    assert isinstance(failed, Completed) and failed.error == "boom"


@pytest.mark.parametrize("payload", [{"status": "FAILED"}, {"nothing": 1}, ["IN_QUEUE"], None])
def test_unknown_status_is_an_error_not_a_wait(payload: object) -> None:
    with pytest.raises(RemoteError):
        parse_status(payload)


# -- key lookup --------------------------------------------------------------------------------------------------


def test_fal_key_wins_over_id_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", "a:b")
    monkeypatch.setenv("FAL_KEY_ID", "c")
    monkeypatch.setenv("FAL_KEY_SECRET", "d")
    assert read_key() == "a:b"
    monkeypatch.delenv("FAL_KEY")
    assert read_key() == "c:d"


def test_key_is_read_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", "first:1")
    assert read_key() == "first:1"
    monkeypatch.setenv("FAL_KEY", "second:2")
    assert read_key() == "second:2"


def test_key_file_must_be_private(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AURAFLOW_CONFIG_DIR", str(tmp_path))
    path = key_file_path()
    assert path == tmp_path / "fal_key"
    path.write_text("file-id:file-secret\n")
    os.chmod(path, 0o600)
    assert read_key() == "file-id:file-secret"
    os.chmod(path, 0o644)
    with pytest.raises(MissingCredentialsError, match="chmod 600") as info:
        read_key()
    assert "file-secret" not in str(info.value)


def test_missing_key_says_how_to_set_one() -> None:
    with pytest.raises(MissingCredentialsError) as info:
        read_key()
    message = str(info.value)
    assert "FAL_KEY" in message and "export" in message and "fal_key" in message


def test_half_a_key_pair_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY_ID", "only-id")
    with pytest.raises(MissingCredentialsError, match="FAL_KEY_SECRET"):
        read_key()


def test_unsendable_key_is_refused_without_echo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", "id:sécret with space")
    with pytest.raises(MissingCredentialsError) as info:
        read_key()
    assert "sécret" not in str(info.value)


def test_auth_object_holds_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", "id:very-secret-value")
    auth = FalKeyAuth()
    assert "very-secret" not in repr(auth) and "very-secret" not in repr(vars(auth))


# -- URLs --------------------------------------------------------------------------------------------------------


def test_default_and_overridden_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    assert queue_base_url() == "https://queue.fal.run"
    monkeypatch.setenv("AURAFLOW_FAL_QUEUE_URL", "http://127.0.0.1:8123/")
    assert queue_base_url() == "http://127.0.0.1:8123"
    monkeypatch.setenv("AURAFLOW_FAL_QUEUE_URL", "http://localhost:8123")
    assert queue_base_url() == "http://localhost:8123"
    monkeypatch.setenv("AURAFLOW_FAL_QUEUE_URL", "https://fal.example.org/queue")
    assert queue_base_url() == "https://fal.example.org/queue"


@pytest.mark.parametrize("url", ["http://fal.example.org", "http://10.0.0.5:8000", "ftp://127.0.0.1", "queue.fal.run"])
def test_plain_http_is_refused_for_non_loopback_hosts(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("AURAFLOW_FAL_QUEUE_URL", url)
    with pytest.raises(InvalidInputError, match="AURAFLOW_FAL_QUEUE_URL") as info:
        queue_base_url()
    assert "https://" in str(info.value)


def test_app_ids_and_request_urls() -> None:
    assert split_app_id("fal-ai/aura-flow") == ("fal-ai/aura-flow", "fal-ai/aura-flow")
    assert split_app_id("fal-ai/flux/dev") == ("fal-ai/flux/dev", "fal-ai/flux")
    assert split_app_id("workflows/me/flow") == ("workflows/me/flow", "workflows/me/flow")
    handle = RequestHandle.build("https://queue.fal.run", "fal-ai/flux/dev", "abc-123")
    assert handle.status_url == "https://queue.fal.run/fal-ai/flux/requests/abc-123/status"
    assert handle.cancel_url == "https://queue.fal.run/fal-ai/flux/requests/abc-123/cancel"
    for bad in ("aura-flow", "fal-ai/../x"):
        with pytest.raises(InvalidInputError):
            split_app_id(bad)
    for bad_id in ("../../admin", "a b", ""):
        with pytest.raises(InvalidInputError):
            RequestHandle.build("https://queue.fal.run", "fal-ai/aura-flow", bad_id)


def test_urls_from_another_host_are_not_trusted_with_the_key() -> None:
    body = {"request_id": "r1", "status_url": "https://evil.example/s", "response_url": "https://evil.example/r",
            "cancel_url": "https://evil.example/c"}
    handle = RequestHandle.from_submit("https://queue.fal.run", "fal-ai/aura-flow", body)
    assert handle.response_url == "https://queue.fal.run/fal-ai/aura-flow/requests/r1"


def test_client_imports_without_torch_pil_or_comfyui() -> None:
    """The prompt-expansion code imports this client in processes that never load torch."""
    import subprocess
    import sys

    from testkit.pack import ROOT

    code = ("import sys, pipeline.fal;"
            "bad = [m for m in ('torch', 'PIL', 'comfy', 'folder_paths', 'fal_client') if m in sys.modules];"
            "assert not bad, bad")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
