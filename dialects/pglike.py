"""The Postgres-like middle base shared by the PostgreSQL and Redshift adapters.

Everything both warehouses agree on lives here: connection pool and optional SSH tunnel,
catalog from ``information_schema`` + ``pg_description`` (only what the role may SELECT),
``SET statement_timeout`` for the deadline, two-phase cancel (``pg_backend_pid()`` captured
before the CTAS, ``pg_cancel_backend(pid)`` from a second connection), server-side cursors
for reads, and SQLSTATE-first error mapping. A subclass supplies the driver (connect, error
fields, how a server-side cursor is driven) and overrides flags where the warehouses differ.
"""

from __future__ import annotations

import array
import contextlib
import dataclasses
import itertools
import re
import select
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa
from sqlglot import exp

from dialects.base import TEMP_TABLE_PREFIX, BaseAdapter
from dialects.keys import GeneratedKeySpec
from dialects.protocol import (
    ColumnInfo,
    ConnectionConfig,
    QueryHandle,
    QueryTag,
    TableInfo,
    TestResult,
    Watermark,
)
from dialects.tunnel import SSHTunnel, TunnelSettings
from zerocopy import errors
from zerocopy.errors import ZerocopyError

# Arrow type per PostgreSQL type OID (both drivers report OIDs in cursor.description[i][1]).
# Unlisted types are inferred by pyarrow, falling back to their text form.
_ARROW_BY_OID: dict[int, pa.DataType] = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    26: pa.int64(),
    700: pa.float32(),
    701: pa.float64(),
    18: pa.string(),
    19: pa.string(),
    25: pa.string(),
    1042: pa.string(),
    1043: pa.string(),
    114: pa.string(),
    3802: pa.string(),
    2950: pa.string(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}

_CATALOG_TABLES_SQL = """
SELECT t.table_name, t.table_type, obj_description(c.oid, 'pg_class')
FROM information_schema.tables t
JOIN pg_catalog.pg_namespace n ON n.nspname = t.table_schema
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.table_name
WHERE t.table_schema = %s
  AND t.table_type IN ('BASE TABLE', 'VIEW')
  AND has_table_privilege(c.oid, 'SELECT')
ORDER BY t.table_name
"""
"""``has_table_privilege`` takes the table's OID, not its name: a table dropped while the
catalog is read (another run's ``zc_tmp_`` result table) then drops out instead of failing the
listing with "relation … does not exist" (the name is looked up after the scan's snapshot)."""

_UNREADABLE_TABLE_SQL = """
SELECT c.relname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND lower(c.relname) = lower(%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND NOT has_table_privilege(c.oid, 'SELECT')
ORDER BY c.relname
LIMIT 1
"""
"""A table or view of the scope the credential may not read (see ``unreadable_table``)."""

_NOT_A_PARTITION = """  AND NOT (c.relispartition AND EXISTS (
      SELECT 1 FROM pg_catalog.pg_inherits i
      WHERE i.inhrelid = c.oid AND has_table_privilege(i.inhparent, 'SELECT')))
"""

_CATALOG_COLUMNS_SQL = """
SELECT col.table_name, col.column_name, col.data_type, col.is_nullable,
       col_description(c.oid, a.attnum)
FROM information_schema.columns col
JOIN pg_catalog.pg_namespace n ON n.nspname = col.table_schema
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = col.table_name
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = col.column_name
WHERE col.table_schema = %s
ORDER BY col.table_name, col.ordinal_position
"""


_MATVIEW_TABLES_SQL = """
SELECT c.relname, 'MATERIALIZED VIEW', obj_description(c.oid, 'pg_class')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind = 'm' AND has_table_privilege(c.oid, 'SELECT')
ORDER BY c.relname
"""

_MATVIEW_COLUMNS_SQL = """
SELECT c.relname, a.attname, format_type(a.atttypid, NULL),
       CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END, col_description(c.oid, a.attnum)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = %s AND c.relkind = 'm'
ORDER BY c.relname, a.attnum
"""


@dataclass(slots=True)
class RunningStatement:
    """Cancel state shared by the CTAS thread and :meth:`PostgresLikeAdapter._cancel`."""

    pid: int | None = None
    cancel_requested: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class PostgresLikeAdapter(BaseAdapter):
    """Shared base of the PostgreSQL and Redshift adapters (wire protocol v3 warehouses)."""

    SQLGLOT_DIALECT = "postgres"
    SUPPORTS_SERVER_TIMEOUT = True
    SUPPORTS_SERVER_CANCEL = True
    SECRET_FIELDS = frozenset({"password", "ssh_private_key"})
    REQUIRED_SETTINGS = frozenset({"host", "database", "user"})

    DEFAULT_PORT: ClassVar[int] = 5432
    """Port used when the ``port`` setting is absent."""

    CANCEL_NEEDS_OWN_CONNECTION: ClassVar[bool] = True
    """``pg_cancel_backend`` must come from a second session; the CTAS session is blocked."""

    LATE_BINDING_VIEWS: ClassVar[bool] = False
    """Views may have no columns in ``information_schema`` (Redshift ``WITH NO SCHEMA BINDING``)."""

    PARTITIONS: ClassVar[bool] = False
    """Declarative partitions exist (``pg_class.relispartition``): a partition is left out of
    the catalog when its partitioned table is listed (the table to pick is the parent)."""

    MATERIALIZED_VIEWS: ClassVar[bool] = False
    """List ``pg_class`` materialized views too (``information_schema`` leaves them out)."""

    CONNECT_TIMEOUT_S: ClassVar[int] = 15
    """Give up connecting (TCP + login) after this many seconds: ``unreachable``."""

    ID_FETCH_ROWS: ClassVar[int] = 10_000
    """Rows per server-side cursor fetch when reading ids (``read_column`` batches are at most
    this big): the driver builds a Python list and ``str`` per row (~150 bytes per id against
    ~13 in Arrow), so a smaller fetch keeps those objects small at no visible cost in speed."""

    PRIVILEGES_FRESH_S: ClassVar[float] = 30.0
    """How long a kept session's pid and privilege check serve its next CTAS (see
    :meth:`_checked_pid`)."""

    MAX_IDLE_CONNECTIONS: ClassVar[int] = 2
    """Idle sessions kept for catalog, reads and drops (a CTAS always gets its own)."""

    def __init__(self, config: ConnectionConfig) -> None:
        super().__init__(config)
        self._idle: list[Any] = []
        self._busy: dict[int, Any] = {}
        """Sessions lent out by :meth:`_session` (``id`` → connection), interrupted on close."""
        self._small_results: dict[str, int] = {}
        """Row counts of this adapter's result tables that fit one id batch (read in one go)."""
        self._pool_lock = threading.Lock()
        self._checked: weakref.WeakKeyDictionary[Any, tuple[int, float]] = (
            weakref.WeakKeyDictionary()
        )
        """Kept sessions' backend pid and when their privileges were last checked."""
        self._tunnel: SSHTunnel | None = None
        self._tunnel_lock = threading.Lock()

    # ------------------------------------------------------------------ settings
    @classmethod
    def check_credential(cls, settings: dict[str, Any], secrets: dict[str, str]) -> None:
        """Also validate the port and the optional ``ssh_tunnel`` (needs ``ssh_private_key``)."""
        super().check_credential(settings, secrets)
        port = settings.get("port")
        if port not in (None, "") and not str(port).isdigit():
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                f"setting 'port' must be a number, got {port!r}",
                details={"field": "port"},
            )
        if settings.get("ssh_tunnel"):
            TunnelSettings.from_setting(settings["ssh_tunnel"])
            if not secrets.get("ssh_private_key"):
                raise ZerocopyError(
                    errors.INVALID_CREDENTIAL,
                    "an SSH tunnel needs the secret 'ssh_private_key' (the generated key pair)",
                    details={"field": "ssh_private_key"},
                )

    @classmethod
    def generated_key(cls, settings: dict[str, Any]) -> GeneratedKeySpec | None:
        """An ed25519 pair for the SSH bastion when ``ssh_tunnel`` is set (passwords stay the user's)."""
        if not settings.get("ssh_tunnel"):
            return None
        return GeneratedKeySpec(
            secret="ssh_private_key",
            algorithm="ed25519",
            installed_by="~<ssh_tunnel.user>/.ssh/authorized_keys on the bastion",
        )

    @property
    def user(self) -> str:
        return str(self.config.settings.get("user") or "")

    @property
    def database(self) -> str:
        return str(self.config.settings.get("database") or "")

    def _endpoint(self) -> tuple[str, int]:
        """(host, port) to hand the driver: the warehouse itself or the tunnel's local end."""
        settings = self.config.settings
        host = str(settings["host"])
        port = int(settings.get("port") or self.DEFAULT_PORT)
        tunnel_setting = settings.get("ssh_tunnel")
        if not tunnel_setting:
            return host, port
        with self._tunnel_lock:
            if self._tunnel is None:
                key = self.config.secrets.get("ssh_private_key")
                if not key:
                    raise ZerocopyError(
                        errors.INVALID_CREDENTIAL,
                        "an SSH tunnel needs the secret 'ssh_private_key'",
                        details={"field": "ssh_private_key"},
                    )
                self._tunnel = SSHTunnel(
                    TunnelSettings.from_setting(tunnel_setting), key, host, port
                )
            return "127.0.0.1", self._tunnel.open()

    # ------------------------------------------------------------------ driver hooks
    def _driver_connect(self, host: str, port: int) -> Any:
        """Open an autocommit DB-API connection (``%s`` parameters) to ``host:port``."""
        raise NotImplementedError

    def _error_fields(self, exc: BaseException) -> tuple[str | None, str]:
        """(SQLSTATE or ``None``, the warehouse's primary message) of a driver exception."""
        raise NotImplementedError

    def _stream(
        self, conn: Any, sql: str, params: Sequence[Any], fetch_rows: int
    ) -> Generator[tuple[Sequence[Any], Sequence[Sequence[Any]]], None, None]:
        """Run ``sql`` through a server-side cursor: yields (description, up to ``fetch_rows`` rows).

        Drop the rows before fetching the next ones (the consumer too): a generator that keeps
        its last batch in a local while it fetches holds two batches of Python objects at once.
        """
        raise NotImplementedError

    def _fetch_rows(self, batch_rows: int) -> int:
        """Rows per batch the warehouse allows a read (Redshift caps its cursor fetches)."""
        return batch_rows

    def _is_usable(self, conn: Any) -> bool:
        """Whether a pooled session still looks alive (without a round trip; see :func:`stale_socket`)."""
        return True

    # ------------------------------------------------------------------ connections
    def _connect(self) -> Any:
        host, port = self._endpoint()
        return self._driver_connect(host, port)

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        """Borrow a pooled session; a session that saw an error is closed, not reused."""
        with self._pool_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is not None and not self._is_usable(conn):
            _close_quietly(conn)
            conn = None
        if conn is None:
            conn = self._connect()
        with self._pool_lock:
            self._busy[id(conn)] = conn
        try:
            yield conn
        except BaseException:
            _close_quietly(conn)
            raise
        finally:
            with self._pool_lock:
                self._busy.pop(id(conn), None)
        with self._pool_lock:
            if len(self._idle) < self.MAX_IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        _close_quietly(conn)

    def _borrow(self) -> Any:
        """An idle pooled session that still looks alive, else a new one (caller owns it)."""
        while True:
            with self._pool_lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect()
            if self._is_usable(conn):
                return conn
            _close_quietly(conn)

    def _give_back(self, conn: Any) -> None:
        """Return a healthy session to the pool (closed when the pool is full)."""
        with self._pool_lock:
            if len(self._idle) < self.MAX_IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        _close_quietly(conn)

    def _close(self) -> None:
        with self._pool_lock:
            idle, self._idle = self._idle, []
            busy = list(self._busy.values())
        # A statement still running in a thread its caller abandoned (a sync read cancelled
        # or past its deadline) would go on in the warehouse: cancel it server-side.
        for conn in busy:
            self._interrupt(conn)
        for conn in idle:
            _close_quietly(conn)
        with self._tunnel_lock:
            if self._tunnel is not None:
                self._tunnel.close()
                self._tunnel = None

    def _interrupt(self, conn: Any) -> None:
        """Cancel the statement a lent-out session runs, from another thread (best effort)."""
        with contextlib.suppress(Exception):
            if hasattr(conn, "cancel_safe"):  # psycopg >= 3.2: libpq cancel, bounded
                conn.cancel_safe(timeout=5)
                return
            # redshift-connector has no cancel call: pg_cancel_backend from a second session,
            # with the backend pid of the session's BackendKeyData (first 4 bytes).
            key = getattr(conn, "_backend_key_data", None)
            if not key or len(key) < 4:
                return
            other = self._connect()
            try:
                self._query(
                    other, "SELECT pg_cancel_backend(%s)", (int.from_bytes(key[:4], "big"),)
                )
            finally:
                _close_quietly(other)

    @staticmethod
    def _query(conn: Any, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        cur = conn.cursor()
        try:
            cur.execute(sql, tuple(params)) if params else cur.execute(sql)
            return list(cur.fetchall()) if cur.description else []
        finally:
            cur.close()

    # ------------------------------------------------------------------ SQL rendering
    def quote_column(self, column: str) -> str:
        return exp.to_identifier(column, quoted=True).sql(dialect=self.SQLGLOT_DIALECT)

    def ctas_sql(self, table: str, select_sql: str, tag: QueryTag) -> str:
        """The CTAS, led by a comment naming zerocopy and the run (shown in the query history)."""
        comment = tag.as_text().replace("*/", "")
        return f"/* {comment} */ CREATE TABLE {self.quote_table(table)} AS {select_sql}"

    @staticmethod
    def statement_timeout_sql(timeout_s: float) -> str:
        """``SET statement_timeout`` in whole milliseconds, at least 1 (0 would disable it)."""
        return f"SET statement_timeout = {max(1, int(timeout_s * 1000))}"

    # ------------------------------------------------------------------ catalog
    def _check_scope(self, conn: Any) -> None:
        schema = self.config.scope.schema
        database = self.config.scope.database
        if database and database != self.database:
            raise ZerocopyError(
                errors.SCOPE_NOT_FOUND,
                f"scope database {database!r} differs from the connection's database "
                f"{self.database!r}: use scope {schema!r} or connect to {database!r}",
                details={"warehouse": self.KIND, "scope": str(self.config.scope)},
            )
        rows = self._query(
            conn,
            "SELECT has_schema_privilege(current_user, nspname, 'USAGE') "
            "FROM pg_catalog.pg_namespace WHERE nspname = %s",
            (schema,),
        )
        if not rows:
            raise ZerocopyError(
                errors.SCOPE_NOT_FOUND,
                f"schema {schema!r} does not exist in database {self.database!r}: "
                "create it or fix the source's scope",
                details={"warehouse": self.KIND, "scope": str(self.config.scope)},
            )
        if not rows[0][0]:
            raise self._grant_missing(f"USAGE ON SCHEMA {self._ident(schema)}", schema)

    def _grant_missing(self, grant: str, obj: str) -> ZerocopyError:
        return ZerocopyError(
            errors.PERMISSION_DENIED,
            f"user {self.user!r} lacks a privilege on {obj!r}: run "
            f"GRANT {grant} TO {self._ident(self.user)}",
            details={"warehouse": self.KIND, "grant": f"GRANT {grant} TO {self._ident(self.user)}"},
        )

    def _where(self) -> str:
        """``host:port`` of the warehouse (not the tunnel's local end), for messages."""
        settings = self.config.settings
        where = f"{settings.get('host')}:{settings.get('port') or self.DEFAULT_PORT}"
        if settings.get("ssh_tunnel"):
            with contextlib.suppress(ZerocopyError):
                bastion = TunnelSettings.from_setting(settings["ssh_tunnel"])
                where += f" through SSH bastion {bastion.host}:{bastion.port}"
        return where

    def _ident(self, name: str) -> str:
        """``name`` as the warehouse reads it back: bare only when folding leaves it unchanged
        (``MixedCase`` or ``with space`` are quoted, or a GRANT would name another object)."""
        if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
            return name
        return exp.to_identifier(name, quoted=True).sql(dialect=self.SQLGLOT_DIALECT)

    async def unreadable_table(self, name: str) -> str | None:
        """The scope's table or view named ``name`` (case-insensitive, maybe qualified) that
        exists but the credential may not ``SELECT`` from -- :meth:`list_tables` leaves such
        tables out -- else None: tells "permission removed" from "table gone"."""
        table = name.strip().rpartition(".")[2].strip().strip('"')
        return await self._call(self._unreadable_table, table)

    def _unreadable_table(self, table: str) -> str | None:
        with self._session() as conn:
            rows = self._query(conn, _UNREADABLE_TABLE_SQL, (self.config.scope.schema, table))
        return str(rows[0][0]) if rows else None

    def _list_tables(self) -> list[TableInfo]:
        schema = self.config.scope.schema
        with self._session() as conn:
            self._check_scope(conn)
            tables = self._query(
                conn,
                _CATALOG_TABLES_SQL.replace("ORDER BY", _NOT_A_PARTITION + "ORDER BY")
                if self.PARTITIONS
                else _CATALOG_TABLES_SQL,
                (schema,),
            )
            columns: dict[str, list[ColumnInfo]] = {}
            for table, name, data_type, nullable, description in self._query(
                conn, _CATALOG_COLUMNS_SQL, (schema,)
            ):
                columns.setdefault(table, []).append(
                    ColumnInfo(name, data_type, description or None, nullable == "YES")
                )
            if self.LATE_BINDING_VIEWS:
                for table, cols in self._late_binding_columns(conn, schema).items():
                    columns.setdefault(table, cols)
            if self.MATERIALIZED_VIEWS:
                tables = sorted(
                    [*tables, *self._query(conn, _MATVIEW_TABLES_SQL, (schema,))],
                    key=lambda row: row[0],
                )
                for table, name, data_type, nullable, description in self._query(
                    conn, _MATVIEW_COLUMNS_SQL, (schema,)
                ):
                    columns.setdefault(table, []).append(
                        ColumnInfo(name, data_type, description or None, nullable == "YES")
                    )
        return [
            TableInfo(
                name=name,
                kind="view" if table_type in ("VIEW", "MATERIALIZED VIEW") else "table",
                columns=tuple(columns.get(name, ())),
                description=description or None,
                schema=schema,
            )
            for name, table_type, description in tables
        ]

    def _late_binding_columns(self, conn: Any, schema: str) -> dict[str, list[ColumnInfo]]:
        """Columns of views whose columns are only known at run time (see the Redshift adapter)."""
        return {}

    def _list_temp_tables(self, prefix: str) -> list[str]:
        with self._session() as conn:
            rows = self._query(
                conn,
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name LIKE %s ORDER BY table_name",
                (self.config.scope.schema, prefix.replace("_", r"\_") + "%"),
            )
        return [r[0] for r in rows]

    def _server_version(self) -> str | None:
        with self._session() as conn:
            rows = self._query(conn, "SELECT version()")
        return str(rows[0][0]) if rows else None

    def _warnings(self) -> list[str]:
        """What a passing connection test should still show: a refresh needs CREATE on the scope."""
        schema = self.config.scope.schema
        with self._session() as conn:
            rows = self._query(
                conn, "SELECT has_schema_privilege(current_user, %s, 'CREATE')", (schema,)
            )
        if rows and not rows[0][0]:
            grant = f"GRANT CREATE ON SCHEMA {self._ident(schema)} TO {self._ident(self.user)}"
            return [f"user {self.user!r} cannot create tables in {schema!r}; refreshes will fail "
                    f"until you run {grant}"]  # fmt: skip
        return []

    async def test(self) -> TestResult:
        """Connect, list the visible tables, and warn when refreshes would lack CREATE."""
        result = await super().test()
        found = await self._call(self._warnings)
        return dataclasses.replace(result, warnings=[*result.warnings, *found])

    # ------------------------------------------------------------------ materialize
    def _execute_ctas(
        self, sql: str, handle: QueryHandle, timeout_s: float, tag: QueryTag
    ) -> int | None:
        state = RunningStatement()
        handle.native = state
        # Its own session (_cancel signals its backend from another one): a new one, or for a
        # REUSABLE adapter an idle pooled one, given back only after a clean CTAS.
        conn = self._borrow() if self.REUSABLE else self._connect()
        clean = False
        try:
            state.pid = self._checked_pid(conn)
            handle.session_id = handle.query_id = str(state.pid)
            rows = self._timed_ctas(conn, sql, timeout_s, state, handle)
            clean = self.REUSABLE
            if handle.table and isinstance(rows, int) and 0 <= rows <= self.ID_FETCH_ROWS:
                self._small_results[handle.table] = rows
            return rows if isinstance(rows, int) and rows >= 0 else None
        finally:
            state.done.set()
            # _cancel sets cancel_requested before it checks done and signals the backend: a
            # session whose statement someone tried to cancel is never reused (a late
            # pg_cancel_backend must not hit the next run's statement).
            if clean and not state.cancel_requested:
                self._give_back(conn)
            else:
                _close_quietly(conn)

    def _checked_pid(self, conn: Any) -> int:
        """The session's backend pid, once USAGE and CREATE on the scope are confirmed.

        One statement; on a kept session its answer is reused for
        :attr:`PRIVILEGES_FRESH_S` (a backend's pid never changes, and a privilege revoked
        meanwhile fails the CTAS itself as ``permission_denied``).
        """
        now = time.monotonic()
        with self._pool_lock:
            known = self._checked.get(conn) if self.REUSABLE else None
        if known is not None and now - known[1] < self.PRIVILEGES_FRESH_S:
            return known[0]
        schema = self.config.scope.schema
        (pid, usage, create), *_ = self._query(
            conn,
            "SELECT pg_backend_pid(), has_schema_privilege(current_user, %s, 'USAGE'), "
            "has_schema_privilege(current_user, %s, 'CREATE')",
            (schema, schema),
        )
        if not usage:
            raise self._grant_missing(f"USAGE ON SCHEMA {self._ident(schema)}", schema)
        if not create:
            raise self._grant_missing(f"CREATE ON SCHEMA {self._ident(schema)}", schema)
        if self.REUSABLE:
            with self._pool_lock, contextlib.suppress(TypeError):  # not weak-referenceable
                self._checked[conn] = (int(pid), now)
        return int(pid)

    def _timed_ctas(
        self, conn: Any, sql: str, timeout_s: float, state: RunningStatement, handle: QueryHandle
    ) -> Any:
        """Run the CTAS under ``statement_timeout``; the row count the driver reports.

        Three round trips: ``SET statement_timeout``, the CTAS, ``RESET`` (a kept session
        carries no timeout into the next run). A driver that sends a parameterless query as
        one simple-protocol message overrides this with one round trip (PostgreSQL).
        """
        self._query(conn, self.statement_timeout_sql(timeout_s))
        if state.cancel_requested:
            raise ZerocopyError(errors.CANCELLED, "the segment query was cancelled")
        cur = conn.cursor()
        try:
            cur.execute(sql)
            rows = cur.rowcount
        except Exception as exc:
            raise self._statement_error(exc, state, handle, timeout_s) from exc
        finally:
            cur.close()
        if self.REUSABLE:
            self._query(conn, "RESET statement_timeout")  # pooled sessions have none
        return rows

    def _statement_error(
        self, exc: Exception, state: RunningStatement, handle: QueryHandle, timeout_s: float
    ) -> ZerocopyError:
        """A 57014 (query_canceled) is ours: cancelled if we asked, else the statement timeout."""
        sqlstate, _ = self._error_fields(exc)
        if sqlstate == "57014" or (sqlstate is None and state.cancel_requested):
            if state.cancel_requested:
                return ZerocopyError(
                    errors.CANCELLED,
                    "the segment query was cancelled in the warehouse",
                    details={"warehouse": self.KIND, "query_id": handle.query_id},
                )
            return self._timed_out("the segment query", handle)
        return self.map_error(exc, handle)

    def _cancel(self, handle: QueryHandle) -> None:
        """``pg_cancel_backend`` from a pooled session, repeated until the CTAS thread returns.

        Repeating closes the race where the signal lands between ``SET statement_timeout``
        and the CTAS reaching the server (a cancel of an idle backend is a no-op).
        """
        state = handle.native if isinstance(handle.native, RunningStatement) else None
        if state is not None:
            state.cancel_requested = True
        pid_text = handle.session_id or (str(state.pid) if state and state.pid else None)
        if not pid_text or not pid_text.isdigit():
            return  # nothing started on the server yet; the flag stops it before it does
        pid = int(pid_text)
        until = time.monotonic() + self.CANCEL_GRACE_S
        with self._session() as conn:
            while True:
                if state is not None and state.done.is_set():
                    return
                self._query(conn, "SELECT pg_cancel_backend(%s)", (pid,))
                if state is None or state.done.wait(0.2) or time.monotonic() > until:
                    return

    def _drop_table(self, table: str) -> None:
        self._small_results.pop(table, None)
        with self._session() as conn:
            self._query(conn, self.drop_sql(table))

    # ------------------------------------------------------------------ reads
    async def read_column(
        self, table: str, column: str, *, batch_rows: int = 100_000, ordered: bool = False
    ) -> AsyncIterator[pa.Array]:
        """A result the CTAS reported as one batch is read in one worker-thread hop (the
        base drives the reader one item per hop: start, the batch, its end, close)."""
        known = self._small_results.get(table)
        if known is None or known > self._fetch_rows(max(1, min(batch_rows, self.ID_FETCH_ROWS))):
            async for batch in super().read_column(
                table, column, batch_rows=batch_rows, ordered=ordered
            ):
                yield batch
            return
        for batch in await self._call(
            lambda: list(self._read_column(table, column, batch_rows, ordered))
        ):
            yield batch

    def _read_column(
        self, table: str, column: str, batch_rows: int, ordered: bool = False
    ) -> Iterator[pa.Array]:
        col = self.quote_column(column)
        sql = f"SELECT {col} FROM {self.quote_table(table)}{self.id_order_by(col, ordered)}"
        fetch_rows = max(1, min(batch_rows, self.ID_FETCH_ROWS))
        known = self._small_results.pop(table, None)
        if known is not None and known <= self._fetch_rows(fetch_rows):
            # The CTAS said the table holds at most one batch: one plain SELECT instead of
            # BEGIN / DECLARE / FETCH / FETCH / CLOSE / COMMIT (most segments are small).
            with self._session() as conn:
                cur = conn.cursor()
                try:
                    cur.execute(sql)
                    description, rows = cur.description, cur.fetchall()
                finally:
                    cur.close()
            if rows:
                yield _id_array([r[0] for r in rows], _oid(description[0]))
            return
        # closing(): when the consumer stops early, the cursor's generator is closed here,
        # while its session is still checked out, not later by the garbage collector.
        with (
            self._session() as conn,
            contextlib.closing(self._stream(conn, sql, (), fetch_rows)) as batches,
        ):
            for description, rows in batches:
                values = [r[0] for r in rows]
                del rows  # neither these rows nor their values are alive during the next fetch
                ids = _id_array(values, _oid(description[0]))
                del values
                yield ids

    def _read_incremental(
        self, table: str, watermark: Watermark, batch_rows: int, columns: list[str] | None
    ) -> Iterator[pa.RecordBatch]:
        col = self.quote_column(watermark.column)
        # PostgreSQL's 'infinity' timestamps cannot reach Python: read them as NULL, which
        # the sync reports as an unusable UPDATED_AT.
        finite = f"CASE WHEN {col}::text IN ('infinity', '-infinity') THEN NULL ELSE {col} END"
        select = (
            ", ".join(
                f"{finite} AS {col}" if c == watermark.column else self.quote_column(c)
                for c in columns
            )
            if columns
            else "*"
        )
        # The alias keeps WHERE / ORDER BY on the table's column (and its index), not the CASE.
        sql = f"SELECT {select} FROM {self.quote_table(table)} AS zc_src"
        params: tuple[Any, ...] = ()
        if watermark.nulls_only:
            sql += f" WHERE zc_src.{col} IS NULL"
        elif watermark.value is not None:
            # Inclusive: rows at the watermark come back; the engine drops the ones it has seen.
            sql += f" WHERE zc_src.{col} >= %s"
            params = (watermark.value,)
        sql += f" ORDER BY zc_src.{col}"
        with (
            self._session() as conn,
            contextlib.closing(self._stream(conn, sql, params, batch_rows)) as batches,
        ):
            for description, rows in batches:
                names = [d[0] for d in description]
                arrays = [
                    _to_array([r[i] for r in rows], _oid(d)) for i, d in enumerate(description)
                ]
                yield pa.RecordBatch.from_arrays(arrays, names=names)

    # ------------------------------------------------------------------ errors
    def map_error(self, exc: BaseException, handle: QueryHandle | None = None) -> ZerocopyError:
        """SQLSTATE first, then the message table, then the base's OS-error fallback."""
        if isinstance(exc, ZerocopyError):
            return exc
        sqlstate, message = self._error_fields(exc)
        details: dict[str, Any] = {"warehouse": self.KIND}
        if sqlstate:
            details["sqlstate"] = sqlstate
        if handle is not None and handle.query_id:
            details["query_id"] = handle.query_id
        found = _classify(sqlstate, message)
        if found is None:
            found = _classify(None, message) or _classify(None, str(exc))
        if found is None:
            return super().map_error(exc, handle)
        code, template = found
        text = template.format(
            msg=message, kind=self.KIND, user=self.user, schema=self.config.scope.schema,
            database=self.database, name=_object_name(message) or "?", where=self._where(),
            name_ident=self._ident(_object_name(message) or "?"),
            user_ident=self._ident(self.user), schema_ident=self._ident(self.config.scope.schema),
        )  # fmt: skip
        return ZerocopyError(code, text, details=details)


# Codes by SQLSTATE (https://www.postgresql.org/docs/current/errcodes-appendix.html), then by
# message for errors raised before the server sends one (libpq / socket failures).
_BY_SQLSTATE: dict[str, tuple[str, str]] = {
    "28P01": (
        errors.AUTH_FAILED,
        "{kind} rejected the password for user {user!r}: check the user and password ({msg})",
    ),
    "28000": (
        errors.AUTH_FAILED,
        "{kind} refused the login of user {user!r}: check that the user exists and may log in ({msg})",
    ),
    "3D000": (
        errors.SCOPE_NOT_FOUND,
        "database {database!r} does not exist: fix the 'database' setting ({msg})",
    ),
    "3F000": (
        errors.SCOPE_NOT_FOUND,
        "schema {schema!r} does not exist: create it or fix the source's scope ({msg})",
    ),
    "53300": (errors.WAREHOUSE_BUSY, "{kind} has no free connection slots; retry later ({msg})"),
    "57014": (errors.CANCELLED, "the statement was cancelled in the warehouse ({msg})"),
}

_LOST = (
    "lost the connection to the {kind} warehouse at {where}: the server ended the session or "
    "went away ({msg}); retry the run"
)

_BY_MESSAGE: tuple[tuple[str, str, str], ...] = (
    (r"permission denied for schema", errors.PERMISSION_DENIED,
     "user {user!r} lacks USAGE or CREATE on schema {schema!r}: run GRANT USAGE, CREATE ON SCHEMA {schema_ident} TO {user_ident} ({msg})"),
    (r"permission denied for (?:table|relation|view|sequence)", errors.PERMISSION_DENIED,
     "user {user!r} may not read {name!r}: run GRANT SELECT ON {schema_ident}.{name_ident} TO {user_ident} ({msg})"),
    (r"permission denied|must be owner", errors.PERMISSION_DENIED,
     "user {user!r} lacks a privilege: {msg}"),
    (r"password authentication failed|authentication failed", errors.AUTH_FAILED,
     "{kind} rejected the password for user {user!r}: check the user and password ({msg})"),
    (r"role \S+ does not exist|not permitted to log in|no pg_hba\.conf entry", errors.AUTH_FAILED,
     "{kind} refused the login of user {user!r}: check that the user exists and may log in ({msg})"),
    (r"database \S+ does not exist", errors.SCOPE_NOT_FOUND,
     "database {database!r} does not exist: fix the 'database' setting ({msg})"),
    (r"schema \S+ does not exist", errors.SCOPE_NOT_FOUND,
     "schema {schema!r} does not exist: create it or fix the source's scope ({msg})"),
    (r"statement timeout", errors.TIMED_OUT,
     "the statement ran past the source's max runtime and was stopped ({msg})"),
    (r"server socket closed|broken ?pipe|terminating connection|server closed the connection"
     r"|connection (?:is|was|already) closed|consuming input failed|ran out of data",
     errors.UNREACHABLE, _LOST),
    (r"connection refused|could not translate host name|name or service not known|no route to host"
     r"|timeout expired|timed out|communication error|could not connect"
     r"|connection to server .* failed|network is unreachable|connection reset",
     errors.UNREACHABLE,
     "cannot reach the {kind} warehouse at {where}: check host, port, firewall and SSH tunnel ({msg})"),
)  # fmt: skip


def _classify(sqlstate: str | None, message: str) -> tuple[str, str] | None:
    if sqlstate:
        if sqlstate == "42501":
            for pattern, code, template in _BY_MESSAGE[:3]:
                if re.search(pattern, message, re.IGNORECASE):
                    return code, template
            return errors.PERMISSION_DENIED, "user {user!r} lacks a privilege: {msg}"
        if sqlstate in _BY_SQLSTATE:
            return _BY_SQLSTATE[sqlstate]
        if sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03"):
            return errors.UNREACHABLE, _LOST
        return errors.WAREHOUSE_ERROR, "{kind} said: {msg}"
    for pattern, code, template in _BY_MESSAGE:
        if re.search(pattern, message, re.IGNORECASE | re.DOTALL):
            return code, template
    return None


def _object_name(message: str) -> str | None:
    """The object a "permission denied for table X" names: PostgreSQL writes X unquoted to the
    end of the line, so a name with spaces or dots is all of it (older servers quote it)."""
    match = re.search(
        r'for (?:table|relation|view|materialized view|sequence) (?:"([^"]+)"|(.+?))\s*$',
        message.splitlines()[0] if message else "",
    )
    if not match:
        return None
    return match.group(1) or match.group(2)


def _oid(column_description: Sequence[Any]) -> int | None:
    try:
        return int(column_description[1])
    except (TypeError, ValueError, IndexError):
        return None


def _id_array(values: list[Any], oid: int | None) -> pa.Array:
    """Ids → Arrow. Text ids are assembled from their UTF-8 bytes: ``pa.array`` on a list
    imports pandas (≈ 50 MB per process) and is no faster."""
    if not values or not all(type(v) is str for v in values):
        return _to_array(values, oid)
    text = "".join(values)
    data = text.encode()
    if len(data) >= 2**31:  # int32 offsets; a batch of ids never gets there
        return _to_array(values, oid)
    # All ASCII (the usual id): each value's UTF-8 length is its length in characters, so
    # no bytes object per value is needed.
    lengths = map(len, values) if len(data) == len(text) else (len(v.encode()) for v in values)
    del text
    offsets = array.array("i", itertools.accumulate(lengths, initial=0))
    return pa.StringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(data))


def _to_array(values: list[Any], oid: int | None) -> pa.Array:
    """Column values → Arrow, typed by the column's OID so every batch has the same type."""
    arrow_type = _ARROW_BY_OID.get(oid) if oid is not None else None
    try:
        return pa.array(values, type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        text = [None if v is None else str(v) for v in values]
        return pa.array(text, type=pa.string())


def stale_socket(fd: int) -> bool:
    """Whether an idle session's socket has something to read, i.e. it is stale.

    An idle autocommit session is sent nothing unless it is going away: a terminated backend
    (``pg_terminate_backend``, a restart, ``idle_session_timeout``) sends its FATAL error and
    closes, a dead proxy or bastion closes the socket. Either makes the socket readable, so a
    pooled session is replaced before a run gets it instead of failing that run with a stale
    connection error. (A silent network drop shows nothing here; keepalives and the deadline
    cover it.)
    """
    if fd < 0:
        return True
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)


def _close_quietly(conn: Any) -> None:
    with contextlib.suppress(Exception):
        conn.close()


def cursor_name() -> str:
    """A unique server-side cursor name (cursors live in the session's namespace)."""
    return f"zc_cur_{uuid.uuid4().hex[:16]}"


__all__ = [
    "TEMP_TABLE_PREFIX", "PostgresLikeAdapter", "RunningStatement", "cursor_name", "stale_socket"
]  # fmt: skip
