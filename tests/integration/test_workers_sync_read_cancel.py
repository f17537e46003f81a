"""A sync's warehouse read that is cancelled stops in the warehouse (Postgres-like, DuckDB).

The sync engine reads through ``adapter.read_incremental``, whose blocking fetch runs in a
thread that a cancel abandons; the engine then closes the adapter. Closing must cancel the
statement server-side (PostgreSQL directly, Redshift through its protocol proxy; DuckDB, in
this process, by interrupting the read's cursor), or a cancelled or timed-out sync keeps
scanning the warehouse. The worker-level check of the same
guarantee (API cancel → ``cancelled`` and the query gone within 2 s) is in
``test_workers_sync_guarantees.py``.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import anyio
import duckdb
import psycopg
import pytest

from dialects.protocol import ConnectionConfig, Scope, Watermark
from dialects.registry import create_adapter
from tests.peers.redshift_proxy import fixtures as pg_fixtures
from tests.peers.redshift_proxy.fixtures import SCHEMA, PgPeer
from tests.peers.redshift_proxy.peer import reader_role

pytestmark = [pytest.mark.anyio]

redshift_proxy_port = pg_fixtures.redshift_proxy_port
pg_peer = pg_fixtures.pg_peer

VIEW = "zc_slow_events"


@pytest.fixture(scope="module")
def slow_view(pg_peer: PgPeer) -> str:
    with psycopg.connect(pg_peer.url, autocommit=True) as con:
        con.execute(
            f'CREATE VIEW "{SCHEMA}"."{VIEW}" AS SELECT '  # type: ignore[arg-type]
            "TIMESTAMP '2026-03-01' + g * INTERVAL '1 second' AS updated_at, "
            "'u' || g AS external_id, '{}'::text AS payload "
            "FROM generate_series(1, 100) AS g, (SELECT pg_sleep(60)) AS s"
        )
    return VIEW


@pytest.fixture
def role(pg_peer: PgPeer, slow_view: str) -> Iterator[str]:
    with reader_role(pg_peer.url, SCHEMA) as name:
        yield name


def _active(url: str, role: str) -> list[tuple[int, str]]:
    with psycopg.connect(url, autocommit=True) as con:
        return list(
            con.execute(
                "SELECT pid, query FROM pg_stat_activity WHERE usename = %s AND state = 'active'",
                (role,),
            ).fetchall()
        )


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["postgres", "redshift"])
async def test_cancelled_read_is_cancelled_in_the_warehouse(
    pg_peer: PgPeer, role: str, kind: str
) -> None:
    adapter = pg_peer.adapter(kind, role)
    watermark = Watermark(None, column="updated_at")
    try:
        with anyio.move_on_after(30) as scope:
            async with anyio.create_task_group() as tg:

                async def read() -> None:
                    async for _ in adapter.read_incremental(VIEW, watermark):
                        raise AssertionError("the slow view returned rows")

                tg.start_soon(read)
                deadline = time.monotonic() + 20
                while not _active(pg_peer.url, role):
                    assert time.monotonic() < deadline, "the read never reached the warehouse"
                    await anyio.sleep(0.05)
                tg.cancel_scope.cancel()  # what a sync cancel does to the engine's read
        assert not scope.cancelled_caught
    finally:
        closing = time.monotonic()
        await adapter.aclose()
    deadline = closing + 2.0
    while (left := _active(pg_peer.url, role)) and time.monotonic() < deadline:  # noqa: ASYNC110
        await anyio.sleep(0.05)
    assert left == [], f"{kind}: the cancelled read still runs in the warehouse: {left}"


async def _read_then_cancel(adapter: object, table: str, started: float = 1.0) -> None:
    watermark = Watermark(None, column="updated_at")
    with anyio.move_on_after(30) as scope:
        async with anyio.create_task_group() as tg:

            async def read() -> None:
                async for _ in adapter.read_incremental(table, watermark):  # type: ignore[attr-defined]
                    raise AssertionError("the slow view returned rows")

            tg.start_soon(read)
            await anyio.sleep(started)
            tg.cancel_scope.cancel()
    assert not scope.cancelled_caught


async def test_cancelled_duckdb_read_is_interrupted(tmp_path: Path) -> None:
    """DuckDB runs in this process: a read left running is a thread still inside the read."""
    path = tmp_path / "slow.duckdb"
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA marketing")
        con.execute(
            f"CREATE VIEW marketing.{VIEW} AS SELECT TIMESTAMP '2026-03-01' + to_seconds(i) "
            "AS updated_at, 'u' || i AS external_id, '{}' AS payload FROM range(10) AS t(i) "
            "WHERE (SELECT count(*) FROM range(100000000000) AS r(x) WHERE x % 7 = 3) >= 0"
        )
    finally:
        con.close()
    adapter = create_adapter(
        "duckdb",
        ConnectionConfig(settings={"path": str(path)}, secrets={}, scope=Scope("marketing")),
    )
    try:
        await _read_then_cancel(adapter, VIEW)
        assert _threads_in("_read_incremental") == 1  # the abandoned read, still scanning
    finally:
        closing = time.monotonic()
        await adapter.aclose()
    while _threads_in("_read_incremental") and time.monotonic() < closing + 2.0:  # noqa: ASYNC110
        await anyio.sleep(0.05)
    assert _threads_in("_read_incremental") == 0, "duckdb: the cancelled read still scans"


def _threads_in(function: str) -> int:
    """Threads of this process now inside ``function`` (DuckDB scans in the caller's thread)."""
    return sum(
        any(f.f_code.co_name == function for f, _ in traceback.walk_stack(frame))
        for frame in sys._current_frames().values()
    )
