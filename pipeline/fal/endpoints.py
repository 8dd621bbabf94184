"""Queue URLs: the base URL, app ids, request ids, and the per-request handle.

The base is ``https://queue.fal.run`` unless ``AURAFLOW_FAL_QUEUE_URL`` says otherwise (a self-hosted gateway,
a test stand-in). The key goes to that host on every call, so plain ``http://`` is allowed only when the host is
the machine itself (loopback): a key is never sent in clear over a network.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import InvalidInputError

DEFAULT_QUEUE_URL = "https://queue.fal.run"
QUEUE_URL_ENV = "AURAFLOW_FAL_QUEUE_URL"

# fal's namespaces whose app ids take one extra leading segment (fal-queue-api.md §1).
_NAMESPACES = ("workflows", "comfy")
_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]+$")
# fal request ids are UUIDs; accept any short token of URL-safe characters, nothing that could change the path.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: traffic that never leaves the machine."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url_scheme(url: str, *, field: str) -> str:
    """``url`` when it is https, or http to a loopback host; :class:`InvalidInputError` otherwise."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return url
    if parts.scheme == "http":
        raise InvalidInputError(field, url, "an https:// URL; plain http:// is accepted only for a loopback host "
                                "(127.0.0.1, ::1, localhost) because the fal key would travel unencrypted")
    raise InvalidInputError(field, url, "an https:// URL (or http:// to a loopback host)")


def queue_base_url(environ: Mapping[str, str] | None = None) -> str:
    """The queue base URL, read at call time so a changed environment takes effect without a restart."""
    env = os.environ if environ is None else environ
    url = (env.get(QUEUE_URL_ENV) or DEFAULT_QUEUE_URL).strip().rstrip("/")
    return check_url_scheme(url, field=QUEUE_URL_ENV)


def split_app_id(app_id: str) -> tuple[str, str]:
    """``(submit_path, requests_path)``: submit uses the whole id, status/result/cancel only ``owner/alias``."""
    parts = app_id.strip("/").split("/")
    if len(parts) < 2 or not all(_SEGMENT.match(p) and p not in (".", "..") for p in parts):
        raise InvalidInputError("app_id", app_id, "'owner/alias' or 'owner/alias/sub/path' (e.g. fal-ai/aura-flow)")
    head = 3 if parts[0] in _NAMESPACES else 2
    if len(parts) < head:
        raise InvalidInputError("app_id", app_id, f"'{parts[0]}/owner/alias' for the {parts[0]} namespace")
    return "/".join(parts), "/".join(parts[:head])


def check_request_id(request_id: str) -> str:
    """A request id fit to put in a URL path (it may come from a node widget)."""
    rid = request_id.strip() if isinstance(request_id, str) else request_id
    if not isinstance(rid, str) or not _REQUEST_ID.match(rid):
        raise InvalidInputError("request_id", request_id, "a fal request id such as "
                                "'764cabcf-b745-4b3e-ae38-1200304cf45b' (letters, digits, '-' and '_')")
    return rid


def same_origin(url: str, base: str) -> bool:
    """True when ``url`` is on the same scheme/host/port as ``base``: only such URLs get the key."""
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


@dataclass(frozen=True)
class RequestHandle:
    """Everything needed to follow, fetch or cancel one queued request, and nothing secret."""

    app_id: str
    request_id: str
    status_url: str
    response_url: str
    cancel_url: str

    @classmethod
    def build(cls, base_url: str, app_id: str, request_id: str) -> RequestHandle:
        """The URLs fal would have returned on submit, rebuilt from the ids (resuming a request later)."""
        _, requests_path = split_app_id(app_id)
        rid = check_request_id(request_id)
        root = f"{base_url.rstrip('/')}/{requests_path}/requests/{rid}"
        return cls(app_id=app_id, request_id=rid, status_url=f"{root}/status", response_url=root,
                   cancel_url=f"{root}/cancel")

    @classmethod
    def from_submit(cls, base_url: str, app_id: str, body: Mapping[str, object]) -> RequestHandle:
        """Use the URLs the server returned (fal's docs ask for that) when they point at the queue host we trust
        with the key; otherwise rebuild them from the request id rather than send the key elsewhere."""
        rid = check_request_id(str(body.get("request_id", "")))
        built = cls.build(base_url, app_id, rid)
        urls = {name: body.get(name) for name in ("status_url", "response_url", "cancel_url")}
        if all(isinstance(u, str) and same_origin(u, base_url) for u in urls.values()):
            return cls(app_id=app_id, request_id=rid, status_url=str(urls["status_url"]),
                       response_url=str(urls["response_url"]), cancel_url=str(urls["cancel_url"]))
        return built
