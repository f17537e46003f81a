"""The caller's workspace."""

from __future__ import annotations

from litestar import Controller, get

from api.deps import CallerDep
from api.errors import ERROR_RESPONSES
from api.schemas.workspaces import WorkspaceRead
from api.views import workspace_read


class WorkspaceController(Controller):
    path = "/v1/workspace"
    tags = ["workspace"]

    @get(operation_id="getWorkspace", responses=ERROR_RESPONSES)
    async def get_workspace(self, caller: CallerDep) -> WorkspaceRead:
        """The workspace the API key belongs to."""
        return workspace_read(caller.workspace)
