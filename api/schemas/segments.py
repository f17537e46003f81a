"""Segment DTOs."""

from __future__ import annotations

from datetime import datetime

import msgspec


class SegmentValidate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Check segment SQL against a source's catalog without saving anything."""

    source_id: str
    sql: str
    dialect: str | None = None
    id_column: str = "external_user_id"


class SegmentCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new segment; its SQL must pass the check. ``dialect`` defaults to the warehouse's."""

    name: str
    source_id: str
    sql: str
    description: str | None = None
    dialect: str | None = None
    id_column: str = "external_user_id"


class SegmentUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Change a segment; new SQL, dialect or id column is checked again before it is saved."""

    name: str | None = None
    description: str | None = None
    sql: str | None = None
    dialect: str | None = None
    id_column: str | None = None


class SegmentRead(msgspec.Struct, kw_only=True):
    """A segment, its SQL as written and its current membership size."""

    id: str
    name: str
    description: str | None
    source_id: str
    sql: str
    dialect: str
    id_column: str
    member_count: int
    last_refreshed_at: datetime | None
    last_run_id: str | None
    created_at: datetime
    updated_at: datetime | None


class MemberPage(msgspec.Struct, kw_only=True):
    """One page of a segment's members, ordered by id; pass ``next_cursor`` for the next."""

    segment_id: str
    items: list[str]
    next_cursor: str | None
    total: int


class MemberCheck(msgspec.Struct, kw_only=True):
    """Whether one id is in the segment's current membership."""

    segment_id: str
    external_id: str
    member: bool
