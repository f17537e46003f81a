"""A sync's warehouse read that is cancelled stops in the warehouse, on both Postgres-like kinds.

The sync engine reads through ``adapter.read_incremental``, whose blocking fetch runs in a
thread that a cancel abandons; the engine then closes the adapter. Closing must cancel the
statement server-side (PostgreSQL directly, Redshift through its protocol proxy), or a
cancelled or timed-out sync keeps scanning the warehouse. The worker-level check of the same
guarantee (API cancel → ``cancelled`` and the query gone within 2 s) is in
``test_workers_sync_guarantees.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import anyio
import psycopg
import pytest

from dialects.protocol import Watermark
from tests.peers.redshift_proxy import fixtures as pg_fixtures
from tests.peers.redshift_proxy.fixtures import SCHEMA, PgPeer
from tests.peers.redshift_proxy.peer import reader_role

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

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
