"""Round 7: a ``Retry-After`` the HTTP destination cannot honour is no delay at all.

``Retry-After`` is delta-seconds (ASCII digits) or an HTTP date (RFC 9110). The header was read
with ``float``: ``inf`` / ``1e309`` were an infinite wait, and the deadline check then crashed
on ``math.ceil(inf)`` (an ``OverflowError`` out of the run instead of a retry); ``nan`` and
``-3`` were no wait and full-width digits twelve seconds. Now anything that is not
one of the two forms falls back to the usual backoff and the batch is retried.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from tests.integration.test_http_destination import batch, destination, rows
from tests.peers.http_destination.fixtures import HttpPeer, http_peer, http_peer_server
from zerocopy.destinations.http import parse_retry_after

__all__ = ["http_peer", "http_peer_server"]

pytestmark = [pytest.mark.anyio, pytest.mark.peer("http_destination")]


@pytest.mark.parametrize("header", ["inf", "Infinity", "1e309", "nan", "-3", "1_0", "\uff11\uff12"])
async def test_a_malformed_retry_after_is_retried_with_backoff(
    http_peer: HttpPeer, header: str
) -> None:
    http_peer.script({"status": 429, "retry_after": header}, {"status": "pass"})
    dest = destination(http_peer, deadline=anyio.current_time() + 30)
    result = await dest.deliver(batch(rows(3)))
    await dest.aclose()
    assert result.accepted and result.delivered == 3, result
    assert dest.attempts == 2
    assert len(http_peer.state()["rows"]) == 3


def test_retry_after_forms() -> None:
    now = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 007 ", now) == 7.0
    assert parse_retry_after("0", now) == 0.0
    # More digits than any deadline: a finite wait, so the deadline check refuses it cleanly.
    assert parse_retry_after("9" * 400, now) == 1e15
    when = now + timedelta(seconds=90)
    assert parse_retry_after(when.strftime("%a, %d %b %Y %H:%M:%S GMT"), now) == 90.0
    assert parse_retry_after("Thu, 26 Nov 2026 01:00:00 GMT", now) == 0.0  # past: at once
    for bad in ("inf", "1e309", "nan", "-3", "1.5", "1_0", "\uff11\uff12", "soon", ""):
        assert parse_retry_after(bad, now) is None, bad


async def test_a_huge_retry_after_fails_the_batch_before_the_deadline(
    http_peer: HttpPeer,
) -> None:
    http_peer.script({"status": 429, "retry_after": "9" * 400})
    dest = destination(http_peer, deadline=anyio.current_time() + 30)
    result = await dest.deliver(batch(rows(2)))
    await dest.aclose()
    assert not result.accepted and "deadline" in (result.error or ""), result
    assert http_peer.state()["rows"] == {}
