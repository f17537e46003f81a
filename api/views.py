"""ORM rows → read DTOs. The only place that decides what a response shows (never a secret)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.schemas.common import ErrorInfo
from api.schemas.credentials import CredentialRead
from api.schemas.runs import RunRead, ScheduledOccurrence
from api.schemas.segments import SegmentRead
from api.schemas.sources import (
    ColumnRead,
    SourceRead,
    SourceTestRead,
    TableRead,
    TableSummary,
)
from api.schemas.workspaces import WorkspaceRead
from zerocopy.scheduling.models import ScheduledRun
from zerocopy.services.credentials import credential_warnings
from zerocopy.services.segments import run_duration
from zerocopy.services.sources import TestOutcome
from zerocopy.state.models import (
    CatalogTable,
    Credential,
    RefreshRun,
    Segment,
    Source,
    Workspace,
)


class _Run(Protocol):
    @property
    def id(self) -> str: ...


R = TypeVar("R", bound=_Run)
T = TypeVar("T")


def workspace_read(ws: Workspace) -> WorkspaceRead:
    return WorkspaceRead(id=ws.id, name=ws.name, time_zone=ws.time_zone, created_at=ws.created_at)


def credential_read(cred: Credential, secret_fields: list[str] | None = None) -> CredentialRead:
    return CredentialRead(
        id=cred.id,
        name=cred.name,
        kind=cred.kind,
        settings=dict(cred.settings or {}),
        secret_fields=secret_fields or [],
        public_key=cred.public_key,
        created_at=cred.created_at,
        updated_at=cred.updated_at,
        expires_at=cred.expires_at,
        warnings=credential_warnings(cred),
    )


def _error(data: dict[str, Any] | None) -> ErrorInfo | None:
    if not data:
        return None
    return ErrorInfo(
        code=str(data.get("code")),
        message=str(data.get("message") or ""),
        details=dict(data.get("details") or {}),
    )


def source_read(source: Source) -> SourceRead:
    return SourceRead(
        id=source.id,
        name=source.name,
        kind=source.kind,
        credential_id=source.credential_id,
        scope=source.scope,
        max_runtime_minutes=max(1, round(source.max_runtime_s / 60)),
        status=source.status,
        last_tested_at=source.last_test_at,
        last_error=_error(source.last_test_error),
        created_at=source.created_at,
    )


def table_summary(table: CatalogTable) -> TableSummary:
    return TableSummary(
        name=table.name,
        kind=table.kind,
        description=table.description,
        column_count=len(table.columns or []),
    )


def table_read(table: CatalogTable) -> TableRead:
    return TableRead(
        name=table.name,
        kind=table.kind,
        description=table.description,
        columns=[
            ColumnRead(
                name=str(c.get("name")),
                data_type=str(c.get("data_type") or ""),
                description=c.get("description"),
                nullable=bool(c.get("nullable", True)),
            )
            for c in table.columns or []
        ],
        fetched_at=table.fetched_at,
    )


def source_test_read(outcome: TestOutcome) -> SourceTestRead:
    return SourceTestRead(
        source=source_read(outcome.source),
        tables=[table_summary(t) for t in outcome.tables],
        elapsed_s=round(outcome.elapsed_s, 4),
        server_version=outcome.server_version,
    )


def segment_read(segment: Segment) -> SegmentRead:
    return SegmentRead(
        id=segment.id,
        name=segment.name,
        description=segment.description,
        source_id=segment.source_id,
        sql=segment.sql,
        dialect=segment.dialect,
        id_column=segment.id_column,
        member_count=segment.member_count,
        last_refreshed_at=segment.last_refreshed_at,
        last_run_id=segment.last_run_id,
        created_at=segment.created_at,
        updated_at=segment.updated_at,
    )


async def scheduled_occurrences(
    session: AsyncSession, run_ids: Sequence[str]
) -> dict[str, ScheduledOccurrence]:
    """The schedule occurrence each of ``run_ids`` was started for (runs the scheduler fired)."""
    if not run_ids:
        return {}
    rows = await session.execute(
        sa.select(
            ScheduledRun.run_id, ScheduledRun.due_at, ScheduledRun.catch_up, ScheduledRun.coalesced
        ).where(ScheduledRun.run_id.in_(list(run_ids)))
    )
    return {
        run_id: ScheduledOccurrence(
            due_at=due_at, catch_up=bool(catch_up), coalesced=int(coalesced or 1)
        )
        for run_id, due_at, catch_up, coalesced in rows.all()
    }


async def with_occurrences(
    session: AsyncSession,
    runs: Sequence[R],
    read: Callable[[R, ScheduledOccurrence | None], T],
) -> list[T]:
    """``read(run, occurrence)`` of each run (a refresh or a sync run), the occurrence being
    the schedule's for the runs the scheduler started (one query for all of them)."""
    found = await scheduled_occurrences(session, [run.id for run in runs])
    return [read(run, found.get(run.id)) for run in runs]


async def run_reads(session: AsyncSession, runs: Sequence[RefreshRun]) -> list[RunRead]:
    """:func:`run_read` of each refresh run, with its schedule occurrence."""
    return await with_occurrences(session, runs, run_read)


def run_read(run: RefreshRun, scheduled: ScheduledOccurrence | None = None) -> RunRead:
    error = None
    if run.error_code:
        error = ErrorInfo(
            code=run.error_code,
            message=run.error_message or "",
            details=dict(run.error_details or {}),
        )
    return RunRead(
        id=run.id,
        segment_id=run.segment_id,
        trigger=run.trigger,
        status=run.status,
        member_count=run.member_count,
        added=run.added,
        removed=run.removed,
        temp_table=run.temp_table,
        query_id=run.query_id,
        error=error,
        cancel_requested=run.cancel_requested_at is not None,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_s=run_duration(run),
        timings=dict(run.timings) if run.timings else None,
        scheduled=scheduled,
    )
