"""Apply order through the engine with read batches smaller than a tie: rows of one user sharing
an ``UPDATED_AT`` end the same however the reader splits them (DuckDB source, state database
on SQLite and PostgreSQL; helpers of ``test_sync_engine``)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from tests.integration.state_fixtures import db_fixture  # noqa: F401
from tests.integration.test_sync_engine import make_sync, new_engine, store_contents
from zerocopy.state.db import Database
from zerocopy.state.sync_models import Sync

pytestmark = pytest.mark.anyio


def tied_attributes(path: Path, *, reverse: bool) -> Path:
    """``marketing.events_in`` holding attribute rows: 40 rows of 4 users at 2 instants."""
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS marketing")
        con.execute(
            "CREATE TABLE marketing.events_in (UPDATED_AT TIMESTAMP, EXTERNAL_ID VARCHAR, "
            "PAYLOAD VARCHAR)"
        )
        rows = [
            (f"2026-03-01 00:00:0{i // 20}", f"u{i % 4}", json.dumps({"v": i, f"k{i % 3}": i}))
            for i in range(40)
        ]
        if reverse:  # the same rows, ties read the other way round
            rows = sorted(rows, key=lambda r: (r[0], -json.loads(r[2])["v"]))
        con.executemany("INSERT INTO marketing.events_in VALUES (CAST(? AS TIMESTAMP), ?, ?)", rows)
    finally:
        con.close()
    return path


async def as_attributes(db: Database, sync_id: str) -> None:
    async with db.transaction() as s:
        await s.execute(
            sa.update(Sync).where(Sync.id == sync_id).values(data_type="user_attributes")
        )


@pytest.mark.parametrize("batch_rows", [1, 3, 7])
async def test_ties_split_across_read_batches_merge_like_one_batch(
    db: Database, tmp_path: Path, batch_rows: int
) -> None:
    whole_id, whole_ws, _ = await make_sync(
        db, tied_attributes(tmp_path / "a.duckdb", reverse=False), name="whole"
    )
    split_id, split_ws, _ = await make_sync(
        db, tied_attributes(tmp_path / "b.duckdb", reverse=True), name="split"
    )
    for sync_id in (whole_id, split_id):
        await as_attributes(db, sync_id)
    whole = await new_engine(db).run(whole_id)
    split = await new_engine(db, batch_rows=batch_rows).run(split_id)
    assert (whole.status, whole.rows_delivered) == ("success", 40)
    assert (split.status, split.rows_delivered) == ("success", 40)
    mine, theirs = await store_contents(db, split_ws), await store_contents(db, whole_ws)
    assert len(mine["profiles"]) == 4
    assert mine == theirs
