"""What the Snowflake adapter sends to the driver where the fakesnow peer cannot show it.

``snowflake.connector.connect`` is replaced by a recorder (the driver boundary only: our
adapter, base class and error mapping run for real). The recorder answers like Snowflake:
``execute_async`` hands out a query id, ``get_query_status_throw_if_error`` reports RUNNING
until ``SYSTEM$CANCEL_QUERY`` names that id (then raises the driver's own 000604 error),
and a scripted status can raise Snowflake's 000630 statement timeout.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import anyio
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from snowflake.connector import errors as sf_errors
from snowflake.connector.constants import QueryStatus

from dialects.protocol import ConnectionConfig, QueryHandle, QueryTag, Scope
from dialects.registry import create_adapter
from dialects.snowflake import SnowflakeAdapter, statement_timeout_s
from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.secrets.keypairs import generate_rsa_keypair

PEM = generate_rsa_keypair().private_key_pem


class Recorder:
    """Every driver call, in order, across all connections the adapter opens."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.connects: list[dict[str, Any]] = []
        self.cancelled: set[str] = set()
        self.status: Any = None  # None: run until cancelled; else a QueryStatus or exception
        self.lock = threading.Lock()

    def connect(self, **kwargs: Any) -> FakeConnection:
        self.connects.append(kwargs)
        return FakeConnection(self, len(self.connects) - 1)

    def sql(self) -> list[str]:
        return [c[2] for c in self.calls if c[0] in ("execute", "execute_async")]


class FakeCursor:
    def __init__(self, rec: Recorder, conn_no: int) -> None:
        self.rec, self.conn_no = rec, conn_no
        self.sfqid: str | None = None
        self.description: list[tuple[str]] = []
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, params: Any = None) -> FakeCursor:
        self.rec.calls.append(("execute", self.conn_no, sql, params))
        if sql.startswith("SELECT SYSTEM$CANCEL_QUERY('"):
            self.rec.cancelled.add(sql.split("'")[1])
            self._rows = [("Identified SQL statement is being canceled.",)]
        elif "SCHEMATA" in sql:
            self._rows = [("ANALYTICS",)]
        else:
            self._rows = []
        return self

    def execute_async(self, sql: str) -> dict[str, Any]:
        self.sfqid = str(uuid.uuid4())
        self.rec.calls.append(("execute_async", self.conn_no, sql, self.sfqid))
        return {"queryId": self.sfqid}

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def close(self) -> None:
        pass


class FakeConnection:
    def __init__(self, rec: Recorder, no: int) -> None:
        self.rec, self.no = rec, no
        self.closed = False
        self.session_id = 1000 + no

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.rec, self.no)

    def is_closed(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True
        self.rec.calls.append(("close", self.no))

    def get_query_status_throw_if_error(self, qid: str) -> QueryStatus:
        self.rec.calls.append(("status", self.no, qid))
        if qid in self.rec.cancelled:
            raise sf_errors.ProgrammingError(
                msg="SQL execution canceled", errno=604, sqlstate="57014", sfqid=qid
            )
        if isinstance(self.rec.status, BaseException):
            raise self.rec.status
        return self.rec.status or QueryStatus.RUNNING

    @staticmethod
    def is_still_running(status: QueryStatus) -> bool:
        return status in (QueryStatus.RUNNING, QueryStatus.QUEUED)


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    import snowflake.connector

    recorder = Recorder()
    monkeypatch.setattr(snowflake.connector, "connect", recorder.connect)
    return recorder


def make_adapter(max_runtime_s: float = 300.0, **settings: Any) -> SnowflakeAdapter:
    config = ConnectionConfig(
        settings={
            "account": "acme-prod",
            "user": "ZEROCOPY",
            "role": "ZEROCOPY_ROLE",
            "warehouse": "ZC_WH",
            **settings,
        },
        secrets={"private_key": PEM},
        scope=Scope.parse("analytics.mkt"),
        max_runtime_s=max_runtime_s,
    )
    adapter = create_adapter("snowflake", config)
    assert isinstance(adapter, SnowflakeAdapter)
    return adapter


TAG = QueryTag(run_id="run-1", segment_id="seg-9", workspace_id="ws-3")
SELECT = 'SELECT DISTINCT "USER_ID" FROM "ANALYTICS"."MKT"."USERS"'
CTAS = (
    'CREATE TRANSIENT TABLE "ANALYTICS"."MKT"."zc_tmp_run1" AS SELECT DISTINCT "USER_ID" '
    'FROM "ANALYTICS"."MKT"."USERS"'
)


# ------------------------------------------------------------------------------ login
def test_login_is_key_pair_only_with_tag_and_timeout_in_the_session(rec: Recorder) -> None:
    adapter = make_adapter(max_runtime_s=90)
    adapter._shared()
    (kwargs,) = rec.connects
    assert kwargs["authenticator"] == "SNOWFLAKE_JWT"
    assert isinstance(kwargs["private_key"], rsa.RSAPrivateKey)
    assert "password" not in kwargs
    assert kwargs["account"] == "acme-prod" and kwargs["user"] == "ZEROCOPY"
    assert kwargs["role"] == "ZEROCOPY_ROLE" and kwargs["warehouse"] == "ZC_WH"
    assert kwargs["session_parameters"] == {
        "QUERY_TAG": "zerocopy",
        "STATEMENT_TIMEOUT_IN_SECONDS": 90,
    }
    assert "host" not in kwargs and "protocol" not in kwargs  # only the peer overrides these


def test_statement_timeout_rounds_up_to_whole_seconds() -> None:
    assert statement_timeout_s(0.2) == 1
    assert statement_timeout_s(12.01) == 13
    assert statement_timeout_s(30) == 30


# ------------------------------------------------------------------------------ materialize
@pytest.mark.anyio
async def test_materialize_runs_async_in_its_own_tagged_session(rec: Recorder) -> None:
    rec.status = QueryStatus.SUCCESS
    adapter = make_adapter()
    started = anyio.current_time()
    result = await adapter.materialize(SELECT, "zc_tmp_run1", deadline=started + 42.4, tag=TAG)
    (kwargs,) = rec.connects
    assert kwargs["session_parameters"] == {
        "QUERY_TAG": "zerocopy:refresh run=run-1 segment=seg-9 workspace=ws-3",
        "STATEMENT_TIMEOUT_IN_SECONDS": 43,
    }
    assert rec.sql() == ['USE SCHEMA "ANALYTICS"."MKT"', CTAS]
    qid = rec.calls[1][3]
    assert result.query_id == qid
    assert ("status", 0, qid) in rec.calls
    assert rec.calls[-1] == ("close", 0)


@pytest.mark.anyio
async def test_deadline_cancels_by_query_id_from_the_shared_session(rec: Recorder) -> None:
    adapter = make_adapter(max_runtime_s=0.5)
    started = anyio.current_time()
    with pytest.raises(ZerocopyError) as caught:
        await adapter.materialize(SELECT, "zc_tmp_run1", deadline=started + 0.5, tag=TAG)
    elapsed = anyio.current_time() - started
    assert caught.value.code == errors.TIMED_OUT
    qid = next(c[3] for c in rec.calls if c[0] == "execute_async")
    assert caught.value.details["query_id"] == qid
    assert rec.connects[0]["session_parameters"]["STATEMENT_TIMEOUT_IN_SECONDS"] == 1
    cancel = [c for c in rec.calls if c[0] == "execute" and "CANCEL" in c[2]]
    assert cancel == [("execute", 1, f"SELECT SYSTEM$CANCEL_QUERY('{qid}')", None)]
    # The poll loop saw the cancel (000604) and the CTAS session was closed, well within grace.
    assert ("close", 0) in rec.calls
    assert elapsed < 0.5 + adapter.CANCEL_GRACE_S


@pytest.mark.anyio
async def test_user_cancel_issues_system_cancel_query(rec: Recorder) -> None:
    adapter = make_adapter()
    outcome: list[str] = []

    async def refresh() -> None:
        try:
            await adapter.materialize(
                SELECT, "zc_tmp_run1", deadline=anyio.current_time() + 60, tag=TAG
            )
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise

    async with anyio.create_task_group() as tg:
        tg.start_soon(refresh)
        with anyio.fail_after(5):
            # The driver's calls happen in a worker thread: poll what it recorded.
            while not any(c[0] == "status" for c in rec.calls):  # noqa: ASYNC110
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert outcome == ["cancelled"]
    qid = next(c[3] for c in rec.calls if c[0] == "execute_async")
    assert f"SELECT SYSTEM$CANCEL_QUERY('{qid}')" in rec.sql()
    assert ("close", 0) in rec.calls


def test_server_statement_timeout_maps_to_timed_out(rec: Recorder) -> None:
    """Snowflake's own 000630 (what fakesnow cannot raise), via the hook without our watchdog."""
    adapter = make_adapter()
    rec.status = sf_errors.ProgrammingError(
        msg="Statement reached its statement or warehouse timeout of 1 second(s) and was canceled.",
        errno=630,
        sqlstate="57014",
        sfqid="01b2c3d4-0000-1111-0000-000123456789",
    )
    handle = QueryHandle(table="zc_tmp_run1")
    with pytest.raises(sf_errors.ProgrammingError) as caught:
        adapter._execute_ctas(adapter.ctas_sql("zc_tmp_run1", SELECT, TAG), handle, 1.0, TAG)
    mapped = adapter.map_error(caught.value, handle)
    assert mapped.code == errors.TIMED_OUT
    assert mapped.details["query_id"] == "01b2c3d4-0000-1111-0000-000123456789"
    assert rec.connects[0]["session_parameters"]["STATEMENT_TIMEOUT_IN_SECONDS"] == 1


def test_cancel_validates_the_query_id_before_sql(rec: Recorder) -> None:
    adapter = make_adapter()
    with pytest.raises(ValueError):
        adapter.cancel_sql("x'); DROP TABLE users; --")
    with pytest.raises(ValueError):
        adapter._cancel(QueryHandle(query_id="01b2c3d4-0000-1111-0000-00012345678'"))
    adapter._cancel(QueryHandle(query_id=None))  # not started: nothing to cancel
    assert rec.sql() == []
    assert (
        adapter.cancel_sql("01B2C3D4-0000-1111-0000-000123456789")
        == "SELECT SYSTEM$CANCEL_QUERY('01B2C3D4-0000-1111-0000-000123456789')"
    )


# ------------------------------------------------------------------------------ SQL shapes
def test_names_scope_like_unquoted_identifiers_tables_exactly() -> None:
    adapter = make_adapter()
    assert adapter.quote_table("zc_tmp_ab") == '"ANALYTICS"."MKT"."zc_tmp_ab"'
    assert adapter.ctas_sql("T", "SELECT 1", TAG) == (
        'CREATE TRANSIENT TABLE "ANALYTICS"."MKT"."T" AS SELECT 1'
    )
    assert adapter.drop_sql("zc_tmp_ab") == 'DROP TABLE IF EXISTS "ANALYTICS"."MKT"."zc_tmp_ab"'
    mixed = ConnectionConfig(
        settings=dict(adapter.config.settings),
        secrets={"private_key": PEM},
        scope=Scope.parse("Sales.weird db"),
    )
    other = SnowflakeAdapter(mixed)
    assert other.scope_sql() == '"Sales"."weird db"'


def test_list_tables_reads_information_schema_in_the_scope(rec: Recorder) -> None:
    adapter = make_adapter()
    assert adapter._list_tables() == []
    sql = rec.sql()
    assert sql[0].startswith('SELECT SCHEMA_NAME FROM "ANALYTICS".INFORMATION_SCHEMA.SCHEMATA')
    assert any('"ANALYTICS".INFORMATION_SCHEMA.TABLES' in s for s in sql)
    assert any('"ANALYTICS".INFORMATION_SCHEMA.VIEWS' in s for s in sql)
    assert any("INFORMATION_SCHEMA.COLUMNS" in s and "ORDINAL_POSITION" in s for s in sql)
    params = [c[3] for c in rec.calls if c[0] == "execute"]
    assert all(p == ("MKT",) for p in params)


# ------------------------------------------------------------------------------ errors
def _err(cls: type[Exception], msg: str, errno: int, sqlstate: str = "", **kw: Any) -> Exception:
    return cls(msg=msg, errno=errno, sqlstate=sqlstate, **kw)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (_err(sf_errors.DatabaseError, "JWT token is invalid.", 390144, "08001"), "auth_failed"),
        (
            _err(
                sf_errors.DatabaseError,
                "Incorrect username or password was specified.",
                390100,
                "08004",
            ),
            "auth_failed",
        ),
        (
            _err(
                sf_errors.OperationalError,
                "Could not connect to Snowflake backend after 2 attempt(s).Aborting",
                250001,
            ),
            "unreachable",
        ),
        (
            _err(
                sf_errors.ProgrammingError,
                "SQL compilation error:\nDatabase 'NOPE' does not exist or not authorized.",
                2003,
                "02000",
            ),
            "scope_not_found",
        ),
        (
            _err(
                sf_errors.ProgrammingError,
                "SQL compilation error:\nSchema 'ANALYTICS.NOPE' does not exist or not authorized.",
                2003,
                "02000",
            ),
            "scope_not_found",
        ),
        (_err(sf_errors.ProgrammingError, "SQL execution canceled", 604, "57014"), "cancelled"),
        (
            _err(
                sf_errors.ProgrammingError,
                "Statement reached its statement or warehouse timeout of 5 second(s) and was canceled.",
                630,
                "57014",
            ),
            "timed_out",
        ),
    ],
)
def test_error_table(exc: Exception, code: str) -> None:
    assert make_adapter().map_error(exc).code == code


def test_missing_create_table_names_the_grant() -> None:
    exc = _err(
        sf_errors.ProgrammingError,
        "SQL access control error:\nInsufficient privileges to operate on schema 'MKT'",
        3001,
        "42501",
        sfqid="01b2c3d4-0000-1111-0000-000123456789",
    )
    mapped = make_adapter().map_error(exc, QueryHandle(table="zc_tmp_x"))
    assert mapped.code == errors.PERMISSION_DENIED
    grant = "GRANT CREATE TABLE ON SCHEMA ANALYTICS.MKT TO ROLE ZEROCOPY_ROLE"
    assert mapped.details["grant"] == grant
    assert grant in mapped.message
    assert mapped.details["query_id"] == "01b2c3d4-0000-1111-0000-000123456789"


@pytest.mark.parametrize(
    ("msg", "errno", "grant"),
    [
        (
            "SQL access control error:\nInsufficient privileges to operate on table 'USERS'",
            3001,
            "GRANT SELECT ON ALL TABLES IN SCHEMA ANALYTICS.MKT TO ROLE ZEROCOPY_ROLE",
        ),
        (
            "No active warehouse selected in the current session.  Select an active warehouse "
            "with the 'use warehouse' command.",
            606,
            "GRANT USAGE ON WAREHOUSE ZC_WH TO ROLE ZEROCOPY_ROLE",
        ),
        (
            "Role 'ZEROCOPY_ROLE' specified in the connect string is not granted to this user. "
            "Contact your local system administrator, or attempt to login with another role, "
            "e.g. PUBLIC.",
            390189,
            "GRANT ROLE ZEROCOPY_ROLE TO USER ZEROCOPY",
        ),
    ],
)
def test_other_missing_grants(msg: str, errno: int, grant: str) -> None:
    mapped = make_adapter().map_error(_err(sf_errors.ProgrammingError, msg, errno, "42501"))
    assert mapped.code == errors.PERMISSION_DENIED
    assert mapped.details["grant"] == grant


def test_other_errors_carry_message_and_query_id() -> None:
    exc = _err(
        sf_errors.ProgrammingError,
        "SQL compilation error: error line 1 at position 7\ninvalid identifier 'NOPE'",
        904,
        "42000",
        sfqid="01b2c3d4-0000-1111-0000-000123456789",
    )
    mapped = make_adapter().map_error(exc)
    assert mapped.code == errors.WAREHOUSE_ERROR
    assert "invalid identifier 'NOPE'" in mapped.message
    assert "01b2c3d4-0000-1111-0000-000123456789" in mapped.message
    assert mapped.details["query_id"] == "01b2c3d4-0000-1111-0000-000123456789"


def test_unreadable_private_key_is_invalid_credential_without_echo(rec: Recorder) -> None:
    bad = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWNhbmFyeS0xMjM0\n-----END PRIVATE KEY-----\n"
    adapter = SnowflakeAdapter(
        ConnectionConfig(
            settings=dict(make_adapter().config.settings),
            secrets={"private_key": bad},
            scope=Scope.parse("analytics.mkt"),
        )
    )
    with pytest.raises(ZerocopyError) as caught:
        adapter._shared()
    assert caught.value.code == errors.INVALID_CREDENTIAL
    assert "c2VjcmV0" not in caught.value.message and "c2VjcmV0" not in repr(caught.value)
    assert rec.connects == []


def test_password_is_not_a_credential_field() -> None:
    SnowflakeAdapter.check_credential(
        {"account": "a", "user": "u", "role": "r", "warehouse": "w"}, {"private_key": PEM}
    )
    with pytest.raises(ZerocopyError) as caught:
        SnowflakeAdapter.check_credential(
            {"account": "a", "user": "u", "role": "r", "warehouse": "w", "private_key": PEM}, {}
        )
    assert caught.value.code == errors.INVALID_CREDENTIAL
    with pytest.raises(ZerocopyError):
        SnowflakeAdapter.check_credential({"account": "a", "user": "u", "role": "r"}, {})
    full = {"account": "a", "user": "u", "role": "r", "warehouse": "w"}
    with pytest.raises(ZerocopyError) as no_password:
        SnowflakeAdapter.check_credential(full, {"private_key": PEM, "password": "hunter2"})
    assert no_password.value.code == errors.INVALID_CREDENTIAL
    assert "hunter2" not in no_password.value.message
    with pytest.raises(ZerocopyError) as bad_key:
        SnowflakeAdapter.check_credential(full, {"private_key": "not a key"})
    assert bad_key.value.details["field"] == "private_key"


def test_poll_loop_stops_on_our_flag_even_without_a_query_id(rec: Recorder) -> None:
    adapter = make_adapter()
    handle = QueryHandle(table="zc_tmp_run1")
    done = threading.Event()
    result: list[BaseException] = []

    def run() -> None:
        try:
            adapter._execute_ctas(adapter.ctas_sql("zc_tmp_run1", SELECT, TAG), handle, 60, TAG)
        except BaseException as exc:
            result.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    until = time.monotonic() + 5
    while handle.query_id is None and time.monotonic() < until:
        time.sleep(0.01)
    rec.cancelled.clear()
    assert isinstance(handle.native, threading.Event)
    handle.native.set()  # what _cancel does first, before SYSTEM$CANCEL_QUERY
    assert done.wait(2)
    assert isinstance(result[0], ZerocopyError) and result[0].code == errors.CANCELLED


def test_expired_shared_session_logs_in_again_once(
    rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = make_adapter()
    expired = _err(
        sf_errors.ProgrammingError,
        "Authentication token has expired.  The user must authenticate again.",
        390114,
        "08001",
    )
    failures = [expired]
    original = FakeCursor.execute

    def execute(self: FakeCursor, sql: str, params: Any = None) -> FakeCursor:
        if failures:
            raise failures.pop()
        return original(self, sql, params)

    monkeypatch.setattr(FakeCursor, "execute", execute)
    assert adapter._server_version() is None  # the recorder returns no rows
    assert len(rec.connects) == 2
    assert ("close", 0) in rec.calls
    failures.extend([expired, expired])
    with pytest.raises(sf_errors.ProgrammingError):
        adapter._server_version()
