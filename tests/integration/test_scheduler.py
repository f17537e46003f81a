"""The scheduler against a real state database (SQLite and PostgreSQL) and a DuckDB warehouse.

The clock is frozen and moved by hand; runs are executed by the real engine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import duckdb
import pytest
import sqlalchemy as sa

from tests.integration.refresh_fixtures import Wired, wire
from tests.integration.state_fixtures import db_fixture  # noqa: F401
from zerocopy.errors import ZerocopyError
from zerocopy.scheduling.config import SchedulingConfig
from zerocopy.scheduling.counters import read_all
from zerocopy.scheduling.execution import SlottedEngine
from zerocopy.scheduling.housekeeping import Janitor, take_lease
from zerocopy.scheduling.models import SEGMENT, Notice, ScheduledRun, ScheduleState
from zerocopy.scheduling.scheduler import Scheduler
from zerocopy.scheduling.schedules import (
    record_member_read,
    resume_schedule,
    schedule_view,
    set_schedule,
)
from zerocopy.scheduling.slots import HOUSEKEEPING, SourceSlots
from zerocopy.state.db import Database
from zerocopy.state.models import RefreshRun, RunStatus, Segment, Workspace

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _wired(db: Database, tmp_path: Path) -> Wired:
    return await wire(
        db, tmp_path, "SELECT external_user_id FROM users WHERE external_user_id <= 10"
    )


async def _workspace_id(w: Wired) -> str:
    async with w.db.session() as s:
        seg = await s.get(Segment, w.segment_id)
        assert seg is not None
        return seg.workspace_id


async def _runs(db: Database) -> list[RefreshRun]:
    async with db.session() as s:
        return list((await s.scalars(sa.select(RefreshRun).order_by(RefreshRun.created_at))).all())


def _scheduler(w: Wired, clock: Clock, submitted: list[str]) -> Scheduler:
    async def submit(run_id: str) -> None:
        submitted.append(run_id)

    return Scheduler(w.db, w.engine, submit, config=SchedulingConfig(), clock=clock)


async def test_fires_once_per_occurrence_even_with_two_schedulers(
    db: Database, tmp_path: Path
) -> None:
    w = await _wired(db, tmp_path)
    ws = await _workspace_id(w)
    await set_schedule(db, ws, w.segment_id, {"frequency": "hourly", "minute": 30}, now=T0)
    clock = Clock(T0)
    submitted: list[str] = []
    a, b = _scheduler(w, clock, submitted), _scheduler(w, clock, submitted)
    assert (await a.tick()).fired == []
    clock.now = T0 + timedelta(minutes=30, seconds=1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.tick)
        tg.start_soon(b.tick)
    assert len(submitted) == 1
    runs = await _runs(db)
    assert [(r.trigger, r.status) for r in runs] == [("schedule", "queued")]
    assert (await a.tick()).fired == []  # same instant: nothing new
    final = await w.engine.execute(submitted[0])
    assert final.status == RunStatus.SUCCEEDED and final.member_count == 10
    view = await schedule_view(db, ws, w.segment_id, now=clock.now)
    assert view["last_run"]["status"] == "succeeded"
    assert view["last_run"]["catch_up"] is False
    assert view["next_runs"][:2] == ["2026-06-01T07:30:00+00:00", "2026-06-01T08:30:00+00:00"]
    assert len(view["next_runs"]) == 5


async def test_downtime_coalesces_into_one_catch_up_run(db: Database, tmp_path: Path) -> None:
    w = await _wired(db, tmp_path)
    ws = await _workspace_id(w)
    await set_schedule(db, ws, w.segment_id, {"frequency": "hourly", "minute": 0}, now=T0)
    clock = Clock(T0 + timedelta(hours=5, minutes=10))  # down from 06:00 to 11:10
    submitted: list[str] = []
    report = await _scheduler(w, clock, submitted).tick()
    assert len(report.fired) == 1 and report.catch_up == report.fired
    async with db.session() as s:
        scheduled = await s.get(ScheduledRun, report.fired[0])
        state = await s.get(ScheduleState, (SEGMENT, w.segment_id))
    assert scheduled is not None and state is not None
    assert (scheduled.catch_up, scheduled.coalesced) == (True, 5)
    assert scheduled.due_at == datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
    assert state.next_due_at == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert state.misses == 4
    assert (await read_all(db))["schedule_misses"] == 4


async def test_run_now_does_not_shift_and_busy_occurrence_is_a_miss(
    db: Database, tmp_path: Path
) -> None:
    w = await _wired(db, tmp_path)
    ws = await _workspace_id(w)
    await set_schedule(db, ws, w.segment_id, {"frequency": "daily", "hour": 9, "minute": 0}, now=T0)
    manual = await w.engine.request(w.segment_id, "api")  # "run now", still queued
    async with db.session() as s:
        state = await s.get(ScheduleState, (SEGMENT, w.segment_id))
    assert state is not None and state.next_due_at == datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    clock = Clock(datetime(2026, 6, 1, 9, 0, 5, tzinfo=UTC))
    submitted: list[str] = []
    report = await _scheduler(w, clock, submitted).tick()
    assert report.skipped_in_progress == [w.segment_id] and submitted == []
    async with db.session() as s:
        state = await s.get(ScheduleState, (SEGMENT, w.segment_id))
    assert state is not None and state.next_due_at == datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
    assert state.misses == 1
    await w.engine.execute(manual.id)


async def test_time_zone_change_replans(db: Database, tmp_path: Path) -> None:
    w = await _wired(db, tmp_path)
    ws = await _workspace_id(w)
    await set_schedule(db, ws, w.segment_id, {"frequency": "daily", "hour": 9, "minute": 0}, now=T0)
    async with db.transaction() as s:
        await s.execute(
            sa.update(Workspace).where(Workspace.id == ws).values(time_zone="Asia/Tokyo")
        )
    clock = Clock(T0)
    report = await _scheduler(w, clock, []).tick()
    assert report.replanned == 1
    view = await schedule_view(db, ws, w.segment_id, now=T0)
    # 09:00 in Tokyo is 00:00 UTC: the next one is tomorrow's.
    assert view["next_runs"][0] == "2026-06-02T09:00:00+09:00"  # local time, offset shown
    assert view["time_zone"] == "Asia/Tokyo"


async def test_stale_segment_pauses_until_resumed(db: Database, tmp_path: Path) -> None:
    w = await _wired(db, tmp_path)
    ws = await _workspace_id(w)
    await set_schedule(
        db,
        ws,
        w.segment_id,
        {"frequency": "daily", "hour": 9, "minute": 0},
        contacts=["ops@example.com"],
        now=T0,
    )
    clock = Clock(T0 + timedelta(days=3))
    submitted: list[str] = []
    sched = _scheduler(w, clock, submitted)
    await sched.tick()
    await w.engine.execute(submitted[-1])
    await record_member_read(db, w.segment_id, now=clock.now)  # read on day 3 keeps it alive
    clock.now = T0 + timedelta(days=9)
    report = await sched.tick()
    assert report.paused == [] and len(submitted) == 2
    await w.engine.execute(submitted[-1])
    clock.now = T0 + timedelta(days=10, hours=4)  # 7 days after the last read
    report = await sched.tick()
    assert report.paused == [w.segment_id] and report.fired == []
    view = await schedule_view(db, ws, w.segment_id, now=clock.now)
    assert view["status"] == "paused" and view["paused"]["reason"] == "stale"
    assert "7 days" in view["paused"]["message"] and view["next_runs"] == []
    async with db.session() as s:
        notices = (await s.scalars(sa.select(Notice))).all()
    assert [(n.event, n.recipients) for n in notices] == [("schedule_paused", ["ops@example.com"])]
    # Reading members and editing the schedule do not resume it.
    await record_member_read(db, w.segment_id, now=clock.now)
    await set_schedule(
        db, ws, w.segment_id, {"frequency": "daily", "hour": 10, "minute": 0}, now=clock.now
    )
    clock.now += timedelta(days=1)
    assert (await sched.tick()).fired == []
    assert (await schedule_view(db, ws, w.segment_id, now=clock.now))["status"] == "paused"
    resumed = await resume_schedule(db, ws, w.segment_id, now=clock.now)
    assert resumed["status"] == "active" and len(resumed["next_runs"]) == 5
    clock.now = datetime.fromisoformat(resumed["next_runs"][0]) + timedelta(seconds=1)
    assert len((await sched.tick()).fired) == 1


async def test_invalid_schedule_is_refused_with_the_field(db: Database, tmp_path: Path) -> None:
    w = await _wired(db, tmp_path)
    ws = await _workspace_id(w)
    with pytest.raises(ZerocopyError) as info:
        await set_schedule(db, ws, w.segment_id, {"frequency": "every_15_minutes"})
    assert info.value.code == "validation_error"
    with pytest.raises(ZerocopyError) as info:
        await schedule_view(db, "another-workspace", w.segment_id)
    assert info.value.code == "not_found"


async def test_janitor_drops_orphans_only(db: Database, tmp_path: Path) -> None:
    w = await _wired(db, tmp_path)
    lost = await w.engine.request(w.segment_id, "api", max_runtime_s=1)
    old = datetime.now(UTC) - timedelta(seconds=30)
    async with db.transaction() as s:
        await s.execute(
            sa.update(RefreshRun)
            .where(RefreshRun.id == lost.id)
            .values(
                status=RunStatus.FAILED, error_code="worker_lost", created_at=old, started_at=old
            )
        )
    fresh = await w.engine.request(w.segment_id, "api", max_runtime_s=600)  # running now
    async with db.transaction() as s:
        await s.execute(
            sa.update(RefreshRun).where(RefreshRun.id == fresh.id).values(status=RunStatus.RUNNING)
        )
    path = w.credential.settings["path"]
    con = duckdb.connect(path)
    for run in (lost, fresh):
        con.execute(f"CREATE TABLE marketing.{run.temp_table} AS SELECT 1 AS x")
    con.execute("CREATE TABLE marketing.zc_tmp_notours AS SELECT 1 AS x")
    con.close()
    slots = SourceSlots(db)
    report = await Janitor(db, w.factory, slots, grace_s=5).sweep()
    assert report.errors == {}
    assert [t.rsplit(".", 1)[-1] for t in report.dropped] == [lost.temp_table]
    left = sorted(t.rsplit(".", 1)[-1] for t in await w.temp_tables())
    assert left == sorted([fresh.temp_table, "zc_tmp_notours"])
    assert (await read_all(db))["janitor_drops"] == 1
    assert await slots.in_use() == {}


async def test_source_slots_cap_concurrency(db: Database, tmp_path: Path) -> None:
    w = await _wired(db, tmp_path)
    slots = SourceSlots(db, default_limit=4)
    assert slots.limit_for("duckdb") == 1  # SINGLE_WRITER_PROCESS
    assert slots.limit_for("postgres") == 4
    # Housekeeping holders have no run record, so nothing reclaims them early.
    assert await slots.try_acquire("src", 2, "r1", HOUSEKEEPING) == 0
    assert await slots.try_acquire("src", 2, "r2", HOUSEKEEPING) == 1
    assert await slots.try_acquire("src", 2, "r3", HOUSEKEEPING) is None
    await slots.release("r1")
    assert await slots.try_acquire("src", 2, "r3", HOUSEKEEPING) == 0
    # A slot whose run has ended (its process died) is taken back.
    run = await w.engine.request(w.segment_id, "api")
    assert await slots.try_acquire(w.source.id, 1, run.id) == 0
    assert await slots.try_acquire(w.source.id, 1, "other") is None
    await w.engine.request_cancel(run.id)
    assert await slots.try_acquire(w.source.id, 1, "other") == 0
    executor = SlottedEngine(w.engine, slots)
    await slots.release("other")
    second = await w.engine.request(w.segment_id, "api")
    assert (await executor.execute(second.id)).status == RunStatus.SUCCEEDED
    assert await slots.in_use() == {"src": 2}


async def test_leases_give_a_duty_to_one_process(db: Database) -> None:
    now = datetime.now(UTC)
    assert await take_lease(db, "janitor", 60, "a", now)
    assert not await take_lease(db, "janitor", 60, "b", now)
    assert await take_lease(db, "janitor", 60, "b", now + timedelta(seconds=61))


async def test_retention_sweep_calls_the_sync_layer(db: Database) -> None:
    from zerocopy.scheduling.housekeeping import sweep_retention

    result = await sweep_retention(db)
    assert result == {"row_logs": 0, "runs": 0}


async def test_stale_after_zero_days_turns_the_automatic_pause_off(
    db: Database, tmp_path: Path
) -> None:
    """``ZEROCOPY_STALE_AFTER_DAYS=0`` means never pause, not pause at once."""
    from zerocopy.scheduling.config import load_config

    assert load_config({"ZEROCOPY_STALE_AFTER_DAYS": "0"}).stale_after == timedelta(0)
    w = await _wired(db, tmp_path)
    ws = await _workspace_id(w)
    await set_schedule(db, ws, w.segment_id, {"frequency": "daily", "hour": 9}, now=T0)
    clock = Clock(T0 + timedelta(days=400, hours=4))  # a year unread: still runs
    submitted: list[str] = []
    config = load_config({"ZEROCOPY_STALE_AFTER_DAYS": "0"})
    sched = Scheduler(w.db, w.engine, _collect(submitted), config=config, clock=clock)
    report = await sched.tick()
    assert report.paused == [] and len(report.fired) == 1
    view = await schedule_view(db, ws, w.segment_id, now=clock.now)
    assert view["status"] == "active"


async def test_the_pause_message_counts_days_in_words(db: Database, tmp_path: Path) -> None:
    from zerocopy.scheduling.config import load_config

    w = await _wired(db, tmp_path)
    ws = await _workspace_id(w)
    await set_schedule(db, ws, w.segment_id, {"frequency": "daily", "hour": 9}, now=T0)
    clock = Clock(T0 + timedelta(days=1, hours=1))
    config = load_config({"ZEROCOPY_STALE_AFTER_DAYS": "1"})
    sched = Scheduler(w.db, w.engine, _collect([]), config=config, clock=clock)
    assert (await sched.tick()).paused == [w.segment_id]
    view = await schedule_view(db, ws, w.segment_id, now=clock.now)
    assert "for 1 day;" in view["paused"]["message"]


def _collect(submitted: list[str]) -> Callable[[str], Awaitable[None]]:
    async def submit(run_id: str) -> None:
        submitted.append(run_id)

    return submit
