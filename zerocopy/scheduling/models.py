"""Tables of the scheduling layer (migration 0003): schedule plans, scheduled runs, slots, leases.

They sit beside the segment/sync tables instead of adding columns to them, so the engine's
models stay as they are: a row here is keyed by ``(owner_kind, owner_id)`` where the owner is
a segment (``"segment"``) or a sync (``"sync"``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from zerocopy.state.models import Base, JSONType, utcnow

SEGMENT = "segment"
SYNC = "sync"


class PauseReason:
    """Why a schedule is paused (shown by the API)."""

    STALE = "stale"
    """Nobody read its members through the API and nobody changed it for the stale period."""


class ScheduleState(Base):
    """The plan of one schedule: when it fires next and what happened last."""

    __tablename__ = "schedule_state"

    owner_kind: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    owner_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    next_due_at: Mapped[datetime | None] = mapped_column(index=True)
    planned_time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    """The workspace time zone ``next_due_at`` was computed in (a change re-plans)."""
    planned_key: Mapped[str | None] = mapped_column(sa.String(200))
    """:meth:`Schedule.key` ``next_due_at`` was computed for (an edit re-plans)."""
    planned_from: Mapped[datetime | None]
    """Occurrences at or before this instant are not owed by the plan: it was made (or last
    fired) then. A time-zone change re-plans from it (migration 0006; NULL on older rows)."""
    paused_reason: Mapped[str | None] = mapped_column(sa.String(32))
    paused_at: Mapped[datetime | None]
    paused_details: Mapped[dict[str, Any] | None]
    resumed_at: Mapped[datetime | None]
    contacts: Mapped[list[str]] = mapped_column(JSONType, default=list)
    """E-mail addresses told when the schedule is paused automatically."""
    definition_hash: Mapped[str | None] = mapped_column(sa.String(64))
    """Hash of the owner's definition (SQL, schedule, ...): a different one means it was edited."""
    last_changed_at: Mapped[datetime | None]
    last_member_read_at: Mapped[datetime | None]
    last_due_at: Mapped[datetime | None]
    last_fired_at: Mapped[datetime | None]
    last_run_id: Mapped[str | None] = mapped_column(sa.String(36))
    last_catch_up: Mapped[bool | None]
    last_coalesced: Mapped[int | None]
    misses: Mapped[int] = mapped_column(default=0)
    """Occurrences that did not get their own run (coalesced, or a run was still active)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ScheduledRun(Base):
    """A run the scheduler started: which occurrence it stands for and whether it was late."""

    __tablename__ = "scheduled_run"

    run_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    owner_kind: Mapped[str] = mapped_column(sa.String(16))
    owner_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    due_at: Mapped[datetime]
    catch_up: Mapped[bool] = mapped_column(default=False)
    coalesced: Mapped[int] = mapped_column(default=1)
    enqueued_at: Mapped[datetime] = mapped_column(default=utcnow)


class SourceSlot(Base):
    """One of a source's concurrency slots, held by a run (the per-source limit, across processes)."""

    __tablename__ = "source_slot"

    source_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    slot: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    run_kind: Mapped[str] = mapped_column(sa.String(16))
    run_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lease(Base):
    """A named periodic duty (janitor, reaper, retention) that one process at a time performs."""

    __tablename__ = "scheduling_lease"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(sa.String(200))
    next_at: Mapped[datetime]


class Counter(Base):
    """A monotonic total shared by every process (janitor drops, schedule misses)."""

    __tablename__ = "scheduling_counter"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class Notice(Base):
    """A notification the scheduling layer sent or recorded (stale-schedule pauses)."""

    __tablename__ = "schedule_notice"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    owner_kind: Mapped[str] = mapped_column(sa.String(16))
    owner_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(36))
    event: Mapped[str] = mapped_column(sa.String(32))
    recipients: Mapped[list[str]] = mapped_column(JSONType, default=list)
    subject: Mapped[str] = mapped_column(sa.Text)
    delivered: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(sa.Text)
    """The last attempt's failure (kept once delivered, for the record)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    """E-mail attempts made (0 when there was nothing to send to)."""
    last_attempt_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    """When a failed e-mail is tried again (NULL: delivered, or given up)."""
    delivered_at: Mapped[datetime | None]
    body: Mapped[str | None] = mapped_column(sa.Text)
    """The mail's text, to send it again (NULL on notices recorded before migration 0006)."""


async def delete_schedule_rows(session: AsyncSession, owner_kind: str, owner_id: str) -> None:
    """A segment's or sync's schedule plan, scheduled-run records and notices (no foreign key
    links them to their owner: without this they would outlive it)."""
    for model in (ScheduleState, ScheduledRun, Notice):
        await session.execute(
            sa.delete(model).where(model.owner_kind == owner_kind, model.owner_id == owner_id)
        )
