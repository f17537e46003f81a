"""Sources: a credential plus a scope, tested before use; the test stores the catalog."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from dialects.protocol import Scope, TableInfo
from zerocopy import errors
from zerocopy.credential_kinds import is_warehouse, kind_class
from zerocopy.errors import ZerocopyError
from zerocopy.services._common import (
    check_name,
    ensure_unique_name,
    get_scoped,
    list_scoped,
    refuse_if_used,
)
from zerocopy.state.models import CatalogTable, Credential, Segment, Source, SourceStatus

if TYPE_CHECKING:
    from zerocopy.services.context import Runtime

MIN_RUNTIME_MINUTES = 1
MAX_RUNTIME_MINUTES = 60


@dataclass(frozen=True, slots=True)
class TestOutcome:
    """A successful connection test."""

    source: Source
    tables: list[CatalogTable]
    elapsed_s: float
    server_version: str | None


def _check_scope(scope: str) -> str:
    if len(scope) > 500 or not scope.isprintable():
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            "scope must be 'schema' or 'database.schema' of at most 500 printable characters "
            "(no control characters such as NUL)",
            details={"field": "scope", "reason": "invalid_value"},
        )
    try:
        return str(Scope.parse(scope))
    except ValueError as exc:
        raise ZerocopyError(
            errors.VALIDATION_ERROR, str(exc), details={"field": "scope", "reason": "invalid_value"}
        ) from None


def _check_scope_fits(scope: str, cred: Credential) -> None:
    """The scope's shape for the credential's warehouse, checked when it is set instead of at
    the first connection test: Snowflake needs a database (``DB.SCHEMA``, unless the
    credential names one); PostgreSQL and Redshift connect to one database, so a
    ``database.schema`` scope must name that one."""
    parsed = Scope.parse(scope)
    settings = cred.settings or {}
    if cred.kind == "snowflake" and not parsed.database and not settings.get("database"):
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"a snowflake scope is 'database.schema', got {scope!r}: name the database "
            f"(e.g. 'ANALYTICS.{parsed.schema}') or set it in the credential's settings",
            details={"field": "scope", "reason": "invalid_value", "kind": cred.kind},
        )
    connected = settings.get("database")
    if (
        cred.kind in ("postgres", "redshift")
        and parsed.database
        and connected
        and parsed.database != str(connected)
    ):
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"scope {scope!r} names database {parsed.database!r} but credential "
            f"{cred.name!r} connects to {connected!r}: use scope {parsed.schema!r} or "
            f"'{connected}.{parsed.schema}'",
            details={"field": "scope", "reason": "invalid_value", "kind": cred.kind},
        )


def _check_runtime(minutes: int) -> int:
    if (
        isinstance(minutes, bool)
        or not isinstance(minutes, int)
        or not MIN_RUNTIME_MINUTES <= minutes <= MAX_RUNTIME_MINUTES
    ):
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"max_runtime_minutes must be a whole number from {MIN_RUNTIME_MINUTES} "
            f"to {MAX_RUNTIME_MINUTES}, got {minutes!r}",
            details={"field": "max_runtime_minutes"},
        )
    return minutes * 60


def _require_warehouse(cred: Credential) -> None:
    """A source reads a warehouse: an object-storage credential is for file syncs."""
    if not is_warehouse(cred.kind):
        used_by = getattr(kind_class(cred.kind), "USED_BY", "") or "other features"
        raise ZerocopyError(
            errors.CREDENTIAL_KIND_MISMATCH,
            f"credential {cred.name!r} is {cred.kind}, not a warehouse; a source needs a "
            f"warehouse credential ({cred.kind} credentials are for {used_by})",
            details={"field": "credential_id", "kind": cred.kind},
        )


async def create_source(
    session: AsyncSession,
    workspace_id: str,
    *,
    name: str,
    credential_id: str,
    scope: str,
    max_runtime_minutes: int = 10,
) -> Source:
    """A new source in ``draft``: it becomes ``active`` after a successful test."""
    name = check_name(name, "source")
    cred = await get_scoped(session, Credential, workspace_id, credential_id, field="credential_id")
    _require_warehouse(cred)
    scope = _check_scope(scope)
    _check_scope_fits(scope, cred)
    source = Source(
        workspace_id=workspace_id,
        credential_id=cred.id,
        name=name,
        kind=cred.kind,
        scope=scope,
        max_runtime_s=_check_runtime(max_runtime_minutes),
        status=SourceStatus.DRAFT,
    )
    await ensure_unique_name(session, Source, workspace_id, name)
    session.add(source)
    await session.commit()
    return source


async def list_sources(session: AsyncSession, workspace_id: str) -> list[Source]:
    return await list_scoped(session, Source, workspace_id, Source.created_at)


async def get_source(session: AsyncSession, workspace_id: str, source_id: str) -> Source:
    return await get_scoped(session, Source, workspace_id, source_id)


async def update_source(
    session: AsyncSession,
    workspace_id: str,
    source_id: str,
    *,
    name: str | None = None,
    credential_id: str | None = None,
    scope: str | None = None,
    max_runtime_minutes: int | None = None,
) -> Source:
    """Change a source; a new credential or scope puts it back to ``draft`` until tested."""
    source = await get_scoped(session, Source, workspace_id, source_id)
    if name is not None:
        name = check_name(name, "source")
        await ensure_unique_name(session, Source, workspace_id, name, exclude_id=source.id)
        source.name = name
    if max_runtime_minutes is not None:
        source.max_runtime_s = _check_runtime(max_runtime_minutes)
    new_scope = _check_scope(scope) if scope is not None else source.scope
    cred_changed = credential_id is not None and credential_id != source.credential_id
    if cred_changed or new_scope != source.scope:
        cred = await get_scoped(
            session,
            Credential,
            workspace_id,
            credential_id if credential_id is not None else source.credential_id,
            field="credential_id",
        )
        if cred.kind != source.kind:
            raise ZerocopyError(
                errors.CREDENTIAL_KIND_MISMATCH,
                f"source {source.name!r} reads a {source.kind} warehouse; "
                f"credential {cred.name!r} is for {cred.kind}",
                details={"field": "credential_id", "kind": cred.kind},
            )
        _check_scope_fits(new_scope, cred)
        # A new credential or scope has not been tested: back to draft.
        source.credential_id = cred.id
        source.scope = new_scope
        source.status = SourceStatus.DRAFT
    await session.commit()
    return source


async def delete_source(session: AsyncSession, workspace_id: str, source_id: str) -> None:
    """Delete a source and its catalog; ``source_in_use`` while segments or syncs use it."""
    from zerocopy.state.sync_models import Sync  # syncs read a source table directly

    source = await get_scoped(session, Source, workspace_id, source_id)
    await refuse_if_used(
        session,
        errors.SOURCE_IN_USE,
        "source",
        source.name,
        [
            ("segment", Segment.id, Segment.source_id == source.id),
            ("sync", Sync.id, Sync.source_id == source.id),
        ],
    )
    await session.execute(sa.delete(CatalogTable).where(CatalogTable.source_id == source.id))
    await session.delete(source)
    await session.commit()


async def replace_catalog(
    session: AsyncSession, source: Source, tables: list[TableInfo], now: datetime | None = None
) -> list[CatalogTable]:
    """Replace the source's stored catalog with the tables its adapter listed (not committed:
    the caller's transaction decides); returns the new rows."""
    now = now or datetime.now(UTC)
    default_schema = Scope.parse(source.scope).schema
    await session.execute(sa.delete(CatalogTable).where(CatalogTable.source_id == source.id))
    rows = [
        CatalogTable(
            source_id=source.id,
            schema=t.schema or default_schema,
            name=t.name,
            kind=t.kind,
            description=t.description,
            columns=[
                {
                    "name": c.name,
                    "data_type": c.data_type,
                    "description": c.description,
                    "nullable": c.nullable,
                }
                for c in t.columns
            ],
            fetched_at=now,
        )
        for t in tables
    ]
    session.add_all(rows)
    return rows


async def test_source(
    session: AsyncSession, runtime: Runtime, workspace_id: str, source_id: str
) -> TestOutcome:
    """Connect and list the visible tables; store them; ``active`` on success.

    A failed test sets the source to ``error``, stores the code and message, and raises them.
    """
    source = await get_scoped(session, Source, workspace_id, source_id)
    cred = await get_scoped(session, Credential, workspace_id, source.credential_id)
    now = datetime.now(UTC)
    try:
        with anyio.fail_after(source.max_runtime_s):
            async with runtime.adapter_for(source, cred) as adapter:
                result = await adapter.test()
    except (ZerocopyError, TimeoutError) as exc:
        err = (
            exc
            if isinstance(exc, ZerocopyError)
            else ZerocopyError(
                errors.TIMED_OUT,
                f"the connection test ran past the source's max runtime "
                f"({source.max_runtime_s // 60} min)",
            )
        )
        source.status = SourceStatus.ERROR
        source.last_test_at = now
        source.last_test_error = {
            "code": err.code,
            "message": err.message,
            "details": err.details,
        }
        await session.commit()
        raise ZerocopyError(
            err.code,
            err.message,
            details={**err.details, "source_id": source.id, "status": SourceStatus.ERROR},
        ) from exc
    rows = await replace_catalog(session, source, result.tables, now)
    source.status = SourceStatus.ACTIVE
    source.last_test_at = now
    source.last_test_error = None
    await session.commit()
    runtime.forget_catalog(source.id)
    rows.sort(key=lambda r: (r.schema, r.name))
    return TestOutcome(
        source=source,
        tables=rows,
        elapsed_s=result.elapsed_s,
        server_version=result.server_version,
    )
