"""PostgreSQL as a warehouse, on psycopg 3.

Only the driver differs from :mod:`dialects.pglike`: connection parameters (``sslmode``),
psycopg's error fields, and reads through a psycopg named (server-side) cursor with
``fetchmany`` (measured 3.8M ids/s here, see DESIGN.md). Incremental reads of the usual
column types go through ``COPY (SELECT …) TO STDOUT`` in CSV, parsed by Arrow's CSV reader
(:func:`_copy_batches`): no Python object per value.
"""

from __future__ import annotations

import select
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import pq
from psycopg.types.string import TextLoader

from dialects.pglike import (
    _ARROW_BY_OID,
    PostgresLikeAdapter,
    RunningStatement,
    _oid,
    cursor_name,
    rows_batch,
    stale_socket,
)
from dialects.protocol import QueryHandle, Watermark
from zerocopy import errors
from zerocopy.errors import ZerocopyError


class PostgresAdapter(PostgresLikeAdapter):
    """A PostgreSQL database; the scope is a schema in the connection's database."""

    KIND = "postgres"
    # Byte order of the ids' text form whatever the database's locale, and whatever the id
    # column's type (COLLATE alone fails on a bigint/numeric/uuid column; the engine compares
    # ids as text). A text column's cast to text is a no-op.
    ID_ORDER = 'CAST({col} AS text) COLLATE "C"'
    SQLGLOT_DIALECT = "postgres"
    DEFAULT_PORT = 5432
    REUSABLE = True
    MATERIALIZED_VIEWS = True
    PARTITIONS = True
    MAX_IDLE_CONNECTIONS = 4  # the default per-source limit: a kept adapter reconnects rarely

    DEFAULT_SSLMODE = "prefer"
    """libpq ``sslmode`` when the ``sslmode`` setting is absent (``require`` in production)."""

    def _driver_connect(self, host: str, port: int) -> Any:
        settings = self.config.settings
        password = self.config.secrets.get("password")
        params: dict[str, Any] = {
            "host": host,
            "port": port,
            "dbname": self.database,
            "user": self.user,
            "connect_timeout": self.CONNECT_TIMEOUT_S,
            "application_name": "zerocopy",
            "sslmode": str(settings.get("sslmode") or self.DEFAULT_SSLMODE),
            # A CTAS can sit silent for its whole max runtime; keep NATs and bastions from
            # dropping the idle-looking TCP connection meanwhile.
            "keepalives": 1,
            "keepalives_idle": 60,
        }
        if password:
            params["password"] = password
        conn = psycopg.connect(autocommit=True, **params)
        # JSON stays text: ingestion validates payloads itself and Arrow wants one type.
        for name in ("json", "jsonb"):
            conn.adapters.register_loader(name, TextLoader)
        return conn

    def _timed_ctas(
        self, conn: Any, sql: str, timeout_s: float, state: RunningStatement, handle: QueryHandle
    ) -> Any:
        """``SET statement_timeout; <CTAS>; RESET statement_timeout`` in one round trip.

        psycopg sends a query without parameters as one simple-protocol message, which the
        server runs as one implicit transaction, statement by statement, each under the
        timeout then in force: the CTAS runs under the run's timeout, and the session has
        none afterwards, whether the CTAS succeeded (the ``RESET``) or failed (the failure
        rolls the ``SET`` back with the implicit transaction).
        """
        if state.cancel_requested:
            raise ZerocopyError(errors.CANCELLED, "the segment query was cancelled")
        cur = conn.cursor()
        try:
            # Newlines: a trailing line comment in the query must not swallow the RESET.
            cur.execute(
                f"{self.statement_timeout_sql(timeout_s)};\n{sql}\n;RESET statement_timeout"
            )
            cur.nextset()  # the SET's result, then the CTAS's
            return cur.rowcount
        except Exception as exc:
            raise self._statement_error(exc, state, handle, timeout_s) from exc
        finally:
            cur.close()

    def _read_incremental(
        self, table: str, watermark: Watermark, batch_rows: int, columns: list[str] | None
    ) -> Iterator[pa.RecordBatch]:
        """COPY in CSV parsed by Arrow when every column's type allows (see
        :data:`_COPY_OIDS`), else the cursor path; the same batches either way."""
        sql, params = self._incremental_query(table, watermark, columns)
        with self._session() as conn:
            description = _copy_description(conn, sql, params)
            if description is None:
                for found, rows in self._stream(conn, sql, params, batch_rows):
                    yield rows_batch(found, rows)
                return
            yield from _copy_batches(conn, sql, params, description, batch_rows)

    def _is_usable(self, conn: Any) -> bool:
        if conn.closed or conn.broken:
            return False
        try:
            return not stale_socket(conn.fileno())
        except Exception:
            return False

    def _error_fields(self, exc: BaseException) -> tuple[str | None, str]:
        sqlstate = getattr(exc, "sqlstate", None)
        diag = getattr(exc, "diag", None)
        primary = getattr(diag, "message_primary", None) if diag is not None else None
        return sqlstate, str(primary or exc).strip() or type(exc).__name__

    def _stream(
        self, conn: Any, sql: str, params: Sequence[Any], fetch_rows: int
    ) -> Iterator[tuple[Sequence[Any], list[Sequence[Any]]]]:
        # A named cursor is DECLARE … CURSOR / FETCH FORWARD n under the hood; it needs a
        # transaction on an autocommit session.
        with conn.transaction(), conn.cursor(name=cursor_name()) as cur:
            cur.itersize = fetch_rows
            cur.execute(sql, tuple(params) if params else None)
            description = cur.description or []
            while True:
                rows = cur.fetchmany(fetch_rows)
                if not rows:
                    break
                yield description, rows
                del rows  # before the next fetch builds its rows


# ---------------------------------------------------------------------------- COPY reads
_COPY_OIDS = frozenset({16, 19, 20, 21, 23, 25, 114, 1042, 1043, 1082, 1114, 1184, 3802})
"""Column types whose CSV text Arrow parses to exactly what the cursor path builds (the same
Arrow type, :data:`dialects.pglike._ARROW_BY_OID`): text-like (text, varchar, bpchar, name,
json, jsonb), integers, boolean, date, timestamps. Any other column (numeric, floats, uuid,
arrays …) keeps the whole read on the cursor path."""

_COPY_SETTINGS = "SET LOCAL TimeZone TO 'UTC'; SET LOCAL DateStyle TO 'ISO, YMD'; "
"""The text form Arrow parses: ISO dates, ``timestamptz`` in UTC (``…+00``)."""


def _copy_description(conn: Any, sql: str, params: Sequence[Any]) -> list[Any] | None:
    """The result columns of ``sql`` if COPY can read it (every column of a
    :data:`_COPY_OIDS` type, distinct names, a UTF-8 session), else ``None``. A ``LIMIT 0``
    run of the query tells."""
    if conn.info.encoding != "utf-8":
        return None
    cur = conn.cursor()
    try:
        cur.execute(f"{sql} LIMIT 0", tuple(params) if params else None)
        description = list(cur.description or [])
    finally:
        cur.close()
    names = [d[0] for d in description]
    if (
        description
        and len(set(names)) == len(names)
        and all(_oid(d) in _COPY_OIDS for d in description)
    ):
        return description
    return None


def _copy_batches(
    conn: Any, sql: str, params: Sequence[Any], description: list[Any], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """``sql`` streamed by ``COPY (…) TO STDOUT (FORMAT csv)``, as Arrow batches of
    ``batch_rows`` rows (the server sends one CopyData message per row).

    One transaction (``SET LOCAL`` of the text forms, the COPY, ``COMMIT``) sent as one
    simple query over the session's libpq connection. The copy data is read without
    blocking and the socket waited on with ``select`` (no GIL held while the server works);
    a batch's rows are joined and parsed by Arrow with the types the cursor path gives
    (``NULL`` is an unquoted empty field, an empty string a quoted one). On an early exit
    (error, cancel, the consumer closing the generator) the session is mid-COPY: it is
    closed, never reused.
    """
    query = psycopg.ClientCursor(conn).mogrify(sql, tuple(params) if params else None)
    pgconn = conn.pgconn
    fd = pgconn.socket
    encoding = conn.info.encoding
    done = False
    try:
        names = [d[0] for d in description]
        slots = [f"c{i}" for i in range(len(description))]
        types = {
            slot: _ARROW_BY_OID[_oid(d) or 0] for slot, d in zip(slots, description, strict=True)
        }
        options = {
            "read_options": pacsv.ReadOptions(column_names=slots, use_threads=False),
            "parse_options": pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            "convert_options": pacsv.ConvertOptions(
                column_types=types,
                null_values=[""],
                true_values=["t"],
                false_values=["f"],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        }
        pgconn.send_query(
            f"BEGIN; {_COPY_SETTINGS}COPY ({query}) TO STDOUT (FORMAT csv); COMMIT".encode(encoding)
        )
        copying = False
        while not copying:
            res = _next_result(pgconn, fd)
            if res is None:
                raise psycopg.OperationalError("the server ended the COPY before it started")
            if res.status == pq.ExecStatus.COPY_OUT:
                copying = True
            elif res.status != pq.ExecStatus.COMMAND_OK:
                raise psycopg.errors.error_from_result(res, encoding=encoding)
        parts: list[Any] = []
        while True:
            nbytes, data = pgconn.get_copy_data(1)
            if nbytes > 0:
                parts.append(data)
                if len(parts) >= batch_rows:
                    yield _parse(parts, names, options)
                    parts = []
            elif nbytes == 0:
                _wait_readable(pgconn, fd)
            else:
                break
        if parts:
            yield _parse(parts, names, options)
        while (res := _next_result(pgconn, fd)) is not None:
            if res.status != pq.ExecStatus.COMMAND_OK:
                raise psycopg.errors.error_from_result(res, encoding=encoding)
        done = True
    finally:
        if not done:
            conn.close()  # mid-COPY or mid-transaction: no statement can follow


def _parse(parts: list[Any], names: list[str], options: dict[str, Any]) -> pa.RecordBatch:
    """Arrow batch of the CSV lines ``parts`` (one row each)."""
    data = b"".join(parts)
    parts.clear()
    try:
        table = pacsv.read_csv(pa.py_buffer(data), **options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        # A value Arrow cannot hold where the cursor path's driver could not either
        # (a date before year 1 or after 9999): the driver's error class.
        raise psycopg.DataError(f"a value could not be read: {exc}") from exc
    del data
    arrays = [table.column(i).combine_chunks() for i in range(table.num_columns)]
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _wait_readable(pgconn: Any, fd: int) -> None:
    """Block (without the GIL) until the server sent more, then take it into libpq."""
    select.select([fd], [], [])
    pgconn.consume_input()


def _next_result(pgconn: Any, fd: int) -> Any:
    """The next result of the query in flight, waiting for it without blocking in libpq."""
    pgconn.consume_input()
    while pgconn.is_busy():
        _wait_readable(pgconn, fd)
    return pgconn.get_result()
