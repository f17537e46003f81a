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


class SqlIssueRead(msgspec.Struct, kw_only=True):
    """One problem the SQL check found, with its position when the parser knows it."""

    code: str
    message: str
    line: int | None
    column: int | None


class EstimateError(msgspec.Struct, kw_only=True):
    """Why the warehouse's dry run gave no estimate (the check result stands)."""

    code: str
    message: str


class SegmentCheckRead(msgspec.Struct, kw_only=True):
    """``check_segment_sql(...).to_dict()`` plus the warehouse's dry-run estimate.

    ``errors`` lists every issue, ordered by code then position; ``sql``/``ids_sql`` are the
    query in the warehouse's dialect (``null`` when invalid). ``estimated_bytes`` is BigQuery's
    dry run (``null`` elsewhere); ``estimate_error`` appears only when that dry run failed.
    """

    valid: bool
    errors: list[SqlIssueRead]
    sql: str | None
    ids_sql: str | None
    tables: list[str]
    dialect: str
    target: str
    estimated_bytes: int | None = None
    estimate_error: EstimateError | msgspec.UnsetType = msgspec.UNSET


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
