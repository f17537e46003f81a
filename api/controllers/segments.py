"""Segments: validate, create, update, refresh, runs, members."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody, Parameter

from api.deps import CallerDep, RuntimeDep, SessionDep
from api.errors import ERROR_RESPONSES, WAREHOUSE_ERROR_RESPONSES, refuse_unknown_query_params
from api.schemas.runs import RunRead
from api.schemas.segments import (
    MemberCheck,
    MemberPage,
    SegmentCheckRead,
    SegmentCreate,
    SegmentRead,
    SegmentUpdate,
    SegmentValidate,
)
from api.views import run_read, run_reads, segment_read
from zerocopy.services import cost, segments


class SegmentController(Controller):
    path = "/v1/segments"
    guards = [refuse_unknown_query_params]
    tags = ["segments"]

    @post(
        "/validate",
        operation_id="validateSegmentSql",
        responses=WAREHOUSE_ERROR_RESPONSES,
        status_code=200,
    )
    async def validate(
        self,
        caller: CallerDep,
        session: SessionDep,
        runtime: RuntimeDep,
        data: JSONBody[SegmentValidate],
    ) -> SegmentCheckRead:
        """Check SQL against the source's catalog; the result of ``check_segment_sql``, as is."""
        result = await segments.validate_sql(
            session,
            runtime,
            caller.workspace_id,
            source_id=data.source_id,
            sql=data.sql,
            dialect=data.dialect,
            id_column=data.id_column,
        )
        out: dict[str, Any] = result.to_dict()
        # The warehouse's dry-run estimate where it has one (BigQuery), else null.
        out.update(
            await cost.validate_estimate(
                session, runtime, caller.workspace_id, data.source_id, result
            )
        )
        return msgspec.convert(out, SegmentCheckRead)

    @post(operation_id="createSegment", responses=ERROR_RESPONSES)
    async def create(
        self,
        caller: CallerDep,
        session: SessionDep,
        runtime: RuntimeDep,
        data: JSONBody[SegmentCreate],
    ) -> SegmentRead:
        """Create a segment; refused with the check's first error code if the SQL is invalid."""
        segment = await segments.create_segment(
            session,
            runtime,
            caller.workspace_id,
            name=data.name,
            source_id=data.source_id,
            sql=data.sql,
            description=data.description,
            dialect=data.dialect,
            id_column=data.id_column,
        )
        return segment_read(segment)

    @get(operation_id="listSegments", responses=ERROR_RESPONSES)
    async def list_all(self, caller: CallerDep, session: SessionDep) -> list[SegmentRead]:
        """Every segment of the workspace."""
        found = await segments.list_segments(session, caller.workspace_id)
        return [segment_read(s) for s in found]

    @get("/{segment_id:str}", operation_id="getSegment", responses=ERROR_RESPONSES)
    async def get_one(
        self, caller: CallerDep, session: SessionDep, segment_id: FromPath[str]
    ) -> SegmentRead:
        """One segment."""
        return segment_read(await segments.get_segment(session, caller.workspace_id, segment_id))

    @patch("/{segment_id:str}", operation_id="updateSegment", responses=ERROR_RESPONSES)
    async def update(
        self,
        caller: CallerDep,
        session: SessionDep,
        runtime: RuntimeDep,
        segment_id: FromPath[str],
        data: JSONBody[SegmentUpdate],
    ) -> SegmentRead:
        """Change a segment; changed SQL is checked again before it is saved."""
        segment = await segments.update_segment(
            session,
            runtime,
            caller.workspace_id,
            segment_id,
            name=data.name,
            description=data.description,
            sql=data.sql,
            dialect=data.dialect,
            id_column=data.id_column,
        )
        return segment_read(segment)

    @delete("/{segment_id:str}", operation_id="deleteSegment", responses=ERROR_RESPONSES)
    async def remove(
        self, caller: CallerDep, session: SessionDep, segment_id: FromPath[str]
    ) -> None:
        """Delete a segment and its membership (refused while a refresh runs)."""
        await segments.delete_segment(session, caller.workspace_id, segment_id)

    @post(
        "/{segment_id:str}/refresh",
        operation_id="refreshSegment",
        responses=ERROR_RESPONSES,
        status_code=202,
    )
    async def refresh(
        self, caller: CallerDep, session: SessionDep, runtime: RuntimeDep, segment_id: FromPath[str]
    ) -> RunRead:
        """Start a refresh; answered at once with the queued run (poll ``getRun``)."""
        run = await segments.request_refresh(
            session, runtime, caller.workspace_id, segment_id, trigger="api"
        )
        return run_read(run)

    @get("/{segment_id:str}/runs", operation_id="listSegmentRuns", responses=ERROR_RESPONSES)
    async def runs(
        self,
        caller: CallerDep,
        session: SessionDep,
        segment_id: FromPath[str],
        limit: int = Parameter(default=20, ge=1, le=200),
    ) -> list[RunRead]:
        """The segment's most recent runs, newest first."""
        found = await segments.list_runs(session, caller.workspace_id, segment_id, limit=limit)
        return await run_reads(session, found)

    @get("/{segment_id:str}/members", operation_id="listSegmentMembers", responses=ERROR_RESPONSES)
    async def members(
        self,
        caller: CallerDep,
        session: SessionDep,
        runtime: RuntimeDep,
        segment_id: FromPath[str],
        cursor: str | None = Parameter(default=None, description="next_cursor of the last page"),
        limit: int = Parameter(default=1000, ge=1, le=10_000),
    ) -> MemberPage:
        """The current membership, one page at a time, ordered by id."""
        page = await segments.list_members(
            session, runtime, caller.workspace_id, segment_id, cursor=cursor, limit=limit
        )
        return MemberPage(
            segment_id=segment_id, items=page.items, next_cursor=page.next_cursor, total=page.total
        )

    @get(
        "/{segment_id:str}/members/{external_id:str}",
        operation_id="checkSegmentMember",
        responses=ERROR_RESPONSES,
    )
    async def member(
        self,
        caller: CallerDep,
        session: SessionDep,
        runtime: RuntimeDep,
        segment_id: FromPath[str],
        external_id: FromPath[str],
    ) -> MemberCheck:
        """Whether one id is a member now."""
        found = await segments.is_member(
            session, runtime, caller.workspace_id, segment_id, external_id
        )
        return MemberCheck(segment_id=segment_id, external_id=external_id, member=found)
