"""The adapter protocol: what the engine may ask of any warehouse.

``dialects/`` knows nothing about segments, syncs or HTTP. It receives SQL that is already
checked and written in the warehouse's dialect, table names, deadlines and tags, and gives
back tables, Arrow batches and :class:`zerocopy.errors.ZerocopyError` with stable codes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import pyarrow as pa

TableKind = Literal["table", "view"]


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a source lives in its warehouse.

    ``database`` is the Snowflake database, BigQuery project, Databricks catalog or the
    Postgres/DuckDB catalog (optional where the connection already fixes it); ``schema`` is
    the schema / dataset. Every table a segment reads must be in this scope and every
    temporary table zerocopy creates goes here.
    """

    schema: str
    database: str | None = None

    @classmethod
    def parse(cls, text: str) -> Scope:
        """``"schema"`` or ``"database.schema"``."""
        parts = [p.strip() for p in text.strip().split(".")]
        if any(not p for p in parts) or not 1 <= len(parts) <= 2:
            raise ValueError(f"scope must be 'schema' or 'database.schema', got {text!r}")
        if len(parts) == 1:
            return cls(schema=parts[0])
        return cls(schema=parts[1], database=parts[0])

    def __str__(self) -> str:
        return f"{self.database}.{self.schema}" if self.database else self.schema


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    name: str
    data_type: str
    description: str | None = None
    nullable: bool = True


@dataclass(frozen=True, slots=True)
class TableInfo:
    name: str
    kind: TableKind
    columns: tuple[ColumnInfo, ...]
    description: str | None = None
    schema: str | None = None


@dataclass(frozen=True, slots=True)
class TestResult:
    """Outcome of a successful connection test (a failed one raises)."""

    tables: list[TableInfo]
    elapsed_s: float
    server_version: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class QueryTag:
    """Who a query is for; adapters put it where the warehouse shows it (query tag, labels, comment)."""

    run_id: str
    purpose: Literal["refresh", "sync", "test", "janitor"] = "refresh"
    segment_id: str | None = None
    sync_id: str | None = None
    workspace_id: str | None = None

    def as_text(self) -> str:
        parts = [f"zerocopy:{self.purpose}", f"run={self.run_id}"]
        if self.segment_id:
            parts.append(f"segment={self.segment_id}")
        if self.sync_id:
            parts.append(f"sync={self.sync_id}")
        if self.workspace_id:
            parts.append(f"workspace={self.workspace_id}")
        return " ".join(parts)


@dataclass(slots=True)
class QueryHandle:
    """A running statement, filled in by the adapter *before* it waits on the warehouse.

    Two-phase cancel (as in Superset's SQL Lab): the adapter records what it needs to stop
    the statement from elsewhere (query id, backend pid, session id, connection object) the
    moment the statement starts; :meth:`Adapter.cancel` later uses only this handle.
    """

    table: str | None = None
    query_id: str | None = None
    session_id: str | None = None
    native: Any = None
    """Driver object needed for cancel (e.g. a DuckDB connection); never serialised."""
    stop_requested: bool = False
    """Set before any cancel is sent: a statement whose thread starts (or publishes
    :attr:`native`) only after the cancel looked is stopped all the same."""


@dataclass(frozen=True, slots=True)
class MaterializeResult:
    table: str
    elapsed_s: float
    query_id: str | None = None
    rows: int | None = None


@dataclass(frozen=True, slots=True)
class Watermark:
    """Incremental cursor: read rows whose ``column`` is at or after ``value`` (inclusive)."""

    value: datetime | None
    column: str = "UPDATED_AT"
    nulls_only: bool = False
    """Read only the rows whose ``column`` is NULL (``value`` ignored): a sync reports them."""


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """Everything an adapter needs to connect: non-secret settings, decrypted secrets, scope."""

    settings: Mapping[str, Any]
    secrets: Mapping[str, str]
    scope: Scope
    max_runtime_s: float = 300.0


@runtime_checkable
class Adapter(Protocol):
    KIND: ClassVar[str]
    SQLGLOT_DIALECT: ClassVar[str]

    config: ConnectionConfig

    async def test(self) -> TestResult: ...

    async def list_tables(self) -> list[TableInfo]: ...

    async def unreadable_table(self, name: str) -> str | None: ...

    async def materialize(
        self, select_sql: str, table: str, *, deadline: float, tag: QueryTag
    ) -> MaterializeResult: ...

    async def cancel(self, handle: QueryHandle) -> None: ...

    def read_column(
        self, table: str, column: str, *, batch_rows: int = 100_000, ordered: bool = False
    ) -> AsyncIterator[pa.Array]:
        """Ids as bounded Arrow batches; ``ordered``: in byte-wise order where ``ID_ORDER`` says
        the adapter can promise it (the caller still verifies)."""
        ...

    async def drop_table(self, table: str) -> None: ...

    def read_incremental(
        self,
        table: str,
        watermark: Watermark,
        *,
        batch_rows: int = 50_000,
        columns: list[str] | None = None,
    ) -> AsyncIterator[pa.RecordBatch]: ...

    async def list_temp_tables(self, prefix: str) -> list[str]: ...

    async def aclose(self) -> None: ...
