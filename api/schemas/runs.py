"""Refresh run DTOs."""

from __future__ import annotations

from datetime import datetime

import msgspec

from api.schemas.common import ErrorInfo


class ScheduledOccurrence(msgspec.Struct, kw_only=True):
    """The schedule occurrence a run was started for (absent for run-now, API and CLI runs)."""

    due_at: datetime
    """When the occurrence was due (the earliest missed one when several were coalesced)."""
    catch_up: bool
    """True when the run was started late, after downtime, for occurrences it missed."""
    coalesced: int
    """How many due occurrences this one run stands for (1 unless missed ones coalesced)."""


class RunRead(msgspec.Struct, kw_only=True):
    """One refresh of a segment: status, counts, diff against the previous membership, timings."""

    id: str
    segment_id: str
    trigger: str
    status: str
    member_count: int | None
    added: int | None
    removed: int | None
    temp_table: str | None
    query_id: str | None
    error: ErrorInfo | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    """End to end: check, warehouse query, id read, drop, diff and swap."""
    timings: dict[str, float] | None
    """Seconds per phase (check, materialize, read, drop, diff, swap, total)."""
    scheduled: ScheduledOccurrence | None = None
    """Set when the scheduler started the run: its occurrence and whether it was a catch-up."""
