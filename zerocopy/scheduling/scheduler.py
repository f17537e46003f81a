"""The scheduler: turns due schedules into runs, exactly once, whichever process ticks.

Any number of processes may tick at the same time (every ``zerocopy worker`` does): a firing
is claimed with a compare-and-set on ``schedule_state.next_due_at`` (``UPDATE … WHERE
next_due_at = <the value this process read>``), so exactly one process wins each occurrence,
and the engine's one-active-run-per-segment index stops a second run anyway. The scheduler
only *requests* runs and hands their ids to ``submit`` (the runner): it never executes them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from dialects.base import temp_table_name
from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.logging import get_logger
from zerocopy.scheduling.config import SchedulingConfig
from zerocopy.scheduling.counters import bump
from zerocopy.scheduling.models import SEGMENT, PauseReason, ScheduledRun, ScheduleState
from zerocopy.scheduling.notices import paused_notice, retry_due_notices
from zerocopy.scheduling.schedule import (
    SEGMENT_FREQUENCIES,
    Firing,
    Schedule,
    next_run,
    next_runs,
    parse_schedule,
    plan_firing,
    replan_in_zone,
    stored_zone,
)
from zerocopy.state.db import Database
from zerocopy.state.models import (
    RefreshRun,
    RunStatus,
    RunTrigger,
    Segment,
    Source,
    SourceStatus,
    UTCDateTime,
    Workspace,
    new_id,
    utcnow,
)

log = get_logger("zerocopy.scheduling")

Submit = Callable[[str], Awaitable[None]]
SubmitMany = Callable[[list[str]], Awaitable[None]]
Clock = Callable[[], datetime]

SUBMIT_BATCH = 25
"""Runs fired in one tick are handed to the runner in batches of this many: the first jobs
reach the workers while later owners are still being fired, and a queue defers each batch
in one statement."""


@dataclass(slots=True)
class TickReport:
    """What one tick did (tests, logs)."""

    fired: list[str] = field(default_factory=list)
    """Run ids started."""
    catch_up: list[str] = field(default_factory=list)
    planned: int = 0
    replanned: int = 0
    paused: list[str] = field(default_factory=list)
    skipped_in_progress: list[str] = field(default_factory=list)
    skipped_source_not_active: list[str] = field(default_factory=list)
    """Owners due whose source is not active: occurrence consumed as a miss, no run."""


@dataclass(slots=True)
class _Owner:
    id: str
    workspace_id: str
    name: str
    schedule: Schedule
    time_zone: str
    digest: str
    source_active: bool = True
    """Whether the segment's source is ``active`` (tested): else its occurrences are skipped."""


def definition_hash(*parts: Any) -> str:
    """Hash of what the user defined: a different hash means the owner was edited."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def segment_digest(segment: Any, schedule_doc: Any) -> str:
    """:func:`definition_hash` of what a user edits on a segment: a different digest is a
    change (it restarts the stale clock).

    Every field a user sets: ``name``, ``description``, ``sql``, ``dialect``, ``id_column``
    (``PATCH /v1/segments/{id}``) and the schedule (``PUT …/schedule``; its ``contacts`` are
    recorded as a change when set). Not what zerocopy itself writes (membership, counts,
    run pointers, ``updated_at``). The segment service records an accepted edit at once
    (:func:`record_segment_change`); the digest catches edits made any other way.
    """
    parts = [segment.name, segment.sql, segment.dialect, segment.id_column, schedule_doc]
    if segment.description:  # only when set: digests stored before it was counted stay equal
        parts.append(segment.description)
    return definition_hash(*parts)


async def record_segment_change(s: Any, segment_id: str, now: datetime) -> None:
    """In session ``s`` (the edit's transaction): the segment was changed by a user at
    ``now`` (it is in use: the stale clock restarts; a paused schedule stays paused)."""
    await s.execute(
        sa.update(ScheduleState)
        .where(ScheduleState.owner_kind == SEGMENT, ScheduleState.owner_id == segment_id)
        .values(last_changed_at=now)
        .execution_options(synchronize_session=False)
    )


def plan_floor(state: ScheduleState) -> datetime:
    """``planned_from`` of the plan: occurrences at or before it are not owed. Rows planned
    before migration 0006 have none: when they last fired, resumed or were created."""
    if state.planned_from is not None:
        return state.planned_from
    marks = [state.last_fired_at, state.resumed_at, state.created_at]
    return max(m for m in marks if m is not None)


def zone_replanned(
    schedule: Schedule, state: ScheduleState, time_zone: str, now: datetime
) -> dict[str, Any] | None:
    """The plan (``schedule_state`` values) after the workspace's time zone changed, else
    ``None``: only when the plan was made for this same schedule in another zone.

    The next occurrence goes on from the local slot the old plan was waiting for, so no
    local slot runs twice or is skipped (:func:`replan_in_zone`); it may be due at once, and
    then the tick fires it (one catch-up). Shared by the segment and sync schedulers and by
    :func:`replan_workspace_zone`; ``now`` is when the change happened (or was noticed).
    """
    if (
        state.planned_time_zone == time_zone
        or state.planned_key != schedule.key()
        or state.next_due_at is None
    ):
        return None
    return {
        "next_due_at": replan_in_zone(
            schedule,
            state.planned_time_zone,
            time_zone,
            state.next_due_at,
            plan_floor(state),
            now,
            fired=state.last_fired_at is not None and state.last_fired_at >= plan_floor(state),
        ),
        "planned_time_zone": time_zone,
    }


def replanned(
    schedule: Schedule, state: ScheduleState, time_zone: str, now: datetime
) -> dict[str, Any] | None:
    """The new plan (``schedule_state`` values) when the schedule changed (or there is no
    plan), else ``None``: the next occurrence strictly after ``now``, nothing owed. A change
    of zone alone is :func:`zone_replanned`'s."""
    if state.planned_time_zone == time_zone and state.planned_key == schedule.key():
        return None
    return {
        "next_due_at": next_run(schedule, now, time_zone),
        "planned_time_zone": time_zone,
        "planned_key": schedule.key(),
        "planned_from": now,
    }


def upcoming_runs(
    schedule: Schedule, state: ScheduleState | None, time_zone: str, now: datetime, count: int = 5
) -> list[datetime]:
    """The next ``count`` runs as the scheduler will fire them (the API's ``next_runs``).

    From the stored plan when it was made for this schedule (in another zone: as
    :func:`zone_replanned` moves it); an occurrence already due is left out (it fires at the
    next tick, coalesced), so the list starts after it. Without a plan: after ``now``.
    """
    if schedule.is_manual:
        return []
    first: datetime | None = None
    if state is not None and state.next_due_at is not None and state.planned_key == schedule.key():
        moved = zone_replanned(schedule, state, time_zone, now)
        first = moved["next_due_at"] if moved is not None else state.next_due_at
    if first is None:
        return next_runs(schedule, now, time_zone, count)
    if first <= now:
        firing = plan_firing(schedule, time_zone, first, now)
        first = firing.next_due_at if firing is not None else None
        if first is None:
            return []
    return [first, *next_runs(schedule, first, time_zone, count - 1)]


async def apply_plan(s: Any, owner_kind: str, state: ScheduleState, values: dict[str, Any]) -> bool:
    """Write ``values`` over the plan ``state`` was read with (compare-and-set on
    ``next_due_at`` and ``planned_time_zone``): ``False`` when another process moved it
    meanwhile (re-planned or fired it), so a re-plan never undoes a firing."""
    zone_col = ScheduleState.planned_time_zone
    due_col = ScheduleState.next_due_at
    result = await s.execute(
        sa.update(ScheduleState)
        .where(
            ScheduleState.owner_kind == owner_kind,
            ScheduleState.owner_id == state.owner_id,
            due_col.is_(None) if state.next_due_at is None else due_col == state.next_due_at,
            zone_col.is_(None)
            if state.planned_time_zone is None
            else zone_col == state.planned_time_zone,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)


async def replan_workspace_zone(s: Any, workspace_id: str, time_zone: str, now: datetime) -> int:
    """Re-plan, in session ``s`` (the zone change's transaction), every segment and sync plan
    of the workspace made in another zone (:func:`zone_replanned`); how many moved.

    Plans whose schedule changed meanwhile, or that have none, are left to the next tick.
    """
    from zerocopy.scheduling.models import SYNC
    from zerocopy.scheduling.sync_frequency import sync_schedule
    from zerocopy.state.sync_models import Sync

    states = (
        await s.scalars(
            sa.select(ScheduleState).where(
                ScheduleState.workspace_id == workspace_id,
                ScheduleState.next_due_at.is_not(None),
            )
        )
    ).all()
    docs = dict(
        (
            await s.execute(
                sa.select(Segment.id, Segment.schedule).where(Segment.workspace_id == workspace_id)
            )
        ).all()
    )
    frequencies = dict(
        (
            await s.execute(
                sa.select(Sync.id, Sync.frequency).where(Sync.workspace_id == workspace_id)
            )
        ).all()
    )
    moved = 0
    for state in states:
        try:
            if state.owner_kind == SEGMENT and docs.get(state.owner_id):
                schedule = parse_schedule(docs[state.owner_id], SEGMENT_FREQUENCIES)
            elif state.owner_kind == SYNC and state.owner_id in frequencies:
                schedule = sync_schedule(frequencies[state.owner_id])
            else:
                continue
        except ZerocopyError:
            continue
        values = zone_replanned(schedule, state, time_zone, now)
        if values is not None and await apply_plan(s, state.owner_kind, state, values):
            moved += 1
    return moved


_CLAIM_DUE = sa.text(
    """
UPDATE schedule_state AS s SET
    next_due_at = d.next_due, planned_time_zone = d.zone, last_due_at = d.last_due,
    last_fired_at = :now, planned_from = :now, last_catch_up = d.catch_up,
    last_coalesced = d.coalesced, misses = s.misses + d.coalesced - 1, updated_at = :now
FROM unnest(
    CAST(:owner AS varchar[]), CAST(:expected AS timestamptz[]),
    CAST(:next_due AS timestamptz[]), CAST(:zone AS varchar[]),
    CAST(:last_due AS timestamptz[]), CAST(:catch_up AS boolean[]),
    CAST(:coalesced AS integer[])
) AS d(owner_id, expected, next_due, zone, last_due, catch_up, coalesced)
WHERE s.owner_kind = :kind AND s.owner_id = d.owner_id AND s.next_due_at = d.expected
    AND s.paused_reason IS NULL
RETURNING s.owner_id
"""
).bindparams(sa.bindparam("now", type_=UTCDateTime()))
"""The batch claim's compare-and-set (PostgreSQL), one row per occurrence passed as arrays:
the same statement text whatever the batch, so it is compiled once per process (an
``UPDATE … FROM (VALUES …)`` holding the values was compiled again for every batch: ~12 ms
of CPU per batch of 25, a third of the tick's CPU)."""


class Scheduler:
    """``await scheduler.tick()`` fires what is due; :meth:`run` ticks forever."""

    def __init__(
        self,
        db: Database,
        engine: Any,
        submit: Submit,
        *,
        config: SchedulingConfig | None = None,
        clock: Clock = utcnow,
        submit_many: SubmitMany | None = None,
    ) -> None:
        self.db = db
        self.engine = engine
        self.submit = submit
        self.submit_many = submit_many
        self.config = config or SchedulingConfig()
        self.clock = clock

    # ------------------------------------------------------------------ loading
    async def _segments(self) -> list[_Owner]:
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    sa.select(
                        Segment.id,
                        Segment.workspace_id,
                        Segment.name,
                        Segment.sql,
                        Segment.dialect,
                        Segment.id_column,
                        Segment.description,
                        Segment.schedule,
                        Workspace.time_zone,
                        Source.status.label("source_status"),
                    )
                    .join(Workspace, Workspace.id == Segment.workspace_id)
                    .join(Source, Source.id == Segment.source_id)
                )
            ).all()
        owners: list[_Owner] = []
        for row in rows:
            if not row.schedule:
                continue  # never scheduled (SQL NULL or JSON null)
            try:
                schedule = parse_schedule(row.schedule, SEGMENT_FREQUENCIES)
                stored_zone(row.time_zone or "UTC")  # one unreadable zone must not stop the tick
            except ZerocopyError as exc:
                log.warning("schedule.invalid", segment_id=row.id, error=exc.message)
                continue
            digest = segment_digest(row, row.schedule)
            owners.append(
                _Owner(
                    row.id,
                    row.workspace_id,
                    row.name,
                    schedule,
                    row.time_zone or "UTC",
                    digest,
                    row.source_status == SourceStatus.ACTIVE,
                )
            )
        return owners

    async def _states(self) -> dict[str, ScheduleState]:
        async with self.db.session() as s:
            rows = await s.scalars(
                sa.select(ScheduleState).where(ScheduleState.owner_kind == SEGMENT)
            )
            return {st.owner_id: st for st in rows.all()}

    # ------------------------------------------------------------------ one tick
    async def tick(self) -> TickReport:
        """Plan new schedules, re-plan changed ones, pause stale ones, fire due ones."""
        now = self.clock()
        report = TickReport()
        states = await self._states()
        due: list[tuple[_Owner, ScheduleState, Firing]] = []
        for owner in await self._segments():
            state = states.get(owner.id)
            if state is None:
                await self._plan(owner, now)
                report.planned += 1
                continue
            if state.definition_hash != owner.digest:
                await self._update(owner.id, definition_hash=owner.digest, last_changed_at=now)
            if (moved := zone_replanned(owner.schedule, state, owner.time_zone, now)) is not None:
                # The zone changed: go on from the local slot the old plan was waiting for
                # (maybe due at once, fired below); another process may have done it first.
                async with self.db.transaction() as s:
                    if not await apply_plan(s, SEGMENT, state, moved):
                        continue
                state.next_due_at = moved["next_due_at"]
                state.planned_time_zone = owner.time_zone
                report.replanned += 1
            elif (plan := replanned(owner.schedule, state, owner.time_zone, now)) is not None:
                # A new schedule: plan again from now (nothing due is owed).
                await self._update(owner.id, **plan)
                report.replanned += 1
                continue
            if state.paused_reason is not None or state.next_due_at is None:
                continue
            if self._is_stale(state, owner, now):
                await self._pause_stale(owner, state, now)
                report.paused.append(owner.id)
                continue
            firing = plan_firing(
                owner.schedule,
                owner.time_zone,
                state.next_due_at,
                now,
                late_after_s=self.config.late_after_s,
            )
            if firing is not None and not owner.source_active:
                await self._skip_inactive_source(owner, state, firing, now, report)
            elif firing is not None:
                due.append((owner, state, firing))
        # The longest-waiting first; ties in id order, so that processes firing the same
        # occurrences at once take their row locks in the same order (no deadlock).
        due.sort(key=lambda item: (item[2].due_at, item[0].id))
        pending: list[str] = []
        try:
            for start in range(0, len(due), SUBMIT_BATCH):
                await self._fire_batch(due[start : start + SUBMIT_BATCH], now, report, pending)
                await self._submit_all(pending)
        finally:
            with anyio.CancelScope(shield=True):
                await self._submit_all(pending)
        # Pause notices whose e-mail failed, once their backoff is over (after the firings:
        # an unreachable mail server never delays a run).
        await retry_due_notices(self.db, now)
        return report

    async def _fire_batch(
        self,
        batch: list[tuple[_Owner, ScheduleState, Firing]],
        now: datetime,
        report: TickReport,
        pending: list[str],
    ) -> None:
        """Fire due occurrences in one transaction: claim each, create its run, record it.

        The bulk equivalent of :meth:`_fire` (claim) + :func:`launch_scheduled_run`
        (``engine.request``, ``scheduled_run``): the occurrences, their queued runs and
        their records commit together, so 500 due segments cost a few transactions instead
        of 2,000. A segment that still has an active run goes through the one-by-one path
        after the commit (which reaps a lost run or counts the miss); a manual refresh that
        races in between makes the whole batch go one by one.
        """
        fired: list[tuple[_Owner, Firing, str]] = []
        busy: list[tuple[_Owner, Firing]] = []
        try:
            async with self.db.transaction() as s:
                claimed = await self._claim_batch(s, batch, now)
                if not claimed:
                    return
                ids = [owner.id for owner, _ in claimed]
                active = set(
                    (
                        await s.scalars(
                            sa.select(RefreshRun.segment_id).where(
                                RefreshRun.segment_id.in_(ids),
                                RefreshRun.status.in_(RunStatus.ACTIVE),
                            )
                        )
                    ).all()
                )
                where = {
                    row.id: row
                    for row in (
                        await s.execute(
                            sa.select(Segment.id, Segment.source_id, Source.max_runtime_s)
                            .join(Source, Source.id == Segment.source_id)
                            .where(Segment.id.in_(ids))
                        )
                    ).all()
                }
                created = utcnow()
                for i, (owner, firing) in enumerate(claimed):
                    row = where.get(owner.id)
                    if row is None:
                        continue  # deleted since the tick read it
                    if owner.id in active:
                        busy.append((owner, firing))
                        continue
                    run_id = new_id()
                    s.add(
                        RefreshRun(
                            id=run_id,
                            segment_id=owner.id,
                            workspace_id=owner.workspace_id,
                            source_id=row.source_id,
                            trigger=RunTrigger.SCHEDULE,
                            status=RunStatus.QUEUED,
                            max_runtime_s=float(row.max_runtime_s),
                            temp_table=temp_table_name(run_id),
                            # Distinct and in firing order: queue lanes follow creation order.
                            created_at=created + timedelta(microseconds=i),
                        )
                    )
                    s.add(
                        ScheduledRun(
                            run_id=run_id,
                            owner_kind=SEGMENT,
                            owner_id=owner.id,
                            due_at=firing.due_at,
                            catch_up=firing.catch_up,
                            coalesced=firing.coalesced,
                            enqueued_at=created,
                        )
                    )
                    fired.append((owner, firing, run_id))
                await s.flush()
                if fired:
                    # One executemany, not one statement per run.
                    await s.execute(
                        sa.update(ScheduleState),  # bulk, by primary key
                        [
                            {"owner_kind": SEGMENT, "owner_id": owner.id, "last_run_id": run_id}
                            for owner, _f, run_id in fired
                        ],
                    )
        except IntegrityError:
            # A run was requested for one of these segments meanwhile: go one by one.
            for owner, state, firing in batch:
                await self._fire(owner, state, firing, now, report, pending)
            return
        await bump(self.db, "schedule_misses", sum(f.coalesced - 1 for _, f, _ in fired))
        for owner, firing, run_id in fired:
            log.info(
                "schedule.fired",
                segment_id=owner.id,
                run_id=run_id,
                due_at=firing.due_at.isoformat(),
                catch_up=firing.catch_up,
                coalesced=firing.coalesced,
            )
            report.fired.append(run_id)
            if firing.catch_up:
                report.catch_up.append(run_id)
            pending.append(run_id)
        for owner, firing in busy:
            await self._launch(owner, firing, report, pending)

    async def _claim_batch(
        self, s: Any, batch: list[tuple[_Owner, ScheduleState, Firing]], now: datetime
    ) -> list[tuple[_Owner, Firing]]:
        """:meth:`_claim` for a batch in two statements: lock the rows in id order (as
        another process firing the same batch does: no deadlock), then one compare-and-set
        ``UPDATE … FROM (VALUES …)``; the claimed occurrences, in ``batch`` order."""
        # PostgreSQL only (SQLite cannot name a VALUES list's columns; its statements are
        # in-process calls, not round trips, so one per owner costs little there).
        plain = [item for item in batch if item[1].next_due_at is not None and self.db.is_postgres]
        won: set[str] = set()
        if plain:
            ids = sorted(owner.id for owner, _state, _firing in plain)
            await s.execute(
                sa.select(ScheduleState.owner_id)
                .where(ScheduleState.owner_kind == SEGMENT, ScheduleState.owner_id.in_(ids))
                .order_by(ScheduleState.owner_id)
                .with_for_update()
            )
            got = await s.scalars(
                _CLAIM_DUE,
                {
                    "kind": SEGMENT,
                    "now": now,
                    "owner": [owner.id for owner, _state, _firing in plain],
                    "expected": [state.next_due_at for _owner, state, _firing in plain],
                    "next_due": [firing.next_due_at for _owner, _state, firing in plain],
                    "zone": [owner.time_zone for owner, _state, _firing in plain],
                    "last_due": [firing.due_at for _owner, _state, firing in plain],
                    "catch_up": [firing.catch_up for _owner, _state, firing in plain],
                    "coalesced": [firing.coalesced for _owner, _state, firing in plain],
                },
            )
            won = set(got.all())
        claimed: list[tuple[_Owner, Firing]] = []
        batched = {owner.id for owner, _state, _firing in plain}
        for owner, state, firing in batch:
            if owner.id not in batched:
                if await self._claim(s, owner, state, firing, now):
                    claimed.append((owner, firing))
            elif owner.id in won:
                claimed.append((owner, firing))
        return claimed

    async def _claim(
        self, s: Any, owner: _Owner, state: ScheduleState, firing: Firing, now: datetime
    ) -> bool:
        """Move the occurrence's plan forward if nobody did (compare-and-set): won or not."""
        result = await s.execute(
            sa.update(ScheduleState)
            .where(
                ScheduleState.owner_kind == SEGMENT,
                ScheduleState.owner_id == owner.id,
                ScheduleState.next_due_at == state.next_due_at,
                ScheduleState.paused_reason.is_(None),
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
        return bool(result.rowcount == 1)

    async def _submit_all(self, pending: list[str]) -> None:
        """Hand the fired runs over to the runner (in one call when it takes many)."""
        batch, pending[:] = list(pending), []
        if not batch:
            return
        if self.submit_many is not None:
            await self.submit_many(batch)
            return
        for run_id in batch:
            await self.submit(run_id)

    def _is_stale(self, state: ScheduleState, owner: _Owner, now: datetime) -> bool:
        marks = [
            state.created_at,
            state.last_member_read_at,
            state.last_changed_at,
            state.resumed_at,
        ]
        last = max(m for m in marks if m is not None)
        if state.definition_hash != owner.digest:
            return False  # edited just now
        if self.config.stale_after <= timedelta(0):
            return False  # ZEROCOPY_STALE_AFTER_DAYS=0: never pause automatically
        return now - last >= self.config.stale_after

    async def _plan(self, owner: _Owner, now: datetime) -> None:
        try:
            async with self.db.transaction() as s:
                s.add(
                    ScheduleState(
                        owner_kind=SEGMENT,
                        owner_id=owner.id,
                        workspace_id=owner.workspace_id,
                        next_due_at=next_run(owner.schedule, now, owner.time_zone),
                        planned_time_zone=owner.time_zone,
                        planned_key=owner.schedule.key(),
                        planned_from=now,
                        definition_hash=owner.digest,
                        last_changed_at=now,
                        created_at=now,
                    )
                )
        except IntegrityError:
            pass  # another process planned it first

    async def _update(self, owner_id: str, **values: Any) -> int:
        async with self.db.transaction() as s:
            result = await s.execute(
                sa.update(ScheduleState)
                .where(ScheduleState.owner_kind == SEGMENT, ScheduleState.owner_id == owner_id)
                .values(**values)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    async def _pause_stale(self, owner: _Owner, state: ScheduleState, now: datetime) -> None:
        days = self.config.stale_after.total_seconds() / 86400
        message = (
            f"paused automatically: nobody read this segment's members through the API "
            f"and nobody changed it for {days:g} day{'' if days == 1 else 's'}; resume the "
            f"schedule to run it again (POST /v1/segments/{owner.id}/schedule/resume or "
            f"zerocopy segment resume {owner.id})"
        )
        details: dict[str, Any] = {
            "message": message,
            "stale_after_days": days,
            "last_member_read_at": iso(state.last_member_read_at),
            "last_changed_at": iso(state.last_changed_at),
        }
        notice_id: int | None = None
        async with self.db.transaction() as s:
            result = await s.execute(
                sa.update(ScheduleState)
                .where(
                    ScheduleState.owner_kind == SEGMENT,
                    ScheduleState.owner_id == owner.id,
                    ScheduleState.paused_reason.is_(None),
                )
                .values(paused_reason=PauseReason.STALE, paused_at=now, paused_details=details)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                # The notice commits with the pause: its e-mail is owed even if this process
                # dies now (a later tick's retry_due_notices sends it).
                notice = paused_notice(
                    SEGMENT,
                    owner.id,
                    owner.workspace_id,
                    owner.name,
                    state.contacts or [],
                    message,
                    now,
                )
                s.add(notice)
                await s.flush()
                notice_id = notice.id
        if notice_id is not None:
            # Its e-mail goes out at the end of this tick (retry_due_notices), after the
            # firings: a slow mail server never delays a run.
            log.info(
                "schedule.paused_stale",
                segment_id=owner.id,
                workspace_id=owner.workspace_id,
                notice_id=notice_id,
                contacts=len(state.contacts or []),
            )

    async def _skip_inactive_source(
        self, owner: _Owner, state: ScheduleState, firing: Firing, now: datetime, report: TickReport
    ) -> None:
        """A due occurrence whose source is not ``active`` (draft after a scope or credential
        change, or its last test failed): no run, as "run now" would be refused
        (``source_not_active``). The occurrence is consumed and counted as missed, so the
        schedule goes on at its next occurrence once the source is tested again (no burst)."""
        async with self.db.transaction() as s:
            if not await self._claim(s, owner, state, firing, now):
                return
            await s.execute(
                sa.update(ScheduleState)
                .where(ScheduleState.owner_kind == SEGMENT, ScheduleState.owner_id == owner.id)
                .values(misses=ScheduleState.misses + 1)
            )
        await bump(self.db, "schedule_misses", firing.coalesced)
        report.skipped_source_not_active.append(owner.id)
        log.info(
            "schedule.skipped_source_not_active",
            segment_id=owner.id,
            due_at=firing.due_at.isoformat(),
            coalesced=firing.coalesced,
        )

    async def _fire(
        self,
        owner: _Owner,
        state: ScheduleState,
        firing: Firing,
        now: datetime,
        report: TickReport,
        pending: list[str],
    ) -> None:
        async with self.db.transaction() as s:
            if not await self._claim(s, owner, state, firing, now):
                return  # another process fired this occurrence
        await self._launch(owner, firing, report, pending)

    async def _launch(
        self, owner: _Owner, firing: Firing, report: TickReport, pending: list[str]
    ) -> None:
        async def collect(run_id: str) -> None:
            pending.append(run_id)

        await launch_scheduled_run(
            self.db,
            self.engine,
            collect,
            owner_kind=SEGMENT,
            owner_id=owner.id,
            firing=firing,
            report=report,
            in_progress_code=errors.REFRESH_IN_PROGRESS,
            event="schedule",
            id_key="segment_id",
        )


async def launch_scheduled_run(
    db: Database,
    engine: Any,
    submit: Callable[[str], Awaitable[None]],
    *,
    owner_kind: str,
    owner_id: str,
    firing: Firing,
    report: TickReport,
    in_progress_code: str,
    event: str,
    id_key: str,
) -> None:
    """After an occurrence was claimed: request its run, record it as scheduled, submit it.

    Shared by the segment and sync schedulers. A run of the owner that still goes (manual or
    earlier) makes this occurrence a miss (``in_progress_code``); ``event`` prefixes the log
    events and ``id_key`` names the owner's id in them.
    """
    if firing.coalesced > 1:
        await bump(db, "schedule_misses", firing.coalesced - 1)
    try:
        run = await engine.request(owner_id, RunTrigger.SCHEDULE)
    except ZerocopyError as exc:
        if exc.code == in_progress_code:
            async with db.transaction() as s:
                await s.execute(
                    sa.update(ScheduleState)
                    .where(
                        ScheduleState.owner_kind == owner_kind, ScheduleState.owner_id == owner_id
                    )
                    .values(misses=ScheduleState.misses + 1)
                )
            await bump(db, "schedule_misses", 1)
            report.skipped_in_progress.append(owner_id)
            log.info(
                f"{event}.skipped_in_progress",
                **{id_key: owner_id},
                running_run_id=exc.details.get("run_id"),
            )
            return
        log.warning(f"{event}.request_failed", **{id_key: owner_id}, code=exc.code)
        return
    async with db.transaction() as s:
        s.add(
            ScheduledRun(
                run_id=run.id,
                owner_kind=owner_kind,
                owner_id=owner_id,
                due_at=firing.due_at,
                catch_up=firing.catch_up,
                coalesced=firing.coalesced,
                enqueued_at=utcnow(),
            )
        )
        await s.execute(
            sa.update(ScheduleState)
            .where(ScheduleState.owner_kind == owner_kind, ScheduleState.owner_id == owner_id)
            .values(last_run_id=run.id)
        )
    log.info(
        f"{event}.fired",
        **{id_key: owner_id},
        run_id=run.id,
        due_at=firing.due_at.isoformat(),
        catch_up=firing.catch_up,
        coalesced=firing.coalesced,
    )
    report.fired.append(run.id)
    if firing.catch_up:
        report.catch_up.append(run.id)
    await submit(run.id)


def iso(value: datetime | None) -> str | None:
    """An instant (or None) as ISO 8601 text, as the schedule views show it."""
    return value.isoformat() if value else None


def local_iso(value: datetime, zone: str) -> str:
    """An instant as the workspace's wall-clock time with its UTC offset (09:00+01:00)."""
    return value.astimezone(ZoneInfo(zone)).isoformat()
