"""Scheduled syncs against a real state database (SQLite and PostgreSQL) and a DuckDB warehouse.

The clock is frozen and moved by hand; runs are executed by the real sync engine through the
in-process runner and per-source slots.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa

from tests.integration.state_fixtures import db_fixture  # noqa: F401
from tests.integration.test_sync_engine import make_sync, new_engine, warehouse
from zerocopy import metrics
from zerocopy.errors import ZerocopyError
from zerocopy.runner import InProcessRunner
from zerocopy.scheduling.config import SchedulingConfig
from zerocopy.scheduling.execution import SlottedSyncExecutor
from zerocopy.scheduling.models import SYNC, ScheduledRun, ScheduleState, SourceSlot
from zerocopy.scheduling.slots import SourceSlots
from zerocopy.scheduling.sync_scheduler import SyncScheduler, sync_schedule_view
from zerocopy.state.db import Database
from zerocopy.state.models import Workspace
from zerocopy.state.sync_models import Sync, SyncRun
from zerocopy.sync.engine import SyncEngine

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 6, 1, 6, 0, 5, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _scheduler(db: Database, engine: SyncEngine, clock: Clock, out: list[str]) -> SyncScheduler:
    async def submit(run_id: str) -> None:
        out.append(run_id)

    return SyncScheduler(db, engine, submit, config=SchedulingConfig(), clock=clock)


async def _set(db: Database, sync_id: str, **values: object) -> None:
    async with db.transaction() as s:
        await s.execute(sa.update(Sync).where(Sync.id == sync_id).values(**values))


async def _runs(db: Database, sync_id: str) -> list[SyncRun]:
    async with db.session() as s:
        rows = await s.scalars(
            sa.select(SyncRun).where(SyncRun.sync_id == sync_id).order_by(SyncRun.created_at)
        )
        return list(rows.all())


async def _state(db: Database, sync_id: str) -> ScheduleState:
    async with db.session() as s:
        state = await s.get(ScheduleState, (SYNC, sync_id))
    assert state is not None
    return state


async def _setup(db: Database, tmp_path: Path, frequency: str = "15m") -> tuple[str, str]:
    wh = warehouse(tmp_path / "wh.duckdb", rows=40)
    sync_id, ws_id, _src = await make_sync(db, wh)
    await _set(db, sync_id, frequency=frequency)
    return sync_id, ws_id


async def test_a_due_sync_fires_once_with_two_schedulers_and_runs_through_the_runner(
    db: Database, tmp_path: Path
) -> None:
    sync_id, ws_id = await _setup(db, tmp_path)
    engine = new_engine(db)
    clock = Clock(T0)
    submitted: list[str] = []
    a = _scheduler(db, engine, clock, submitted)
    b = _scheduler(db, engine, clock, submitted)
    await a.tick()  # plans the next quarter hour
    assert (await _state(db, sync_id)).next_due_at == datetime(2026, 6, 1, 6, 15, tzinfo=UTC)
    clock.now = datetime(2026, 6, 1, 6, 15, 0, tzinfo=UTC)
    reports = []

    async def tick(s: SyncScheduler) -> None:
        reports.append(await s.tick())

    async with anyio.create_task_group() as tg:  # both processes tick at the same instant
        tg.start_soon(tick, a)
        tg.start_soon(tick, b)
    await a.tick()
    await b.tick()
    runs = await _runs(db, sync_id)
    assert len(runs) == 1 and submitted == [runs[0].id]
    assert sorted(len(r.fired) for r in reports) == [0, 1]
    # Lost by the compare-and-set, not by the engine's one-run index: no miss recorded.
    assert all(r.skipped_in_progress == [] for r in reports)
    assert (await _state(db, sync_id)).misses == 0
    assert runs[0].trigger == "schedule"
    async with db.session() as s:
        scheduled = await s.get(ScheduledRun, runs[0].id)
    assert scheduled is not None and scheduled.owner_kind == SYNC
    assert scheduled.catch_up is False and scheduled.coalesced == 1
    assert (await _state(db, sync_id)).next_due_at == datetime(2026, 6, 1, 6, 30, tzinfo=UTC)

    # The runner executes it under the source's slot; the slot is given back.
    slots = SourceSlots(db, poll_s=0.02)
    async with InProcessRunner(
        SlottedSyncExecutor(db, engine.execute, slots),  # type: ignore[arg-type]
        recover_on_start=False,
    ) as runner:
        await runner.submit(runs[0].id)
        await runner.wait_idle()
    (done,) = await _runs(db, sync_id)
    assert done.status == "success" and done.rows_read == 40
    async with db.session() as s:
        assert (await s.scalar(sa.select(sa.func.count()).select_from(SourceSlot))) == 0
    # Its record starts when it took the slot; /metrics counts it as a sync run, with its
    # rows and its due-to-start lag.
    assert done.started_at is not None and done.started_at >= done.created_at
    text = (await metrics.render(db)).decode()
    assert (
        'zerocopy_runs_total{error_code="",kind="sync",status="success",trigger="schedule"} 1.0'
        in text
    )
    assert 'zerocopy_rows_moved_total{what="read"} 40.0' in text
    assert 'zerocopy_schedule_lag_seconds_count{kind="sync"} 1.0' in text
    assert text.count("# TYPE zerocopy_run_duration_seconds histogram") == 1

    view = await sync_schedule_view(db, ws_id, sync_id, now=clock.now)
    assert view["next_runs"] == [
        (datetime(2026, 6, 1, 6, 30, tzinfo=UTC) + timedelta(minutes=15 * i)).isoformat()
        for i in range(5)
    ]
    assert view["last_run"]["id"] == done.id and view["last_run"]["status"] == "success"
    assert view["last_run"]["scheduled_for"] == "2026-06-01T06:15:00+00:00"
    assert view["last_run"]["catch_up"] is False


async def test_a_paused_sync_does_not_fire_and_resuming_does_not_burst(
    db: Database, tmp_path: Path
) -> None:
    sync_id, ws_id = await _setup(db, tmp_path)
    engine = new_engine(db)
    clock = Clock(T0)
    submitted: list[str] = []
    sched = _scheduler(db, engine, clock, submitted)
    await sched.tick()
    await _set(db, sync_id, status="paused")
    for minutes in (15, 30, 120):
        clock.now = T0 + timedelta(minutes=minutes)
        await sched.tick()
    assert await _runs(db, sync_id) == [] and submitted == []
    assert (await _state(db, sync_id)).next_due_at is None
    assert (await sync_schedule_view(db, ws_id, sync_id, now=clock.now))["next_runs"] == []

    await _set(db, sync_id, status="active")  # at 08:00:05: plans from now, nothing missed
    await sched.tick()
    assert (await _state(db, sync_id)).next_due_at == datetime(2026, 6, 1, 8, 15, tzinfo=UTC)
    assert await _runs(db, sync_id) == []
    clock.now = datetime(2026, 6, 1, 8, 15, 1, tzinfo=UTC)
    report = await sched.tick()
    assert len(report.fired) == 1 and report.catch_up == []


async def test_catch_up_after_downtime_coalesces_into_one_marked_run(
    db: Database, tmp_path: Path
) -> None:
    sync_id, _ws = await _setup(db, tmp_path)
    engine = new_engine(db)
    clock = Clock(T0)
    submitted: list[str] = []
    sched = _scheduler(db, engine, clock, submitted)
    await sched.tick()
    clock.now = datetime(2026, 6, 1, 9, 7, tzinfo=UTC)  # down from 06:00 to 09:07
    report = await sched.tick()
    runs = await _runs(db, sync_id)
    assert len(runs) == 1 and report.catch_up == [runs[0].id]
    async with db.session() as s:
        scheduled = await s.get(ScheduledRun, runs[0].id)
    assert scheduled is not None and scheduled.catch_up is True
    assert scheduled.coalesced == 12  # 06:15 … 09:00
    assert scheduled.due_at == datetime(2026, 6, 1, 6, 15, tzinfo=UTC)
    state = await _state(db, sync_id)
    assert state.next_due_at == datetime(2026, 6, 1, 9, 15, tzinfo=UTC)
    assert state.misses == 11
    await sched.tick()
    assert len(await _runs(db, sync_id)) == 1


async def test_run_now_does_not_shift_the_schedule_and_a_running_run_makes_a_miss(
    db: Database, tmp_path: Path
) -> None:
    sync_id, _ws = await _setup(db, tmp_path, frequency="1h")
    engine = new_engine(db)
    clock = Clock(T0)
    submitted: list[str] = []
    sched = _scheduler(db, engine, clock, submitted)
    await sched.tick()
    planned = (await _state(db, sync_id)).next_due_at
    assert planned == datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
    manual = await engine.run(sync_id, "api")  # "run now"
    assert manual.status == "success"
    await sched.tick()
    assert (await _state(db, sync_id)).next_due_at == planned

    held = await engine.request(sync_id, "api")  # still running when the hour comes
    clock.now = datetime(2026, 6, 1, 7, 0, 1, tzinfo=UTC)
    report = await sched.tick()
    assert report.skipped_in_progress == [sync_id] and submitted == []
    state = await _state(db, sync_id)
    assert state.misses == 1 and state.next_due_at == datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    await engine.execute(held.id)


async def test_the_workspace_time_zone_places_daily_syncs_and_a_change_replans(
    db: Database, tmp_path: Path
) -> None:
    sync_id, ws_id = await _setup(db, tmp_path, frequency="1d")
    async with db.transaction() as s:
        await s.execute(
            sa.update(Workspace).where(Workspace.id == ws_id).values(time_zone="Europe/Paris")
        )
    sched = _scheduler(db, new_engine(db), Clock(T0), [])
    await sched.tick()
    # Midnight in Paris (CEST, UTC+2) is 22:00 UTC.
    assert (await _state(db, sync_id)).next_due_at == datetime(2026, 6, 1, 22, 0, tzinfo=UTC)
    async with db.transaction() as s:
        await s.execute(
            sa.update(Workspace).where(Workspace.id == ws_id).values(time_zone="America/New_York")
        )
    report = await sched.tick()
    assert report.replanned == 1
    assert (await _state(db, sync_id)).next_due_at == datetime(2026, 6, 2, 4, 0, tzinfo=UTC)
    await _set(db, sync_id, frequency="6h")
    await sched.tick()
    assert (await _state(db, sync_id)).next_due_at == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


async def test_a_sync_run_waiting_for_a_place_in_the_in_process_pool_keeps_beating(
    db: Database, tmp_path: Path
) -> None:
    """A sync run is ``running`` from its request on: while it waits behind a full pool its
    heartbeat goes on, so neither the reaper nor a duplicate request ends it ``worker_lost``;
    once it gets its place it runs normally."""
    first_id, _ = await _setup(db, tmp_path)
    wh2 = warehouse(tmp_path / "wh2.duckdb", rows=10)
    second_id, _ws2, _src2 = await make_sync(db, wh2, name="second")
    engine = new_engine(db, stale_after_s=0.6)
    executor = SlottedSyncExecutor(
        db, engine.execute, SourceSlots(db, poll_s=0.02), heartbeat_s=0.1
    )
    gate = anyio.Event()

    class Gated:
        """The first run holds the pool's only place until the test opens the gate."""

        async def execute(self, run_id: str) -> object:
            if run_id == held.id:
                async with anyio.create_task_group() as tg:  # alive, as a running sync is
                    tg.start_soon(executor.keep_alive, run_id)
                    await gate.wait()
                    tg.cancel_scope.cancel()
            return await executor.execute(run_id)

    held = await engine.request(first_id)
    waiting = await engine.request(second_id)
    async with InProcessRunner(
        Gated(),  # type: ignore[arg-type]
        max_concurrent=1,
        recover_on_start=False,
        while_waiting=lambda run_id: executor.keep_alive(run_id, first_after_s=0.1),
    ) as runner:
        await runner.submit(held.id)
        await anyio.sleep(0.05)
        await runner.submit(waiting.id)
        for _ in range(3):  # 3 times the stale limit, with reaper passes all along
            await anyio.sleep(0.6)
            assert waiting.id not in await engine.reap_lost()
        with pytest.raises(ZerocopyError) as busy:  # the duplicate sees it alive
            await engine.request(second_id)
        assert busy.value.code == "sync_in_progress"
        assert busy.value.details["run_id"] == waiting.id
        gate.set()
        await runner.wait_idle()
    (first,) = await _runs(db, first_id)
    assert first.status == "success" and first.rows_read == 40
    (done,) = await _runs(db, second_id)
    assert done.id == waiting.id and done.status == "success" and done.rows_read == 10


async def test_a_quarter_hour_sync_down_across_fall_back_runs_once_for_every_real_quarter(
    db: Database, tmp_path: Path
) -> None:
    """Paris 2026-10-25 03:00 CEST → 02:00 CET: the repeated hour holds four quarter hours
    twice; a scheduler down from 01:50 to 03:20 local (CET) owes them all, as one run."""
    sync_id, ws_id = await _setup(db, tmp_path, frequency="15m")
    async with db.transaction() as s:
        await s.execute(
            sa.update(Workspace).where(Workspace.id == ws_id).values(time_zone="Europe/Paris")
        )
    engine = new_engine(db)
    clock = Clock(datetime(2026, 10, 24, 23, 50, tzinfo=UTC))  # 01:50 CEST
    submitted: list[str] = []
    schedulers = [_scheduler(db, engine, clock, submitted) for _ in range(2)]
    await schedulers[0].tick()
    assert (await _state(db, sync_id)).next_due_at == datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    clock.now = datetime(2026, 10, 25, 2, 20, tzinfo=UTC)  # 03:20 CET
    fired = [run for sched in schedulers for run in (await sched.tick()).fired]
    assert len(fired) == 1 and submitted == fired
    async with db.session() as s:
        scheduled = await s.get(ScheduledRun, fired[0])
    assert scheduled is not None and scheduled.catch_up is True
    # 02:00 … 02:45 CEST, 02:00 … 02:45 CET, 03:00 and 03:15 CET: ten real quarter hours.
    assert scheduled.coalesced == 10
    assert scheduled.due_at == datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    assert (await _state(db, sync_id)).next_due_at == datetime(2026, 10, 25, 2, 30, tzinfo=UTC)
