"""The API on the CLI: credential, source, catalog, segment, profile; workspace show|update|list.

Every command calls the same service as the API route it mirrors and prints that route's
response body (the API's own DTOs and views) as JSON on stdout; logs go to stderr. Errors are
``{"error": {...}}`` on stderr with exit 1; usage errors (bad option, unreadable file) exit 2.
Commands are scoped to one workspace: ``--workspace`` or ``ZEROCOPY_WORKSPACE``.
"""

from __future__ import annotations

import click

from zerocopy.commands.credentials import credential
from zerocopy.commands.profiles import profile
from zerocopy.commands.segments import segment
from zerocopy.commands.sources import catalog, source
from zerocopy.commands.workspaces import workspace_list, workspace_show, workspace_update


def register(main: click.Group, workspace: click.Group) -> None:
    """Add the resource groups to ``main`` and ``show``/``update``/``list`` to ``workspace``."""
    for group in (credential, source, catalog, segment, profile):
        main.add_command(group)
    workspace.add_command(workspace_show)
    workspace.add_command(workspace_update)
    workspace.add_command(workspace_list)
