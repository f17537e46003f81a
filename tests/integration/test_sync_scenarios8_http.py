"""Round 14: no secret of a destination or webhook URL in errors or logs.

The HTTP destination's URL and a sync's webhook URL may carry secrets outside the bearer key:
a user and password (``https://user:pw@host/…``), a token in the query (``?token=…``), and for
webhooks the path itself (Slack-style ``/services/T0/B0/xyz``). Every error message and log
line printed the URL whole, so a refused or failing batch put those secrets into the run's
``error`` (shown by the API) and the logs. They now show the URL without user, password,
query or fragment, and a webhook's without its path. Against the HTTP peer, which answers
404 for any path but ``/batches`` (or a query).
"""

from __future__ import annotations

import pytest
import structlog

from tests.integration.test_http_destination import batch, rows
from tests.peers.http_destination.fixtures import HttpPeer, http_peer, http_peer_server
from zerocopy import errors
from zerocopy.destinations.http import HttpDestination, HttpDestinationConfig
from zerocopy.errors import ZerocopyError
from zerocopy.notify.decision import Event, Notification, NotificationSettings
from zerocopy.notify.dispatch import send_notifications

__all__ = ["http_peer", "http_peer_server"]

pytestmark = [pytest.mark.anyio, pytest.mark.peer("http_destination")]

SECRETS = ("qtoken-7f3e9a", "pw-51c2d8", "fragment-2b9c")


async def test_a_refused_batch_does_not_show_the_url_secrets(http_peer: HttpPeer) -> None:
    host = http_peer.base.split("://", 1)[1]
    url = f"http://peer-user:{SECRETS[1]}@{host}/batches?token={SECRETS[0]}#{SECRETS[2]}"
    config = HttpDestinationConfig(url=url, api_key=http_peer.key, max_attempts=1)
    dest = HttpDestination(config)
    with structlog.testing.capture_logs() as logs, pytest.raises(ZerocopyError) as refused:
        await dest.deliver(batch(rows(2)))
    await dest.aclose()
    # The peer refuses: 404 for the query, or 401 if the user went out as Basic auth.
    assert refused.value.code in (errors.DESTINATION_ERROR, errors.AUTH_FAILED), refused.value
    shown = refused.value.message + repr(dest) + repr(config) + repr(logs)
    assert f"{host}/batches" in refused.value.message, refused.value.message
    for secret in SECRETS:
        assert secret not in shown, (secret, shown)
    assert "peer-user" not in refused.value.message


async def test_a_failing_webhook_does_not_show_its_path_or_query(http_peer: HttpPeer) -> None:
    url = f"{http_peer.base}/services/T0/{SECRETS[0]}?sig={SECRETS[1]}"
    note = Notification(Event.SYNC_FAILING, "subject", "body", {})
    with structlog.testing.capture_logs() as logs:
        failures = await send_notifications((note,), NotificationSettings(webhook_url=url), None)
    (failure,) = failures
    assert failure.error.code == errors.NOTIFICATION_FAILED
    assert "HTTP 404" in failure.error.message, failure.error.message
    assert http_peer.base in failure.error.message
    shown = failure.error.message + repr(logs)
    for secret in SECRETS[:2]:
        assert secret not in shown, (secret, shown)
