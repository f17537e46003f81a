"""A cancel that arrives before the statement's thread has published its handle.

Under heavy load the thread that runs a CTAS can be descheduled after it starts and before it
records what a cancel needs (``QueryHandle.native``). The cancel then finds nothing to stop;
without a second look the statement would run to its end behind a run already ``cancelled``
(seen in session 7: cancelled DuckDB refreshes kept running for over a minute). The gate
below holds the real DuckDB adapter's thread at exactly that point.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import anyio
import anyio.to_thread
import duckdb
import pytest

from dialects.duckdb import DuckDBAdapter
from dialects.protocol import ConnectionConfig, QueryHandle, QueryTag, Scope
from fixtures import build, load_duckdb
from tests.conformance.targets.duckdb import SLOW_SQL
from zerocopy import errors
from zerocopy.errors import ZerocopyError

pytestmark = pytest.mark.anyio

SCHEMA = "mkt"


class _GatedDuckDB(DuckDBAdapter):
    """The real adapter, its statement thread held before it publishes its handle."""

    def __init__(self, config: ConnectionConfig) -> None:
        super().__init__(config)
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.returned = threading.Event()

    def _execute_ctas(
        self, sql: str, handle: QueryHandle, timeout_s: float, tag: QueryTag
    ) -> int | None:
        self.entered.set()
        self.gate.wait(30)
        try:
            return super()._execute_ctas(sql, handle, timeout_s, tag)
        finally:
            self.returned.set()


def _tables(path: Path) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    finally:
        con.close()


async def test_cancel_before_the_thread_publishes_its_handle_still_stops_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wh.duckdb"
    load_duckdb(path, SCHEMA, build(users=50, only=["users"]))
    adapter = _GatedDuckDB(ConnectionConfig({"path": str(path)}, {}, Scope.parse(SCHEMA)))
    table = f"zc_tmp_{uuid.uuid4().hex[:12]}"
    outcome: list[BaseException] = []

    async def refresh() -> None:
        try:
            # SLOW_SQL scans 10^11 rows: it never ends by itself within the test.
            await adapter.materialize(
                SLOW_SQL,
                table,
                deadline=anyio.current_time() + 600,
                tag=QueryTag(run_id=str(uuid.uuid4())),
            )
        except BaseException as exc:
            outcome.append(exc)
            raise

    async with anyio.create_task_group() as tg:
        tg.start_soon(refresh)
        await anyio.to_thread.run_sync(adapter.entered.wait, 30)
        assert adapter.entered.is_set()

        # Released from another thread while the cancel waits: by then it has looked
        # and found no handle.
        release = threading.Timer(0.3, adapter.gate.set)
        release.start()
        tg.cancel_scope.cancel()  # the user's cancel: the refresh task is cancelled
    release.join()
    # Bounded only as a safety net: without the second cancel the statement never ends.
    await anyio.to_thread.run_sync(adapter.returned.wait, 60)
    assert adapter.returned.is_set(), "the statement kept running after the cancel"
    await adapter.aclose()
    assert table not in _tables(path)


async def test_stop_requested_before_the_thread_runs_sends_nothing(tmp_path: Path) -> None:
    """A handle already stopped when its thread starts: the statement is never sent."""
    path = tmp_path / "wh.duckdb"
    load_duckdb(path, SCHEMA, build(users=50, only=["users"]))
    adapter = _GatedDuckDB(ConnectionConfig({"path": str(path)}, {}, Scope.parse(SCHEMA)))
    adapter.gate.set()
    handle = QueryHandle(table="zc_tmp_never", stop_requested=True)
    with pytest.raises(ZerocopyError) as caught:
        await adapter._guarded(
            lambda: adapter._execute_ctas("SELECT 1", handle, 60, QueryTag(run_id="r")),
            handle,
            anyio.current_time() + 60,
            "the segment query",
        )
    assert caught.value.code == errors.CANCELLED
    assert not adapter.entered.is_set()
    await adapter.aclose()
