"""Workspaces and their API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.scheduling.schedule import load_zone
from zerocopy.secrets import api_keys
from zerocopy.state.models import ApiKey, Credential, Segment, Source, Workspace
from zerocopy.state.sync_models import (
    StoreAccount,
    StoreAlias,
    StoreCatalogItem,
    StoreEvent,
    StoreProfile,
    StorePurchase,
    Sync,
)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the workspace an API key belongs to."""

    workspace: Workspace
    api_key_id: str

    @property
    def workspace_id(self) -> str:
        return self.workspace.id


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise ZerocopyError(errors.VALIDATION_ERROR, "a workspace name must be 1-200 characters")
    return name


async def create_workspace(
    session: AsyncSession, *, name: str, time_zone: str = "UTC"
) -> tuple[Workspace, str]:
    """Create a workspace and its first API key; the plain key is returned once, never stored."""
    load_zone(time_zone)  # IANA names only; validation_error on field time_zone
    ws = Workspace(name=_check_name(name), time_zone=time_zone)
    session.add(ws)
    await session.flush()
    key = await _add_key(session, ws.id, "default")
    await session.commit()
    return ws, key


async def set_time_zone(
    session: AsyncSession, workspace_id: str, time_zone: str, now: datetime | None = None
) -> Workspace:
    """Change the workspace's IANA time zone and re-plan its schedules in the same transaction.

    Each plan goes on from the local slot it was waiting for, in the new zone: no local slot
    runs twice, none is skipped (one that comes out due runs at once, as one catch-up); see
    :func:`zerocopy.scheduling.schedule.replan_in_zone`. The same zone again changes nothing.
    """
    from zerocopy.scheduling.scheduler import replan_workspace_zone

    load_zone(time_zone)
    ws = await session.get(Workspace, workspace_id)
    if ws is None:
        raise ZerocopyError(errors.NOT_FOUND, f"workspace {workspace_id} does not exist")
    if ws.time_zone != time_zone:
        ws.time_zone = time_zone
        await session.flush()
        await replan_workspace_zone(session, workspace_id, time_zone, now or datetime.now(UTC))
    await session.commit()
    return ws


async def create_api_key(session: AsyncSession, workspace_id: str, name: str | None) -> str:
    """Another API key for the workspace (shown once)."""
    key = await _add_key(session, workspace_id, name)
    await session.commit()
    return key


async def _add_key(session: AsyncSession, workspace_id: str, name: str | None) -> str:
    generated = api_keys.generate_api_key()
    session.add(
        ApiKey(
            workspace_id=workspace_id,
            name=name,
            prefix=generated.prefix,
            key_hash=generated.key_hash,
        )
    )
    await session.flush()
    return generated.key


async def authenticate(session: AsyncSession, key: str) -> Caller:
    """The caller behind ``key``, else ``unauthorized`` (same answer for every kind of wrong)."""
    denied = ZerocopyError(
        errors.UNAUTHORIZED,
        "invalid or revoked API key; create one with 'zerocopy workspace create NAME'",
    )
    prefix = api_keys.api_key_lookup_prefix(key)
    if prefix is None:
        raise denied
    row = (
        await session.execute(
            sa.select(ApiKey, Workspace)
            .join(Workspace, Workspace.id == ApiKey.workspace_id)
            .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
        )
    ).first()
    if row is None or not api_keys.verify_api_key(key, row[0].key_hash):
        raise denied
    api_key, workspace = row
    now = datetime.now(UTC)
    # One write a minute per key at most: a write per request would contend on SQLite.
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        api_key.last_used_at = now
        await session.commit()
    return Caller(workspace=workspace, api_key_id=api_key.id)


async def get_workspace(session: AsyncSession, workspace_id: str) -> Workspace:
    ws = await session.get(Workspace, workspace_id)
    if ws is None:
        raise ZerocopyError(errors.NOT_FOUND, f"workspace {workspace_id} not found")
    return ws


_STORE_TABLES = (
    StoreEvent,
    StorePurchase,
    StoreAlias,
    StoreProfile,
    StoreCatalogItem,
    StoreAccount,
)
"""The profile store's tables, children first. They have no foreign key to ``workspace`` (a
per-row check would slow bulk syncs down), so a workspace's rows are deleted explicitly."""


async def _delete_schedules(session: AsyncSession, workspace_id: str) -> None:
    """The workspace's schedule plans, scheduled-run records and notices (no foreign keys)."""
    from zerocopy.scheduling.models import Notice, ScheduledRun, ScheduleState

    owners = sa.select(ScheduleState.owner_id).where(ScheduleState.workspace_id == workspace_id)
    await session.execute(sa.delete(ScheduledRun).where(ScheduledRun.owner_id.in_(owners)))
    await session.execute(sa.delete(Notice).where(Notice.workspace_id == workspace_id))
    await session.execute(
        sa.delete(ScheduleState).where(ScheduleState.workspace_id == workspace_id)
    )


async def delete_workspace(session: AsyncSession, workspace_id: str) -> None:
    """Delete a workspace and everything it owns, in one transaction.

    Its profile store rows go first (explicitly: no foreign key cascades to them), then its
    syncs, segments, sources and credentials (whose ``RESTRICT`` links would otherwise depend
    on the order a cascade visits them); what remains cascades from the workspace row.
    """
    ws = await session.get(Workspace, workspace_id)
    if ws is None:
        raise ZerocopyError(errors.NOT_FOUND, f"workspace {workspace_id} not found")
    await _delete_schedules(session, workspace_id)
    for model in (*_STORE_TABLES, Sync, Segment, Source, Credential):
        await session.execute(sa.delete(model).where(model.workspace_id == workspace_id))
    await session.execute(sa.delete(Workspace).where(Workspace.id == workspace_id))
    await session.commit()
