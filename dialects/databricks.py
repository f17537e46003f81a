"""Databricks SQL warehouses through ``databricks-sql-connector`` (Thrift TCLIService over HTTPS).

Settings: ``server_hostname`` and ``http_path`` (from the warehouse's *Connection details*),
optional ``connection_uri`` (a full ``http(s)://host:port/path`` that replaces both; plain
``http`` is accepted on loopback only, for the local test peer). Secret: ``access_token`` (a
personal access token or a service principal's token). Scope: ``catalog.schema`` (Unity
Catalog) or just ``schema`` (the session's default catalog, e.g. ``hive_metastore``).

Every operation opens its own session (the connector keeps every cursor of a connection until
it closes, and a session per operation makes cancel and clean-up simple). The CTAS carries a
``COMMENT`` naming the run; the deadline is enforced by the warehouse (``STATEMENT_TIMEOUT``,
whole seconds) and by the base watchdog. The CTAS runs asynchronously: the cursor is recorded
in the handle before it is submitted, so :meth:`_cancel` can ``cursor.cancel()`` from another
thread (CancelOperation) at any point. Ids stream back with ``fetchmany_arrow`` in bounded
batches; the catalog comes from the driver's ``tables()``/``columns()`` (GetTables/GetColumns),
which work on Unity Catalog and the legacy Hive metastore alike and carry the comments.

Classic and pro SQL warehouses take minutes to wake: they answer HTTP 503
``TEMPORARILY_UNAVAILABLE`` (429 when overloaded) meanwhile. The driver is told to make one
attempt per call (``_enable_v3_retries=False``, one attempt) so that this adapter sees the
status, logs "warehouse starting", adds a warning to the connection test and retries with
backoff until the deadline, instead of the driver sleeping up to 15 minutes on its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlparse

import pyarrow as pa
from databricks import sql as dbsql
from databricks.sql.backend.types import CommandState
from sqlglot import exp

from dialects.base import BaseAdapter, ErrorRule
from dialects.protocol import (
    ColumnInfo,
    ConnectionConfig,
    QueryHandle,
    QueryTag,
    TableInfo,
    TestResult,
    Watermark,
)
from zerocopy import errors
from zerocopy.errors import ZerocopyError

log = logging.getLogger(__name__)


class _DropLegacyRetryNotice(logging.Filter):
    """The driver warns on every connect that its one-attempt retry mode is deprecated.

    This adapter chose that mode on purpose (see the module docstring), so the notice would
    only be a WARNING line per operation in the operator's logs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Legacy retry behavior is enabled")


logging.getLogger("databricks.sql.backend.thrift_backend").addFilter(_DropLegacyRetryNotice())

T = TypeVar("T")

TRANSIENT_HTTP = frozenset({429, 503})
"""HTTP statuses of a warehouse that is starting or overloaded: retried until the deadline."""

_PRIVILEGE = re.compile(
    r"does not have (?P<priv>[A-Z][A-Z ]*?) (?:privilege )?on (?P<kind>Catalog|Schema|Table|View) "
    r"'?`?(?P<name>[^'`\s]+)",
    re.IGNORECASE,
)


@dataclass(slots=True)
class _Running:
    """What :meth:`DatabricksAdapter._cancel` needs, recorded before anything is submitted."""

    cursor: Any = None
    cancelled: threading.Event = field(default_factory=threading.Event)


class DatabricksAdapter(BaseAdapter):
    """A Databricks SQL warehouse (classic, pro or serverless)."""

    KIND = "databricks"
    ID_ORDER = "{col}"  # STRING's default collation UTF8_BINARY is byte order
    SQLGLOT_DIALECT = "databricks"
    SUPPORTS_SERVER_TIMEOUT = True
    SUPPORTS_SERVER_CANCEL = True
    REQUIRED_SETTINGS = frozenset({"server_hostname", "http_path"})
    SECRET_FIELDS = frozenset({"access_token"})

    STARTUP_BACKOFF_S: ClassVar[tuple[float, ...]] = (1.0, 2.0, 4.0, 8.0, 15.0)
    """Waits between attempts while the warehouse starts (the last one repeats)."""

    POLL_MAX_S: ClassVar[float] = 1.0
    """Longest pause between two GetOperationStatus polls of a running statement."""

    SOCKET_TIMEOUT_S: ClassVar[float] = 120.0
    """Per HTTP request; our watchdog abandons a hung request earlier when the deadline hits."""

    ERROR_RULES: ClassVar[tuple[ErrorRule, ...]] = (
        (
            r"Invalid access token|UNAUTHENTICATED|Unauthorized|Received 40[13]",
            errors.AUTH_FAILED,
            "Databricks rejected the access token; create a new personal access token (or "
            "service principal token) and update the credential: {msg}",
        ),
        (
            r"QUERY_EXECUTION_TIMEOUT_EXCEEDED|STATEMENT_TIMEOUT",
            errors.TIMED_OUT,
            "the warehouse stopped the statement at the source's max runtime "
            "(STATEMENT_TIMEOUT); simplify the query or raise the max runtime: {msg}",
        ),
        (
            r"SCHEMA_NOT_FOUND|NO_SUCH_CATALOG_EXCEPTION|CATALOG_NOT_FOUND|"
            r"(?:Catalog|Database|Schema) '[^']*' (?:was )?not found",
            errors.SCOPE_NOT_FOUND,
            "the source's catalog or schema does not exist or is not visible to this token; "
            "check the scope: {msg}",
        ),
        (
            r"Max retries exceeded|Failed to establish a new connection|Connection refused|"
            r"Name or service not known|nodename nor servname|No route to host",
            errors.UNREACHABLE,
            "cannot reach the Databricks workspace; check server_hostname and http_path and "
            "that the network allows HTTPS to it: {msg}",
        ),
    )

    def __init__(self, config: ConnectionConfig) -> None:
        super().__init__(config)
        self._warnings: list[str] = []

    # ------------------------------------------------------------------ credentials
    @classmethod
    def check_credential(cls, settings: dict[str, Any], secrets: dict[str, str]) -> None:
        """Also require the token and accept plain ``http`` only on loopback (the test peer)."""
        super().check_credential(settings, secrets)
        if not secrets.get("access_token"):
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                "databricks credential needs secret 'access_token' (a personal access token "
                "or a service principal's token)",
                details={"field": "access_token"},
            )
        uri = settings.get("connection_uri")
        if uri:
            _check_connection_uri(str(uri))

    def connect_kwargs(self, statement_timeout_s: float) -> dict[str, Any]:
        """Keyword arguments for ``databricks.sql.connect`` (secrets included: never log them)."""
        settings = self.config.settings
        kwargs: dict[str, Any] = {
            "server_hostname": settings["server_hostname"],
            "http_path": settings["http_path"],
            "access_token": self.config.secrets.get("access_token", ""),
            "session_configuration": {
                "STATEMENT_TIMEOUT": str(_whole_seconds(statement_timeout_s))
            },
            "user_agent_entry": "zerocopy",
            # No driver telemetry to the workspace, and one attempt per call: this adapter
            # owns the retry policy (a starting warehouse is reported, then waited for).
            "enable_telemetry": False,
            "_enable_v3_retries": False,
            "_retry_stop_after_attempts_count": 1,
            "_socket_timeout": self.SOCKET_TIMEOUT_S,
        }
        uri = settings.get("connection_uri")
        if uri:
            kwargs["_connection_uri"] = _check_connection_uri(str(uri))
        return kwargs

    # ------------------------------------------------------------------ SQL rendering
    def ctas_sql(self, table: str, select_sql: str, tag: QueryTag) -> str:
        """``CREATE TABLE … COMMENT 'zerocopy:refresh run=…' AS <select>``: the run is visible."""
        comment = exp.Literal.string(tag.as_text()).sql(dialect=self.SQLGLOT_DIALECT)
        return f"CREATE TABLE {self.quote_table(table)} COMMENT {comment} AS {select_sql}"

    def _ident(self, name: str) -> str:
        return exp.to_identifier(name, quoted=True).sql(dialect=self.SQLGLOT_DIALECT)

    # ------------------------------------------------------------------ sessions
    def _retry(self, fn: Callable[[], T], deadline: float, running: _Running, what: str) -> T:
        """Call ``fn``; while the warehouse answers HTTP 429/503 (starting, busy) back off and
        call again until ``deadline`` (monotonic). Only for idempotent calls and submissions the
        warehouse refused (a 503 from the gateway means the statement was not accepted)."""
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                status = _http_status(exc)
                if status not in TRANSIENT_HTTP:
                    raise
                wait = self.STARTUP_BACKOFF_S[min(attempt, len(self.STARTUP_BACKOFF_S) - 1)]
                if time.monotonic() + wait >= deadline:
                    raise ZerocopyError(
                        errors.TIMED_OUT,
                        f"the Databricks SQL warehouse was still starting or busy (HTTP {status}) "
                        "when the deadline came; start it in the Databricks console or raise the "
                        "source's max runtime, then retry",
                        details={"warehouse": self.KIND, "http_status": status, "during": what},
                    ) from exc
                if attempt == 0:
                    note = (
                        f"warehouse starting: the Databricks SQL warehouse answered HTTP {status} "
                        f"to {what} ({_short(exc)}); waiting for it within the deadline"
                    )
                    log.warning(note)
                    self._warnings.append(note)
                attempt += 1
                if running.cancelled.wait(wait):
                    raise ZerocopyError(
                        errors.CANCELLED, "cancelled while waiting for the warehouse"
                    ) from exc

    @contextlib.contextmanager
    def _session(
        self, deadline: float, running: _Running | None = None, statement_timeout_s: float = 0
    ) -> Iterator[Any]:
        """A connection, waiting for a starting warehouse until ``deadline`` (monotonic)."""
        kwargs = self.connect_kwargs(statement_timeout_s or self.config.max_runtime_s)
        conn = self._retry(
            lambda: dbsql.connect(**kwargs), deadline, running or _Running(), "OpenSession"
        )
        try:
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def _deadline(self) -> float:
        return time.monotonic() + self.config.max_runtime_s

    def _catalog(self, conn: Any, deadline: float) -> str:
        """The scope's catalog, else the session's default one (e.g. ``hive_metastore``)."""
        if self.config.scope.database:
            return self.config.scope.database

        def current() -> Any:
            with conn.cursor() as cur:
                return cur.execute("SELECT current_catalog()").fetchone()

        return str(self._retry(current, deadline, _Running(), "SELECT current_catalog()")[0])

    def _metadata(self, conn: Any, call: str, deadline: float, catalog: str) -> list[Any]:
        """GetSchemas/GetTables/GetColumns for the scope's schema, exact name matches only."""
        schema = self.config.scope.schema

        def fetch() -> list[Any]:
            with conn.cursor() as cur:
                rows: list[Any] = getattr(cur, call)(
                    catalog_name=catalog, schema_name=schema
                ).fetchall()
                return rows

        # Metadata names are LIKE patterns (``_`` matches anything): compare exactly.
        return [
            r for r in self._retry(fetch, deadline, _Running(), call) if schema == r.TABLE_SCHEM
        ]

    # ------------------------------------------------------------------ public overrides
    async def test(self) -> TestResult:
        """List the scope's tables; a starting warehouse adds a warning instead of failing."""
        started = time.perf_counter()
        self._warnings = []
        tables = await self.list_tables()
        return TestResult(
            tables=tables,
            elapsed_s=time.perf_counter() - started,
            server_version=None,
            warnings=list(self._warnings),
        )

    # ------------------------------------------------------------------ blocking hooks
    def _list_tables(self) -> list[TableInfo]:
        schema = self.config.scope.schema
        deadline = self._deadline()
        with self._session(deadline) as conn:
            catalog = self._catalog(conn, deadline)
            if not self._metadata(conn, "schemas", deadline, catalog):
                raise ZerocopyError(
                    errors.SCOPE_NOT_FOUND,
                    f"schema {catalog}.{schema} does not exist or this token cannot see it; "
                    f"check the scope, and GRANT USE CATALOG ON CATALOG {catalog} and "
                    f"USE SCHEMA ON SCHEMA {catalog}.{schema} to the token's principal",
                    details={"warehouse": self.KIND, "scope": f"{catalog}.{schema}"},
                )
            tables = self._metadata(conn, "tables", deadline, catalog)
            columns = self._metadata(conn, "columns", deadline, catalog)
        by_table: dict[str, list[Any]] = {}
        for col in columns:
            by_table.setdefault(col.TABLE_NAME, []).append(col)
        out = []
        for row in tables:
            cols = sorted(by_table.get(row.TABLE_NAME, []), key=lambda c: c.ORDINAL_POSITION)
            out.append(
                TableInfo(
                    name=row.TABLE_NAME,
                    kind="view" if "VIEW" in str(row.TABLE_TYPE).upper() else "table",
                    description=row.REMARKS or None,
                    schema=schema,
                    columns=tuple(
                        ColumnInfo(
                            name=c.COLUMN_NAME,
                            data_type=str(c.TYPE_NAME),
                            description=c.REMARKS or None,
                            nullable=c.NULLABLE != 0,
                        )
                        for c in cols
                    ),
                )
            )
        return out

    def _execute_ctas(
        self, sql: str, handle: QueryHandle, timeout_s: float, tag: QueryTag
    ) -> int | None:
        running = _Running()
        handle.native = running  # two-phase cancel: recorded before anything is submitted
        deadline = time.monotonic() + timeout_s
        with self._session(deadline, running, statement_timeout_s=timeout_s) as conn:
            cur = conn.cursor()
            try:
                # The warehouse's own deadline, in whole seconds (our watchdog is finer).
                limit = f"SET STATEMENT_TIMEOUT = {_whole_seconds(timeout_s)}"
                self._retry(lambda: cur.execute(limit), deadline, running, "SET STATEMENT_TIMEOUT")
                running.cursor = cur
                if running.cancelled.is_set():
                    raise ZerocopyError(errors.CANCELLED, "cancelled before it was submitted")
                self._retry(lambda: cur.execute_async(sql), deadline, running, "ExecuteStatement")
                handle.query_id = cur.query_id
                if running.cancelled.is_set():  # a cancel that raced the submission
                    cur.cancel()
                log.info("databricks statement %s submitted for %s", cur.query_id, tag.as_text())
                self._wait(cur, running, handle, deadline)
                self._retry(cur.get_async_execution_result, deadline, running, "FetchResults")
                return _inserted_rows(cur.fetchone())
            finally:
                with contextlib.suppress(Exception):
                    cur.close()

    def _wait(self, cur: Any, running: _Running, handle: QueryHandle, deadline: float) -> None:
        """Poll the statement; a ServerOperationError (failure, timeout) propagates."""
        pause = 0.05
        while True:
            state = self._retry(cur.get_query_state, deadline, running, "GetOperationStatus")
            if state == CommandState.SUCCEEDED:
                return
            if state == CommandState.CANCELLED:
                raise ZerocopyError(
                    errors.CANCELLED,
                    "the statement was cancelled in the warehouse",
                    details={"warehouse": self.KIND, "query_id": handle.query_id},
                )
            if state not in (CommandState.PENDING, CommandState.RUNNING):
                raise ZerocopyError(
                    errors.WAREHOUSE_ERROR,
                    f"databricks said: the statement ended {state.name}",
                    details={"warehouse": self.KIND, "query_id": handle.query_id},
                )
            if running.cancelled.is_set():
                time.sleep(0.05)  # the cancel is in flight: confirm it promptly
            else:
                running.cancelled.wait(pause)
                pause = min(pause * 1.5, self.POLL_MAX_S)

    def _cancel(self, handle: QueryHandle) -> None:
        running = handle.native
        if not isinstance(running, _Running):
            return
        running.cancelled.set()
        cur = running.cursor
        if cur is None or cur.active_command_id is None:
            return  # not submitted yet: the statement's thread sees the flag and cancels
        # CancelOperation (thread-safe by the driver's request lock); a warehouse answering
        # 429/503 gets a few more tries within the base's cancel grace.
        until = time.monotonic() + self.CANCEL_GRACE_S
        while True:
            try:
                cur.cancel()
                return
            except Exception as exc:
                if _http_status(exc) not in TRANSIENT_HTTP or time.monotonic() > until:
                    raise
                time.sleep(0.2)

    def _read_column(
        self, table: str, column: str, batch_rows: int, ordered: bool = False
    ) -> Iterator[pa.Array]:
        col = self._ident(column)
        sql = f"SELECT {col} FROM {self.quote_table(table)}{self.id_order_by(col, ordered)}"
        for batch in self._stream(sql, batch_rows):
            yield batch.column(0)

    def _read_incremental(
        self, table: str, watermark: Watermark, batch_rows: int, columns: list[str] | None
    ) -> Iterator[pa.RecordBatch]:
        select = ", ".join(self._ident(c) for c in columns) if columns else "*"
        col = self._ident(watermark.column)
        sql = f"SELECT {select} FROM {self.quote_table(table)}"
        if watermark.nulls_only:
            sql += f" WHERE {col} IS NULL"
        elif watermark.value is not None:
            # Inclusive: rows tied with the last delivered value come back; the caller
            # drops the ones it has already delivered (see DESIGN.md, sync).
            sql += f" WHERE {col} >= {_timestamp_literal(watermark.value)}"
        sql += f" ORDER BY {col}"
        yield from self._stream(sql, batch_rows)

    def _stream(self, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Run ``sql`` and yield record batches of at most ``batch_rows`` rows."""
        # arraysize caps the rows per FetchResults, so memory stays bounded.
        deadline = self._deadline()
        with self._session(deadline) as conn, conn.cursor(arraysize=batch_rows) as cur:
            self._retry(lambda: cur.execute(sql), deadline, _Running(), "ExecuteStatement")
            while True:
                chunk = cur.fetchmany_arrow(batch_rows)
                if chunk.num_rows == 0:
                    return
                yield from (b for b in chunk.to_batches(max_chunksize=batch_rows) if b.num_rows)

    def _drop_table(self, table: str) -> None:
        deadline = self._deadline()
        with self._session(deadline) as conn, conn.cursor() as cur:
            drop = self.drop_sql(table)  # IF EXISTS: safe to repeat
            self._retry(lambda: cur.execute(drop), deadline, _Running(), "DROP TABLE")

    def _list_temp_tables(self, prefix: str) -> list[str]:
        deadline = self._deadline()
        with self._session(deadline) as conn:
            rows = self._metadata(conn, "tables", deadline, self._catalog(conn, deadline))
        return [r.TABLE_NAME for r in rows if r.TABLE_NAME.lower().startswith(prefix)]

    # ------------------------------------------------------------------ errors
    def map_error(self, exc: BaseException, handle: QueryHandle | None = None) -> ZerocopyError:
        """HTTP status first (401/403 token, 429/503 starting), then privileges, then rules."""
        if isinstance(exc, ZerocopyError):
            return exc
        msg = str(exc).strip() or type(exc).__name__
        details: dict[str, Any] = {"warehouse": self.KIND}
        if handle is not None and handle.query_id:
            details["query_id"] = handle.query_id
        status = _http_status(exc)
        if status in (401, 403):
            return ZerocopyError(
                errors.AUTH_FAILED,
                f"Databricks rejected the access token (HTTP {status}); create a new personal "
                "access token (or service principal token) and update the credential",
                details={**details, "http_status": status},
            )
        if status in TRANSIENT_HTTP:
            return ZerocopyError(
                errors.WAREHOUSE_BUSY,
                f"the Databricks SQL warehouse is starting or overloaded (HTTP {status}); "
                f"retry in a few minutes: {msg}",
                details={**details, "http_status": status},
            )
        if m := _PRIVILEGE.search(msg):
            priv, kind, name = m["priv"].upper(), m["kind"].upper(), m["name"]
            return ZerocopyError(
                errors.PERMISSION_DENIED,
                f"the token's principal lacks {priv} on {kind.lower()} {name}; run "
                f"GRANT {priv} ON {kind} {name} TO `<principal>` (as the owner or an admin), "
                f"then retry. Databricks said: {msg}",
                details={**details, "missing_privilege": priv, "on": f"{kind} {name}"},
            )
        if re.search(r"INSUFFICIENT_PERMISSIONS|PERMISSION_DENIED", msg):
            return ZerocopyError(
                errors.PERMISSION_DENIED,
                f"the token's principal lacks a privilege: {msg}",
                details=details,
            )
        return super().map_error(exc, handle)


def _whole_seconds(seconds: float) -> int:
    """STATEMENT_TIMEOUT takes whole seconds; 0 would mean "no timeout", so at least 1."""
    return max(1, math.ceil(seconds))


def _http_status(exc: BaseException) -> int | None:
    context = getattr(exc, "context", None)
    if isinstance(context, dict):
        code = context.get("http-code")
        if isinstance(code, int):
            return code
    return None


def _short(exc: BaseException) -> str:
    context = getattr(exc, "context", None)
    if isinstance(context, dict) and context.get("error-message"):
        return str(context["error-message"])
    return str(exc)[:200]


def _inserted_rows(row: Any) -> int | None:
    if row is None:
        return None
    for name in ("num_inserted_rows", "num_affected_rows"):
        value = getattr(row, name, None)
        if isinstance(value, int):
            return value
    return None


def _timestamp_literal(value: Any) -> str:
    """A Databricks ``TIMESTAMP '…'`` literal (UTC for aware values)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    return exp.Literal.string(str(value)).sql(dialect="databricks")


def _check_connection_uri(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ZerocopyError(
            errors.INVALID_CREDENTIAL,
            f"connection_uri must be an http(s) URL with a host, got {uri!r}",
            details={"field": "connection_uri"},
        )
    if parsed.scheme == "http":
        host = parsed.hostname
        loopback = host == "localhost"
        with contextlib.suppress(ValueError):
            loopback = loopback or ipaddress.ip_address(host).is_loopback
        if not loopback:
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                "connection_uri may use plain http only on loopback (the local test peer); "
                "use https for a workspace",
                details={"field": "connection_uri"},
            )
    return uri
