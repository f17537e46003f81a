"""The caller's workspace."""

from __future__ import annotations

from litestar import Controller, get, patch
from litestar.params import JSONBody

from api.deps import CallerDep, SessionDep
from api.errors import ERROR_RESPONSES, refuse_unknown_query_params
from api.schemas.workspaces import WorkspaceRead, WorkspaceUpdate
from api.views import workspace_read
from zerocopy.services import workspaces


class WorkspaceController(Controller):
    path = "/v1/workspace"
    guards = [refuse_unknown_query_params]
    tags = ["workspace"]

    @get(operation_id="getWorkspace", responses=ERROR_RESPONSES)
    async def get_workspace(self, caller: CallerDep) -> WorkspaceRead:
        """The workspace the API key belongs to."""
        return workspace_read(caller.workspace)

    @patch(operation_id="updateWorkspace", responses=ERROR_RESPONSES)
    async def update_workspace(
        self, caller: CallerDep, session: SessionDep, data: JSONBody[WorkspaceUpdate]
    ) -> WorkspaceRead:
        """Change the IANA ``time_zone``; every schedule is re-planned in it at once, going
        on from the local slot it was waiting for: a slot already run does not run again, one
        not run yet is not skipped (it runs at once if its new time has passed), no burst."""
        ws = await workspaces.set_time_zone(session, caller.workspace_id, data.time_zone)
        return workspace_read(ws)
