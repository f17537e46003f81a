"""The catalog a source's last successful test stored: browse, search, and feed the SQL check."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from dialects.protocol import Scope
from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.services._common import get_scoped, shown_id
from zerocopy.state.models import CatalogTable, Source


async def _tables(session: AsyncSession, source_id: str) -> list[CatalogTable]:
    stmt = (
        sa.select(CatalogTable)
        .where(CatalogTable.source_id == source_id)
        .order_by(CatalogTable.schema, CatalogTable.name)
    )
    return list((await session.scalars(stmt)).all())


def _matches(table: CatalogTable, needle: str) -> bool:
    """Case-insensitive match on table name, description, column names and descriptions."""
    haystack = [table.name, table.description or ""]
    for col in table.columns or []:
        haystack.append(str(col.get("name") or ""))
        haystack.append(str(col.get("description") or ""))
    return any(needle in text.lower() for text in haystack)


async def require_tested_catalog(session: AsyncSession, source: Source) -> None:
    """``source_not_active`` unless the source has a catalog from a successful test of its
    current credential and scope: ``active``, or ``error`` after a failed re-test (the last
    good catalog stays). A ``draft`` (never tested, or credential or scope changed since) or a
    source whose only tests failed has none: an empty list would read as "no tables"."""
    from zerocopy.state.models import SourceStatus

    tested = source.last_test_at is not None and source.status != SourceStatus.DRAFT
    if tested and source.status != SourceStatus.ACTIVE:
        stmt = sa.select(CatalogTable.id).where(CatalogTable.source_id == source.id).limit(1)
        tested = (await session.execute(stmt)).first() is not None
    if not tested:
        raise ZerocopyError(
            errors.SOURCE_NOT_ACTIVE,
            f"source {source.name!r} has no tested catalog yet; test it first "
            f"(POST /v1/sources/{source.id}/test)",
            details={"source_id": source.id, "status": source.status},
        )


async def _catalog_source(session: AsyncSession, workspace_id: str, source_id: str) -> Source:
    source = await get_scoped(session, Source, workspace_id, source_id)
    await require_tested_catalog(session, source)
    return source


async def list_tables(
    session: AsyncSession, workspace_id: str, source_id: str, *, search: str | None = None
) -> list[CatalogTable]:
    """The source's tables and views, filtered by ``search`` when given."""
    source = await _catalog_source(session, workspace_id, source_id)
    tables = await _tables(session, source.id)
    needle = (search or "").strip().lower()
    return [t for t in tables if _matches(t, needle)] if needle else tables


async def get_table(
    session: AsyncSession, workspace_id: str, source_id: str, name: str
) -> CatalogTable:
    """One table by name (case-insensitive; ``schema.table`` also accepted)."""
    source = await _catalog_source(session, workspace_id, source_id)
    wanted = name.lower()
    for table in await _tables(session, source.id):
        if table.name.lower() == wanted or f"{table.schema}.{table.name}".lower() == wanted:
            return table
    raise ZerocopyError(
        errors.NOT_FOUND,
        f"table {shown_id(name)!r} is not in the catalog of source {source.name!r}; "
        "test the source again if it was created since",
        details={"table": shown_id(name), "source_id": source.id},
    )


async def catalog_mapping(session: AsyncSession, source: Source) -> dict[str, Any]:
    """``{schema: {table: {column: type}}}`` of the stored catalog, as the SQL check takes it.

    Tables of the source's own schema are keyed by the full scope (``database.schema`` when
    the scope names a database), so the check can tell them from another database's.
    """
    scope = Scope.parse(source.scope)
    mapping: dict[str, dict[str, dict[str, str]]] = {}
    for table in await _tables(session, source.id):
        columns = {str(c["name"]): str(c.get("data_type") or "") for c in table.columns or []}
        key = str(scope) if table.schema == scope.schema else table.schema
        mapping.setdefault(key, {})[table.name] = columns
    return mapping
