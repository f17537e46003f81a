"""Shared machinery of every adapter: thread offload, deadline watchdog, two-phase cancel,
driver-error mapping and SQL rendering.

A concrete adapter sets its flags and implements the blocking ``_*`` hooks; the public async
methods here are the same for every warehouse, so the engine never branches on ``KIND``.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, ClassVar, TypeVar

import anyio
import anyio.to_thread
import pyarrow as pa
import sqlglot
from sqlglot import exp

from dialects.keys import GeneratedKeySpec
from dialects.protocol import (
    ConnectionConfig,
    MaterializeResult,
    QueryHandle,
    QueryTag,
    TableInfo,
    TestResult,
    Watermark,
)
from zerocopy import errors
from zerocopy.errors import ZerocopyError

T = TypeVar("T")

TEMP_TABLE_PREFIX = "zc_tmp_"
"""Every table zerocopy creates in a warehouse starts with this, then the run id (janitor key)."""


def temp_table_name(run_id: str) -> str:
    """``zc_tmp_<run id without dashes>``: recognisable, unique per run, valid everywhere."""
    return TEMP_TABLE_PREFIX + re.sub(r"[^0-9a-zA-Z]", "", run_id).lower()


ErrorRule = tuple[str, str, str]
"""(regex on the driver message, error code, message template; ``{msg}`` is the driver's)."""


def _published(handle: QueryHandle) -> bool:
    """Whether the statement's thread has recorded anything a cancel can use."""
    return handle.native is not None or handle.query_id is not None or handle.session_id is not None


class BaseAdapter:
    """Base class of every adapter. Subclasses override flags and the blocking hooks."""

    KIND: ClassVar[str] = "base"
    SQLGLOT_DIALECT: ClassVar[str] = ""

    SUPPORTS_SERVER_TIMEOUT: ClassVar[bool] = False
    """The warehouse enforces the deadline itself (statement timeout); our watchdog stays too."""

    SUPPORTS_SERVER_CANCEL: ClassVar[bool] = True
    """:meth:`cancel` stops the statement in the warehouse, not just our wait for it."""

    MAX_CONCURRENT_QUERIES: ClassVar[int | None] = None
    """Hard limit the warehouse itself imposes per source (``None``: only the engine's limit)."""

    SINGLE_WRITER_PROCESS: ClassVar[bool] = False
    """Only one OS process may write to this warehouse at a time (a DuckDB file)."""

    REUSABLE: ClassVar[bool] = False
    """One instance may serve many runs, also at once, and be kept open between them
    (:class:`zerocopy.connections.AdapterCache`): every statement borrows a session of its
    own from the instance's pool, so two concurrent queries never share a session."""

    DROP_TIMEOUT_S: ClassVar[float] = 60.0
    """How long :meth:`drop_table` waits for a warehouse before giving up (``unreachable``)."""

    CANCEL_GRACE_S: ClassVar[float] = 2.0
    """How long to wait for a cancelled statement's thread to come back before abandoning it."""

    ERROR_RULES: ClassVar[tuple[ErrorRule, ...]] = ()
    """Driver message patterns → stable codes, checked in order by :meth:`map_error`."""

    SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset()
    """Credential fields that are secrets: stored encrypted, write-only, redacted in logs."""

    REQUIRED_SETTINGS: ClassVar[frozenset[str]] = frozenset()
    """Non-secret credential settings that must be present."""

    SECRET_EXPIRES: ClassVar[bool] = False
    """The warehouse's secret always expires (the credential records the date to warn before)."""

    ID_ORDER: ClassVar[str | None] = None
    """``ORDER BY`` expression that returns the ids in byte-wise (UTF-8 binary) order, ``{col}``
    standing for the quoted id column, or ``None`` when the adapter cannot promise an order.
    ``read_column(..., ordered=True)`` uses it; the refresh engine verifies the order while it
    streams and falls back to sorting in memory when the promise does not hold."""

    def id_order_by(self, quoted_column: str, ordered: bool) -> str:
        """`` ORDER BY …`` for :meth:`read_column` (empty when unordered or not promised)."""
        if not ordered or self.ID_ORDER is None:
            return ""
        return " ORDER BY " + self.ID_ORDER.format(col=quoted_column)

    def __init__(self, config: ConnectionConfig) -> None:
        self.config = config

    # ------------------------------------------------------------------ credentials
    @classmethod
    def check_credential(cls, settings: dict[str, Any], secrets: dict[str, str]) -> None:
        """Raise ``invalid_credential`` naming the first missing or unexpected field."""
        for name in sorted(cls.REQUIRED_SETTINGS):
            if settings.get(name) in (None, ""):
                raise ZerocopyError(
                    errors.INVALID_CREDENTIAL,
                    f"{cls.KIND} credential needs setting {name!r}",
                    details={"field": name},
                )
        for name in sorted(cls.SECRET_FIELDS):
            if name in settings:
                raise ZerocopyError(
                    errors.INVALID_CREDENTIAL,
                    f"{name!r} is a secret: send it under 'secrets', not 'settings'",
                    details={"field": name},
                )

    @classmethod
    def generated_key(cls, settings: dict[str, Any]) -> GeneratedKeySpec | None:
        """The key pair zerocopy must generate for a credential with ``settings`` (default none)."""
        return None

    @classmethod
    def login_identity(cls, settings: dict[str, Any]) -> str | None:
        """Key of the warehouse login that at most one workspace may use (default: no rule)."""
        return None

    @classmethod
    def setup_script(
        cls, settings: dict[str, Any], *, public_key: str, database: str, schema: str
    ) -> str | None:
        """SQL an admin runs once so this login can read the scope (``None``: not offered)."""
        return None

    # ------------------------------------------------------------------ SQL rendering
    def quote_table(self, table: str) -> str:
        """Fully qualified, quoted name of ``table`` inside the scope, in this dialect."""
        scope = self.config.scope
        node = exp.table_(
            exp.to_identifier(table, quoted=True),
            db=exp.to_identifier(scope.schema, quoted=True),
            catalog=exp.to_identifier(scope.database, quoted=True) if scope.database else None,
        )
        return node.sql(dialect=self.SQLGLOT_DIALECT)

    def ctas_sql(self, table: str, select_sql: str, tag: QueryTag) -> str:
        """``CREATE TABLE <scope>.<table> AS <select>``; override for TRANSIENT, expiry, comments."""
        return f"CREATE TABLE {self.quote_table(table)} AS {select_sql}"

    def drop_sql(self, table: str) -> str:
        return f"DROP TABLE IF EXISTS {self.quote_table(table)}"

    def render(self, expression: exp.Expression) -> str:
        return expression.sql(dialect=self.SQLGLOT_DIALECT)

    def parse(self, sql: str) -> exp.Expr:
        return sqlglot.parse_one(sql, dialect=self.SQLGLOT_DIALECT)

    # ------------------------------------------------------------------ blocking hooks
    def _list_tables(self) -> list[TableInfo]:
        raise NotImplementedError

    def _server_version(self) -> str | None:
        return None

    def _execute_ctas(
        self, sql: str, handle: QueryHandle, timeout_s: float, tag: QueryTag
    ) -> int | None:
        """Run the CTAS; fill ``handle`` before blocking on the warehouse. Returns rows if known."""
        raise NotImplementedError

    def _cancel(self, handle: QueryHandle) -> None:
        raise NotImplementedError

    def _read_column(
        self, table: str, column: str, batch_rows: int, ordered: bool = False
    ) -> Iterator[pa.Array]:
        raise NotImplementedError

    def _drop_table(self, table: str) -> None:
        raise NotImplementedError

    def _read_incremental(
        self, table: str, watermark: Watermark, batch_rows: int, columns: list[str] | None
    ) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def _list_temp_tables(self, prefix: str) -> list[str]:
        return [t.name for t in self._list_tables() if t.name.lower().startswith(prefix)]

    def _close(self) -> None:
        """Close pooled connections."""

    # ------------------------------------------------------------------ error mapping
    def map_error(self, exc: BaseException, handle: QueryHandle | None = None) -> ZerocopyError:
        """Turn a driver exception into a :class:`ZerocopyError` with a stable code."""
        if isinstance(exc, ZerocopyError):
            return exc
        msg = str(exc).strip() or type(exc).__name__
        details: dict[str, Any] = {"warehouse": self.KIND}
        if handle is not None and handle.query_id:
            details["query_id"] = handle.query_id
        for pattern, code, template in self.ERROR_RULES:
            if re.search(pattern, msg, re.IGNORECASE | re.DOTALL):
                return ZerocopyError(code, template.format(msg=msg), details=details)
        if isinstance(exc, (ConnectionRefusedError, TimeoutError, OSError)) and not isinstance(
            exc, PermissionError
        ):
            return ZerocopyError(
                errors.UNREACHABLE,
                f"cannot reach the {self.KIND} warehouse: {msg}",
                details=details,
            )
        return ZerocopyError(errors.WAREHOUSE_ERROR, f"{self.KIND} said: {msg}", details=details)

    # ------------------------------------------------------------------ offload helpers
    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking driver call in a worker thread, mapping its errors."""
        try:
            return await anyio.to_thread.run_sync(lambda: fn(*args), abandon_on_cancel=True)
        except ZerocopyError:
            raise
        except Exception as exc:
            raise self.map_error(exc) from exc

    async def _iterate(self, make_iter: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
        """Drive a blocking iterator from worker threads, one item per hop."""
        sentinel = object()
        iterator = await self._call(make_iter)

        def step() -> Any:
            return next(iterator, sentinel)

        try:
            while True:
                item = await self._call(step)
                if item is sentinel:
                    return
                yield item
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                # Cancelled mid-batch, the driver may still be inside next() in an abandoned
                # thread: close() then fails ("generator already executing") and must not
                # replace the cancellation; the generator is finalised when that call returns.
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await self._call(close)

    async def _guarded(
        self, fn: Callable[[], T], handle: QueryHandle, deadline: float, what: str
    ) -> T:
        """Run ``fn`` in a thread under ``deadline`` (``anyio.current_time()`` clock).

        On the deadline or on cancellation of the calling task the statement is cancelled
        server-side through ``handle`` and we wait up to :attr:`CANCEL_GRACE_S` for the
        driver to come back, so nothing keeps running (or creates a table) behind our back.
        """
        started, finished = threading.Event(), threading.Event()

        def run() -> T:
            started.set()
            try:
                if handle.stop_requested:
                    # Cancelled (or expired) before this thread got to run: start nothing.
                    raise ZerocopyError(
                        errors.CANCELLED,
                        f"{what} was stopped before it was sent",
                        details={"warehouse": self.KIND},
                    )
                return fn()
            finally:
                finished.set()

        remaining = deadline - anyio.current_time()
        if remaining <= 0:
            raise self._timed_out(what, handle)
        try:
            with anyio.fail_after(remaining) as scope:
                return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
        except TimeoutError as exc:
            if not scope.cancelled_caught:
                # The driver's own TimeoutError (e.g. a socket timeout), not our deadline.
                raise self.map_error(exc, handle) from exc
            await self._stop(handle, started, finished)
            raise self._timed_out(what, handle) from None
        except anyio.get_cancelled_exc_class():
            await self._stop(handle, started, finished)
            raise
        except ZerocopyError:
            raise
        except Exception as exc:
            raise self.map_error(exc, handle) from exc

    def _timed_out(self, what: str, handle: QueryHandle) -> ZerocopyError:
        limit = self.config.max_runtime_s
        return ZerocopyError(
            errors.TIMED_OUT,
            f"{what} ran past the source's max runtime ({limit:g} s) and was stopped; "
            "simplify the query or raise the source's max runtime",
            details={"warehouse": self.KIND, "query_id": handle.query_id, "max_runtime_s": limit},
        )

    async def _stop(
        self, handle: QueryHandle, started: threading.Event, finished: threading.Event
    ) -> None:
        handle.stop_requested = True
        if not started.is_set():
            return  # its thread sees stop_requested first thing and sends nothing
        with anyio.CancelScope(shield=True):
            # Its thread may have started but not yet published what a cancel needs (a
            # thread descheduled under load): then cancel again once it has, while we wait.
            seen = _published(handle)
            # Best effort: the grace wait below still bounds us if the cancel call fails.
            # The cancel itself is bounded too: against a warehouse that stopped answering its
            # second connection would wait for the connect timeout.
            with contextlib.suppress(Exception), anyio.move_on_after(self.CANCEL_GRACE_S):
                await anyio.to_thread.run_sync(self._cancel, handle, abandon_on_cancel=True)
            # The statement's thread sets a threading.Event, which anyio cannot await.
            until = anyio.current_time() + self.CANCEL_GRACE_S
            while not finished.is_set() and anyio.current_time() < until:
                if not seen and _published(handle):
                    seen = True
                    with contextlib.suppress(Exception), anyio.move_on_after(self.CANCEL_GRACE_S):
                        await anyio.to_thread.run_sync(self._cancel, handle, abandon_on_cancel=True)
                await anyio.sleep(0.02)

    # ------------------------------------------------------------------ public protocol
    async def test(self) -> TestResult:
        started = time.perf_counter()
        tables = await self.list_tables()
        version = await self._call(self._server_version)
        return TestResult(
            tables=tables, elapsed_s=time.perf_counter() - started, server_version=version
        )

    async def list_tables(self) -> list[TableInfo]:
        """The scope's tables and views, without zerocopy's own ``zc_tmp_`` result tables
        (in flight or orphaned: they are no table a segment should pick)."""
        tables = await self._call(self._list_tables)
        return [t for t in tables if not t.name.lower().startswith(TEMP_TABLE_PREFIX)]

    async def unreadable_table(self, name: str) -> str | None:
        """The scope's table or view ``name`` when it exists but the credential may not read
        it (:meth:`list_tables` leaves such tables out), else None: tells "permission
        removed" from "table gone" where the warehouse can say (PostgreSQL/Redshift)."""
        return None

    async def materialize(
        self, select_sql: str, table: str, *, deadline: float, tag: QueryTag
    ) -> MaterializeResult:
        handle = QueryHandle(table=table)
        sql = self.ctas_sql(table, select_sql, tag)
        started = time.perf_counter()
        timeout_s = max(0.001, deadline - anyio.current_time())
        rows = await self._guarded(
            lambda: self._execute_ctas(sql, handle, timeout_s, tag),
            handle,
            deadline,
            "the segment query",
        )
        return MaterializeResult(
            table=table,
            elapsed_s=time.perf_counter() - started,
            query_id=handle.query_id,
            rows=rows,
        )

    async def cancel(self, handle: QueryHandle) -> None:
        handle.stop_requested = True
        await self._call(self._cancel, handle)

    async def read_column(
        self, table: str, column: str, *, batch_rows: int = 100_000, ordered: bool = False
    ) -> AsyncIterator[pa.Array]:
        async for batch in self._iterate(
            lambda: self._read_column(table, column, batch_rows, ordered)
        ):
            yield batch

    async def drop_table(self, table: str) -> None:
        """Idempotent; runs to its end even when the caller is cancelled, but not for ever: a
        warehouse that stopped answering fails it after :attr:`DROP_TIMEOUT_S` (the janitor
        drops the orphan later) instead of holding the run that is cleaning up."""
        with anyio.CancelScope(shield=True):
            try:
                with anyio.fail_after(self.DROP_TIMEOUT_S):
                    await self._call(self._drop_table, table)
            except TimeoutError:
                raise ZerocopyError(
                    errors.UNREACHABLE,
                    f"the {self.KIND} warehouse did not answer the drop of {table!r} within "
                    f"{self.DROP_TIMEOUT_S:g} s; zerocopy's janitor drops it once the warehouse "
                    "answers again",
                    details={"warehouse": self.KIND, "table": table},
                ) from None

    async def read_incremental(
        self,
        table: str,
        watermark: Watermark,
        *,
        batch_rows: int = 50_000,
        columns: list[str] | None = None,
    ) -> AsyncIterator[pa.RecordBatch]:
        async for batch in self._iterate(
            lambda: self._read_incremental(table, watermark, batch_rows, columns)
        ):
            yield batch

    async def estimate_bytes(self, select_sql: str) -> int | None:
        """Bytes the query would scan, where the warehouse can say before running it (dry run)."""
        return None

    async def list_temp_tables(self, prefix: str = TEMP_TABLE_PREFIX) -> list[str]:
        return await self._call(self._list_temp_tables, prefix)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._close)

    async def __aenter__(self) -> BaseAdapter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
