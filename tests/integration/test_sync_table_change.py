"""Changing a sync's table (or source): the new table is read whole, nothing applied twice.

The watermark and the seen-row hashes belong to the table they were read from. After a change
the next run reads the new table from its start (rows older than the old watermark included),
while rows up to the old watermark are de-duplicated as after a watermark reset, so a view
over the same rows under a new name does not apply its events twice. A change while a run is
running is refused with ``sync_in_progress`` naming that run.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from tests.integration.state_fixtures import db_fixture  # noqa: F401
from tests.integration.test_sync_engine import (
    event_names,
    make_sync,
    new_engine,
    warehouse,
)
from zerocopy.errors import ZerocopyError
from zerocopy.services import syncs
from zerocopy.state.db import Database
from zerocopy.state.sync_models import Sync
from zerocopy.sync.watermark import WatermarkState

pytestmark = pytest.mark.anyio


def _table(path: Path, name: str, rows: list[tuple[str, str, str]]) -> None:
    """``marketing.<name>``: ``(UPDATED_AT, EXTERNAL_ID, event name)`` rows."""
    con = duckdb.connect(str(path))
    try:
        con.execute(
            f"CREATE TABLE marketing.{name} (UPDATED_AT TIMESTAMP, EXTERNAL_ID VARCHAR, "
            "PAYLOAD VARCHAR)"
        )
        for upd, ext, event in rows:
            payload = json.dumps({"name": event, "time": "2026-03-01T00:00:00Z"})
            con.execute(f"INSERT INTO marketing.{name} VALUES (?, ?, ?)", [upd, ext, payload])
    finally:
        con.close()


async def _activate(db: Database, sync_id: str) -> None:
    """What a successful test + activate leave (tested elsewhere through the API)."""
    async with db.transaction() as s:
        await s.execute(
            sa.update(Sync).where(Sync.id == sync_id).values(status="active", last_test_ok=True)
        )


async def test_a_new_table_is_read_whole_and_its_rows_before_the_old_watermark_arrive(
    db: Database, tmp_path: Path
) -> None:
    wh = warehouse(tmp_path / "wh.duckdb", rows=6)  # 2026-03-01 00:00:00 .. 00:00:01
    sync_id, ws, _src = await make_sync(db, wh)
    engine = new_engine(db)
    assert (await engine.run(sync_id)).rows_delivered == 6
    _table(wh, "events_v2", [("2026-02-01 00:00:00", "old", "feb"), ("2026-03-02", "new", "mar")])
    async with db.session() as s:
        changed = await syncs.update_sync(s, ws, sync_id, table="events_v2")
    assert changed.status == "draft"  # a new table needs a new test
    state = WatermarkState.from_json(changed.watermark)
    assert state.value is None and state.replay_until is not None
    await _activate(db, sync_id)
    run = await engine.run(sync_id)
    assert (run.status, run.rows_read, run.rows_delivered) == ("success", 2, 2)
    assert {"feb", "mar"} <= set(await event_names(db, ws))


async def test_the_same_rows_under_a_new_name_are_not_applied_twice(
    db: Database, tmp_path: Path
) -> None:
    wh = warehouse(tmp_path / "wh.duckdb", rows=6)
    sync_id, ws, _src = await make_sync(db, wh)
    engine = new_engine(db)
    await engine.run(sync_id)
    before = await event_names(db, ws)
    con = duckdb.connect(str(wh))
    try:
        con.execute("CREATE VIEW marketing.events_view AS SELECT * FROM marketing.events_in")
    finally:
        con.close()
    async with db.session() as s:
        await syncs.update_sync(s, ws, sync_id, table="events_view")
    await _activate(db, sync_id)
    run = await engine.run(sync_id)
    assert (run.status, run.rows_read) == ("success", 6)
    assert await event_names(db, ws) == before


async def test_a_table_change_while_a_run_is_running_is_refused(
    db: Database, tmp_path: Path
) -> None:
    wh = warehouse(tmp_path / "wh.duckdb", rows=3)
    sync_id, ws, _src = await make_sync(db, wh)
    engine = new_engine(db)
    run = await engine.request(sync_id)
    async with db.session() as s:
        with pytest.raises(ZerocopyError) as info:
            await syncs.update_sync(s, ws, sync_id, table="other")
    assert info.value.code == "sync_in_progress"
    assert info.value.details["run_id"] == run.id
    async with db.session() as s:
        await syncs.update_sync(s, ws, sync_id, name="renamed")  # other fields may change
        unchanged = await s.get(Sync, sync_id)
    assert unchanged is not None and unchanged.table_name == "events_in"
    assert (await engine.execute(run.id)).status == "success"
