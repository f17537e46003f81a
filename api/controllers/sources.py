"""Sources, their connection test and their catalog."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody, Parameter

from api.deps import CallerDep, RuntimeDep, SessionDep
from api.errors import ERROR_RESPONSES, WAREHOUSE_ERROR_RESPONSES, refuse_unknown_query_params
from api.schemas.sources import (
    SourceCreate,
    SourceRead,
    SourceTestRead,
    SourceUpdate,
    TableRead,
    TableSummary,
)
from api.views import source_read, source_test_read, table_read, table_summary
from zerocopy.services import catalog, sources


class SourceController(Controller):
    path = "/v1/sources"
    guards = [refuse_unknown_query_params]
    tags = ["sources"]

    @post(operation_id="createSource", responses=ERROR_RESPONSES)
    async def create(
        self, caller: CallerDep, session: SessionDep, data: JSONBody[SourceCreate]
    ) -> SourceRead:
        """Create a source in ``draft``; test it to make it ``active``."""
        source = await sources.create_source(
            session,
            caller.workspace_id,
            name=data.name,
            credential_id=data.credential_id,
            scope=data.scope,
            max_runtime_minutes=data.max_runtime_minutes,
        )
        return source_read(source)

    @get(operation_id="listSources", responses=ERROR_RESPONSES)
    async def list_all(self, caller: CallerDep, session: SessionDep) -> list[SourceRead]:
        """Every source of the workspace."""
        return [source_read(s) for s in await sources.list_sources(session, caller.workspace_id)]

    @get("/{source_id:str}", operation_id="getSource", responses=ERROR_RESPONSES)
    async def get_one(
        self, caller: CallerDep, session: SessionDep, source_id: FromPath[str]
    ) -> SourceRead:
        """One source."""
        return source_read(await sources.get_source(session, caller.workspace_id, source_id))

    @patch("/{source_id:str}", operation_id="updateSource", responses=ERROR_RESPONSES)
    async def update(
        self,
        caller: CallerDep,
        session: SessionDep,
        source_id: FromPath[str],
        data: JSONBody[SourceUpdate],
    ) -> SourceRead:
        """Rename, change credential, scope or max runtime."""
        source = await sources.update_source(
            session,
            caller.workspace_id,
            source_id,
            name=data.name,
            credential_id=data.credential_id,
            scope=data.scope,
            max_runtime_minutes=data.max_runtime_minutes,
        )
        return source_read(source)

    @delete("/{source_id:str}", operation_id="deleteSource", responses=ERROR_RESPONSES)
    async def remove(
        self, caller: CallerDep, session: SessionDep, source_id: FromPath[str]
    ) -> None:
        """Delete a source that no segment uses."""
        await sources.delete_source(session, caller.workspace_id, source_id)

    @post(
        "/{source_id:str}/test",
        operation_id="testSource",
        responses=WAREHOUSE_ERROR_RESPONSES,
        status_code=200,
    )
    async def test(
        self, caller: CallerDep, session: SessionDep, runtime: RuntimeDep, source_id: FromPath[str]
    ) -> SourceTestRead:
        """Connect, list the visible tables, store the catalog; ``active`` on success."""
        outcome = await sources.test_source(session, runtime, caller.workspace_id, source_id)
        return source_test_read(outcome)

    @get("/{source_id:str}/tables", operation_id="listSourceTables", responses=ERROR_RESPONSES)
    async def tables(
        self,
        caller: CallerDep,
        session: SessionDep,
        source_id: FromPath[str],
        search: str | None = Parameter(
            default=None, description="Match table name, description or column name."
        ),
    ) -> list[TableSummary]:
        """The catalog the last successful test stored, optionally searched."""
        found = await catalog.list_tables(session, caller.workspace_id, source_id, search=search)
        return [table_summary(t) for t in found]

    @get(
        "/{source_id:str}/tables/{table_name:str}",
        operation_id="getSourceTable",
        responses=ERROR_RESPONSES,
    )
    async def table(
        self,
        caller: CallerDep,
        session: SessionDep,
        source_id: FromPath[str],
        table_name: FromPath[str],
    ) -> TableRead:
        """One table or view with its columns."""
        found = await catalog.get_table(session, caller.workspace_id, source_id, table_name)
        return table_read(found)
