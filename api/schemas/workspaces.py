"""Workspace DTOs."""

from __future__ import annotations

from datetime import datetime

import msgspec


class WorkspaceRead(msgspec.Struct, kw_only=True):
    """The workspace the calling API key belongs to."""

    id: str
    name: str
    time_zone: str
    created_at: datetime


class WorkspaceUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Change the workspace: its IANA ``time_zone`` (schedules are re-planned in it)."""

    time_zone: str
