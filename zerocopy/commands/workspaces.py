"""``zerocopy workspace show|update|list`` (``create`` lives in ``zerocopy.cli``)."""

from __future__ import annotations

from typing import Any

import click

from zerocopy.commands._common import echo, run, workspace_option


@click.command("show")
@workspace_option
def workspace_show(workspace_id: str) -> None:
    """One workspace (``GET /v1/workspace``): name and time zone."""
    from api.views import workspace_read
    from zerocopy.services import workspaces

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return workspace_read(await workspaces.get_workspace(s, workspace_id))

    echo(run(go))


@click.command("update")
@workspace_option
@click.option("--time-zone", required=True, help="IANA time zone, e.g. Europe/Paris.")
def workspace_update(workspace_id: str, time_zone: str) -> None:
    """Change the time zone (``PATCH /v1/workspace``); every schedule is re-planned in it."""
    from api.views import workspace_read
    from zerocopy.services import workspaces

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return workspace_read(await workspaces.set_time_zone(s, workspace_id, time_zone))

    echo(run(go, workspace_id))


@click.command("list")
def workspace_list() -> None:
    """Every workspace of this state database (an operator's view; the API has no such route)."""
    import sqlalchemy as sa

    from api.views import workspace_read
    from zerocopy.state.models import Workspace

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            found = await s.scalars(sa.select(Workspace).order_by(Workspace.created_at))
            return [workspace_read(w) for w in found.all()]

    echo(run(go))
