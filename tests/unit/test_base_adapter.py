"""BaseAdapter machinery (deadline watchdog, two-phase cancel, offload, error mapping).

A tiny in-process adapter stands in for a warehouse: its blocking hooks wait on events the
way a driver waits on a server, so the timings and calls the base makes can be asserted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import anyio
import pyarrow as pa
import pytest

from dialects.base import BaseAdapter, temp_table_name
from dialects.protocol import ConnectionConfig, QueryHandle, QueryTag, Scope
from zerocopy import errors
from zerocopy.errors import ZerocopyError

pytestmark = pytest.mark.anyio

TAG = QueryTag(run_id="r1")


class FakeAdapter(BaseAdapter):
    KIND = "fake"
    SQLGLOT_DIALECT = "duckdb"
    CANCEL_GRACE_S = 1.0
    ERROR_RULES = ((r"stopped by server", errors.CANCELLED, "stopped: {msg}"),)
    REQUIRED_SETTINGS = frozenset({"path"})
    SECRET_FIELDS = frozenset({"password"})

    def __init__(
        self, *, honour_cancel: bool = True, raise_in_statement: BaseException | None = None
    ) -> None:
        super().__init__(ConnectionConfig({}, {}, Scope("s", "db"), max_runtime_s=0.5))
        self.honour_cancel = honour_cancel
        self.raise_in_statement = raise_in_statement
        self.stop = threading.Event()
        self.cancels: list[QueryHandle] = []
        self.statements: list[str] = []

    def _execute_ctas(
        self, sql: str, handle: QueryHandle, timeout_s: float, tag: QueryTag
    ) -> int | None:
        handle.query_id = "q-1"
        self.statements.append(sql)
        if self.raise_in_statement is not None:
            raise self.raise_in_statement
        self.stop.wait(30)
        raise RuntimeError("stopped by server")

    def _cancel(self, handle: QueryHandle) -> None:
        self.cancels.append(handle)
        if self.honour_cancel:
            self.stop.set()

    def _read_column(
        self, table: str, column: str, batch_rows: int, ordered: bool = False
    ) -> Iterator[pa.Array]:
        for i in range(3):
            time.sleep(0.3)  # a driver fetching the next batch
            yield pa.array([f"{i}"])


def test_temp_table_name_and_quoting() -> None:
    assert temp_table_name("3F2A-99_x") == "zc_tmp_3f2a99x"
    assert FakeAdapter().quote_table("zc_tmp_1") == '"db"."s"."zc_tmp_1"'
    assert FakeAdapter().ctas_sql("t", "SELECT 1", TAG) == 'CREATE TABLE "db"."s"."t" AS SELECT 1'


def test_check_credential_names_the_field() -> None:
    with pytest.raises(ZerocopyError, match="'path'") as caught:
        FakeAdapter.check_credential({}, {})
    assert caught.value.code == errors.INVALID_CREDENTIAL
    with pytest.raises(ZerocopyError, match="secret"):
        FakeAdapter.check_credential({"path": "x", "password": "p"}, {})


async def test_deadline_cancels_server_side_and_ends_timed_out() -> None:
    adapter = FakeAdapter()
    started = anyio.current_time()
    with pytest.raises(ZerocopyError) as caught:
        await adapter.materialize("SELECT 1", "t", deadline=started + 0.3, tag=TAG)
    elapsed = anyio.current_time() - started
    assert caught.value.code == errors.TIMED_OUT
    assert caught.value.details["query_id"] == "q-1"
    assert len(adapter.cancels) == 1 and adapter.cancels[0].query_id == "q-1"
    assert elapsed < 0.3 + 0.5  # came back as soon as the statement's thread returned


async def test_deadline_gives_up_after_the_grace_when_the_server_ignores_cancel() -> None:
    adapter = FakeAdapter(honour_cancel=False)
    started = anyio.current_time()
    with pytest.raises(ZerocopyError) as caught:
        await adapter.materialize("SELECT 1", "t", deadline=started + 0.2, tag=TAG)
    elapsed = anyio.current_time() - started
    assert caught.value.code == errors.TIMED_OUT
    assert 0.2 + adapter.CANCEL_GRACE_S - 0.1 < elapsed < 0.2 + adapter.CANCEL_GRACE_S + 0.5
    adapter.stop.set()


async def test_user_cancel_cancels_server_side_and_propagates() -> None:
    adapter = FakeAdapter()
    outcome: list[str] = []

    async def refresh() -> None:
        try:
            await adapter.materialize("SELECT 1", "t", deadline=anyio.current_time() + 30, tag=TAG)
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise

    async with anyio.create_task_group() as tg:
        tg.start_soon(refresh)
        await anyio.sleep(0.2)
        tg.cancel_scope.cancel()
    assert outcome == ["cancelled"]
    assert len(adapter.cancels) == 1


async def test_a_driver_timeout_error_is_not_our_deadline() -> None:
    """A socket timeout inside the driver is ``unreachable``, not ``timed_out`` + a cancel."""
    adapter = FakeAdapter(raise_in_statement=TimeoutError("connect timed out"))
    with pytest.raises(ZerocopyError) as caught:
        await adapter.materialize("SELECT 1", "t", deadline=anyio.current_time() + 30, tag=TAG)
    assert caught.value.code == errors.UNREACHABLE
    assert adapter.cancels == []


async def test_driver_errors_are_mapped_with_the_query_id() -> None:
    adapter = FakeAdapter(raise_in_statement=RuntimeError("syntax error at or near x"))
    with pytest.raises(ZerocopyError) as caught:
        await adapter.materialize("SELECT 1", "t", deadline=anyio.current_time() + 30, tag=TAG)
    assert caught.value.code == errors.WAREHOUSE_ERROR
    assert "syntax error" in caught.value.message
    assert caught.value.details == {"warehouse": "fake", "query_id": "q-1"}


async def test_cancelling_a_read_mid_batch_propagates_cancellation() -> None:
    """The driver is still inside next() when we give up: closing must not mask the cancel."""
    adapter = FakeAdapter()
    got: list[object] = []
    with anyio.move_on_after(30) as scope:
        async for batch in adapter.read_column("t", "id", batch_rows=10):
            got.append(batch)
            scope.deadline = anyio.current_time() + 0.1  # lands while the next fetch runs
    assert scope.cancelled_caught
    assert len(got) == 1
