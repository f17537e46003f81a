"""What the Redshift adapter does beyond the shared Postgres-like behaviour, on the proxy peer.

Shared behaviour (catalog, errors, deadline, cancel, reads) runs for both kinds in
test_postgres_adapter.py and tests/conformance. Here: late-binding views and the per-FETCH cap.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import anyio
import psycopg
import pytest

from dialects.base import temp_table_name
from dialects.protocol import QueryTag
from tests.peers.redshift_proxy import fixtures as pg_fixtures
from tests.peers.redshift_proxy.fixtures import SCHEMA, PgPeer
from tests.peers.redshift_proxy.peer import reader_role

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

redshift_proxy_port = pg_fixtures.redshift_proxy_port
pg_peer = pg_fixtures.pg_peer

LATE_VIEW = "events_lbv"
LATE_COLUMNS = [("external_user_id", "character varying(64)"), ("occurred_at", "timestamp")]


@pytest.fixture(scope="module")
def late_binding_view(pg_peer: PgPeer) -> str:
    """A stand-in for ``CREATE VIEW … WITH NO SCHEMA BINDING``: listed, but with no columns.

    Stock PostgreSQL has no late-binding views; a zero-column view has the same catalog shape
    (a row in information_schema.tables, none in .columns), and the emulated
    ``pg_get_late_binding_view_cols()`` (tests/peers/redshift_proxy/redshift_catalog.sql)
    reports its columns the way Redshift documents it.
    """
    with psycopg.connect(pg_peer.url, autocommit=True) as conn:
        conn.execute(f'CREATE VIEW "{SCHEMA}"."{LATE_VIEW}" AS SELECT')  # type: ignore[arg-type]
        conn.execute(f'COMMENT ON VIEW "{SCHEMA}"."{LATE_VIEW}" IS \'late binding\'')  # type: ignore[arg-type]
        for position, (name, data_type) in enumerate(LATE_COLUMNS, start=1):
            conn.execute(
                "INSERT INTO public.zc_peer_late_binding_cols VALUES (%s, %s, %s, %s, %s)",
                (SCHEMA, LATE_VIEW, name, data_type, position),
            )
        # Another schema's late-binding view must not leak into this scope.
        conn.execute(
            "INSERT INTO public.zc_peer_late_binding_cols VALUES ('other', 'x_lbv', 'c', 'int', 1)"
        )
    return LATE_VIEW


@pytest.fixture
def role(pg_peer: PgPeer, late_binding_view: str) -> Iterator[str]:
    with reader_role(pg_peer.url, SCHEMA) as name:
        yield name


async def test_late_binding_view_columns_come_from_pg_get_late_binding_view_cols(
    pg_peer: PgPeer, role: str
) -> None:
    async with pg_peer.adapter("redshift", role) as adapter:
        tables = {t.name: t for t in await adapter.list_tables()}
    view = tables[LATE_VIEW]
    assert view.kind == "view"
    assert view.description == "late binding"
    assert [(c.name, c.data_type) for c in view.columns] == LATE_COLUMNS
    assert "x_lbv" not in tables
    # Ordinary tables keep their information_schema columns.
    assert [c.name for c in tables["users"].columns] == pg_peer.warehouse.table(
        "users"
    ).column_names


async def test_postgres_adapter_does_not_ask_for_late_binding_columns(
    pg_peer: PgPeer, role: str
) -> None:
    async with pg_peer.adapter("postgres", role) as adapter:
        tables = {t.name: t for t in await adapter.list_tables()}
    assert tables[LATE_VIEW].columns == ()


async def test_max_fetch_rows_caps_each_fetch_forward(pg_peer: PgPeer, role: str) -> None:
    """Single-node clusters allow FETCH FORWARD 1000 at most: the setting bounds every batch."""
    table = temp_table_name(f"fetchcap-{time.monotonic_ns()}")
    async with pg_peer.adapter("redshift", role, max_fetch_rows=1000) as adapter:
        await adapter.materialize(
            "SELECT g AS id FROM generate_series(1, 2500) AS g",
            table,
            deadline=anyio.current_time() + 30,
            tag=QueryTag(run_id="fetchcap"),
        )
        try:
            sizes = [len(b) async for b in adapter.read_column(table, "id", batch_rows=5000)]
        finally:
            await adapter.drop_table(table)
    assert sizes == [1000, 1000, 500]
