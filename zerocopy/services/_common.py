"""Small helpers every service uses: workspace-scoped lookups and name checks."""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from zerocopy import errors
from zerocopy.errors import ZerocopyError

M = TypeVar("M")


async def get_scoped(session: AsyncSession, model: type[M], workspace_id: str, obj_id: str) -> M:
    """``model`` row ``obj_id`` of ``workspace_id``; ``not_found`` for any other workspace's."""
    row = await session.get(model, obj_id)
    if row is None or getattr(row, "workspace_id", None) != workspace_id:
        kind = getattr(model, "__tablename__", model.__name__).replace("_", " ")
        raise ZerocopyError(
            errors.NOT_FOUND, f"{kind} {obj_id} not found", details={"id": obj_id, "kind": kind}
        )
    return row


async def list_scoped(
    session: AsyncSession, model: type[M], workspace_id: str, *order_by: Any
) -> list[M]:
    """Every ``model`` row of ``workspace_id``."""
    stmt = sa.select(model).where(model.workspace_id == workspace_id)  # type: ignore[attr-defined]
    if order_by:
        stmt = stmt.order_by(*order_by)
    return list((await session.scalars(stmt)).all())


def check_name(name: str | None, what: str) -> str:
    """A trimmed, non-empty name of at most 200 characters."""
    cleaned = (name or "").strip()
    if not cleaned or len(cleaned) > 200:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"a {what} name must be 1-200 characters",
            details={"field": "name"},
        )
    return cleaned


async def ensure_unique_name(
    session: AsyncSession,
    model: type[Any],
    workspace_id: str,
    name: str,
    *,
    exclude_id: str | None = None,
) -> None:
    """``conflict`` when another object of the same kind in the workspace has ``name``."""
    stmt = sa.select(model.id).where(model.workspace_id == workspace_id, model.name == name)
    if exclude_id is not None:
        stmt = stmt.where(model.id != exclude_id)
    if (await session.execute(stmt.limit(1))).first() is not None:
        kind = model.__tablename__.replace("_", " ")
        raise ZerocopyError(
            errors.CONFLICT,
            f"a {kind} named {name!r} already exists in this workspace; pick another name",
            details={"field": "name"},
        )
