"""Segments: SQL checked against the source's catalog, refreshed by the engine, members served."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from dialects.registry import adapter_class
from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.services._common import (
    check_name,
    check_text,
    ensure_unique_name,
    get_scoped,
    list_scoped,
    shown_id,
)
from zerocopy.services.catalog import catalog_mapping, require_tested_catalog
from zerocopy.state.models import (
    RefreshRun,
    RunStatus,
    Segment,
    SegmentMemberChunk,
    Source,
    SourceStatus,
)

if TYPE_CHECKING:
    from zerocopy.services.context import Runtime
    from zerocopy.sql.result import CheckResult

DEFAULT_ID_COLUMN = "external_user_id"
MAX_DESCRIPTION = 10_000
"""Characters of a segment description."""


@dataclass(frozen=True, slots=True)
class MemberPage:
    items: list[str]
    next_cursor: str | None
    total: int


def warehouse_dialect(source: Source) -> str:
    """The sqlglot dialect of the source's warehouse (the default input dialect)."""
    return adapter_class(source.kind).SQLGLOT_DIALECT


def _check_id_column(id_column: str | None) -> str:
    """The id column a segment returns: a column name (1-255 printable characters); blank
    means the default only when it was left out, never when it is sent empty on an update."""
    if id_column is None:
        return DEFAULT_ID_COLUMN
    cleaned = id_column.strip()
    if not cleaned or len(cleaned) > 255 or not cleaned.isprintable():
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"id_column must be a column name of 1-255 printable characters "
            f"(default {DEFAULT_ID_COLUMN!r}), got {shown_id(id_column)!r}",
            details={"field": "id_column", "reason": "invalid_value"},
        )
    return cleaned


async def _check(
    session: AsyncSession,
    runtime: Runtime,
    source: Source,
    sql: str,
    dialect: str | None,
    id_column: str,
) -> CheckResult:
    await require_tested_catalog(session, source)
    from zerocopy.sql import check_segment_sql

    catalog = await runtime.sql_catalog(source, lambda: catalog_mapping(session, source))
    target = warehouse_dialect(source)
    return check_segment_sql(
        sql,
        dialect=dialect or target,
        catalog=catalog,
        scope=source.scope,
        id_column=id_column or DEFAULT_ID_COLUMN,
        target=target,
    )


async def validate_sql(
    session: AsyncSession,
    runtime: Runtime,
    workspace_id: str,
    *,
    source_id: str,
    sql: str,
    dialect: str | None = None,
    id_column: str = DEFAULT_ID_COLUMN,
) -> CheckResult:
    """Check ``sql`` against the source's stored catalog; nothing is saved or sent anywhere."""
    id_column = _check_id_column(id_column)
    source = await get_scoped(session, Source, workspace_id, source_id, field="source_id")
    return await _check(session, runtime, source, sql, dialect, id_column)


async def create_segment(
    session: AsyncSession,
    runtime: Runtime,
    workspace_id: str,
    *,
    name: str,
    source_id: str,
    sql: str,
    description: str | None = None,
    dialect: str | None = None,
    id_column: str = DEFAULT_ID_COLUMN,
) -> Segment:
    """Save a segment whose SQL passes the check (else raise the check's first error)."""
    name = check_name(name, "segment")
    description = check_text(description, "description", max_length=MAX_DESCRIPTION)
    id_column = _check_id_column(id_column)
    source = await get_scoped(session, Source, workspace_id, source_id, field="source_id")
    result = await _check(session, runtime, source, sql, dialect, id_column)
    result.raise_for_errors()
    await ensure_unique_name(session, Segment, workspace_id, name)
    segment = Segment(
        workspace_id=workspace_id,
        source_id=source.id,
        name=name,
        description=description,
        sql=sql,
        dialect=result.dialect,
        id_column=id_column,
    )
    session.add(segment)
    await session.commit()
    return segment


async def list_segments(session: AsyncSession, workspace_id: str) -> list[Segment]:
    return await list_scoped(session, Segment, workspace_id, Segment.created_at)


async def get_segment(session: AsyncSession, workspace_id: str, segment_id: str) -> Segment:
    return await get_scoped(session, Segment, workspace_id, segment_id)


async def update_segment(
    session: AsyncSession,
    runtime: Runtime,
    workspace_id: str,
    segment_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    sql: str | None = None,
    dialect: str | None = None,
    id_column: str | None = None,
    now: datetime | None = None,
) -> Segment:
    """Change a segment; new SQL, dialect or id column must pass the check again.

    The current membership stays until the next refresh computes it with the new SQL. An
    accepted edit of any field (even to the value it had) counts as a change of the segment
    for its schedule: the stale clock restarts (a paused schedule stays paused).
    """
    from zerocopy.scheduling.scheduler import record_segment_change

    segment = await get_scoped(session, Segment, workspace_id, segment_id)
    edited = any(v is not None for v in (name, description, sql, dialect, id_column))
    if name is not None:
        name = check_name(name, "segment")
        await ensure_unique_name(session, Segment, workspace_id, name, exclude_id=segment.id)
        segment.name = name
    if description is not None:
        segment.description = check_text(description, "description", max_length=MAX_DESCRIPTION)
    if sql is not None or dialect is not None or id_column is not None:
        source = await get_scoped(session, Source, workspace_id, segment.source_id)
        new_sql = segment.sql if sql is None else sql
        new_dialect = segment.dialect if dialect is None else dialect
        new_id_column = segment.id_column if id_column is None else _check_id_column(id_column)
        result = await _check(session, runtime, source, new_sql, new_dialect, new_id_column)
        result.raise_for_errors()
        segment.sql, segment.dialect, segment.id_column = new_sql, result.dialect, new_id_column
    if edited:
        await record_segment_change(session, segment.id, now or datetime.now(UTC))
    await session.commit()
    return segment


async def _active_run(session: AsyncSession, segment_id: str) -> RefreshRun | None:
    stmt = sa.select(RefreshRun).where(
        RefreshRun.segment_id == segment_id, RefreshRun.status.in_(RunStatus.ACTIVE)
    )
    return (await session.scalars(stmt.limit(1))).first()


async def _delete_schedule(session: AsyncSession, segment_id: str) -> None:
    """The segment's schedule plan, scheduled-run records and pause notices."""
    from zerocopy.scheduling.models import SEGMENT, delete_schedule_rows

    await delete_schedule_rows(session, SEGMENT, segment_id)


async def delete_segment(session: AsyncSession, workspace_id: str, segment_id: str) -> None:
    """Delete a segment, its runs and membership; ``refresh_in_progress`` while one runs."""
    segment = await get_scoped(session, Segment, workspace_id, segment_id)
    running = await _active_run(session, segment.id)
    if running is not None:
        raise ZerocopyError(
            errors.REFRESH_IN_PROGRESS,
            f"segment {segment.name!r} is refreshing; cancel run {running.id} or wait for it",
            details={"run_id": running.id},
        )
    await session.execute(
        sa.delete(SegmentMemberChunk).where(SegmentMemberChunk.segment_id == segment.id)
    )
    await session.execute(sa.delete(RefreshRun).where(RefreshRun.segment_id == segment.id))
    await _delete_schedule(session, segment.id)
    await session.delete(segment)
    await session.commit()


async def request_refresh(
    session: AsyncSession,
    runtime: Runtime,
    workspace_id: str,
    segment_id: str,
    *,
    trigger: str = "api",
) -> RefreshRun:
    """Queue a refresh and hand it to the runner; ``refresh_in_progress`` if one is queued/running."""
    segment = await get_scoped(session, Segment, workspace_id, segment_id)
    source = await get_scoped(session, Source, workspace_id, segment.source_id)
    if source.status != SourceStatus.ACTIVE:
        raise ZerocopyError(
            errors.SOURCE_NOT_ACTIVE,
            f"source {source.name!r} is {source.status}; test it successfully before refreshing",
            details={"source_id": source.id, "status": source.status},
        )
    run = await runtime.engine.request(segment.id, trigger)
    await runtime.runner.submit(run.id)
    return run


async def list_runs(
    session: AsyncSession, workspace_id: str, segment_id: str, *, limit: int = 20
) -> list[RefreshRun]:
    segment = await get_scoped(session, Segment, workspace_id, segment_id)
    stmt = (
        sa.select(RefreshRun)
        .where(RefreshRun.segment_id == segment.id)
        .order_by(RefreshRun.created_at.desc())
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def get_run(session: AsyncSession, workspace_id: str, run_id: str) -> RefreshRun:
    return await get_scoped(session, RefreshRun, workspace_id, run_id)


async def cancel_run(
    session: AsyncSession, runtime: Runtime, workspace_id: str, run_id: str
) -> RefreshRun:
    """Ask a queued or running refresh to stop; ``conflict`` when it already ended."""
    run = await get_scoped(session, RefreshRun, workspace_id, run_id)
    if run.is_final:
        raise ZerocopyError(
            errors.CONFLICT,
            f"run {run.id} already ended ({run.status}); nothing to cancel",
            details={"run_id": run.id, "status": run.status},
        )
    cancelled: RefreshRun = await runtime.engine.request_cancel(run.id)
    return cancelled


async def list_members(
    session: AsyncSession,
    runtime: Runtime,
    workspace_id: str,
    segment_id: str,
    *,
    cursor: str | None = None,
    limit: int = 1000,
) -> MemberPage:
    """One page of the current membership, ordered by id, after ``cursor`` (exclusive)."""
    segment = await get_scoped(session, Segment, workspace_id, segment_id)
    if not 1 <= limit <= 10_000:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"limit must be between 1 and 10000, got {limit}",
            details={"field": "limit", "reason": "invalid_value"},
        )
    if cursor is not None and "\x00" in cursor:
        # Ids are text without NUL (PostgreSQL refuses it): no cursor of ours holds one.
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            "cursor is not a next_cursor this API returned (it contains a NUL character)",
            details={"field": "cursor", "reason": "invalid_value"},
        )
    page = await runtime.members.page(segment.id, after=cursor, limit=limit)
    return MemberPage(items=page.ids, next_cursor=page.next_after, total=segment.member_count)


async def is_member(
    session: AsyncSession, runtime: Runtime, workspace_id: str, segment_id: str, external_id: str
) -> bool:
    """Whether ``external_id`` is in the current membership."""
    segment = await get_scoped(session, Segment, workspace_id, segment_id)
    if "\x00" in external_id:
        return False  # no stored id holds NUL (PostgreSQL text cannot)
    return await runtime.members.contains(segment.id, external_id)


def run_duration(run: RefreshRun) -> float | None:
    """End-to-end seconds of a run: the engine's measured total, else finished - started."""
    total = (run.timings or {}).get("total")
    return float(total) if isinstance(total, int | float) else run.duration_s


def run_summary(run: RefreshRun) -> dict[str, Any]:
    """A run as plain data (CLI/demo output)."""
    return {
        "id": run.id,
        "status": run.status,
        "member_count": run.member_count,
        "added": run.added,
        "removed": run.removed,
        "duration_s": run_duration(run),
        "temp_table": run.temp_table,
        "error_code": run.error_code,
    }
