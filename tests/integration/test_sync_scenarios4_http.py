"""Sync scenarios, fourth round: the HTTP destination and rows too large for the receiver.

A receiver answers ``413 Payload Too Large`` when a body is over its limit; zerocopy halves
the batch. When a single row alone is answered ``413``, halving cannot help: that row is a
row error (``rejected_by_destination``) and the run goes on — otherwise every run would fail
on it again and the sync would be stuck behind one row forever.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import duckdb
import pytest
import sqlalchemy as sa

from tests.integration.test_http_destination import http_sync, sync_db, sync_engine
from tests.peers.http_destination.fixtures import HttpPeer, http_peer, http_peer_server
from zerocopy.state.db import Database
from zerocopy.state.sync_models import SyncRowLog

__all__ = ["http_peer", "http_peer_server", "sync_db"]

pytestmark = [pytest.mark.anyio, pytest.mark.peer("http_destination")]


def _warehouse(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE users AS SELECT TIMESTAMP '2026-01-01' + i * INTERVAL 1 SECOND "
            "AS updated_at, 'u' || i AS external_id, "
            "CASE WHEN i = 2 THEN '{\"blob\": \"' || repeat('x', 200000) || '\"}' "
            "ELSE '{\"n\": ' || i || '}' END AS payload FROM range(4) t(i)"
        )


async def test_a_single_row_answered_413_is_a_row_error_and_the_run_goes_on(
    sync_db: Database, http_peer: HttpPeer, tmp_path: Path
) -> None:
    duck = tmp_path / "wh.duckdb"
    _warehouse(duck)
    sync_id = await http_sync(sync_db, duck, {"batch_rows": 4, "backoff_base_s": 0.01})
    # The batch of 4 is too large; halves: [u0, u1] passes, [u2, u3] is too large; then u2
    # alone is too large, u3 passes.
    http_peer.script({"status": 413}, {"status": "pass"}, {"status": 413}, {"status": 413})
    engine = sync_engine(sync_db, http_peer)
    run = await engine.run(sync_id)
    assert (run.status, run.rows_delivered, run.rows_errored) == ("partial_success", 3, 1), (
        run.error_code,
        run.error_message,
    )
    assert run.rows_read == 4
    assert sorted(r["identifier"]["external_id"] for r in http_peer.state()["rows"].values()) == [
        "u0",
        "u1",
        "u3",
    ]
    async with sync_db.session() as s:
        logged = (
            await s.execute(
                sa.select(SyncRowLog.position, SyncRowLog.code, SyncRowLog.message).where(
                    SyncRowLog.run_id == run.id, SyncRowLog.verdict == "error"
                )
            )
        ).all()
    assert [(p, c) for p, c, _ in logged] == [(2, "rejected_by_destination")]
    assert "413" in (logged[0][2] or "")
    # The watermark went past it: the next run has nothing to send.
    again = await engine.run(sync_id)
    assert (again.status, again.rows_delivered, again.rows_errored) == ("success", 0, 0)


async def test_a_cancel_arriving_during_the_last_batch_leaves_a_complete_run_not_cancelled(
    sync_db: Database, http_peer: HttpPeer, tmp_path: Path
) -> None:
    """A cancel takes effect between batches. One that arrives while the last batch is being
    delivered (here: the receiver asked to retry in 2 s) comes too late: every row is then
    delivered and the watermark at the end, so the run says ``success``, not ``cancelled``
    (which would promise rows left for the next run)."""
    duck = tmp_path / "wh.duckdb"
    _warehouse(duck)
    sync_id = await http_sync(sync_db, duck, {"batch_rows": 10, "backoff_base_s": 0.01})
    http_peer.script({"status": 429, "retry_after": "2"})
    engine = sync_engine(sync_db, http_peer)
    run = await engine.request(sync_id)
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.execute, run.id)
        with anyio.fail_after(30):
            while not http_peer.state()["requests"]:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        await engine.request_cancel(run.id)
    done = await engine.get(run.id)
    assert (done.status, done.rows_delivered, done.error_code) == ("success", 4, None)
    assert len(http_peer.state()["rows"]) == 4
    again = await engine.run(sync_id)
    assert (again.status, again.rows_delivered) == ("success", 0)
