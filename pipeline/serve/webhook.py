"""``fal_webhook``: POST the outcome of a finished request to the URL given at submit, retried with backoff.

The payload is fal's (https://fal.ai/docs/model-endpoints/webhooks): ``{"request_id", "gateway_request_id",
"status": "OK" | "ERROR", "payload": <the result JSON>, "error": <message, on errors>}``. Any 2xx answer counts as
delivered; anything else (an error status, a refused or broken connection, a timeout) is retried up to
``attempts`` times with exponential backoff, then given up and logged: a receiver that is down for good must not
hold a task forever. The delivery state is stored (:mod:`.queue`), so a restart resumes pending deliveries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger("ComfyUI-AuraFlow.serve")


@dataclass(frozen=True)
class WebhookPolicy:
    """Delivery attempts and the delay before retry ``n`` (1-based): ``min(base_delay * 2**(n-1), max_delay)``.

    Defaults cover a receiver that restarts within about a minute (1+2+4+8+16+30 s).
    """

    attempts: int = 7
    base_delay: float = 1.0
    max_delay: float = 30.0
    timeout: float = 10.0

    def delay(self, attempt: int) -> float:
        return min(self.base_delay * 2 ** (attempt - 1), self.max_delay)


def webhook_payload(request_id: str, status: int, result: Any, error: str | None) -> dict[str, Any]:
    """fal's webhook body for one finished request."""
    ok = 200 <= status < 300
    body: dict[str, Any] = {"request_id": request_id, "gateway_request_id": request_id,
                            "status": "OK" if ok else "ERROR", "payload": result}
    if not ok:
        body["error"] = error or f"Invalid status code: {status}"
    return body


async def deliver(url: str, payload: Mapping[str, Any], policy: WebhookPolicy | None = None) -> bool:
    """POST ``payload`` to ``url`` until a 2xx answer or the attempts run out; True when delivered."""
    policy = policy or WebhookPolicy()
    attempts = max(policy.attempts, 1)
    async with httpx.AsyncClient(timeout=policy.timeout, follow_redirects=False) as client:
        for attempt in range(1, attempts + 1):
            try:
                resp = await client.post(url, json=dict(payload))
                if resp.is_success:
                    return True
                problem = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            if attempt < attempts:
                log.info("webhook for %s: %s, retrying in %.1f s (%d/%d)", payload.get("request_id"), problem,
                         policy.delay(attempt), attempt, attempts)
                await asyncio.sleep(policy.delay(attempt))
            else:
                log.warning("webhook for %s not delivered after %d attempts (%s)", payload.get("request_id"),
                            attempts, problem)
    return False
