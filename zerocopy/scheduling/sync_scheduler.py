"""Scheduled syncs: active syncs fire on their ``frequency`` in the workspace's time zone.

The same rules as segment schedules (:mod:`zerocopy.scheduling.scheduler`), on the same
``schedule_state`` rows with ``owner_kind = "sync"``: a firing is claimed with a
compare-and-set on ``next_due_at`` so exactly one process wins each occurrence; missed
occurrences coalesce into one run recorded as a catch-up in ``scheduled_run``; "run now"
never touches the plan. A sync that is not ``active`` has no plan (``next_due_at`` NULL);
activating it again plans from that moment, so a resumed sync does not fire for the time it
was paused. The scheduler only creates runs (``SyncEngine.request``) and hands their ids to
``submit``; a runner executes them.

Each tick (at most once per reaper period) also ends as ``worker_lost`` the running sync runs
whose requesting process on this host is gone and whose heartbeat stopped: on the in-process
runner nothing else reaps them (a ``zerocopy serve`` killed mid-sync and started again would
show its run ``running`` until that sync is next requested).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.logging import get_logger
from zerocopy.scheduling.config import SchedulingConfig
from zerocopy.scheduling.models import SYNC, ScheduledRun, ScheduleState
from zerocopy.scheduling.schedule import (
    Firing,
    Schedule,
    next_run,
    plan_firing,
    stored_zone,
)
from zerocopy.scheduling.scheduler import (
    TickReport,
    apply_plan,
    iso,
    launch_scheduled_run,
    local_iso,
    replanned,
    upcoming_runs,
    zone_replanned,
)
from zerocopy.scheduling.sync_frequency import sync_schedule
from zerocopy.state.db import Database
from zerocopy.state.models import Workspace, utcnow
from zerocopy.state.sync_models import Sync, SyncRun
from zerocopy.sync.types import SyncStatus

log = get_logger("zerocopy.scheduling.syncs")

Submit = Callable[[str], Awaitable[None]]
Clock = Callable[[], datetime]


@dataclass(slots=True)
class _SyncOwner:
    id: str
    workspace_id: str
    active: bool
    schedule: Schedule | None
    time_zone: str


class SyncScheduler:
    """``await sync_scheduler.tick()`` fires the syncs that are due (see the module doc)."""

    def __init__(
        self,
        db: Database,
        engine: Any,
        submit: Submit,
        *,
        config: SchedulingConfig | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.engine = engine
        """Anything with ``request(sync_id, trigger)`` (a :class:`SyncEngine`)."""
        self.submit = submit
        self.config = config or SchedulingConfig()
        self.clock = clock
        self._next_reap = 0.0

    async def _syncs(self) -> list[_SyncOwner]:
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    sa.select(
                        Sync.id, Sync.workspace_id, Sync.status, Sync.frequency, Workspace.time_zone
                    ).join(Workspace, Workspace.id == Sync.workspace_id)
                )
            ).all()
        owners: list[_SyncOwner] = []
        for row in rows:
            schedule: Schedule | None = None
            try:
                schedule = sync_schedule(row.frequency)
                stored_zone(row.time_zone or "UTC")  # one unreadable zone must not stop the tick
            except ZerocopyError as exc:
                schedule = None
                log.warning("sync_schedule.invalid", sync_id=row.id, error=exc.message)
            owners.append(
                _SyncOwner(
                    row.id,
                    row.workspace_id,
                    row.status == SyncStatus.ACTIVE,
                    schedule,
                    row.time_zone or "UTC",
                )
            )
        return owners

    async def _states(self) -> dict[str, ScheduleState]:
        async with self.db.session() as s:
            rows = await s.scalars(sa.select(ScheduleState).where(ScheduleState.owner_kind == SYNC))
            return {st.owner_id: st for st in rows.all()}

    async def tick(self) -> TickReport:
        """Plan newly active syncs, unplan inactive ones, re-plan edited ones, fire due ones."""
        now = self.clock()
        report = TickReport()
        if time.monotonic() >= self._next_reap:
            self._next_reap = time.monotonic() + self.config.reaper_every_s
            await reap_dead_local_runs(self.db, self.config.worker_lost_after_s)
        states = await self._states()
        due: list[tuple[_SyncOwner, ScheduleState, Firing]] = []
        for owner in await self._syncs():
            state = states.get(owner.id)
            if not owner.active or owner.schedule is None:
                if state is not None and (
                    state.next_due_at is not None or state.planned_key is not None
                ):
                    # Paused/draft: no plan, so re-activation plans from then (no burst).
                    await self._update(owner.id, next_due_at=None, planned_key=None)
                continue
            schedule = owner.schedule
            if state is None:
                await self._plan(owner, schedule, now)
                report.planned += 1
                continue
            if (moved := zone_replanned(schedule, state, owner.time_zone, now)) is not None:
                # The zone changed: go on from the local slot the old plan was waiting for
                # (maybe due at once, fired below); another process may have done it first.
                async with self.db.transaction() as s:
                    if not await apply_plan(s, SYNC, state, moved):
                        continue
                state.next_due_at = moved["next_due_at"]
                state.planned_time_zone = owner.time_zone
                report.replanned += 1
            elif (plan := replanned(schedule, state, owner.time_zone, now)) is not None:
                await self._update(owner.id, **plan)
                report.replanned += 1
                continue
            if state.next_due_at is None:
                continue
            firing = plan_firing(
                schedule,
                owner.time_zone,
                state.next_due_at,
                now,
                late_after_s=self.config.late_after_s,
            )
            if firing is not None:
                due.append((owner, state, firing))
        for owner, state, firing in round_robin(due):
            await self._fire(owner, state, firing, now, report)
        return report

    async def _plan(self, owner: _SyncOwner, schedule: Schedule, now: datetime) -> None:
        try:
            async with self.db.transaction() as s:
                s.add(
                    ScheduleState(
                        owner_kind=SYNC,
                        owner_id=owner.id,
                        workspace_id=owner.workspace_id,
                        next_due_at=next_run(schedule, now, owner.time_zone),
                        planned_time_zone=owner.time_zone,
                        planned_key=schedule.key(),
                        planned_from=now,
                        last_changed_at=now,
                        created_at=now,
                    )
                )
        except IntegrityError:
            pass  # another process planned it first

    async def _update(self, sync_id: str, **values: Any) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                sa.update(ScheduleState)
                .where(ScheduleState.owner_kind == SYNC, ScheduleState.owner_id == sync_id)
                .values(**values)
            )

    async def _fire(
        self,
        owner: _SyncOwner,
        state: ScheduleState,
        firing: Firing,
        now: datetime,
        report: TickReport,
    ) -> None:
        still_active = sa.exists().where(Sync.id == owner.id, Sync.status == SyncStatus.ACTIVE)
        async with self.db.transaction() as s:
            result = await s.execute(
                sa.update(ScheduleState)
                .where(
                    ScheduleState.owner_kind == SYNC,
                    ScheduleState.owner_id == owner.id,
                    ScheduleState.next_due_at == state.next_due_at,
                    still_active,
                )
                .values(
                    next_due_at=firing.next_due_at,
                    planned_time_zone=owner.time_zone,
                    last_due_at=firing.due_at,
                    last_fired_at=now,
                    planned_from=now,
                    last_catch_up=firing.catch_up,
                    last_coalesced=firing.coalesced,
                    misses=ScheduleState.misses + (firing.coalesced - 1),
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return  # another process fired this occurrence, or the sync was paused
        await launch_scheduled_run(
            self.db,
            self.engine,
            self.submit,
            owner_kind=SYNC,
            owner_id=owner.id,
            firing=firing,
            report=report,
            in_progress_code=errors.SYNC_IN_PROGRESS,
            event="sync_schedule",
            id_key="sync_id",
        )


REAP_MIN_STALE_S = 6.0
"""Never reap a run that missed fewer than 3 beats of a sync engine at its default 2 s (the
in-process sync engine is not tuned by ``ZEROCOPY_HEARTBEAT_S``)."""


def _gone_here(worker: str | None, host: str) -> bool:
    """Whether ``worker`` ("host:pid", the process that requested a run) is a dead process here."""
    name, _, pid_text = (worker or "").rpartition(":")
    if name != host or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists (another user's process)
    return False


async def reap_dead_local_runs(db: Database, stale_after_s: float) -> list[str]:
    """End ``worker_lost`` the running sync runs requested by a dead process of this host.

    Both conditions: no heartbeat for ``stale_after_s`` (so a run executing or waiting in a
    queue elsewhere, kept beating, is never touched) and the requesting process gone (so a run
    waiting in a live in-process pool, which does not beat, is never touched either). The
    watermark stays at the last committed batch, as :meth:`SyncEngine.reap_lost` leaves it.
    """
    limit = utcnow() - timedelta(seconds=max(stale_after_s, REAP_MIN_STALE_S))
    host = socket.gethostname()
    async with db.session() as s:
        rows = (
            await s.execute(
                sa.select(SyncRun.id, SyncRun.worker).where(
                    SyncRun.status == "running", SyncRun.heartbeat_at < limit
                )
            )
        ).all()
    gone = [row.id for row in rows if _gone_here(row.worker, host)]
    reaped: list[str] = []
    for run_id in gone:
        async with db.transaction() as s:
            run = await s.get(SyncRun, run_id)
            sync = await s.get(Sync, run.sync_id) if run is not None else None
            result = await s.execute(
                sa.update(SyncRun)
                .where(
                    SyncRun.id == run_id,
                    SyncRun.status == "running",
                    SyncRun.heartbeat_at < limit,
                )
                .values(
                    status="error",
                    error_code=errors.WORKER_LOST,
                    error_message="the process running this sync stopped; the watermark "
                    "stays at the last committed batch and the next run continues from it",
                    finished_at=utcnow(),
                    watermark_after=sync.watermark if sync is not None else None,
                )
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                reaped.append(run_id)
    for run_id in reaped:
        log.warning("sync.worker_lost", run_id=run_id, reaped_by="sync_scheduler")
    return reaped


def round_robin(
    due: list[tuple[_SyncOwner, ScheduleState, Firing]],
) -> list[tuple[_SyncOwner, ScheduleState, Firing]]:
    """Firing order: workspaces take turns, each one's longest-waiting sync first.

    Round k holds every workspace's k-th sync (by due time, then id); inside a round the
    longest-waiting goes first. A workspace with many due syncs thus cannot push the others
    behind all of its own: the in-process runner executes in this order, and the queue's
    priority (``ProcrastinateRunner.submit_sync``) keeps the turns across ticks.
    """
    ordered = sorted(due, key=lambda item: (item[2].due_at, item[0].id))
    turn: dict[str, int] = {}
    ranked = []
    for item in ordered:
        k = turn.get(item[0].workspace_id, 0)
        turn[item[0].workspace_id] = k + 1
        ranked.append((k, item))
    ranked.sort(key=lambda pair: (pair[0], pair[1][2].due_at, pair[1][0].id))
    return [item for _, item in ranked]


async def sync_schedule_view(
    db: Database, workspace_id: str, sync_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """A sync's schedule: frequency, time zone, next 5 run times, last run's outcome."""
    from zerocopy.services.syncs import RESET_TRIGGER
    from zerocopy.state.sync_models import SyncRun

    now = now or utcnow()
    async with db.session() as s:
        row = (
            await s.execute(
                sa.select(Sync, Workspace.time_zone)
                .join(Workspace, Workspace.id == Sync.workspace_id)
                .where(Sync.id == sync_id, Sync.workspace_id == workspace_id)
            )
        ).first()
        if row is None:
            raise ZerocopyError(
                errors.NOT_FOUND,
                f"sync {sync_id} does not exist in this workspace",
                details={"sync_id": sync_id},
            )
        sync, zone = row[0], row[1] or "UTC"
        state = await s.get(ScheduleState, (SYNC, sync_id))
        last_run = await s.scalar(
            sa.select(SyncRun)
            # a watermark reset is recorded in the run history, but it ran nothing
            .where(SyncRun.sync_id == sync_id, SyncRun.trigger != RESET_TRIGGER)
            .order_by(SyncRun.created_at.desc(), SyncRun.id.desc())
            .limit(1)
        )
        scheduled = await s.get(ScheduledRun, last_run.id) if last_run is not None else None
    schedule = sync_schedule(sync.frequency)
    active = sync.status == SyncStatus.ACTIVE
    upcoming = upcoming_runs(schedule, state, zone, now) if active else []
    return {
        "sync_id": sync_id,
        "frequency": sync.frequency,
        "schedule": schedule.to_dict(),
        "time_zone": zone,
        "status": sync.status,
        "next_runs": [local_iso(t, zone) for t in upcoming],
        "misses": state.misses if state is not None else 0,
        "last_run": (
            {
                "id": last_run.id,
                "status": last_run.status,
                "trigger": last_run.trigger,
                "started_at": iso(last_run.started_at),
                "finished_at": iso(last_run.finished_at),
                "error_code": last_run.error_code,
                "error_message": last_run.error_message,
                # ``due_at`` as in the segment schedule view and a run's ``scheduled``;
                # ``scheduled_for`` is the same instant under its first name.
                "due_at": iso(scheduled.due_at) if scheduled else None,
                "scheduled_for": iso(scheduled.due_at) if scheduled else None,
                "catch_up": scheduled.catch_up if scheduled else False,
                "coalesced": scheduled.coalesced if scheduled else 1,
            }
            if last_run is not None
            else None
        ),
    }
