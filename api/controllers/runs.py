"""Refresh runs."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import FromPath

from api.deps import CallerDep, RuntimeDep, SessionDep
from api.errors import ERROR_RESPONSES, refuse_unknown_query_params
from api.schemas.runs import RunRead
from api.views import run_reads
from zerocopy.services import segments


class RunController(Controller):
    path = "/v1/runs"
    guards = [refuse_unknown_query_params]
    tags = ["runs"]

    @get("/{run_id:str}", operation_id="getRun", responses=ERROR_RESPONSES)
    async def get_one(
        self, caller: CallerDep, session: SessionDep, run_id: FromPath[str]
    ) -> RunRead:
        """A run's status, counts and error."""
        run = await segments.get_run(session, caller.workspace_id, run_id)
        return (await run_reads(session, [run]))[0]

    @post(
        "/{run_id:str}/cancel", operation_id="cancelRun", responses=ERROR_RESPONSES, status_code=202
    )
    async def cancel(
        self, caller: CallerDep, session: SessionDep, runtime: RuntimeDep, run_id: FromPath[str]
    ) -> RunRead:
        """Ask a queued or running refresh to stop; it ends ``cancelled`` (409 if already done)."""
        run = await segments.cancel_run(session, runtime, caller.workspace_id, run_id)
        return (await run_reads(session, [run]))[0]
