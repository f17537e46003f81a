"""PostgreSQL and Redshift adapters (the Postgres-like base) against real servers.

Each test runs for both kinds: ``postgres`` is psycopg 3 talking to PostgreSQL directly,
``redshift`` is redshift_connector talking to the same database through the Redshift proxy
(tests/peers/redshift_proxy). Every error is provoked for real: a server that rejects the
password, grants that are missing, a schema that does not exist, a port nobody listens on.
"""

from __future__ import annotations

import time

import anyio
import anyio.to_thread
import psycopg
import pyarrow as pa
import pytest

from dialects.base import temp_table_name
from dialects.pglike import PostgresLikeAdapter, RunningStatement
from dialects.postgres import PostgresAdapter
from dialects.protocol import QueryHandle, QueryTag, Watermark
from dialects.redshift import RedshiftAdapter
from tests.peers.redshift_proxy import fixtures as pg_fixtures
from tests.peers.redshift_proxy.fixtures import SCHEMA, PgPeer, adapter_settings, query_tag
from tests.peers.redshift_proxy.peer import (
    REDSHIFT_CATALOG_SQL,
    Md5Cluster,
    reader_role,
    redshift_proxy,
)
from tests.support import free_port
from zerocopy import errors
from zerocopy.errors import ZerocopyError

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

# Shared fixtures (module attributes are what pytest collects).
redshift_proxy_port = pg_fixtures.redshift_proxy_port
pg_peer = pg_fixtures.pg_peer
kind = pg_fixtures.pglike_kind
role = pg_fixtures.reader
md5_server = pg_fixtures.md5_server

SLOW = "SELECT 1 AS id FROM (SELECT pg_sleep(30)) AS s"
"""A CTAS body that runs 30 s unless something stops it (pg_sleep honours cancel requests)."""


def tag() -> QueryTag:
    return query_tag("seg-1")


def table_exists(url: str, table: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.{table}",)).fetchone()
    return row is not None and row[0] is not None


def backend_active(url: str, pid: int) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND state = 'active'", (pid,)
        ).fetchone()
    return bool(row and row[0])


def wait_backend_idle(url: str, pid: int, within_s: float = 2.0) -> bool:
    until = time.monotonic() + within_s
    while time.monotonic() < until:
        if not backend_active(url, pid):
            return True
        time.sleep(0.05)
    return False


# --------------------------------------------------------------------------- catalog
async def test_catalog_lists_only_readable_tables_and_views_with_comments(
    pg_peer: PgPeer, kind: str
) -> None:
    with reader_role(pg_peer.url, SCHEMA, tables=["users", "active_users"]) as name:
        async with pg_peer.adapter(kind, name) as adapter:
            result = await adapter.test()
    by_name = {t.name: t for t in result.tables}
    assert set(by_name) == {"users", "active_users"}
    users = pg_peer.warehouse.table("users")
    assert by_name["users"].kind == "table"
    assert by_name["users"].description == users.description
    assert [c.name for c in by_name["users"].columns] == users.column_names
    described = {c.name: c.description for c in by_name["users"].columns}
    assert described == {c.name: c.description for c in users.columns}
    view = by_name["active_users"]
    assert view.kind == "view"
    assert [c.name for c in view.columns] == [
        "external_user_id", "email", "country", "plan", "lifetime_value"
    ]  # fmt: skip
    assert result.server_version and "PostgreSQL" in result.server_version
    assert result.warnings == []


async def test_postgres_lists_readable_materialized_views_with_columns_and_comments(
    pg_peer: PgPeer,
) -> None:
    """``information_schema`` leaves materialized views out; the catalog must not."""
    with psycopg.connect(pg_peer.url, autocommit=True) as conn:
        conn.execute(
            f'CREATE MATERIALIZED VIEW "{SCHEMA}".mv_buyers AS '
            f'SELECT external_user_id, lifetime_value FROM "{SCHEMA}".users'
        )
        conn.execute(f"COMMENT ON MATERIALIZED VIEW \"{SCHEMA}\".mv_buyers IS 'Buyers, nightly'")
        conn.execute(f"COMMENT ON COLUMN \"{SCHEMA}\".mv_buyers.lifetime_value IS 'LTV in EUR'")
        conn.execute(
            f'CREATE MATERIALIZED VIEW "{SCHEMA}".mv_hidden AS SELECT 1 AS external_user_id'
        )
    try:
        with reader_role(pg_peer.url, SCHEMA, tables=["users", "mv_buyers"]) as name:
            async with pg_peer.adapter("postgres", name) as adapter:
                result = await adapter.test()
                table = temp_table_name(f"mv-{time.monotonic_ns()}")
                done = await adapter.materialize(
                    f'SELECT external_user_id FROM "{SCHEMA}".mv_buyers',
                    table,
                    deadline=anyio.current_time() + 30,
                    tag=tag(),
                )
                await adapter.drop_table(table)
    finally:
        with psycopg.connect(pg_peer.url, autocommit=True) as conn:
            conn.execute(f'DROP MATERIALIZED VIEW "{SCHEMA}".mv_buyers')
            conn.execute(f'DROP MATERIALIZED VIEW "{SCHEMA}".mv_hidden')
    by_name = {t.name: t for t in result.tables}
    assert set(by_name) == {"users", "mv_buyers"}  # mv_hidden: no SELECT, not listed
    mv = by_name["mv_buyers"]
    assert (mv.kind, mv.description) == ("view", "Buyers, nightly")
    users = {c.name: c for c in by_name["users"].columns}
    assert [(c.name, c.data_type, c.description) for c in mv.columns] == [
        ("external_user_id", users["external_user_id"].data_type, None),
        ("lifetime_value", users["lifetime_value"].data_type, "LTV in EUR"),
    ]
    assert done.rows == pg_peer.warehouse.table("users").data.num_rows


# --------------------------------------------------------------------------- errors
async def test_wrong_password_is_auth_failed_and_the_right_one_logs_in(
    md5_server: Md5Cluster, kind: str
) -> None:
    with psycopg.connect(md5_server.admin_conninfo, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS zc_md5_user")
        conn.execute("CREATE ROLE zc_md5_user LOGIN PASSWORD 'right-password'")
        conn.execute(REDSHIFT_CATALOG_SQL.read_text())  # type: ignore[arg-type]
    with redshift_proxy(md5_server.port) as proxy_port:
        port = proxy_port if kind == "redshift" else md5_server.port
        settings = adapter_settings(kind, "127.0.0.1", port, "postgres", "zc_md5_user")
        from dialects.protocol import ConnectionConfig, Scope
        from dialects.registry import create_adapter

        good = ConnectionConfig(settings, {"password": "right-password"}, Scope("public"))
        async with create_adapter(kind, good) as adapter:
            result = await adapter.test()
        assert result.server_version
        bad = ConnectionConfig(settings, {"password": "wrong-password"}, Scope("public"))
        async with create_adapter(kind, bad) as adapter:
            with pytest.raises(ZerocopyError) as caught:
                await adapter.test()
    assert caught.value.code == errors.AUTH_FAILED
    assert "zc_md5_user" in caught.value.message
    assert "wrong-password" not in str(caught.value.to_dict())


async def test_revoked_create_is_permission_denied_naming_the_grant(
    pg_peer: PgPeer, kind: str
) -> None:
    with reader_role(pg_peer.url, SCHEMA, create=False) as name:
        async with pg_peer.adapter(kind, name) as adapter:
            result = await adapter.test()
            table = temp_table_name(f"nocreate-{kind}")
            with pytest.raises(ZerocopyError) as caught:
                await adapter.materialize(
                    f"SELECT external_user_id FROM {SCHEMA}.users",
                    table,
                    deadline=anyio.current_time() + 30,
                    tag=tag(),
                )
    assert caught.value.code == errors.PERMISSION_DENIED
    assert f"GRANT CREATE ON SCHEMA {SCHEMA} TO {name}" in caught.value.message
    assert any(f"GRANT CREATE ON SCHEMA {SCHEMA} TO {name}" in w for w in result.warnings)
    assert not table_exists(pg_peer.url, table)


async def test_missing_select_is_permission_denied_naming_the_table(
    pg_peer: PgPeer, kind: str
) -> None:
    with reader_role(pg_peer.url, SCHEMA, tables=["users"]) as name:
        async with pg_peer.adapter(kind, name) as adapter:
            with pytest.raises(ZerocopyError) as caught:
                await adapter.materialize(
                    f"SELECT DISTINCT external_user_id FROM {SCHEMA}.events",
                    temp_table_name(f"noselect-{kind}"),
                    deadline=anyio.current_time() + 30,
                    tag=tag(),
                )
    assert caught.value.code == errors.PERMISSION_DENIED
    assert f"GRANT SELECT ON {SCHEMA}.events TO {name}" in caught.value.message
    assert caught.value.details["sqlstate"] == "42501"


async def test_missing_schema_is_scope_not_found(pg_peer: PgPeer, kind: str, role: str) -> None:
    async with pg_peer.adapter(kind, role, schema="no_such_schema") as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.test()
    assert caught.value.code == errors.SCOPE_NOT_FOUND
    assert "no_such_schema" in caught.value.message


async def test_missing_usage_on_schema_is_permission_denied(pg_peer: PgPeer, kind: str) -> None:
    with reader_role(pg_peer.url, SCHEMA) as name:
        with psycopg.connect(pg_peer.url, autocommit=True) as conn:
            conn.execute(f'REVOKE USAGE ON SCHEMA {SCHEMA} FROM "{name}"')  # type: ignore[arg-type]
        async with pg_peer.adapter(kind, name) as adapter:
            with pytest.raises(ZerocopyError) as caught:
                await adapter.test()
    assert caught.value.code == errors.PERMISSION_DENIED
    assert f"GRANT USAGE ON SCHEMA {SCHEMA} TO {name}" in caught.value.message


async def test_closed_port_is_unreachable(pg_peer: PgPeer, kind: str) -> None:
    closed = free_port()  # bound and released: nothing listens there
    config = pg_peer.config(kind, "postgres")
    config = type(config)(
        settings={**config.settings, "port": closed}, secrets=config.secrets, scope=config.scope
    )
    from dialects.registry import create_adapter

    async with create_adapter(kind, config) as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.test()
    assert caught.value.code == errors.UNREACHABLE
    assert "refused" in caught.value.message.lower()


async def test_other_failures_are_warehouse_error_with_message_sqlstate_and_pid(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    async with pg_peer.adapter(kind, role) as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.materialize(
                "SELECT 1 / 0 AS id",
                temp_table_name(f"div0-{kind}"),
                deadline=anyio.current_time() + 30,
                tag=tag(),
            )
    assert caught.value.code == errors.WAREHOUSE_ERROR
    assert "division by zero" in caught.value.message
    assert caught.value.details["sqlstate"] == "22012"
    assert caught.value.details["query_id"].isdigit()


# --------------------------------------------------------------------------- deadline, cancel
async def test_statement_timeout_alone_stops_the_ctas_server_side(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    """No watchdog here: the blocking hook runs bare, so only the server's timeout can stop it."""
    table = temp_table_name(f"servertimeout-{kind}")
    async with pg_peer.adapter(kind, role) as adapter:
        sql = adapter.ctas_sql(table, SLOW, tag())
        handle = QueryHandle(table=table)
        started = time.monotonic()
        with pytest.raises(ZerocopyError) as caught:
            await anyio.to_thread.run_sync(
                lambda: adapter._execute_ctas(sql, handle, 0.5, tag())  # type: ignore[attr-defined]
            )
        elapsed = time.monotonic() - started
    assert caught.value.code == errors.TIMED_OUT
    assert 0.4 < elapsed < 3.0
    assert not table_exists(pg_peer.url, table)


class _NoServerTimeout:
    """Mixin for the watchdog test: disable the server's timeout so only our watchdog is left."""

    @staticmethod
    def statement_timeout_sql(timeout_s: float) -> str:
        return "SET statement_timeout = 0"


class _PostgresWatchdogOnly(_NoServerTimeout, PostgresAdapter):
    pass


class _RedshiftWatchdogOnly(_NoServerTimeout, RedshiftAdapter):
    pass


async def test_watchdog_cancels_with_pg_cancel_backend_when_the_server_timeout_does_not_fire(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    cls = _PostgresWatchdogOnly if kind == "postgres" else _RedshiftWatchdogOnly
    table = temp_table_name(f"watchdog-{kind}")
    adapter = cls(pg_peer.config(kind, role, max_runtime_s=1.0))
    async with adapter:
        started = time.monotonic()
        with pytest.raises(ZerocopyError) as caught:
            await adapter.materialize(SLOW, table, deadline=anyio.current_time() + 1.0, tag=tag())
        elapsed = time.monotonic() - started
    assert caught.value.code == errors.TIMED_OUT
    assert elapsed < 1.0 + 2.0
    pid = int(caught.value.details["query_id"])
    assert wait_backend_idle(pg_peer.url, pid)
    assert not table_exists(pg_peer.url, table)


async def test_deadline_through_materialize_is_timed_out(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    table = temp_table_name(f"deadline-{kind}")
    async with pg_peer.adapter(kind, role, max_runtime_s=1.0) as adapter:
        started = time.monotonic()
        with pytest.raises(ZerocopyError) as caught:
            await adapter.materialize(SLOW, table, deadline=anyio.current_time() + 1.0, tag=tag())
    assert caught.value.code == errors.TIMED_OUT
    assert time.monotonic() - started < 3.0
    assert not table_exists(pg_peer.url, table)


async def test_user_cancel_stops_the_query_server_side_within_two_seconds(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    table = temp_table_name(f"cancel-{kind}")
    pids: list[int] = []
    async with pg_peer.adapter(kind, role) as adapter:
        original = adapter._cancel  # type: ignore[attr-defined]

        def record(handle: QueryHandle) -> None:
            assert isinstance(handle.native, RunningStatement)
            pids.append(int(handle.session_id or 0))
            original(handle)

        adapter._cancel = record  # type: ignore[attr-defined, method-assign]
        cancelled_at: list[float] = []
        with anyio.CancelScope() as scope:

            async def cancel_soon() -> None:
                await anyio.sleep(0.5)
                cancelled_at.append(time.monotonic())
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel_soon)
                await adapter.materialize(
                    SLOW, table, deadline=anyio.current_time() + 60, tag=tag()
                )
        returned_after = time.monotonic() - cancelled_at[0]
    assert scope.cancelled_caught
    assert returned_after < 2.0
    assert pids and pids[0] > 0
    assert not backend_active(pg_peer.url, pids[0])
    assert not table_exists(pg_peer.url, table)


# --------------------------------------------------------------------------- materialize, reads
async def test_materialize_read_ids_in_bounded_batches_and_drop_twice(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    table = temp_table_name(f"ids-{kind}")
    async with pg_peer.adapter(kind, role) as adapter:
        result = await adapter.materialize(
            "SELECT DISTINCT 'u' || g::text AS external_user_id FROM generate_series(1, 2500) AS g",
            table,
            deadline=anyio.current_time() + 30,
            tag=tag(),
        )
        assert result.rows == 2500
        assert table in await adapter.list_temp_tables()
        sizes, ids = [], []
        async for batch in adapter.read_column(table, "external_user_id", batch_rows=1000):
            assert batch.type == pa.string()
            sizes.append(len(batch))
            ids.extend(batch.to_pylist())
        await adapter.drop_table(table)
        await adapter.drop_table(table)
        assert table not in await adapter.list_temp_tables()
    assert sizes == [1000, 1000, 500]
    assert sorted(ids) == sorted(f"u{g}" for g in range(1, 2501))


async def test_a_result_of_one_batch_is_read_in_one_plain_select(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    """The CTAS's row count tells the adapter a read needs no server-side cursor."""
    tables = [temp_table_name(f"small-{kind}-{i}") for i in range(3)]
    select = "SELECT 'u' || g::text AS external_user_id FROM generate_series(1, 2500) AS g"
    async with pg_peer.adapter(kind, role) as adapter:
        for table in tables:
            done = await adapter.materialize(
                select, table, deadline=anyio.current_time() + 30, tag=tag()
            )
            assert done.rows == 2500
        assert isinstance(adapter, PostgresLikeAdapter)
        assert set(tables) <= set(adapter._small_results)
        one = [b.to_pylist() async for b in adapter.read_column(tables[0], "external_user_id")]
        ordered = [
            b.to_pylist()
            async for b in adapter.read_column(tables[1], "external_user_id", ordered=True)
        ]
        # Smaller batches than the table: the server-side cursor, batches bounded as asked.
        sizes = [
            len(b)
            async for b in adapter.read_column(tables[2], "external_user_id", batch_rows=1000)
        ]
        assert not set(tables) & set(adapter._small_results)  # each known count used once
        again = [b.to_pylist() async for b in adapter.read_column(tables[0], "external_user_id")]
        for table in tables:
            await adapter.drop_table(table)
    expected = [f"u{g}" for g in range(1, 2501)]
    assert len(one) == 1 and sorted(one[0]) == sorted(expected)
    assert ordered == [sorted(expected, key=str.encode)]  # byte order, in one batch
    assert sizes == [1000, 1000, 500]
    assert [sorted(b) for b in again] == [sorted(expected)]  # through the cursor this time


async def test_an_empty_result_reads_as_no_batch(pg_peer: PgPeer, kind: str, role: str) -> None:
    table = temp_table_name(f"empty-{kind}")
    async with pg_peer.adapter(kind, role) as adapter:
        done = await adapter.materialize(
            "SELECT 'x'::text AS external_user_id WHERE false",
            table,
            deadline=anyio.current_time() + 30,
            tag=tag(),
        )
        batches = [b async for b in adapter.read_column(table, "external_user_id", ordered=True)]
        await adapter.drop_table(table)
    assert (done.rows, batches) == (0, [])


async def test_read_incremental_is_inclusive_ordered_and_batched(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    sync = pg_peer.warehouse.table("users_attributes_sync").data
    stamps = sorted(sync.column("UPDATED_AT").to_pylist())
    boundary = stamps[len(stamps) // 2]
    expected = sum(1 for s in stamps if s >= boundary)
    async with pg_peer.adapter(kind, role) as adapter:
        batches = [
            b
            async for b in adapter.read_incremental(
                "users_attributes_sync",
                Watermark(boundary, "UPDATED_AT"),
                batch_rows=7,
                columns=["UPDATED_AT", "EXTERNAL_ID", "PAYLOAD"],
            )
        ]
    assert all(b.num_rows <= 7 for b in batches)
    got = pa.Table.from_batches(batches)
    assert got.column_names == ["UPDATED_AT", "EXTERNAL_ID", "PAYLOAD"]
    values = got.column("UPDATED_AT").to_pylist()
    assert len(values) == expected
    assert values == sorted(values) and values[0] == boundary
    assert values.count(boundary) >= 1


def test_catalog_listing_survives_a_table_dropped_while_it_is_read(pg_peer: PgPeer) -> None:
    """A ``zc_tmp_`` table another run drops while the catalog is listed: the listing's scan
    still sees it (its snapshot), and checking its privilege by name failed the whole listing
    with "relation … does not exist"; by OID it drops out."""
    from dialects.pglike import _CATALOG_TABLES_SQL

    with psycopg.connect(pg_peer.url, autocommit=True) as other:
        other.execute(f"CREATE TABLE {SCHEMA}.zc_tmp_dropped_meanwhile (id int)")
        with psycopg.connect(pg_peer.url) as lister:
            lister.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            lister.execute("SELECT 1")  # the snapshot the listing reads with
            other.execute(f"DROP TABLE {SCHEMA}.zc_tmp_dropped_meanwhile")
            names = [row[0] for row in lister.execute(_CATALOG_TABLES_SQL, (SCHEMA,))]
    assert "zc_tmp_dropped_meanwhile" not in names
    assert names  # the fixture warehouse's tables are still listed
