"""A watermark reset followed by a replay killed with ``kill -9``: the store still ends equal to
one clean run (events re-read after the reset are not appended twice, before or after the kill).

Reuses the engine scenario helpers of ``test_sync_engine`` (DuckDB source, state database on
SQLite and PostgreSQL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa

from tests.integration.state_fixtures import db_fixture  # noqa: F401
from tests.integration.test_sync_engine import (
    CHILD,
    ROOT,
    SECRET_KEY,
    add_rows,
    event_names,
    make_sync,
    new_engine,
    store_contents,
    warehouse,
)
from zerocopy.state.db import Database
from zerocopy.state.sync_models import Sync
from zerocopy.sync.watermark import WatermarkState

pytestmark = pytest.mark.anyio


async def reset_to_null(db: Database, sync_id: str) -> None:
    """The state change ``reset_watermark`` commits (the service is tested through the API)."""
    async with db.transaction() as s:
        sync = await s.get(Sync, sync_id)
        assert sync is not None
        state = WatermarkState.from_json(sync.watermark).reset(None)
        await s.execute(sa.update(Sync).where(Sync.id == sync_id).values(watermark=state.to_json()))


async def test_kill_9_during_a_replay_after_a_reset_then_a_run_equals_one_clean_run(
    db: Database, tmp_path: Path
) -> None:
    rows = 8_000
    wh = warehouse(tmp_path / "wh.duckdb", rows=rows)
    sync_id, ws_id, _ = await make_sync(db, wh, name="replayed")
    engine = new_engine(db)
    first = await engine.run(sync_id)
    assert (first.status, first.rows_delivered) == ("success", rows)
    await reset_to_null(db, sync_id)

    proc = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-c", CHILD, db.url, sync_id, SECRET_KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = ""
        while not line.startswith("RUN "):
            line = await anyio.to_thread.run_sync(proc.stdout.readline)
            assert line, "the child process ended before starting its run"
        run_id = line.split()[1]
        with anyio.fail_after(60):
            while (await engine.get(run_id)).rows_delivered < 500:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        await anyio.to_thread.run_sync(proc.wait)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    killed = await engine.get(run_id)
    assert killed.status == "running" and killed.rows_delivered < rows  # really mid-replay
    assert len(await event_names(db, ws_id)) == rows  # nothing appended twice so far
    assert await engine.reap_lost(stale_after_s=0) == [run_id]
    resumed = await engine.run(sync_id)
    assert resumed.status == "success"
    assert len(await event_names(db, ws_id)) == rows
    # The replay mark lasts until the watermark passes the old value.
    add_rows(wh, [("2026-03-02 00:00:00", "u1", "next")])
    assert (await engine.run(sync_id)).rows_delivered == 1
    async with db.session() as s:
        sync = await s.get(Sync, sync_id)
        assert sync is not None
        assert "replay_until" not in (sync.watermark or {})

    clean_id, clean_ws, _ = await make_sync(db, wh, name="clean")
    assert (await engine.run(clean_id)).rows_delivered == rows + 1
    assert await store_contents(db, ws_id) == await store_contents(db, clean_ws)
