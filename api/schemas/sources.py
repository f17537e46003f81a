"""Source and catalog DTOs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from api.schemas.common import ErrorInfo

MaxRuntimeMinutes = Annotated[int, msgspec.Meta(ge=1, le=60)]


class SourceCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new source: a credential plus the scope (``schema`` or ``database.schema``) it reads."""

    name: str
    credential_id: str
    scope: str
    max_runtime_minutes: MaxRuntimeMinutes = 10


class SourceUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Change a source; a new credential or scope puts it back to ``draft`` until tested."""

    name: str | None = None
    credential_id: str | None = None
    scope: str | None = None
    max_runtime_minutes: MaxRuntimeMinutes | None = None


class SourceRead(msgspec.Struct, kw_only=True):
    """A source and the outcome of its last connection test."""

    id: str
    name: str
    kind: str
    credential_id: str
    scope: str
    max_runtime_minutes: int
    status: str
    last_tested_at: datetime | None
    last_error: ErrorInfo | None
    created_at: datetime


class ColumnRead(msgspec.Struct, kw_only=True):
    name: str
    data_type: str
    description: str | None = None
    nullable: bool = True


class TableSummary(msgspec.Struct, kw_only=True):
    """A table or view of the source's catalog, without its columns."""

    name: str
    kind: str
    description: str | None
    column_count: int


class TableRead(msgspec.Struct, kw_only=True):
    """A table or view of the source's catalog with its columns."""

    name: str
    kind: str
    description: str | None
    columns: list[ColumnRead]
    fetched_at: datetime | None


class SourceTestRead(msgspec.Struct, kw_only=True):
    """A successful connection test: the source (now ``active``) and the tables it sees."""

    source: SourceRead
    tables: list[TableSummary]
    elapsed_s: float
    server_version: str | None
