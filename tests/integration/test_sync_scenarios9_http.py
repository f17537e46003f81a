"""Round 15: a ``503 Service Unavailable`` with ``Retry-After`` is waited for.

A receiver that is down for maintenance answers ``503`` with ``Retry-After`` saying when it
expects to be back (RFC 9110 section 10.2.3). Only ``429`` honoured the header: a ``503``
was retried after the short backoff, ``max_attempts`` times in a row while the receiver was
still down, and a ``Retry-After`` past the run's deadline was not seen as hopeless. A ``503``
with ``Retry-After`` now waits as a ``429`` does (within the run's deadline); without the
header, or with one that is not seconds or an HTTP date, it backs off as before.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.integration.test_http_destination import (
    batch,
    destination,
    http_sync,
    rows,
    sync_db,
    sync_engine,
    warehouse,
)
from tests.peers.http_destination.fixtures import HttpPeer, http_peer, http_peer_server
from zerocopy.state.db import Database

__all__ = ["http_peer", "http_peer_server", "sync_db"]

pytestmark = [pytest.mark.anyio, pytest.mark.peer("http_destination")]


async def test_a_503_with_retry_after_waits_that_long(http_peer: HttpPeer) -> None:
    http_peer.script({"status": 503, "retry_after": "1"}, {"status": "pass"})
    dest = destination(http_peer, backoff_base_s=0.01, deadline=anyio.current_time() + 30)
    result = await dest.deliver(batch(rows(3)))
    await dest.aclose()
    assert result.accepted and result.delivered == 3, result
    first, second = http_peer.state()["requests"]
    assert (first["status"], second["status"]) == (503, 200), (first, second)
    assert second["at"] - first["at"] >= 1.0, (first, second)


async def test_a_503_without_retry_after_or_with_a_bad_one_backs_off(http_peer: HttpPeer) -> None:
    http_peer.script({"status": 503}, {"status": 503, "retry_after": "soon"}, {"status": "pass"})
    dest = destination(http_peer, backoff_base_s=0.01, deadline=anyio.current_time() + 30)
    result = await dest.deliver(batch(rows(2)))
    await dest.aclose()
    assert result.accepted and dest.attempts == 3, result
    assert len(http_peer.state()["rows"]) == 2


async def test_a_503_retry_after_past_the_deadline_fails_the_batch_at_once(
    http_peer: HttpPeer,
) -> None:
    http_peer.script({"status": 503, "retry_after": "3600"}, {"status": "pass"})
    dest = destination(http_peer, backoff_base_s=0.01, deadline=anyio.current_time() + 30)
    result = await dest.deliver(batch(rows(2)))
    await dest.aclose()
    assert not result.accepted and "deadline" in (result.error or ""), result
    assert "Retry-After: 3600" in (result.error or ""), result
    assert dest.attempts == 1 and http_peer.state()["rows"] == {}


async def test_a_sync_behind_a_receiver_down_for_an_hour_keeps_its_watermark(
    sync_db: Database, http_peer: HttpPeer, tmp_path: Path
) -> None:
    duck = tmp_path / "wh.duckdb"
    warehouse(duck, 20)
    sync_id = await http_sync(sync_db, duck, {"batch_rows": 10, "backoff_base_s": 0.01})
    http_peer.script({"status": "pass"}, {"status": 503, "retry_after": "3600"})
    engine = sync_engine(sync_db, http_peer)
    down = await engine.run(sync_id)
    assert down.status == "error" and "Retry-After: 3600" in (down.error_message or ""), (
        down.status,
        down.error_message,
    )
    assert down.watermark_after == down.watermark_before
    assert len(http_peer.state()["requests"]) == 2  # no retry into the maintenance window
    back = await engine.run(sync_id)
    assert (back.status, back.rows_delivered + back.rows_errored) == ("success", 20), (
        back.status,
        back.error_message,
    )
    assert len(http_peer.state()["rows"]) == 20
