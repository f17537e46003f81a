"""Refresh runs."""

from __future__ import annotations

from litestar import Controller, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from api.schemas.runs import RunRead
from api.views import run_read
from zerocopy.services import segments
from zerocopy.services.context import Runtime
from zerocopy.services.workspaces import Caller


class RunController(Controller):
    path = "/v1/runs"
    tags = ["runs"]

    @get("/{run_id:str}", operation_id="getRun")
    async def get_one(self, caller: Caller, session: AsyncSession, run_id: str) -> RunRead:
        """A run's status, counts and error."""
        return run_read(await segments.get_run(session, caller.workspace_id, run_id))

    @post("/{run_id:str}/cancel", operation_id="cancelRun", status_code=202)
    async def cancel(
        self, caller: Caller, session: AsyncSession, runtime: Runtime, run_id: str
    ) -> RunRead:
        """Ask a queued or running refresh to stop; it ends ``cancelled`` (409 if already done)."""
        run = await segments.cancel_run(session, runtime, caller.workspace_id, run_id)
        return run_read(run)
