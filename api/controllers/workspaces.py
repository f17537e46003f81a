"""The caller's workspace."""

from __future__ import annotations

from litestar import Controller, get

from api.schemas.workspaces import WorkspaceRead
from api.views import workspace_read
from zerocopy.services.workspaces import Caller


class WorkspaceController(Controller):
    path = "/v1/workspace"
    tags = ["workspace"]

    @get(operation_id="getWorkspace")
    async def get_workspace(self, caller: Caller) -> WorkspaceRead:
        """The workspace the API key belongs to."""
        return workspace_read(caller.workspace)
