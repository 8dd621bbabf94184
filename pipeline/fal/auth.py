"""Where the fal key comes from, and the one place that puts it on a request.

The key is looked up again for every HTTP request (:class:`FalKeyAuth`), so setting or rotating ``FAL_KEY``
takes effect without restarting ComfyUI (fal-client caches it: "401 until restart" reports). Order, as fal's
own clients: ``FAL_KEY``; else ``FAL_KEY_ID`` + ``FAL_KEY_SECRET`` joined with ``:``; then our user-level key
file (``$AURAFLOW_CONFIG_DIR/fal_key``, else ``$XDG_CONFIG_HOME/comfyui-auraflow/fal_key``, else
``~/.config/comfyui-auraflow/fal_key``), which must not be readable by other users. The key never goes into a
widget (ComfyUI saves widget values into workflows and PNG metadata), a log line, an exception or a repr.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Generator, Mapping
from pathlib import Path

import httpx

from ..errors import MissingCredentialsError

KEY_FILE_NAME = "fal_key"
CONFIG_DIR_ENV = "AURAFLOW_CONFIG_DIR"

HOW_TO_SET_KEY = (
    "Create a key at https://fal.ai/dashboard/keys and set it for the process that runs ComfyUI, e.g. "
    "`export FAL_KEY=<key_id>:<key_secret>` (or FAL_KEY_ID and FAL_KEY_SECRET), or write it to {path} "
    "with `chmod 600` so only you can read it. Never type the key into a node: widget values are saved in "
    "workflows and image metadata."
)


def key_file_path(environ: Mapping[str, str] | None = None) -> Path:
    """The user-level key file: outside the pack folder, so it is never shared along with the pack."""
    env = os.environ if environ is None else environ
    if env.get(CONFIG_DIR_ENV):
        return Path(env[CONFIG_DIR_ENV]) / KEY_FILE_NAME
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "comfyui-auraflow" / KEY_FILE_NAME


def _check_key(key: str, source: str) -> str:
    """Refuse a key that cannot travel in an HTTP header, without ever echoing it."""
    key = key.strip()
    if not key:
        raise MissingCredentialsError(f"{source} is empty. " + HOW_TO_SET_KEY.format(path=key_file_path()))
    if not all(33 <= ord(ch) < 127 for ch in key):
        # httpx would raise an encoding error that quotes the header value; stop before that.
        raise MissingCredentialsError(f"{source} contains spaces or non-ASCII characters; a fal key is "
                                      "'<key_id>:<key_secret>' in plain ASCII.")
    return key


def _read_key_file(path: Path) -> str | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MissingCredentialsError(f"cannot read the fal key file {path}: {exc.strerror}") from None
    if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MissingCredentialsError(f"the fal key file {path} can be read by other users; "
                                      f"run `chmod 600 {path}` and try again.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MissingCredentialsError(f"cannot read the fal key file {path} ({type(exc).__name__})") from None
    return _check_key(text, f"the fal key file {path}")


def read_key(environ: Mapping[str, str] | None = None) -> str:
    """The fal key as sent in ``Authorization: Key <key>``; :class:`MissingCredentialsError` when none is set."""
    env = os.environ if environ is None else environ
    if env.get("FAL_KEY"):
        return _check_key(env["FAL_KEY"], "FAL_KEY")
    key_id, secret = env.get("FAL_KEY_ID"), env.get("FAL_KEY_SECRET")
    if key_id and secret:
        return _check_key(f"{key_id.strip()}:{secret.strip()}", "FAL_KEY_ID/FAL_KEY_SECRET")
    if key_id or secret:
        raise MissingCredentialsError("only one of FAL_KEY_ID and FAL_KEY_SECRET is set; set both, or FAL_KEY.")
    path = key_file_path(env)
    key = _read_key_file(path)
    if key is None:
        raise MissingCredentialsError("no fal.ai key is configured. " + HOW_TO_SET_KEY.format(path=path))
    return key


def key_source(environ: Mapping[str, str] | None = None) -> str | None:
    """Where :func:`read_key` would take the key from: ``"env"``, ``"file"`` or None; never the key itself.

    Says only where a key is configured, not whether it works; the ComfyUI setting shows this.
    """
    env = os.environ if environ is None else environ
    if env.get("FAL_KEY") or (env.get("FAL_KEY_ID") and env.get("FAL_KEY_SECRET")):
        return "env"
    return "file" if key_file_path(env).is_file() else None


def write_key_file(key: str, environ: Mapping[str, str] | None = None) -> Path:
    """Store ``key`` in the user-level key file, readable only by the user; returns the file's path.

    The key is checked as :func:`read_key` would (:class:`MissingCredentialsError`, never quoting it). The file
    is created with mode 0600 from the start (never briefly world-readable) in the same folder, then renamed
    over the old one, so a reader sees the old key or the new one, never half a file. The folder is made 0700.
    """
    key = _check_key(key, "the fal key")
    path = key_file_path(environ)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{KEY_FILE_NAME}.", dir=path.parent)  # mkstemp creates with 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(key + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)  # explicit, whatever the umask or platform default
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def clear_key_file(environ: Mapping[str, str] | None = None) -> bool:
    """Remove the user-level key file; True when there was one. The environment variables are not touched."""
    try:
        key_file_path(environ).unlink()
    except FileNotFoundError:
        return False
    return True


def redact(text: str, secret: str | None = None) -> str:
    """``text`` with the key (and its secret half) replaced, for server messages we repeat to the user."""
    try:
        key = secret if secret is not None else read_key()
    except MissingCredentialsError:
        return text
    for part in {key, key.partition(":")[2]}:
        if len(part) >= 4:
            text = text.replace(part, "***")
    return text


class FalKeyAuth(httpx.Auth):
    """httpx auth that reads the key when each request is sent and adds ``Authorization: Key …``.

    Holding no key means there is nothing to leak through ``repr``, pickling or a debugger's locals.
    """

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Key {read_key()}"
        yield request

    def __repr__(self) -> str:
        return "FalKeyAuth()"
