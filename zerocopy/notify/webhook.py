"""Webhook delivery: the same events as the e-mails, POSTed as one JSON object each."""

from __future__ import annotations

import anyio
import httpx

from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.logging import redact_text, shown_url
from zerocopy.notify.decision import Notification

WEBHOOK_TIMEOUT_S = 10.0
"""Timeout of one POST."""

WEBHOOK_ATTEMPTS = 3
"""POSTs tried before giving up (on connection errors and 5xx; 4xx is final)."""


async def send_webhook(
    url: str,
    notification: Notification,
    *,
    client: httpx.AsyncClient | None = None,
    backoff_s: float = 0.5,
) -> None:
    """POST ``notification.payload`` (with ``subject``) to ``url``; retries 5xx a few times."""
    body = {**notification.payload, "event": notification.event.value}
    body.setdefault("subject", notification.subject)
    own = client is None
    http = client or httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S)
    last = ""
    try:
        for attempt in range(WEBHOOK_ATTEMPTS):
            try:
                resp = await http.post(
                    url, json=body, headers={"X-Zerocopy-Event": notification.event.value}
                )
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {redact_text(str(exc)).replace(url, shown_url(url, path=False))}"
            else:
                if resp.status_code < 300:
                    return
                last = f"HTTP {resp.status_code}"
                if resp.status_code < 500:
                    break
            if attempt + 1 < WEBHOOK_ATTEMPTS:
                await anyio.sleep(backoff_s * 2**attempt)
    finally:
        if own:
            await http.aclose()
    raise ZerocopyError(
        errors.NOTIFICATION_FAILED,
        f"webhook {shown_url(url, path=False)} did not accept the {notification.event.value} event ({last}); "
        "check the sync's webhook URL",
    )
