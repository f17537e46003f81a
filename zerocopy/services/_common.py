"""Small helpers every service uses: workspace-scoped lookups and name checks."""

from __future__ import annotations

import unicodedata
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from zerocopy import errors
from zerocopy.errors import ZerocopyError

M = TypeVar("M")


MAX_ID_LENGTH = 64
"""Longer than any id we hand out (uuid4 strings are 36): such an id is not looked up."""


def shown_id(obj_id: str) -> str:
    """An id as messages show it: at most :data:`MAX_ID_LENGTH` characters, control
    characters escaped (a 5,000-character or NUL-laden path segment is not echoed whole)."""
    text = obj_id if len(obj_id) <= MAX_ID_LENGTH else obj_id[:MAX_ID_LENGTH] + "…"
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def _plausible_id(obj_id: Any) -> bool:
    return (
        isinstance(obj_id, str)
        and 0 < len(obj_id) <= MAX_ID_LENGTH
        and obj_id.isprintable()
        and obj_id.strip() == obj_id
    )


async def get_scoped(
    session: AsyncSession,
    model: type[M],
    workspace_id: str,
    obj_id: str,
    *,
    field: str | None = None,
) -> M:
    """``model`` row ``obj_id`` of ``workspace_id``; ``not_found`` for any other workspace's.

    Another workspace's id gets exactly the answer of an id that never existed. An id that
    cannot be one of ours (too long, blank, control characters such as NUL, which PostgreSQL
    refuses in text) is ``not_found`` without a query. ``field`` names the request field the
    id came from (``credential_id``...), when it came from a body rather than the path.
    """
    row = await session.get(model, obj_id) if _plausible_id(obj_id) else None
    if row is None or getattr(row, "workspace_id", None) != workspace_id:
        raise _not_found(model, obj_id, field)
    return row


def refuse_implausible_id(model: type[Any], obj_id: Any) -> None:
    """``not_found`` (as :func:`get_scoped` answers it) for an id that cannot be one of ours,
    before a query that would fail on it (PostgreSQL text refuses NUL) or echo it whole."""
    if not _plausible_id(obj_id):
        raise _not_found(model, obj_id, None)


def _not_found(model: type[Any], obj_id: Any, field: str | None) -> ZerocopyError:
    kind = getattr(model, "__tablename__", model.__name__).replace("_", " ")
    shown = shown_id(str(obj_id))
    details: dict[str, Any] = {"id": shown, "kind": kind}
    where = ""
    if field is not None:
        details["field"] = field
        where = f" (field {field!r})"
    return ZerocopyError(errors.NOT_FOUND, f"{kind} {shown} not found{where}", details=details)


async def list_scoped(
    session: AsyncSession, model: type[M], workspace_id: str, *order_by: Any
) -> list[M]:
    """Every ``model`` row of ``workspace_id``."""
    stmt = sa.select(model).where(model.workspace_id == workspace_id)  # type: ignore[attr-defined]
    if order_by:
        stmt = stmt.order_by(*order_by)
    return list((await session.scalars(stmt)).all())


def _control_character(text: str) -> str | None:
    """The first control character of ``text`` (NUL, BEL, ESC...; not tab/newline), as U+XXXX."""
    for char in text:
        if unicodedata.category(char) == "Cc" and char not in "\t\n\r":
            return f"U+{ord(char):04X}"
    return None


def check_name(name: str | None, what: str) -> str:
    """A trimmed, non-empty name of at most 200 characters, without control characters."""
    cleaned = (name or "").strip()
    if not cleaned or len(cleaned) > 200:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"a {what} name must be 1-200 characters"
            + (f", got {len(cleaned)}" if cleaned else ", got an empty or blank one"),
            details={"field": "name", "reason": "invalid_value"},
        )
    bad = _control_character(cleaned) or (
        "a line break" if any(c in cleaned for c in "\t\n\r") else None
    )
    if bad:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"a {what} name must not contain control characters; found {bad}",
            details={"field": "name", "reason": "invalid_value"},
        )
    return cleaned


def check_text(value: str | None, field: str, *, max_length: int) -> str | None:
    """Free text (a description): at most ``max_length`` characters, no NUL or other control
    characters except tab and line breaks."""
    if value is None:
        return None
    if len(value) > max_length:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"{field} must be at most {max_length:,} characters, got {len(value):,}",
            details={"field": field, "reason": "invalid_value"},
        )
    bad = _control_character(value)
    if bad:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"{field} must not contain control characters; found {bad}",
            details={"field": field, "reason": "invalid_value"},
        )
    return value


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


async def refuse_if_used(
    session: AsyncSession,
    code: str,
    what: str,
    name: str,
    users: list[tuple[str, Any, Any]],
) -> None:
    """Refuse to delete ``what`` ``name`` while something still uses it.

    ``users``: ``(kind, id column, where clause)`` per kind of user (e.g. ``("segment",
    Segment.id, Segment.source_id == source.id)``); each kind's user names are read from the id
    column's table, ordered by name. The message names the first five users; ``details`` has one
    list of ids per kind (``segment_ids`` …), always present.
    """
    found: list[tuple[str, list[tuple[str, str]]]] = []
    for kind, id_column, where in users:
        name_column = id_column.table.c.name
        rows = (
            await session.execute(
                sa.select(id_column, name_column).where(where).order_by(name_column)
            )
        ).all()
        found.append((kind, [(row[0], row[1]) for row in rows]))
    names = [f"{kind} {user!r}" for kind, rows in found for _, user in rows]
    if not names:
        return
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    raise ZerocopyError(
        code,
        f"{what} {name!r} is used by {shown}; delete those or move them to another {what} first",
        details={f"{kind}_ids": [uid for uid, _ in rows] for kind, rows in found},
    )
