"""A drop the warehouse does not answer: bounded, reported, and not lost.

``drop_table`` runs to its end even when the refresh that calls it is cancelled, but not for
ever: a warehouse that holds the drop (here a real lock another session keeps on the result
table) fails it after ``DROP_TIMEOUT_S`` as ``unreachable`` naming the table, and the
refresh's cleanup moves on (the janitor drops the table later). Once the lock goes, the drop
that was already sent completes on the server, and a second drop is a no-op.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import anyio
import psycopg
import pytest

from dialects.base import temp_table_name
from dialects.postgres import PostgresAdapter
from dialects.protocol import QueryTag
from dialects.redshift import RedshiftAdapter
from tests.peers.redshift_proxy import fixtures as pg_fixtures
from tests.peers.redshift_proxy.fixtures import SCHEMA, PgPeer
from zerocopy import errors
from zerocopy.errors import ZerocopyError

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

redshift_proxy_port = pg_fixtures.redshift_proxy_port
pg_peer = pg_fixtures.pg_peer

HANG_GUARD_S = 60
"""Only a guard against a hang (the test fails instead of blocking the suite); not a timing."""


class _QuickDropPostgres(PostgresAdapter):
    DROP_TIMEOUT_S = 1.0


class _QuickDropRedshift(RedshiftAdapter):
    DROP_TIMEOUT_S = 1.0


def _exists(url: str, table: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s",
            (SCHEMA, table),
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("kind", ["postgres", "redshift"])
async def test_a_drop_held_by_a_lock_fails_unreachable_then_completes(
    pg_peer: PgPeer, kind: str
) -> None:
    cls: Any = _QuickDropPostgres if kind == "postgres" else _QuickDropRedshift
    adapter = cls(pg_peer.config(kind, "postgres"))
    table = temp_table_name(f"drop-{uuid.uuid4().hex[:8]}")
    try:
        await adapter.materialize(
            f"SELECT external_user_id FROM {SCHEMA}.users",
            table,
            deadline=anyio.current_time() + 60,
            tag=QueryTag(run_id=f"run-{uuid.uuid4().hex[:8]}"),
        )
        assert _exists(pg_peer.url, table)
        holder = psycopg.connect(pg_peer.url)
        try:
            # Another session reads the table in an open transaction: DROP waits for its lock.
            holder.execute(f"LOCK TABLE {SCHEMA}.{table} IN ACCESS SHARE MODE")
            with anyio.fail_after(HANG_GUARD_S), pytest.raises(ZerocopyError) as caught:
                await adapter.drop_table(table)
            assert caught.value.code == errors.UNREACHABLE
            assert table in caught.value.message
            assert caught.value.details["table"] == table
            assert _exists(pg_peer.url, table)  # nothing lost: still there, still droppable
        finally:
            holder.rollback()
            holder.close()
        # The drop already sent goes through once the lock is gone; a new one is a no-op.
        until = time.monotonic() + HANG_GUARD_S
        while _exists(pg_peer.url, table) and time.monotonic() < until:  # noqa: ASYNC110
            await anyio.sleep(0.05)
        await adapter.drop_table(table)
        assert not _exists(pg_peer.url, table)
    finally:
        await adapter.aclose()
