"""Amazon Redshift, on ``redshift_connector``.

Differences from :mod:`dialects.pglike`: the driver (port 5439, TLS on by default, errors
carry the server's fields as a dict), reads through an explicit ``DECLARE … CURSOR`` /
``FETCH FORWARD n`` because ``redshift_connector`` buffers a whole result inside
``execute()``, and late-binding views, whose columns only
``pg_get_late_binding_view_cols()`` knows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Sequence
from typing import Any, ClassVar

import redshift_connector

from dialects.pglike import PostgresLikeAdapter, cursor_name, stale_socket
from dialects.protocol import ColumnInfo

_LATE_BINDING_SQL = """
SELECT col_name, col_type, view_name
FROM pg_get_late_binding_view_cols()
     cols(view_schema name, view_name name, col_name name, col_type varchar, col_num int)
WHERE view_schema = %s
ORDER BY view_name, col_num
"""


class RedshiftAdapter(PostgresLikeAdapter):
    """An Amazon Redshift cluster or Serverless workgroup; the scope is a schema."""

    KIND = "redshift"
    # Redshift has no locale collations: VARCHAR sorts by bytes (COLLATE "C" is not accepted).
    ID_ORDER = "CAST({col} AS VARCHAR)"  # byte order of the text form, whatever the type
    SQLGLOT_DIALECT = "redshift"
    DEFAULT_PORT = 5439
    LATE_BINDING_VIEWS = True

    MAX_FETCH_ROWS: ClassVar[int] = 100_000
    """Upper bound per ``FETCH FORWARD``; single-node clusters allow at most 1000 (setting ``max_fetch_rows``)."""

    def _driver_connect(self, host: str, port: int) -> Any:
        settings = self.config.settings
        conn = redshift_connector.connect(
            host=host,
            port=port,
            database=self.database,
            user=self.user,
            password=self.config.secrets.get("password", ""),
            ssl=_flag(settings.get("ssl"), default=True),
            sslmode=str(settings.get("sslmode") or "verify-ca"),
            timeout=self.CONNECT_TIMEOUT_S,
            application_name="zerocopy",
        )
        # The driver keeps its connect timeout as the socket's read timeout, which would
        # abort any statement running longer; the deadline is enforced by statement_timeout
        # and our watchdog instead.
        sock = getattr(conn, "_usock", None)
        if sock is not None:
            sock.settimeout(None)
        conn.autocommit = True
        return conn

    def _error_fields(self, exc: BaseException) -> tuple[str | None, str]:
        # Server errors arrive as ProgrammingError({'C': sqlstate, 'M': message, ...}).
        fields = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else None
        if fields is not None:
            return fields.get("C"), str(fields.get("M") or exc)
        return None, " ".join(str(a) for a in exc.args) or type(exc).__name__

    def _is_usable(self, conn: Any) -> bool:
        sock = getattr(conn, "_usock", None)
        if sock is None:
            return True
        try:
            return not stale_socket(sock.fileno())
        except Exception:
            return False

    def _fetch_rows(self, batch_rows: int) -> int:
        cap = int(self.config.settings.get("max_fetch_rows") or self.MAX_FETCH_ROWS)
        return max(1, min(batch_rows, cap))

    def _stream(
        self, conn: Any, sql: str, params: Sequence[Any], fetch_rows: int
    ) -> Generator[tuple[Sequence[Any], Sequence[Sequence[Any]]], None, None]:
        name = cursor_name()
        n = self._fetch_rows(fetch_rows)
        cur = conn.cursor()
        cur.execute("BEGIN")
        try:
            cur.execute(f"DECLARE {name} CURSOR FOR {sql}", tuple(params) if params else None)
            while True:
                cur.execute(f"FETCH FORWARD {n} FROM {name}")
                rows = cur.fetchall()  # a tuple; the driver's own buffer is left empty
                if not rows:
                    break
                yield cur.description, rows
                del rows  # before the next FETCH builds its rows
            cur.execute(f"CLOSE {name}")
            cur.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                cur.execute("ROLLBACK")
            raise
        finally:
            cur.close()

    def _late_binding_columns(self, conn: Any, schema: str) -> dict[str, list[ColumnInfo]]:
        """Columns of ``WITH NO SCHEMA BINDING`` views, absent from ``information_schema.columns``."""
        found: dict[str, list[ColumnInfo]] = {}
        for name, data_type, view in self._query(conn, _LATE_BINDING_SQL, (schema,)):
            found.setdefault(view, []).append(ColumnInfo(name, data_type))
        return found


def _flag(value: Any, *, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)
