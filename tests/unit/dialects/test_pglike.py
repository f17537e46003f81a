"""The Postgres-like base without a server: exact statements, settings, the error table.

The integration tests run all of this against real servers; these pin the statements and
mappings the peer cannot distinguish (Redshift's own messages, the FETCH statement sequence).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pytest

from dialects.pglike import PostgresLikeAdapter, RunningStatement, _to_array
from dialects.postgres import PostgresAdapter
from dialects.protocol import ConnectionConfig, QueryHandle, QueryTag, Scope
from dialects.redshift import RedshiftAdapter
from zerocopy import errors
from zerocopy.errors import ZerocopyError

ADAPTERS: list[type[PostgresLikeAdapter]] = [PostgresAdapter, RedshiftAdapter]


def config(**settings: Any) -> ConnectionConfig:
    base = {"host": "db.example.com", "database": "analytics", "user": "zerocopy"}
    return ConnectionConfig({**base, **settings}, {"password": "pw"}, Scope("mart"))


class Recorder:
    """A DB-API connection that records statements and answers FETCH from a row list."""

    def __init__(self, rows: list[tuple[Any, ...]] | None = None) -> None:
        self.statements: list[tuple[str, Any]] = []
        self.rows = list(rows or [])
        self.closed = False

    def cursor(self) -> Recorder:
        return self

    def execute(self, sql: str, params: Any = None) -> None:
        self.statements.append((sql, params))
        self._last = sql

    @property
    def description(self) -> list[tuple[str, int]]:
        return [("id", 20)]

    def fetchall(self) -> list[tuple[Any, ...]]:
        if self._last.startswith("FETCH FORWARD"):
            n = int(self._last.split()[2])
            out, self.rows = self.rows[:n], self.rows[n:]
            return out
        return []

    def close(self) -> None:
        self.closed = True


# --------------------------------------------------------------------------- statements
@pytest.mark.parametrize("cls", ADAPTERS)
def test_ctas_is_tagged_and_qualified(cls: type[PostgresLikeAdapter]) -> None:
    adapter = cls(config())
    tag = QueryTag(run_id="r-1", segment_id="seg */ DROP")
    assert adapter.ctas_sql("zc_tmp_r1", "SELECT 1 AS id", tag) == (
        '/* zerocopy:refresh run=r-1 segment=seg  DROP */ CREATE TABLE "mart"."zc_tmp_r1" AS SELECT 1 AS id'
    )
    assert adapter.drop_sql("zc_tmp_r1") == 'DROP TABLE IF EXISTS "mart"."zc_tmp_r1"'


@pytest.mark.parametrize(
    ("seconds", "sql"),
    [(1.5, "SET statement_timeout = 1500"), (0.0001, "SET statement_timeout = 1"),
     (300, "SET statement_timeout = 300000")],
)  # fmt: skip
def test_statement_timeout_is_whole_milliseconds_never_zero(seconds: float, sql: str) -> None:
    assert PostgresLikeAdapter.statement_timeout_sql(seconds) == sql


def test_redshift_streams_with_declare_and_bounded_fetch_forward() -> None:
    adapter = RedshiftAdapter(config(max_fetch_rows=2))
    conn = Recorder([(i,) for i in range(5)])
    batches = list(adapter._stream(conn, "SELECT id FROM t WHERE x >= %s", ("v",), 1000))
    assert [len(rows) for _, rows in batches] == [2, 2, 1]
    sql = [s for s, _ in conn.statements]
    name = sql[1].split()[1]
    assert name.startswith("zc_cur_")
    assert sql == [
        "BEGIN",
        f"DECLARE {name} CURSOR FOR SELECT id FROM t WHERE x >= %s",
        *[f"FETCH FORWARD 2 FROM {name}"] * 4,
        f"CLOSE {name}",
        "COMMIT",
    ]
    assert conn.statements[1][1] == ("v",)


def test_redshift_rolls_back_when_the_reader_stops_early() -> None:
    adapter = RedshiftAdapter(config())
    conn = Recorder([(i,) for i in range(10)])
    stream = adapter._stream(conn, "SELECT id FROM t", (), 3)
    next(stream)
    stream.close()
    assert conn.statements[-1][0] == "ROLLBACK"


# --------------------------------------------------------------------------- cancel
class _Cancelling(PostgresAdapter):
    def __init__(self, cfg: ConnectionConfig, conn: Recorder) -> None:
        super().__init__(cfg)
        self.conn = conn

    @contextmanager
    def _session(self) -> Iterator[Any]:
        yield self.conn


def test_cancel_signals_the_captured_pid_until_the_statement_returns() -> None:
    conn = Recorder()
    adapter = _Cancelling(config(), conn)
    state = RunningStatement(pid=4242)
    handle = QueryHandle(table="t", session_id="4242", native=state)
    threading.Timer(0.3, state.done.set).start()
    adapter._cancel(handle)
    assert state.cancel_requested
    assert {s for s in conn.statements} == {("SELECT pg_cancel_backend(%s)", (4242,))}
    assert 1 <= len(conn.statements) <= 3


def test_cancel_before_the_pid_is_known_only_flags_the_run() -> None:
    conn = Recorder()
    adapter = _Cancelling(config(), conn)
    state = RunningStatement()
    adapter._cancel(QueryHandle(table="t", session_id="1; SELECT 1", native=state))
    assert state.cancel_requested and conn.statements == []


@pytest.mark.parametrize(("asked", "code"), [(True, errors.CANCELLED), (False, errors.TIMED_OUT)])
def test_query_canceled_is_ours_cancel_or_the_statement_timeout(asked: bool, code: str) -> None:
    adapter = RedshiftAdapter(config())
    exc = Exception({"C": "57014", "M": "Query (1234) cancelled on user's request"})
    state = RunningStatement(pid=1, cancel_requested=asked)
    err = adapter._statement_error(exc, state, QueryHandle(query_id="1"), 1.0)
    assert err.code == code


# --------------------------------------------------------------------------- error table
def _redshift_error(sqlstate: str, message: str) -> Exception:
    return Exception({"S": "ERROR", "C": sqlstate, "M": message})


@pytest.mark.parametrize(
    ("sqlstate", "message", "code", "says"),
    [
        ("28P01", 'password authentication failed for user "zerocopy"', errors.AUTH_FAILED, "password"),
        ("28000", 'role "zerocopy" is not permitted to log in', errors.AUTH_FAILED, "may log in"),
        ("42501", "permission denied for schema mart", errors.PERMISSION_DENIED,
         "GRANT USAGE, CREATE ON SCHEMA mart TO zerocopy"),
        ("42501", "permission denied for relation events", errors.PERMISSION_DENIED,
         "GRANT SELECT ON mart.events TO zerocopy"),
        ("42501", "permission denied for table events", errors.PERMISSION_DENIED,
         "GRANT SELECT ON mart.events TO zerocopy"),
        ("3F000", 'schema "mart" does not exist', errors.SCOPE_NOT_FOUND, "mart"),
        ("3D000", 'database "analytics" does not exist', errors.SCOPE_NOT_FOUND, "analytics"),
        ("53300", "sorry, too many clients already", errors.WAREHOUSE_BUSY, "retry"),
        ("08006", "connection failure", errors.UNREACHABLE, "connection"),
        ("22012", "division by zero", errors.WAREHOUSE_ERROR, "division by zero"),
        ("XX000", "Assert", errors.WAREHOUSE_ERROR, "Assert"),
    ],
)  # fmt: skip
def test_sqlstate_first_then_message(sqlstate: str, message: str, code: str, says: str) -> None:
    err = RedshiftAdapter(config()).map_error(_redshift_error(sqlstate, message))
    assert err.code == code
    assert says in err.message
    assert err.details["sqlstate"] == sqlstate and err.details["warehouse"] == "redshift"


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (Exception("communication error", ConnectionRefusedError(111, "Connection refused")), errors.UNREACHABLE),
        (Exception('connection failed: could not translate host name "nope" to address'), errors.UNREACHABLE),
        (Exception("connection failed: FATAL:  password authentication failed for user \"u\""), errors.AUTH_FAILED),
        (Exception('FATAL:  role "u" does not exist'), errors.AUTH_FAILED),
        (Exception("something else entirely"), errors.WAREHOUSE_ERROR),
    ],
)  # fmt: skip
def test_errors_without_sqlstate_use_the_message_table(exc: Exception, code: str) -> None:
    assert PostgresAdapter(config()).map_error(exc).code == code


def test_password_never_appears_in_a_mapped_error() -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    cfg = ConnectionConfig(config().settings, {"password": secret}, Scope("mart"))
    err = PostgresAdapter(cfg).map_error(Exception("password authentication failed"))
    assert secret not in repr(err) + str(err.to_dict())


# --------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("settings", "secrets", "field"),
    [
        ({"database": "d", "user": "u"}, {}, "host"),
        ({"host": "h", "database": "d", "user": "u", "password": "x"}, {}, "password"),
        ({"host": "h", "database": "d", "user": "u", "port": "54x"}, {}, "port"),
        ({"host": "h", "database": "d", "user": "u", "ssh_tunnel": {"host": "b"}}, {"ssh_private_key": "k"}, "ssh_tunnel"),
        ({"host": "h", "database": "d", "user": "u", "ssh_tunnel": {"host": "b", "user": "z"}}, {}, "ssh_private_key"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("cls", ADAPTERS)
def test_credential_check_names_the_field(
    cls: type[PostgresLikeAdapter], settings: dict[str, Any], secrets: dict[str, str], field: str
) -> None:
    with pytest.raises(ZerocopyError) as caught:
        cls.check_credential(settings, secrets)
    assert caught.value.code == errors.INVALID_CREDENTIAL
    assert caught.value.details["field"] == field


@pytest.mark.parametrize(("cls", "port"), [(PostgresAdapter, 5432), (RedshiftAdapter, 5439)])
def test_default_ports(cls: type[PostgresLikeAdapter], port: int) -> None:
    assert cls(config())._endpoint() == ("db.example.com", port)
    assert cls(config(port=6000))._endpoint() == ("db.example.com", 6000)


def test_arrow_types_follow_the_column_oid() -> None:
    assert _to_array([1, None, 3], 20).type == pa.int64()
    assert _to_array([], 1043).type == pa.string()
    assert _to_array([uuid.UUID(int=1)], 2950).to_pylist() == [str(uuid.UUID(int=1))]
    assert _to_array([None], None).type == pa.null()
