"""Schedule services for the API: show, set, resume; member reads keep a schedule alive."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.notify.decision import distinct_addresses
from zerocopy.scheduling.models import SEGMENT, Notice, ScheduledRun, ScheduleState
from zerocopy.scheduling.notices import notice_view
from zerocopy.scheduling.schedule import SEGMENT_FREQUENCIES, next_run, parse_schedule
from zerocopy.scheduling.scheduler import (
    iso,
    local_iso,
    segment_digest,
    upcoming_runs,
    zone_replanned,
)
from zerocopy.services.contacts import MAX_CONTACTS, check_contacts
from zerocopy.state.db import Database
from zerocopy.state.models import RefreshRun, Segment, Source, SourceStatus, Workspace, utcnow

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
"""One ``@`` between a non-empty local part and a dotted domain, no whitespace."""


async def _segment_and_zone(
    db: Database, workspace_id: str, segment_id: str
) -> tuple[Segment, str]:
    async with db.session() as s:
        row = (
            await s.execute(
                sa.select(Segment, Workspace.time_zone)
                .join(Workspace, Workspace.id == Segment.workspace_id)
                .where(Segment.id == segment_id, Segment.workspace_id == workspace_id)
            )
        ).first()
    if row is None:
        raise ZerocopyError(
            errors.NOT_FOUND,
            f"segment {segment_id} does not exist in this workspace",
            details={"segment_id": segment_id},
        )
    return row[0], row[1] or "UTC"


def _contacts(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_CONTACTS:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"contacts must be a list of at most {MAX_CONTACTS} e-mail addresses",
            details={
                "field": "contacts",
                "reason": "invalid_type" if not isinstance(value, list) else "out_of_range",
            },
        )
    check_contacts(value)  # control characters, SMTP's lengths
    for item in value:
        if not isinstance(item, str) or not _EMAIL.match(item.strip()):
            raise ZerocopyError(
                errors.VALIDATION_ERROR,
                f"contacts: {item!r} is not an e-mail address",
                details={"field": "contacts", "reason": "invalid_value"},
            )
    return distinct_addresses(value)  # the same address twice would be mailed twice


async def schedule_view(
    db: Database, workspace_id: str, segment_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """The schedule, its next 5 runs, pause state and last run's outcome."""
    now = now or utcnow()
    segment, zone = await _segment_and_zone(db, workspace_id, segment_id)
    schedule = parse_schedule(segment.schedule or None)
    async with db.session() as s:
        state = await s.get(ScheduleState, (SEGMENT, segment_id))
        # The most recent run, whatever started it ("run now" after a scheduled run is shown).
        last_run = await s.scalar(
            sa.select(RefreshRun)
            .where(RefreshRun.segment_id == segment_id)
            .order_by(RefreshRun.created_at.desc(), RefreshRun.id.desc())
            .limit(1)
        )
        scheduled = await s.get(ScheduledRun, last_run.id) if last_run is not None else None
        source = await s.get(Source, segment.source_id)
        paused = state is not None and state.paused_reason is not None
        notice = (
            await s.scalar(
                sa.select(Notice)
                .where(Notice.owner_kind == SEGMENT, Notice.owner_id == segment_id)
                .order_by(Notice.id.desc())
                .limit(1)
            )
            if paused
            else None
        )
    upcoming = [] if paused else upcoming_runs(schedule, state, zone, now)
    return {
        "segment_id": segment_id,
        "schedule": schedule.to_dict(),
        "time_zone": zone,
        "status": "manual" if schedule.is_manual else ("paused" if paused else "active"),
        "paused": (
            {
                "reason": state.paused_reason,
                "at": iso(state.paused_at),
                "message": (state.paused_details or {}).get("message"),
                # The e-mail to the contacts: delivered, or failed and when it is tried again.
                "notice": notice_view(notice),
            }
            if paused and state is not None
            else None
        ),
        "next_runs": [local_iso(t, zone) for t in upcoming],
        # Scheduled runs need a tested source, like "run now": until it is active again its
        # occurrences pass without a run (counted in misses).
        "blocked": (
            {
                "reason": errors.SOURCE_NOT_ACTIVE,
                "source_id": source.id,
                "source_status": source.status,
                "message": f"source {source.name!r} is {source.status}: scheduled refreshes "
                f"are skipped until it is tested successfully "
                f"(POST /v1/sources/{source.id}/test)",
            }
            if source is not None
            and source.status != SourceStatus.ACTIVE
            and not schedule.is_manual
            else None
        ),
        "contacts": list(state.contacts or []) if state is not None else [],
        "misses": state.misses if state is not None else 0,
        "last_run": (
            {
                "id": last_run.id,
                "status": last_run.status,
                "trigger": last_run.trigger,
                "error_code": last_run.error_code,
                "error_message": last_run.error_message,
                "created_at": iso(last_run.created_at),
                "finished_at": iso(last_run.finished_at),
                "due_at": iso(scheduled.due_at) if scheduled else None,
                "catch_up": scheduled.catch_up if scheduled else False,
                "coalesced": scheduled.coalesced if scheduled else 1,
            }
            if last_run is not None
            else None
        ),
    }


async def _upsert_state(db: Database, segment: Segment, **values: Any) -> None:
    async with db.transaction() as s:
        state = await s.get(ScheduleState, (SEGMENT, segment.id))
        if state is None:
            s.add(
                ScheduleState(
                    owner_kind=SEGMENT,
                    owner_id=segment.id,
                    workspace_id=segment.workspace_id,
                    created_at=values.get("last_changed_at") or utcnow(),
                    **values,
                )
            )
        else:
            for key, value in values.items():
                setattr(state, key, value)
    # A concurrent scheduler tick may have inserted it meanwhile: retried once by the caller.


async def set_schedule(
    db: Database,
    workspace_id: str,
    segment_id: str,
    doc: dict[str, Any] | None,
    contacts: Any = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Validate and store a segment's schedule; re-plan it. A paused schedule stays paused."""
    now = now or utcnow()
    segment, zone = await _segment_and_zone(db, workspace_id, segment_id)
    schedule = parse_schedule(doc, SEGMENT_FREQUENCIES)
    checked_contacts = _contacts(contacts) if contacts is not None else None  # before any write
    async with db.transaction() as s:
        await s.execute(
            sa.update(Segment).where(Segment.id == segment_id).values(schedule=schedule.to_dict())
        )
    async with db.session() as s:
        state = await s.get(ScheduleState, (SEGMENT, segment_id))
    same = (
        state is not None
        and state.next_due_at is not None
        and (state.planned_key == schedule.key())
    )
    values: dict[str, Any] = {
        "planned_time_zone": zone,
        "planned_key": schedule.key(),
        "last_changed_at": now,
        "definition_hash": segment_digest(segment, schedule.to_dict()),
    }
    if same and state is not None and state.planned_time_zone == zone:
        pass  # the same schedule again keeps its plan (an occurrence already due still fires)
    elif same and state is not None:
        # The same schedule, planned before a zone change the scheduler has not seen yet.
        moved = zone_replanned(schedule, state, zone, now)
        assert moved is not None
        values["next_due_at"] = moved["next_due_at"]
    else:
        values |= {"next_due_at": next_run(schedule, now, zone), "planned_from": now}
    if checked_contacts is not None:
        values["contacts"] = checked_contacts
    for attempt in range(2):
        try:
            await _upsert_state(db, segment, **values)
            break
        except IntegrityError:
            if attempt:
                raise
    return await schedule_view(db, workspace_id, segment_id, now)


async def resume_schedule(
    db: Database, workspace_id: str, segment_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """Lift a pause; the schedule fires at its next occurrence after now (no burst).

    Resuming a schedule that is not paused only counts as use (the stale clock restarts): its
    plan is kept, so an occurrence already due still fires.
    """
    now = now or utcnow()
    segment, zone = await _segment_and_zone(db, workspace_id, segment_id)
    schedule = parse_schedule(segment.schedule or None)
    async with db.transaction() as s:
        await s.execute(
            sa.update(ScheduleState)
            .where(
                ScheduleState.owner_kind == SEGMENT,
                ScheduleState.owner_id == segment_id,
                ScheduleState.paused_reason.is_(None),
            )
            .values(resumed_at=now)
        )
        await s.execute(
            sa.update(ScheduleState)
            .where(
                ScheduleState.owner_kind == SEGMENT,
                ScheduleState.owner_id == segment_id,
                ScheduleState.paused_reason.is_not(None),
            )
            .values(
                paused_reason=None,
                paused_at=None,
                paused_details=None,
                resumed_at=now,
                next_due_at=next_run(schedule, now, zone),
                planned_time_zone=zone,
                planned_key=schedule.key(),
                planned_from=now,
            )
        )
    return await schedule_view(db, workspace_id, segment_id, now)


READ_MARK_EVERY = timedelta(minutes=1)
"""A member read is written at most once a minute per segment (paging through a large
segment is one read for the stale clock, whose period is days, not a write per page)."""


async def record_member_read(db: Database, segment_id: str, now: datetime | None = None) -> None:
    """A member read through the API: the segment is in use (does not resume a paused one)."""
    now = now or utcnow()
    mark = ScheduleState.last_member_read_at
    async with db.transaction() as s:
        await s.execute(
            sa.update(ScheduleState)
            .where(
                ScheduleState.owner_kind == SEGMENT,
                ScheduleState.owner_id == segment_id,
                sa.or_(mark.is_(None), mark < now - READ_MARK_EVERY, mark > now),
            )
            .values(last_member_read_at=now)
        )
