"""DuckDB, the embedded default warehouse: one database file on local disk.

Settings: ``path`` (the database file; it must exist, ``:memory:`` is refused because a
source must outlive the process) and ``read_only`` (catalog and incremental reads only; no
segment refreshes, which need ``CREATE TABLE``). No secrets.

A DuckDB file takes one writing process at a time (it holds an OS lock on the file), so the
adapter declares :attr:`SINGLE_WRITER_PROCESS` and, inside one process, every adapter on the
same file shares one database instance (a ``duckdb.connect`` per path, reference-counted)
and runs each statement on its own ``cursor()``. Another process holding the lock surfaces
as ``warehouse_busy``. Cancellation is ``interrupt()`` on the statement's cursor from another
thread; the deadline is enforced twice: by a timer inside the statement's thread and by the
base watchdog. The CTAS runs in an explicit transaction that commits only if nobody stopped
it, so a cancel that races the end of the statement still leaves no table behind.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
from sqlglot import exp

from dialects.base import BaseAdapter, ErrorRule
from dialects.protocol import (
    ColumnInfo,
    ConnectionConfig,
    QueryHandle,
    QueryTag,
    TableInfo,
    Watermark,
)
from zerocopy import errors
from zerocopy.errors import ZerocopyError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(slots=True)
class _Instance:
    """One open database per file in this process, shared by every adapter on that file."""

    con: duckdb.DuckDBPyConnection
    read_only: bool
    identity: tuple[int, int] | None = None
    """(device, inode) of the file when it was opened: DuckDB keeps using an open file that
    was deleted, moved or replaced, so each statement checks the path still leads to it."""
    users: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Serialises calls on ``con`` itself: a DuckDB connection refuses concurrent calls."""

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self.lock:
            return self.con.cursor()


_INSTANCES: dict[str, _Instance] = {}
_INSTANCES_LOCK = threading.Lock()


def _acquire(path: str, read_only: bool) -> _Instance:
    """Open (or share) the database at ``path``; the caller must :func:`_release` it."""
    with _INSTANCES_LOCK:
        inst = _INSTANCES.get(path)
        if inst is not None and inst.identity != _identity(path) and os.path.isfile(path):
            # The file was replaced since the instance opened it: new adapters open the new
            # file; the old instance's holders fail its check and release it.
            del _INSTANCES[path]
            inst = None
        if inst is None:
            # A read-write connect would silently create an empty file for a mistyped path.
            if not os.path.isfile(path):
                raise ZerocopyError(
                    errors.SCOPE_NOT_FOUND,
                    f"DuckDB file {path!r} does not exist; check the source's 'path' setting",
                    details={"warehouse": "duckdb", "path": path},
                )
            con = duckdb.connect(path, read_only=read_only)
            # Defence in depth behind the SQL check: the source reads its own database file
            # only (no file/URL readers, ATTACH or extension installs). Set after connecting,
            # not as connect config, so other in-process users of the file are not refused;
            # DuckDB refuses turning it back on.
            con.execute("SET enable_external_access = false")
            inst = _Instance(con, read_only, _identity(path))
            _INSTANCES[path] = inst
        elif inst.read_only and not read_only:
            raise ZerocopyError(
                errors.WAREHOUSE_BUSY,
                f"DuckDB file {path!r} is open read-only in this process by another source; "
                "make that source read-write too, or close it first",
                details={"warehouse": "duckdb", "path": path},
            )
        inst.users += 1
        return inst


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _check_still_there(path: str, inst: _Instance) -> None:
    """``scope_not_found`` when ``path`` no longer leads to the file the instance has open."""
    now = _identity(path)
    if inst.identity is not None and now == inst.identity:
        return
    what = "was deleted or moved" if now is None else "was replaced by another file"
    raise ZerocopyError(
        errors.SCOPE_NOT_FOUND,
        f"DuckDB file {path!r} {what} since zerocopy opened it; restore it (or point the "
        "source's 'path' setting at the new location) and test the source again",
        details={"warehouse": "duckdb", "path": path},
    )


def _release(path: str, inst: _Instance) -> None:
    """Drop one reference; the last one closes the file so other processes may open it."""
    with _INSTANCES_LOCK:
        inst.users -= 1
        if inst.users <= 0:
            if _INSTANCES.get(path) is inst:  # else replaced by the instance of a new file
                del _INSTANCES[path]
            # A statement abandoned after the cancel grace still runs on one of its cursors:
            # close() then refuses, and DuckDB frees the file when that cursor finishes.
            with inst.lock, contextlib.suppress(duckdb.Error):
                inst.con.close()


def _bool_setting(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ZerocopyError(
        errors.INVALID_CREDENTIAL,
        f"duckdb setting {name!r} must be true or false, got {value!r}",
        details={"field": name},
    )


@dataclass(slots=True)
class _Running:
    """A CTAS in flight: what :meth:`DuckDBAdapter._cancel` needs to stop it from elsewhere."""

    cursor: duckdb.DuckDBPyConnection | None = None
    """Set once the statement's connection is open; a stop before that still counts."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)
    executing: bool = False
    stopped: bool = False
    expired: bool = False
    committed: bool = False
    chasing: bool = False
    """A background thread keeps interrupting until the statement returns."""

    def stop(self, *, expired: bool = False, patience_s: float = 1.0) -> None:
        """Mark stopped and interrupt until the statement returns: for ``patience_s`` here,
        then, if it still runs, from a background thread until it does (an interrupt that
        misses — sent before the statement registered, or during a phase that does not look
        — must not leave a cancelled statement running to its end)."""
        with self.lock:
            if self.done.is_set() or self.committed:
                return
            self.stopped = True
            self.expired = self.expired or expired
        if self._interrupt_until(time.monotonic() + patience_s):
            return
        with self.lock:
            if self.chasing or self.done.is_set() or self.committed:
                return
            self.chasing = True
        threading.Thread(
            target=self._interrupt_until, args=(float("inf"),), daemon=True, name="duckdb-stop"
        ).start()

    def _interrupt_until(self, until: float) -> bool:
        """Interrupt every 50 ms until the statement returns (True) or ``until`` (False)."""
        while True:
            with self.lock:
                if self.done.is_set() or self.committed:
                    return True
                if self.executing and self.cursor is not None:
                    # interrupt() only hits a statement already running, so an interrupt sent
                    # just before execute() registers is lost: keep sending until it lands.
                    self.cursor.interrupt()
            if self.done.wait(0.05):
                return True
            if time.monotonic() > until:
                return False


class DuckDBAdapter(BaseAdapter):
    """The embedded default: a DuckDB database file."""

    KIND: ClassVar[str] = "duckdb"
    # Byte-wise order of the ids' text form, whatever the column's type (COLLATE only
    # applies to VARCHAR; the engine compares ids as text).
    ID_ORDER: ClassVar[str | None] = 'CAST({col} AS VARCHAR) COLLATE "binary"'
    SQLGLOT_DIALECT: ClassVar[str] = "duckdb"

    SUPPORTS_SERVER_TIMEOUT: ClassVar[bool] = True
    """DuckDB has no statement timeout; a timer in the statement's own thread calls
    ``interrupt()`` at the deadline, so it holds even if the event loop is stuck."""

    SUPPORTS_SERVER_CANCEL: ClassVar[bool] = True
    """``interrupt()`` stops the running statement inside DuckDB within milliseconds."""

    MAX_CONCURRENT_QUERIES: ClassVar[int | None] = 2
    """Each DuckDB query already uses every core; more at once only multiplies peak memory
    (a 10M-id ``SELECT DISTINCT`` CTAS peaks near 700 MB) without adding throughput."""

    SINGLE_WRITER_PROCESS: ClassVar[bool] = True
    """The file is locked by the one process that opens it read-write."""

    REQUIRED_SETTINGS: ClassVar[frozenset[str]] = frozenset({"path"})

    ERROR_RULES: ClassVar[tuple[ErrorRule, ...]] = (
        (
            r"Could not set lock on file|Conflicting lock",
            errors.WAREHOUSE_BUSY,
            "another process holds the DuckDB file open ({msg}); DuckDB allows one writing "
            "process per file: stop the other process (a second `zerocopy serve`, `demo` or "
            "worker) or point this source at its own copy",
        ),
        (
            r"different configuration than existing connections",
            errors.WAREHOUSE_BUSY,
            "the DuckDB file is already open in this process with other settings ({msg}); "
            "close the other connection or use the same read_only setting",
        ),
        (
            r"read-only mode|read.only (database|transaction)|attached in read-only",
            errors.PERMISSION_DENIED,
            "the DuckDB source is read-only ({msg}); segment refreshes need CREATE TABLE in "
            "the scope: set read_only to false",
        ),
        (
            r"Permission denied",
            errors.PERMISSION_DENIED,
            "the operating system refused access to the DuckDB file ({msg}); give the zerocopy "
            "process read and write permission on the file and its directory",
        ),
        (
            r"Cannot open (file|database)|No such file or directory|database does not exist",
            errors.SCOPE_NOT_FOUND,
            "the DuckDB file cannot be opened ({msg}); check the source's 'path' setting",
        ),
        (
            r"(Schema|Catalog) with name .* does not exist|Catalog \".*\" does not exist",
            errors.SCOPE_NOT_FOUND,
            "the source's scope does not exist in the DuckDB file ({msg}); check the scope",
        ),
        (
            r"INTERRUPT Error|Interrupted",
            errors.CANCELLED,
            "the DuckDB statement was interrupted ({msg})",
        ),
    )

    def __init__(self, config: ConnectionConfig) -> None:
        super().__init__(config)
        settings = dict(config.settings)
        self.check_credential(settings, dict(config.secrets))
        self.path = os.path.realpath(os.path.expanduser(str(settings["path"])))
        self.read_only = _bool_setting(settings.get("read_only"), "read_only")
        self._inst: _Instance | None = None
        self._lock = threading.Lock()
        self._reading: dict[int, duckdb.DuckDBPyConnection] = {}
        """Cursors of reads in progress (``id`` → cursor), interrupted on close."""
        self._ctas: dict[int, _Running] = {}
        """CTAS statements in flight (``id`` → state), stopped on close: ended ``cancelled``."""

    @classmethod
    def check_credential(cls, settings: dict[str, Any], secrets: dict[str, str]) -> None:
        """A file path (not ``:memory:``), an optional boolean ``read_only``, no secrets."""
        super().check_credential(settings, secrets)
        path = str(settings["path"]).strip()
        if path.startswith(":memory:") or path.lower() in {"memory", ":memory"}:
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                "a DuckDB source needs a database file path; ':memory:' databases vanish "
                "with the process",
                details={"field": "path"},
            )
        _bool_setting(settings.get("read_only"), "read_only")
        unknown = sorted(set(settings) - {"path", "read_only"}) + sorted(secrets)
        if unknown:
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                f"unknown duckdb credential field {unknown[0]!r}; allowed: path, read_only",
                details={"field": unknown[0]},
            )

    # ------------------------------------------------------------------ connections
    def _database(self) -> _Instance:
        with self._lock:
            if self._inst is None:
                self._inst = _acquire(self.path, self.read_only)
            inst = self._inst
        _check_still_there(self.path, inst)
        return inst

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """A fresh connection to the shared database for one statement (thread-safe)."""
        cur = self._database().cursor()
        # A query past ~2 s would otherwise draw a progress bar on the server's stdout.
        cur.execute("SET enable_progress_bar = false")
        # Naive TIMESTAMPs are UTC: aware watermarks and TIMESTAMPTZ columns compare in UTC
        # whatever the host's time zone.
        cur.execute("SET TimeZone = 'UTC'")
        return cur

    def _catalog_name(self, cur: duckdb.DuckDBPyConnection) -> str:
        if self.config.scope.database:
            return self.config.scope.database
        row = cur.execute("SELECT current_database()").fetchall()
        return str(row[0][0])

    def _refuse_if_read_only(self, what: str) -> None:
        """Refuse writes of a read-only source sharing a read-write instance of its file.

        When the instance itself is read-only DuckDB refuses on its own (mapped by
        :attr:`ERROR_RULES`); when it is shared with a read-write source we must refuse.
        """
        if self.read_only and not self._database().read_only:
            raise ZerocopyError(
                errors.PERMISSION_DENIED,
                f"the DuckDB source is read-only, so it cannot {what}; set read_only to false "
                "(segment refreshes need CREATE TABLE in the scope)",
                details={"warehouse": self.KIND},
            )

    def _close(self) -> None:
        with self._lock:
            inst, self._inst = self._inst, None
            reading = list(self._reading.values())
            running = list(self._ctas.values())
        # A CTAS whose caller abandoned it is stopped like a cancel (interrupted, rolled back),
        # also when it has not reached the engine yet: closing the file under it must not turn
        # it into a bare driver error.
        for ctas in running:
            ctas.stop()
        # A read still running in a thread its caller abandoned (a sync cancelled or past its
        # deadline) would go on scanning: interrupt it.
        for cur in reading:
            with contextlib.suppress(Exception):
                cur.interrupt()
        if inst is not None:
            _release(self.path, inst)

    # ------------------------------------------------------------------ hooks
    def _server_version(self) -> str | None:
        return f"duckdb {duckdb.__version__}"

    def _list_tables(self) -> list[TableInfo]:
        cur = self._cursor()
        try:
            catalog = self._catalog_name(cur)
            schema = self.config.scope.schema
            found = cur.execute(
                "SELECT count(*) FROM duckdb_schemas() WHERE database_name = ? AND schema_name = ?",
                [catalog, schema],
            ).fetchall()
            if not found[0][0]:
                known = cur.execute(
                    "SELECT database_name || '.' || schema_name FROM duckdb_schemas() "
                    "WHERE NOT internal ORDER BY 1"
                ).fetchall()
                raise ZerocopyError(
                    errors.SCOPE_NOT_FOUND,
                    f"schema {catalog}.{schema} does not exist in DuckDB file {self.path!r}; "
                    f"existing schemas: {', '.join(r[0] for r in known) or 'none'}",
                    details={"warehouse": self.KIND, "scope": str(self.config.scope)},
                )
            params = [catalog, schema]
            objects = cur.execute(
                "SELECT table_name, 'table', comment FROM duckdb_tables() "
                "WHERE database_name = ? AND schema_name = ? AND NOT temporary "
                "UNION ALL "
                "SELECT view_name, 'view', comment FROM duckdb_views() "
                "WHERE database_name = ? AND schema_name = ? AND NOT internal AND NOT temporary "
                "ORDER BY 1",
                params + params,
            ).fetchall()
            columns: dict[str, list[ColumnInfo]] = {}
            for table, name, data_type, comment, nullable in cur.execute(
                "SELECT table_name, column_name, data_type, comment, is_nullable "
                "FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
                "ORDER BY table_name, column_index",
                params,
            ).fetchall():
                columns.setdefault(table, []).append(
                    ColumnInfo(name, data_type, comment or None, bool(nullable))
                )
        finally:
            cur.close()
        return [
            TableInfo(
                name=name,
                kind=kind,
                columns=tuple(columns.get(name, ())),
                description=comment or None,
                schema=schema,
            )
            for name, kind, comment in objects
        ]

    def _list_temp_tables(self, prefix: str) -> list[str]:
        cur = self._cursor()
        try:
            catalog = self._catalog_name(cur)
            rows = cur.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
                "AND schema_name = ? AND starts_with(lower(table_name), ?) ORDER BY 1",
                [catalog, self.config.scope.schema, prefix.lower()],
            ).fetchall()
        finally:
            cur.close()
        return [r[0] for r in rows]

    def _execute_ctas(
        self, sql: str, handle: QueryHandle, timeout_s: float, tag: QueryTag
    ) -> int | None:
        self._refuse_if_read_only("create the segment's result table")
        # Publish the handle before opening the connection: a cancel that lands while the
        # connection is being set up marks it stopped, and the check below refuses to run.
        running = _Running()
        handle.native = running
        with self._lock:
            self._ctas[id(running)] = running
        try:
            cur = self._cursor()
        except BaseException:
            running.done.set()
            with self._lock:
                self._ctas.pop(id(running), None)
            raise
        running.cursor = cur
        timer = threading.Timer(timeout_s, lambda: running.stop(expired=True))
        timer.daemon = True
        try:
            cur.execute("BEGIN TRANSACTION")
            with running.lock:
                if running.stopped:
                    raise self._stopped(running, handle)
                running.executing = True
            timer.start()
            try:
                rows = cur.execute(sql).fetchall()
            finally:
                with running.lock:
                    running.executing = False
            with running.lock:
                # Commit under the lock: a cancel either lands before (rollback) or finds
                # the table committed (the engine's drop-in-finally removes it).
                if running.stopped:
                    raise self._stopped(running, handle)
                cur.execute("COMMIT")
                running.committed = True
            return int(rows[0][0]) if rows and rows[0] else None
        except duckdb.Error as exc:
            # Stopped (cancel, deadline or close): interrupted, or the connection closed under
            # a statement that had not started yet; either way nothing was created.
            if isinstance(exc, duckdb.InterruptException) or running.stopped:
                raise self._stopped(running, handle) from exc
            raise
        finally:
            timer.cancel()
            running.done.set()
            with self._lock:
                self._ctas.pop(id(running), None)
            if not running.committed:
                # Nothing open, or the connection is gone: close() rolls back anyway.
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
            cur.close()

    def _stopped(self, running: _Running, handle: QueryHandle) -> ZerocopyError:
        if running.expired:
            return self._timed_out("the segment query", handle)
        return ZerocopyError(
            errors.CANCELLED,
            "the segment query was cancelled; nothing was created",
            details={"warehouse": self.KIND},
        )

    def _cancel(self, handle: QueryHandle) -> None:
        running = handle.native
        if isinstance(running, _Running):
            running.stop()

    def _read_column(
        self, table: str, column: str, batch_rows: int, ordered: bool = False
    ) -> Iterator[pa.Array]:
        col = exp.to_identifier(column, quoted=True).sql(dialect=self.SQLGLOT_DIALECT)
        sql = f"SELECT {col} FROM {self.quote_table(table)}{self.id_order_by(col, ordered)}"
        cur = self._cursor()
        try:
            # A streaming reader: DuckDB produces one chunk per batch, so memory stays flat.
            reader = cur.sql(sql).to_arrow_reader(batch_rows)
            for batch in reader:
                if batch.num_rows:
                    yield batch.column(0)
        finally:
            cur.close()

    def _drop_table(self, table: str) -> None:
        self._refuse_if_read_only("drop tables")
        cur = self._cursor()
        try:
            cur.execute(self.drop_sql(table))
        finally:
            cur.close()

    READ_CHUNK_ROWS: ClassVar[int] = 200_000
    """At most this many rows per sorted statement of an incremental read (see
    :meth:`_read_incremental`)."""

    READ_SAMPLE_ROWS: ClassVar[int] = 100_000
    """Sampled values of the column the ranges' bounds are taken from (at least 100 a range)."""

    READ_CHUNK_BYTES: ClassVar[int] = 48 * 1024 * 1024
    """Arrow bytes per sorted statement of an incremental read: wide rows make shorter
    ranges (the sort holds a range; 2 kB rows at 200,000 rows a range peaked at 926 MB)."""

    def _read_incremental(
        self, table: str, watermark: Watermark, batch_rows: int, columns: list[str] | None
    ) -> Iterator[pa.RecordBatch]:
        """``WHERE col >= :watermark ORDER BY col``, read as consecutive ranges of ``col``.

        One ``ORDER BY`` over the whole read holds every row it returns in DuckDB's memory
        until the last is fetched (DuckDB sorts before it streams: a bare read peaked at
        289 MB at 1M rows, 406 MB at 2M). Instead the read is cut at values of ``col``
        into ranges ``lo <= col < hi`` of about :attr:`READ_CHUNK_ROWS` rows (fewer for wide
        rows: :attr:`READ_CHUNK_BYTES`), each sorted on its own, so memory stays flat in the
        rows read. The bounds are quantiles of a uniform sample of the column (one pass, all
        bounds at once; exact when the sample holds every row). Whatever the bounds, the
        ranges partition the rows exactly (each row falls between the bounds of one range)
        and come in ``col`` order, so the rows and their order are the single statement's;
        rows tied on one value are never split (a value shared by more rows than a range
        makes one large range). Bounds travel as their text and are cast back to the
        column's type (exact for nanoseconds and infinities). Every statement runs in one
        transaction: one snapshot of the table.
        """

        def quote(name: str) -> str:
            return exp.to_identifier(name, quoted=True).sql(dialect=self.SQLGLOT_DIALECT)

        select = ", ".join(quote(c) for c in columns) if columns else "*"
        col = quote(watermark.column)
        source = self.quote_table(table)
        base: list[str] = []
        params: list[Any] = []
        if watermark.nulls_only:
            base.append(f"{col} IS NULL")
        elif watermark.value is not None:
            # Inclusive: rows tied with the last delivered value come back; the caller
            # de-duplicates them by key (see DESIGN.md, sync).
            base.append(f"{col} >= ?")
            params.append(watermark.value)
        cur = self._cursor()
        with self._lock:
            self._reading[id(cur)] = cur

        def rows(where: list[str], args: list[Any], ordered: bool) -> Iterator[pa.RecordBatch]:
            if self._inst is None:  # closed between two statements of the read
                raise ZerocopyError(
                    errors.CANCELLED,
                    "the incremental read was stopped",
                    details={"warehouse": self.KIND},
                )
            sql = f"SELECT {select} FROM {source}"
            if where:
                sql += " WHERE " + " AND ".join(where)
            if ordered:
                sql += f" ORDER BY {col}"
            reader = cur.sql(sql, params=args or None).to_arrow_reader(batch_rows)
            for batch in reader:
                if batch.num_rows:
                    yield batch

        def range_rows() -> int:
            """Rows a range: :attr:`READ_CHUNK_BYTES` at the width of the first 1,000 rows,
            at most :attr:`READ_CHUNK_ROWS`."""
            probe = f"SELECT {select} FROM {source}"
            if base:
                probe += " WHERE " + " AND ".join(base)
            first = cur.sql(f"{probe} LIMIT 1000", params=params or None).to_arrow_table()
            width = first.nbytes / first.num_rows if first.num_rows else 1.0
            return max(1, min(self.READ_CHUNK_ROWS, int(self.READ_CHUNK_BYTES / max(width, 1.0))))

        def bounds() -> tuple[list[str], str]:
            """The ranges' bounds (as text, ascending) and the column's type: the values
            every range's worth of rows apart, the quantiles of a uniform sample of the
            column (exact when the sample holds every row; else each range is its size give
            or take a few percent)."""
            where = " AND ".join([*base, f"{col} IS NOT NULL"])
            total = cur.execute(f"SELECT count(*) FROM {source} WHERE {where}", params or None)
            count = int(total.fetchall()[0][0])
            parts = -(-count // range_rows())
            if parts <= 1:
                return [], ""
            fractions = ", ".join(repr(i / parts) for i in range(1, parts))
            sample = max(self.READ_SAMPLE_ROWS, 100 * parts)
            found = cur.execute(
                f"SELECT CAST(q AS VARCHAR[]), typeof(q[1]) FROM (SELECT quantile_disc(v, "
                f"[{fractions}]) AS q FROM (SELECT {col} AS v FROM {source} WHERE {where}) "
                f"USING SAMPLE reservoir({int(sample)} ROWS))",
                params or None,
            ).fetchall()
            if not found or not found[0][0]:
                return [], ""
            texts: list[str] = []
            for text in found[0][0]:
                if text is not None and (not texts or texts[-1] != text):
                    texts.append(str(text))
            return texts, str(found[0][1])

        try:
            if watermark.nulls_only:
                # Every row has the same (NULL) value: nothing to order, nothing to hold.
                yield from rows(base, params, ordered=False)
                return
            cur.execute("BEGIN TRANSACTION")
            cuts, kind = bounds()
            if not cuts:
                # All of it fits one range: the plain statement (NULLs last, as always).
                yield from rows(base, params, ordered=True)
                return
            edges: list[str | None] = [None, *cuts, None]
            for lo, hi in itertools.pairwise(edges):
                where, args = list(base), list(params)
                if lo is not None:
                    where.append(f"{col} >= CAST(? AS {kind})")
                    args.append(lo)
                if hi is not None:
                    where.append(f"{col} < CAST(? AS {kind})")
                    args.append(hi)
                yield from rows(where, args, ordered=True)
            if watermark.value is None:
                # Rows without a value come last, as ``ORDER BY`` puts them.
                yield from rows([f"{col} IS NULL"], [], ordered=False)
        finally:
            with self._lock:
                self._reading.pop(id(cur), None)
            with contextlib.suppress(duckdb.Error):
                cur.execute("ROLLBACK")
            cur.close()
