"""PostgreSQL as a warehouse, on psycopg 3.

Only the driver differs from :mod:`dialects.pglike`: connection parameters (``sslmode``),
psycopg's error fields, and reads through a psycopg named (server-side) cursor with
``fetchmany`` (measured 3.8M ids/s here, see DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import psycopg
from psycopg.types.string import TextLoader

from dialects.pglike import PostgresLikeAdapter, RunningStatement, cursor_name, stale_socket
from dialects.protocol import QueryHandle
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
    ) -> Generator[tuple[Sequence[Any], list[Sequence[Any]]], None, None]:
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
