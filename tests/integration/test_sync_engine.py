"""The sync engine against real stores (SQLite and PostgreSQL state, DuckDB warehouse).

Ties at the watermark, late rows inside the lookback, row limit, one run per sync, cancel,
and ``kill -9`` of a real subprocess mid-sync followed by a new run: the store must end
exactly equal to a single clean run's (full contents compared).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import duckdb
import pytest
import sqlalchemy as sa

from tests.integration.state_fixtures import db_fixture  # noqa: F401
from zerocopy.connections import AdapterFactory
from zerocopy.errors import ZerocopyError
from zerocopy.secrets import SecretBox
from zerocopy.state.db import Database
from zerocopy.state.models import Credential, Source, SourceStatus, Workspace
from zerocopy.state.sync_models import StoreEvent, StoreProfile, Sync, SyncRowLog
from zerocopy.sync.engine import SyncEngine
from zerocopy.sync.watermark import WatermarkState

pytestmark = pytest.mark.anyio

BASE = "2026-03-01 00:00:00"
ROOT = Path(__file__).resolve().parents[2]


def warehouse(path: Path, rows: int = 0, tie: int = 3) -> Path:
    """``marketing.events_in``: ``rows`` events, ``tie`` consecutive rows share UPDATED_AT."""
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS marketing")
        con.execute(
            "CREATE TABLE marketing.events_in (UPDATED_AT TIMESTAMP, EXTERNAL_ID VARCHAR, "
            "PAYLOAD VARCHAR)"
        )
        if rows:
            con.execute(
                f"""INSERT INTO marketing.events_in
                SELECT TIMESTAMP '{BASE}' + to_seconds((i // {tie})::BIGINT),
                       'u' || (i % 97),
                       json_object('name', 'e' || i, 'time', '2026-03-01T00:00:00Z',
                                   'properties', json_object('i', i))::VARCHAR
                FROM range(?) t(i)""",
                [rows],
            )
    finally:
        con.close()
    return path


def add_rows(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """Insert ``(UPDATED_AT, EXTERNAL_ID, event name)`` rows, as a late writer would."""
    con = duckdb.connect(str(path))
    try:
        for upd, ext, name in rows:
            payload = json.dumps({"name": name, "time": "2026-03-01T00:00:00Z"})
            con.execute(
                "INSERT INTO marketing.events_in VALUES (CAST(? AS TIMESTAMP), ?, ?)",
                [upd, ext, payload],
            )
    finally:
        con.close()


@dataclass
class SyncSetup:
    db: Database
    engine: SyncEngine
    warehouse: Path
    sync_id: str
    workspace_id: str
    source_id: str


async def make_sync(
    db: Database, wh: Path, *, name: str = "ev", lookback_s: int = 0, row_limit: int | None = None
) -> tuple[str, str, str]:
    async with db.transaction() as s:
        ws = Workspace(name=f"acme-{name}")
        s.add(ws)
        await s.flush()
        cred = Credential(workspace_id=ws.id, name="wh", kind="duckdb", settings={"path": str(wh)})
        s.add(cred)
        await s.flush()
        src = Source(
            workspace_id=ws.id,
            credential_id=cred.id,
            name="wh",
            kind="duckdb",
            scope="marketing",
            status=SourceStatus.ACTIVE,
        )
        s.add(src)
        await s.flush()
        sync = Sync(
            workspace_id=ws.id,
            name=name,
            source_id=src.id,
            table_name="events_in",
            data_type="custom_events",
            status="active",
            lookback_s=lookback_s,
            row_limit=row_limit,
            row_log="errors",
        )
        s.add(sync)
        await s.flush()
        return sync.id, ws.id, src.id


def new_engine(db: Database, **kw: Any) -> SyncEngine:
    return SyncEngine(db, AdapterFactory(SecretBox([SECRET_KEY])), **kw)


SECRET_KEY = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE="


@pytest.fixture
async def setup(db: Database, tmp_path: Path) -> AsyncIterator[SyncSetup]:
    wh = warehouse(tmp_path / "wh.duckdb")
    sync_id, ws_id, src_id = await make_sync(db, wh)
    yield SyncSetup(db, new_engine(db), wh, sync_id, ws_id, src_id)


async def store_contents(db: Database, workspace_id: str) -> dict[str, Any]:
    """Everything the store holds for a workspace, without workspace-derived ids."""
    async with db.session() as s:
        profiles = (
            await s.execute(
                sa.select(
                    StoreProfile.id,
                    StoreProfile.external_id,
                    StoreProfile.email,
                    StoreProfile.phone,
                    StoreProfile.attributes,
                    StoreProfile.updated_at,
                ).where(StoreProfile.workspace_id == workspace_id)
            )
        ).all()
        ext = {p.id: p.external_id for p in profiles}
        events = (
            await s.execute(
                sa.select(
                    StoreEvent.profile_id,
                    StoreEvent.name,
                    StoreEvent.time,
                    StoreEvent.properties,
                    StoreEvent.row_hash,
                ).where(StoreEvent.workspace_id == workspace_id)
            )
        ).all()
        sync = await s.scalar(sa.select(Sync).where(Sync.workspace_id == workspace_id))
    assert sync is not None
    return {
        "profiles": sorted(
            (
                p.external_id,
                p.email,
                p.phone,
                json.dumps(p.attributes, sort_keys=True),
                p.updated_at,
            )
            for p in profiles
        ),
        "events": sorted(
            (
                ext[e.profile_id],
                e.name,
                e.time,
                json.dumps(e.properties, sort_keys=True),
                e.row_hash,
            )
            for e in events
        ),
        "watermark": WatermarkState.from_json(sync.watermark).value,
    }


async def event_names(db: Database, workspace_id: str) -> list[str]:
    async with db.session() as s:
        rows = await s.scalars(
            sa.select(StoreEvent.name).where(StoreEvent.workspace_id == workspace_id)
        )
        return sorted(rows.all())


async def test_ties_at_the_watermark_are_never_lost_nor_applied_twice(setup: SyncSetup) -> None:
    add_rows(
        setup.warehouse,
        [
            ("2026-03-01 00:00:00", "a", "t1-a"),
            ("2026-03-01 00:00:00", "b", "t1-b"),
            ("2026-03-01 00:00:01", "a", "t2-a"),
            ("2026-03-01 00:00:01", "b", "t2-b"),
        ],
    )
    first = await setup.engine.run(setup.sync_id)
    assert (first.status, first.rows_delivered) == ("success", 4)
    # Committed after the run read the boundary, with the same UPDATED_AT as the watermark.
    add_rows(
        setup.warehouse,
        [
            ("2026-03-01 00:00:01", "c", "t2-c-late"),
            ("2026-03-01 00:00:01", "d", "t2-d-late"),
            ("2026-03-01 00:00:02", "a", "t3-a"),
        ],
    )
    second = await setup.engine.run(setup.sync_id)
    # Rows read = delivered + skipped + errored: the boundary rows read again count as read.
    assert (second.status, second.rows_read, second.rows_delivered, second.rows_skipped) == (
        "success",
        5,
        3,
        2,
    )
    third = await setup.engine.run(setup.sync_id)
    assert (third.rows_read, third.rows_delivered, third.rows_skipped) == (1, 0, 1)
    names = await event_names(setup.db, setup.workspace_id)
    assert names == sorted(["t1-a", "t1-b", "t2-a", "t2-b", "t2-c-late", "t2-d-late", "t3-a"])
    assert WatermarkState.from_json(third.watermark_after).value is not None
    assert str(WatermarkState.from_json(third.watermark_after).value) == "2026-03-01 00:00:02+00:00"


async def test_late_rows_inside_the_lookback_are_picked_up_once(
    db: Database, tmp_path: Path
) -> None:
    wh = warehouse(tmp_path / "wh.duckdb")
    sync_id, ws_id, _ = await make_sync(db, wh, lookback_s=600)
    engine = new_engine(db)
    add_rows(wh, [(f"2026-03-01 00:{m:02d}:00", "a", f"m{m}") for m in range(0, 30, 5)])
    first = await engine.run(sync_id)
    assert first.rows_delivered == 6
    # Late commits: one 5 minutes before the watermark (inside the 10-minute lookback),
    # one 20 minutes before it (outside: a lookback only covers its window).
    add_rows(
        wh,
        [("2026-03-01 00:20:00", "b", "late-inside"), ("2026-03-01 00:05:00", "c", "late-outside")],
    )
    second = await engine.run(sync_id)
    assert (second.status, second.rows_delivered) == ("success", 1)
    assert second.rows_skipped == 3  # m15, m20, m25 re-read inside the window, recognised
    third = await engine.run(sync_id)
    assert (third.rows_delivered, third.rows_skipped) == (0, 4)
    names = await event_names(db, ws_id)
    assert names.count("late-inside") == 1 and "late-outside" not in names
    assert len(names) == 7


async def test_row_limit_stops_with_limit_exceeded_and_resumes(
    db: Database, tmp_path: Path
) -> None:
    wh = warehouse(tmp_path / "wh.duckdb", rows=25)
    sync_id, ws_id, _ = await make_sync(db, wh, row_limit=10)
    engine = new_engine(db)
    first = await engine.run(sync_id)
    assert (first.status, first.rows_read, first.rows_delivered) == ("limit_exceeded", 10, 10)
    # 10 rows = 3 full ties + 1 row of the 4th: the watermark stops inside a tie, safely.
    second = await engine.run(sync_id)
    third = await engine.run(sync_id)
    assert (second.rows_delivered, third.rows_delivered) == (10, 5)
    assert len(await event_names(db, ws_id)) == 25


async def test_one_running_run_per_sync(setup: SyncSetup) -> None:
    run = await setup.engine.request(setup.sync_id)
    other = new_engine(setup.db)
    with pytest.raises(ZerocopyError) as info:
        await other.request(setup.sync_id)
    assert info.value.code == "sync_in_progress"
    assert info.value.details["run_id"] == run.id
    done = await setup.engine.execute(run.id)
    assert done.status == "success"
    assert (await other.request(setup.sync_id)).id != run.id


async def test_cancel_keeps_the_last_committed_batch_and_the_next_run_completes(
    db: Database, tmp_path: Path
) -> None:
    wh = warehouse(tmp_path / "wh.duckdb", rows=3000)
    sync_id, ws_id, _ = await make_sync(db, wh)
    engine = new_engine(db, delivery_rows=50, cancel_poll_s=0.05)
    run = await engine.request(sync_id)
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.execute, run.id)
        with anyio.fail_after(30):
            while (await engine.get(run.id)).rows_delivered < 100:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        await new_engine(db).request_cancel(run.id)  # as another process would, via the DB
    stopped = await engine.get(run.id)
    assert stopped.status == "cancelled"
    assert 0 < stopped.rows_delivered < 3000
    assert len(await event_names(db, ws_id)) == stopped.rows_delivered
    final = await engine.run(sync_id)
    assert final.status == "success"
    assert stopped.rows_delivered + final.rows_delivered == 3000
    assert len(await event_names(db, ws_id)) == 3000


CHILD = textwrap.dedent(
    """
    import sys, anyio
    from zerocopy.connections import AdapterFactory
    from zerocopy.secrets import SecretBox
    from zerocopy.state.db import Database
    from zerocopy.sync.engine import SyncEngine

    async def main(url, sync_id, key):
        db = Database(url)
        engine = SyncEngine(db, AdapterFactory(SecretBox([key])), delivery_rows=50)
        run = await engine.request(sync_id)
        print("RUN", run.id, flush=True)
        await engine.execute(run.id)

    anyio.run(main, *sys.argv[1:])
    """
)


async def test_kill_9_mid_sync_then_a_new_run_equals_one_clean_run(
    db: Database, tmp_path: Path
) -> None:
    rows = 8_000
    wh = warehouse(tmp_path / "wh.duckdb", rows=rows)
    sync_id, ws_id, _ = await make_sync(db, wh, name="killed")
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
        while not line.startswith("RUN "):  # the engine logs to stdout too
            line = await anyio.to_thread.run_sync(proc.stdout.readline)
            assert line, "the child process ended before starting its run"
        run_id = line.split()[1]
        engine = new_engine(db)
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
    assert killed.status == "running" and killed.rows_delivered < rows  # really mid-sync
    delivered_before = len(await event_names(db, ws_id))
    assert 0 < delivered_before < rows
    # The next run reaps the dead one (no heartbeat) and continues from the committed batch.
    assert await engine.reap_lost(stale_after_s=0) == [run_id]
    assert (await engine.get(run_id)).error_code == "worker_lost"
    resumed = await engine.run(sync_id)
    assert resumed.status == "success"
    assert delivered_before + resumed.rows_delivered == rows

    # A clean single run of the same table into another workspace of the same store.
    clean_id, clean_ws, _ = await make_sync(db, wh, name="clean")
    clean = await engine.run(clean_id)
    assert (clean.status, clean.rows_delivered) == ("success", rows)
    assert await store_contents(db, ws_id) == await store_contents(db, clean_ws)


async def test_max_runtime_stops_the_run_and_the_next_one_completes(
    db: Database, tmp_path: Path
) -> None:
    rows = 5_000  # 100 deliveries of 50: enough for the deadline to fall between them
    engine = new_engine(db, delivery_rows=50)
    # The budget is a fraction of what a full run of the same data takes on this machine
    # right now, so the deadline falls mid-run however fast (or loaded) the machine is.
    probe_id, _, _ = await make_sync(
        db, warehouse(tmp_path / "probe.duckdb", rows=rows), name="probe"
    )
    started = time.monotonic()
    probe = await engine.run(probe_id)
    full_run_s = time.monotonic() - started
    assert probe.status == "success"
    wh = warehouse(tmp_path / "wh.duckdb", rows=rows)
    sync_id, ws_id, _ = await make_sync(db, wh)
    stopped = await engine.run(sync_id, max_runtime_s=max(0.05, full_run_s / 4))
    assert (stopped.status, stopped.error_code) == ("error", "timed_out"), full_run_s
    assert stopped.rows_delivered < rows
    assert len(await event_names(db, ws_id)) == stopped.rows_delivered  # batches kept
    final = await engine.run(sync_id)
    assert final.status == "success"
    assert stopped.rows_delivered + final.rows_delivered == rows
    assert len(await event_names(db, ws_id)) == rows


def add_null_rows(path: Path, rows: list[tuple[str, str]]) -> None:
    """Insert ``(EXTERNAL_ID, event name)`` rows whose UPDATED_AT is NULL."""
    con = duckdb.connect(str(path))
    try:
        for ext, name in rows:
            payload = json.dumps({"name": name, "time": "2026-03-01T00:00:00Z"})
            con.execute("INSERT INTO marketing.events_in VALUES (NULL, ?, ?)", [ext, payload])
    finally:
        con.close()


async def test_null_updated_at_rows_are_reported_by_the_run_that_reads_them_once(
    setup: SyncSetup,
) -> None:
    add_rows(setup.warehouse, [("2026-03-01 00:00:00", "a", "ok-1")])
    add_null_rows(setup.warehouse, [("a", "null-1")])
    first = await setup.engine.run(setup.sync_id)
    assert (first.status, first.rows_delivered, first.rows_errored) == ("partial_success", 1, 1)
    # A NULL row committed after the first run is outside every ``>=`` read: still reported.
    add_null_rows(setup.warehouse, [("b", "null-2")])
    add_rows(setup.warehouse, [("2026-03-01 00:00:05", "a", "ok-2")])
    second = await setup.engine.run(setup.sync_id)
    assert (second.status, second.rows_delivered, second.rows_errored) == ("partial_success", 1, 1)
    # Nothing changed: the NULL rows are read again but not reported again.
    third = await setup.engine.run(setup.sync_id)
    assert (third.status, third.rows_delivered, third.rows_errored) == ("success", 0, 0)
    assert third.rows_skipped >= 2
    # A fixed row leaves the set; the same content coming back later is reported again.
    con = duckdb.connect(str(setup.warehouse))
    try:
        con.execute(
            "DELETE FROM marketing.events_in WHERE UPDATED_AT IS NULL AND EXTERNAL_ID = 'b'"
        )
    finally:
        con.close()
    fourth = await setup.engine.run(setup.sync_id)
    assert (fourth.rows_errored, len(WatermarkState.from_json(fourth.watermark_after).invalid)) == (
        0,
        1,
    )
    add_null_rows(setup.warehouse, [("b", "null-2")])
    fifth = await setup.engine.run(setup.sync_id)
    assert fifth.rows_errored == 1
    async with setup.db.session() as s:
        codes = (
            await s.scalars(sa.select(SyncRowLog.code).where(SyncRowLog.sync_id == setup.sync_id))
        ).all()
    assert sorted(c or "" for c in codes) == ["invalid_updated_at"] * 3
    assert sorted(await event_names(setup.db, setup.workspace_id)) == ["ok-1", "ok-2"]


async def test_columnar_attributes_through_the_engine_with_small_batches_and_a_row_limit(
    db: Database, tmp_path: Path
) -> None:
    """The columnar path cut into delivery batches and at the row limit loses nothing."""
    wh = tmp_path / "attrs.duckdb"
    con = duckdb.connect(str(wh))
    try:
        con.execute("CREATE SCHEMA marketing")
        con.execute(
            "CREATE TABLE marketing.attrs_in AS SELECT "
            f"TIMESTAMP '{BASE}' + to_seconds(i::BIGINT) AS UPDATED_AT, "
            "CASE WHEN i % 9 = 4 THEN NULL ELSE 'u' || (i % 7) END AS EXTERNAL_ID, "
            "json_object('v', i, 'gone', CASE WHEN i % 5 = 0 THEN NULL ELSE i END)::VARCHAR "
            "AS PAYLOAD FROM range(30) t(i)"
        )
    finally:
        con.close()
    sync_id, ws_id, _ = await make_sync(db, wh, name="attrs", row_limit=11)
    async with db.transaction() as s:
        await s.execute(
            sa.update(Sync)
            .where(Sync.id == sync_id)
            .values(table_name="attrs_in", data_type="user_attributes")
        )
    engine = new_engine(db, delivery_rows=4)
    runs = [await engine.run(sync_id) for _ in range(4)]
    assert [r.status for r in runs] == [
        "limit_exceeded",
        "limit_exceeded",
        "partial_success",
        "success",
    ]
    for r in runs:
        assert r.rows_read == r.rows_delivered + r.rows_skipped + r.rows_errored, r
    assert sum(r.rows_read - r.rows_skipped for r in runs) == 30  # each row handled once
    assert sum(r.rows_errored for r in runs) == 3  # i = 4, 13, 22: no identifier
    assert sum(r.rows_delivered for r in runs) == 27
    contents = await store_contents(db, ws_id)
    # Each profile holds its last row's value; 'gone' removed where that row had a null.
    last: dict[str, int] = {}
    for i in range(30):
        if i % 9 != 4:
            last[f"u{i % 7}"] = i
    got = {ext: json.loads(attrs) for ext, _e, _p, attrs, _u in contents["profiles"]}
    assert {ext: a["v"] for ext, a in got.items()} == last
    for ext, i in last.items():
        assert ("gone" in got[ext]) == (i % 5 != 0)
