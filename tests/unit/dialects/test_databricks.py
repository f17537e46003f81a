"""Databricks adapter, pure parts and call sequences: SQL, connect arguments, credential checks,
error mapping (fed the connector's own exception classes), the CTAS/cancel call order and the
starting-warehouse retry loop (with a stand-in for ``databricks.sql.connect``).

The same behaviours run for real against the TCLIService peer in
``tests/integration/test_databricks_adapter.py`` and the conformance suite.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import urllib3
from databricks.sql import exc as dbexc
from databricks.sql.backend.types import CommandState

import dialects.databricks as dbx
from dialects.databricks import DatabricksAdapter
from dialects.protocol import ConnectionConfig, QueryHandle, QueryTag, Scope
from zerocopy import errors
from zerocopy.errors import ZerocopyError

SETTINGS = {
    "server_hostname": "adb-123.azuredatabricks.net",
    "http_path": "/sql/1.0/warehouses/abc",
}


def adapter(scope: str = "main.mkt", **settings: Any) -> DatabricksAdapter:
    return DatabricksAdapter(
        ConnectionConfig(
            settings={**SETTINGS, **settings},
            secrets={"access_token": "dapi-secret"},
            scope=Scope.parse(scope),
            max_runtime_s=120,
        )
    )


# ----------------------------------------------------------------------------- SQL
def test_ctas_carries_a_comment_naming_the_run() -> None:
    sql = adapter().ctas_sql("zc_tmp_r1", "SELECT 1 AS id", QueryTag(run_id="r1", segment_id="o'b"))
    assert sql == (
        "CREATE TABLE `main`.`mkt`.`zc_tmp_r1` "
        "COMMENT 'zerocopy:refresh run=r1 segment=o\\'b' AS SELECT 1 AS id"
    )


def test_scope_without_catalog_is_two_part() -> None:
    assert adapter(scope="mkt").drop_sql("t") == "DROP TABLE IF EXISTS `mkt`.`t`"


def test_watermark_literals() -> None:
    import datetime as dt

    naive = dt.datetime(2024, 1, 2, 3, 4, 5, 6000)
    aware = dt.datetime(2024, 1, 2, 4, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert dbx._timestamp_literal(naive) == "TIMESTAMP '2024-01-02 03:04:05.006000'"
    assert dbx._timestamp_literal(aware) == "TIMESTAMP '2024-01-02 03:04:05'"
    assert dbx._timestamp_literal(dt.date(2024, 1, 2)) == "DATE '2024-01-02'"


# ----------------------------------------------------------------------------- connect
@pytest.mark.parametrize(("seconds", "whole"), [(0.001, 1), (1.0, 1), (1.2, 2), (300, 300)])
def test_connect_kwargs(seconds: float, whole: int) -> None:
    kwargs = adapter().connect_kwargs(seconds)
    assert kwargs["server_hostname"] == SETTINGS["server_hostname"]
    assert kwargs["http_path"] == SETTINGS["http_path"]
    assert kwargs["access_token"] == "dapi-secret"
    assert kwargs["session_configuration"] == {"STATEMENT_TIMEOUT": str(whole)}
    # One attempt per call and no telemetry: the adapter owns retries and reports starting.
    assert kwargs["enable_telemetry"] is False
    assert kwargs["_enable_v3_retries"] is False
    assert kwargs["_retry_stop_after_attempts_count"] == 1
    assert "_connection_uri" not in kwargs


def test_connection_uri_override_for_the_peer() -> None:
    kwargs = adapter(connection_uri="http://127.0.0.1:8123/sql").connect_kwargs(10)
    assert kwargs["_connection_uri"] == "http://127.0.0.1:8123/sql"


@pytest.mark.parametrize(
    ("settings", "secrets", "field"),
    [
        ({"http_path": "/p"}, {"access_token": "t"}, "server_hostname"),
        ({"server_hostname": "h"}, {"access_token": "t"}, "http_path"),
        (SETTINGS, {}, "access_token"),
        ({**SETTINGS, "access_token": "t"}, {"access_token": "t"}, "access_token"),
        (
            {**SETTINGS, "connection_uri": "http://example.com/x"},
            {"access_token": "t"},
            "connection_uri",
        ),
        (
            {**SETTINGS, "connection_uri": "ftp://127.0.0.1/x"},
            {"access_token": "t"},
            "connection_uri",
        ),
    ],
)
def test_credential_checks(settings: dict[str, Any], secrets: dict[str, str], field: str) -> None:
    with pytest.raises(ZerocopyError) as caught:
        DatabricksAdapter.check_credential(dict(settings), dict(secrets))
    assert caught.value.code == errors.INVALID_CREDENTIAL
    assert caught.value.details["field"] == field


@pytest.mark.parametrize(
    "uri",
    ["https://adb-1.azuredatabricks.net/sql/1.0/x", "http://127.0.0.1:1/x", "http://localhost:1/x"],
)
def test_credential_accepts_https_anywhere_and_http_on_loopback(uri: str) -> None:
    DatabricksAdapter.check_credential({**SETTINGS, "connection_uri": uri}, {"access_token": "t"})


# ----------------------------------------------------------------------------- errors
def _request_error(code: int, header: str) -> dbexc.RequestError:
    context = {"method": "OpenSession", "http-code": code, "error-message": header}
    return dbexc.RequestError(f"Error during request to server: {header}", context)


@pytest.mark.parametrize(
    ("exc", "code", "needle"),
    [
        (_request_error(403, "Invalid access token."), errors.AUTH_FAILED, "access token"),
        (_request_error(401, ""), errors.AUTH_FAILED, "HTTP 401"),
        (
            _request_error(503, "TEMPORARILY_UNAVAILABLE: warehouse starting"),
            errors.WAREHOUSE_BUSY,
            "HTTP 503",
        ),
        (
            dbexc.ServerOperationError(
                "[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have CREATE "
                "TABLE on Schema 'main.mkt'. SQLSTATE: 42501"
            ),
            errors.PERMISSION_DENIED,
            "GRANT CREATE TABLE ON SCHEMA main.mkt TO",
        ),
        (
            dbexc.ServerOperationError(
                "PERMISSION_DENIED: User does not have USE SCHEMA on Schema 'main.mkt'."
            ),
            errors.PERMISSION_DENIED,
            "GRANT USE SCHEMA ON SCHEMA main.mkt TO",
        ),
        (
            dbexc.ServerOperationError(
                "[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have SELECT "
                "on Table 'main.mkt.users'. SQLSTATE: 42501"
            ),
            errors.PERMISSION_DENIED,
            "GRANT SELECT ON TABLE main.mkt.users TO",
        ),
        (
            dbexc.ServerOperationError(
                "[QUERY_EXECUTION_TIMEOUT_EXCEEDED] Query execution was cancelled due to "
                "exceeding the timeout (STATEMENT_TIMEOUT = 2s). SQLSTATE: 57KD0"
            ),
            errors.TIMED_OUT,
            "STATEMENT_TIMEOUT",
        ),
        (
            dbexc.ServerOperationError("[SCHEMA_NOT_FOUND] The schema `main`.`x` cannot be found."),
            errors.SCOPE_NOT_FOUND,
            "scope",
        ),
        (
            dbexc.ServerOperationError("[NO_SUCH_CATALOG_EXCEPTION] Catalog 'x' was not found."),
            errors.SCOPE_NOT_FOUND,
            "scope",
        ),
        (
            urllib3.exceptions.MaxRetryError(
                None, "/x", urllib3.exceptions.NewConnectionError(None, "Connection refused")
            ),
            errors.UNREACHABLE,
            "cannot reach",
        ),
        (
            dbexc.ServerOperationError(
                "[TABLE_OR_VIEW_NOT_FOUND] The table or view `main`.`mkt`.`nope` cannot be found."
            ),
            errors.WAREHOUSE_ERROR,
            "nope",
        ),
    ],
)
def test_error_mapping(exc: BaseException, code: str, needle: str) -> None:
    mapped = adapter().map_error(exc, QueryHandle(query_id="01ef-query"))
    assert mapped.code == code, mapped
    assert needle in mapped.message
    assert mapped.details["warehouse"] == "databricks"
    assert mapped.details["query_id"] == "01ef-query"
    assert "dapi-secret" not in mapped.message


# ----------------------------------------------------------------------------- call order
class FakeCursor:
    """Records calls; the statement runs until ``cancel()`` (CancelOperation) arrives."""

    def __init__(self, calls: list[str], finish: bool = False) -> None:
        self.calls = calls
        self.finish = finish
        self.active_command_id: str | None = None
        self.query_id: str | None = None
        self.cancelled = threading.Event()

    def execute(self, sql: str) -> FakeCursor:
        self.calls.append(f"execute:{sql}")
        return self

    def execute_async(self, sql: str) -> FakeCursor:
        self.calls.append(f"execute_async:{sql}")
        self.active_command_id = self.query_id = "01ef-query"
        return self

    def get_query_state(self) -> CommandState:
        if self.cancelled.is_set():
            return CommandState.CANCELLED
        return CommandState.SUCCEEDED if self.finish else CommandState.RUNNING

    def get_async_execution_result(self) -> FakeCursor:
        self.calls.append("result")
        return self

    def fetchone(self) -> Any:
        class Row:
            num_inserted_rows = 7

        return Row()

    def cancel(self) -> None:
        self.calls.append("cancel")
        self.cancelled.set()

    def close(self) -> None:
        self.calls.append("close")


class FakeConnection:
    def __init__(self, cursor: FakeCursor) -> None:
        self._cursor = cursor

    def cursor(self, **_: Any) -> FakeCursor:
        return self._cursor

    def close(self) -> None:
        self._cursor.calls.append("connection.close")


def test_ctas_sets_the_statement_timeout_then_submits_async(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    cursor = FakeCursor(calls, finish=True)
    seen: dict[str, Any] = {}

    def connect(**kwargs: Any) -> FakeConnection:
        seen.update(kwargs)
        return FakeConnection(cursor)

    monkeypatch.setattr(dbx.dbsql, "connect", connect)
    handle = QueryHandle(table="zc_tmp_r1")
    rows = adapter()._execute_ctas("CREATE TABLE x AS SELECT 1", handle, 1.5, QueryTag(run_id="r1"))
    assert rows == 7
    assert handle.query_id == "01ef-query"
    assert calls == [
        "execute:SET STATEMENT_TIMEOUT = 2",
        "execute_async:CREATE TABLE x AS SELECT 1",
        "result",
        "close",
        "connection.close",
    ]
    assert seen["session_configuration"] == {"STATEMENT_TIMEOUT": "2"}


def test_cancel_from_another_thread_uses_the_recorded_cursor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    cursor = FakeCursor(calls)
    monkeypatch.setattr(dbx.dbsql, "connect", lambda **_: FakeConnection(cursor))
    db = adapter()
    handle = QueryHandle(table="zc_tmp_r1")
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            db._execute_ctas("CREATE TABLE x AS SELECT 1", handle, 60, QueryTag(run_id="r1"))
        except ZerocopyError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    while handle.query_id is None:
        time.sleep(0.01)
    started = time.monotonic()
    db._cancel(handle)
    worker.join(5)
    assert time.monotonic() - started < 0.5
    assert outcome["error"].code == errors.CANCELLED
    assert calls[:3] == [
        "execute:SET STATEMENT_TIMEOUT = 60",
        "execute_async:CREATE TABLE x AS SELECT 1",
        "cancel",
    ]


def test_cancel_before_submission_never_submits(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    cursor = FakeCursor(calls)
    db = adapter()
    handle = QueryHandle(table="zc_tmp_r1")

    def connect(**_: Any) -> FakeConnection:
        db._cancel(handle)  # the cancel lands while the session is being opened
        return FakeConnection(cursor)

    monkeypatch.setattr(dbx.dbsql, "connect", connect)
    with pytest.raises(ZerocopyError) as caught:
        db._execute_ctas("CREATE TABLE x AS SELECT 1", handle, 60, QueryTag(run_id="r1"))
    assert caught.value.code == errors.CANCELLED
    assert not any(c.startswith("execute_async") for c in calls)


def test_starting_warehouse_is_retried_and_reported_once(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[float] = []
    cursor = FakeCursor([])

    def connect(**_: Any) -> FakeConnection:
        attempts.append(time.monotonic())
        if len(attempts) <= 3:
            raise _request_error(503, "TEMPORARILY_UNAVAILABLE: starting")
        return FakeConnection(cursor)

    monkeypatch.setattr(dbx.dbsql, "connect", connect)
    db = adapter()
    monkeypatch.setattr(db, "STARTUP_BACKOFF_S", (0.01, 0.02))
    with db._session(time.monotonic() + 5):
        pass
    assert len(attempts) == 4
    assert len(db._warnings) == 1 and db._warnings[0].startswith("warehouse starting")


def test_non_transient_connect_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[int] = []

    def connect(**_: Any) -> FakeConnection:
        attempts.append(1)
        raise _request_error(403, "Invalid access token.")

    monkeypatch.setattr(dbx.dbsql, "connect", connect)
    with pytest.raises(dbexc.RequestError), adapter()._session(time.monotonic() + 5):
        pass
    assert attempts == [1]


def test_cancel_retries_while_the_warehouse_answers_503() -> None:
    calls: list[str] = []

    class Flaky(FakeCursor):
        def cancel(self) -> None:
            calls.append("cancel")
            if calls.count("cancel") < 3:
                raise _request_error(503, "TEMPORARILY_UNAVAILABLE")

    cursor = Flaky(calls)
    cursor.active_command_id = "01ef-query"
    handle = QueryHandle(native=dbx._Running(cursor=cursor))
    adapter()._cancel(handle)
    assert calls == ["cancel"] * 3
    assert handle.native.cancelled.is_set()
