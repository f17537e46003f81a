"""Red-team of the PostgreSQL and Redshift adapters: the warehouse going away, bad credentials,
awkward catalogs and awkward ids, through the adapter protocol against real servers.

Each test runs for both kinds (``postgres``: psycopg 3 straight to PostgreSQL; ``redshift``:
redshift_connector through the Redshift proxy). "The warehouse disappears" is provoked for
real: ``pg_terminate_backend`` on the adapter's own backend while it runs a CTAS, reads ids,
lists the catalog or sits idle in the pool; a port nobody listens on; a listener that never
answers the login. After every failure the scope must hold no ``zc_tmp_`` table.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest

from dialects.base import temp_table_name
from dialects.postgres import PostgresAdapter
from dialects.protocol import ConnectionConfig, QueryTag, Scope
from dialects.redshift import RedshiftAdapter
from dialects.registry import create_adapter
from tests.peers.redshift_proxy import fixtures as pg_fixtures
from tests.peers.redshift_proxy.fixtures import SCHEMA, PgPeer, adapter_settings, query_tag
from tests.peers.redshift_proxy.peer import reader_role
from tests.support import REPO, free_port, unavailable
from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.secrets.keypairs import generate_ssh_keypair

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

redshift_proxy_port = pg_fixtures.redshift_proxy_port
pg_peer = pg_fixtures.pg_peer
kind = pg_fixtures.pglike_kind
role = pg_fixtures.reader

SLOW = "SELECT 1 AS external_user_id FROM (SELECT pg_sleep(30)) AS s"
HANG_GUARD_S = 60
"""Only a guard against a hang (the test fails instead of blocking the suite); not a timing."""


def tag() -> QueryTag:
    return query_tag("seg-redteam")


def admin(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, params)  # type: ignore[arg-type]
        return list(cur.fetchall()) if cur.description else []


def temp_tables(url: str, schema: str = SCHEMA) -> list[str]:
    rows = admin(
        url,
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND relname ILIKE 'zc\\_tmp\\_%%'",
        (schema,),
    )
    return [r[0] for r in rows]


def backends(url: str, user: str, state: str | None = None) -> list[int]:
    sql = "SELECT pid FROM pg_stat_activity WHERE usename = %s"
    params: tuple[Any, ...] = (user,)
    if state:
        sql += " AND state = %s"
        params += (state,)
    return [r[0] for r in admin(url, sql, params)]


def wait_for_backend(url: str, user: str, state: str, *, what: str = "") -> int:
    until = time.monotonic() + 20
    while time.monotonic() < until:
        sql = "SELECT pid FROM pg_stat_activity WHERE usename = %s AND state = %s"
        params: tuple[Any, ...] = (user, state)
        if what:
            sql += " AND query ILIKE %s"
            params += (f"%{what}%",)
        rows = admin(url, sql, params)
        if rows:
            return int(rows[0][0])
        time.sleep(0.02)
    raise AssertionError(f"no {state} backend of {user} running {what!r}")


def terminate(url: str, pid: int) -> None:
    admin(url, "SELECT pg_terminate_backend(%s)", (pid,))
    until = time.monotonic() + 10
    while time.monotonic() < until:
        if not admin(url, "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)):
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} still there")


def assert_clean(error: ZerocopyError, *secrets: str) -> None:
    """No secret in what a user sees; the message says what and where."""
    shown = str(error.to_dict())
    for secret in secrets:
        assert secret not in shown


# --------------------------------------------------------------------------- the warehouse goes away
async def test_backend_terminated_during_the_ctas_is_unreachable_and_leaves_no_table(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    table = temp_table_name(f"term-ctas-{kind}-{uuid.uuid4().hex[:6]}")
    async with pg_peer.adapter(kind, role) as adapter:

        def kill_it() -> None:
            terminate(pg_peer.url, wait_for_backend(pg_peer.url, role, "active", what="pg_sleep"))

        killer = threading.Thread(target=kill_it)
        killer.start()
        with anyio.fail_after(HANG_GUARD_S), pytest.raises(ZerocopyError) as caught:
            await adapter.materialize(SLOW, table, deadline=anyio.current_time() + 60, tag=tag())
        killer.join()
        await adapter.drop_table(table)  # the engine's drop-in-finally works on a new session
        # The adapter is still usable: the next statement gets a fresh session.
        again = temp_table_name(f"term-ctas2-{kind}-{uuid.uuid4().hex[:6]}")
        done = await adapter.materialize(
            f"SELECT external_user_id FROM {SCHEMA}.users",
            again,
            deadline=anyio.current_time() + 60,
            tag=tag(),
        )
        await adapter.drop_table(again)
    assert caught.value.code == errors.UNREACHABLE
    assert "connection" in caught.value.message.lower()
    assert kind in caught.value.message
    assert done.rows == pg_peer.warehouse.table("users").data.num_rows
    assert temp_tables(pg_peer.url) == []


async def test_backend_terminated_during_the_id_read_is_unreachable(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    table = temp_table_name(f"term-read-{kind}-{uuid.uuid4().hex[:6]}")
    async with pg_peer.adapter(kind, role) as adapter:
        await adapter.materialize(
            "SELECT 'u' || g::text AS external_user_id FROM generate_series(1, 30000) AS g",
            table,
            deadline=anyio.current_time() + 60,
            tag=tag(),
        )
        got = 0
        with anyio.fail_after(HANG_GUARD_S), pytest.raises(ZerocopyError) as caught:
            async for batch in adapter.read_column(table, "external_user_id", batch_rows=1000):
                if got == 0:
                    pid = wait_for_backend(pg_peer.url, role, "idle in transaction")
                    await anyio.to_thread.run_sync(terminate, pg_peer.url, pid)
                got += len(batch)
        await adapter.drop_table(table)
    assert caught.value.code == errors.UNREACHABLE
    assert "connection" in caught.value.message.lower()
    assert 0 < got < 30000
    assert temp_tables(pg_peer.url) == []


async def test_backend_terminated_during_the_catalog_listing_is_unreachable(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    """The listing is held on a lock (an admin's ACCESS EXCLUSIVE lock on a catalog the
    listing reads), then its backend is terminated."""
    async with pg_peer.adapter(kind, role) as adapter:
        await adapter.list_tables()  # a pooled session exists
        with psycopg.connect(pg_peer.url) as locker:
            locker.execute("LOCK TABLE pg_catalog.pg_description IN ACCESS EXCLUSIVE MODE")

            def kill_it() -> None:
                pid = wait_for_backend(pg_peer.url, role, "active", what="information_schema")
                terminate(pg_peer.url, pid)
                locker.rollback()

            killer = threading.Thread(target=kill_it)
            killer.start()
            with anyio.fail_after(HANG_GUARD_S), pytest.raises(ZerocopyError) as caught:
                await adapter.list_tables()
            killer.join()
        listed = {t.name for t in await adapter.list_tables()}  # a fresh session again
    assert caught.value.code == errors.UNREACHABLE
    assert "lost the connection" in caught.value.message
    assert listed == pg_peer.warehouse.names


async def test_a_kept_session_killed_between_runs_reconnects_transparently(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    """Sessions idle in the pool whose backends were terminated (a restart, an idle timeout,
    a DBA) are replaced, not handed to the next run as a stale connection."""
    select = f"SELECT external_user_id FROM {SCHEMA}.users"
    async with pg_peer.adapter(kind, role) as adapter:
        for round_ in range(2):
            table = temp_table_name(f"kept-{kind}-{round_}-{uuid.uuid4().hex[:6]}")
            await adapter.materialize(select, table, deadline=anyio.current_time() + 60, tag=tag())
            ids = [
                v
                async for b in adapter.read_column(table, "external_user_id")
                for v in b.to_pylist()
            ]
            await adapter.drop_table(table)
            assert len(ids) == pg_peer.warehouse.table("users").data.num_rows
            await adapter.list_tables()
            idle = backends(pg_peer.url, role)
            assert idle  # the adapter keeps sessions between runs
            for pid in idle:
                terminate(pg_peer.url, pid)
        tables = {t.name for t in (await adapter.test()).tables}
    assert tables == pg_peer.warehouse.names
    assert temp_tables(pg_peer.url) == []


class _BlackHole:
    """A TCP listener that accepts connections and never answers (a firewall that swallows
    packets after the handshake, a hung bastion)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                self.accepted.append(conn)

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.sock.close()


class _QuickPostgres(PostgresAdapter):
    CONNECT_TIMEOUT_S = 2
    DROP_TIMEOUT_S = 3


class _QuickRedshift(RedshiftAdapter):
    CONNECT_TIMEOUT_S = 2
    DROP_TIMEOUT_S = 3


async def test_a_server_that_never_answers_the_login_is_unreachable_after_the_connect_timeout(
    pg_peer: PgPeer, kind: str
) -> None:
    hole = _BlackHole()
    try:
        settings = adapter_settings(kind, "127.0.0.1", hole.port, pg_peer.database, "postgres")
        config = ConnectionConfig(settings, {"password": "s3cret-never-shown"}, Scope(SCHEMA))
        cls = _QuickPostgres if kind == "postgres" else _QuickRedshift
        async with cls(config) as adapter:
            with anyio.fail_after(HANG_GUARD_S), pytest.raises(ZerocopyError) as caught:
                await adapter.test()
    finally:
        hole.close()
    assert caught.value.code == errors.UNREACHABLE
    assert "cannot reach" in caught.value.message or "timeout" in caught.value.message.lower()
    assert_clean(caught.value, "s3cret-never-shown")


async def test_the_warehouse_going_away_and_coming_back(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    """Through a proxy we stop and restart on the same port: while it is gone every call is
    ``unreachable`` (refused at once, not a hang); once back, the same adapter works again."""
    port = free_port()
    select = f"SELECT external_user_id FROM {SCHEMA}.users"

    def config() -> ConnectionConfig:
        settings = adapter_settings(kind, "127.0.0.1", port, pg_peer.database, role)
        return ConnectionConfig(settings, {"password": "unused"}, Scope(SCHEMA))

    adapter = create_adapter(kind, config())
    try:
        with _proxy_on(pg_peer.port, port):
            assert {t.name for t in await adapter.list_tables()} == pg_peer.warehouse.names
        # Gone: the proxy's exit closed the sessions the adapter keeps, and the port.
        for call in ("list", "ctas"):
            with anyio.fail_after(HANG_GUARD_S), pytest.raises(ZerocopyError) as caught:
                if call == "list":
                    await adapter.list_tables()
                else:
                    await adapter.materialize(
                        select, temp_table_name("gone"), deadline=anyio.current_time() + 60,
                        tag=tag(),
                    )  # fmt: skip
            assert caught.value.code == errors.UNREACHABLE, call
            assert "cannot reach" in caught.value.message or "connection" in caught.value.message
        with _proxy_on(pg_peer.port, port):
            table = temp_table_name(f"back-{kind}-{uuid.uuid4().hex[:6]}")
            done = await adapter.materialize(
                select, table, deadline=anyio.current_time() + 60, tag=tag()
            )
            await adapter.drop_table(table)
    finally:
        await adapter.aclose()
    assert done.rows == pg_peer.warehouse.table("users").data.num_rows
    assert temp_tables(pg_peer.url) == []


@contextlib.contextmanager
def _proxy_on(upstream: int, port: int) -> Iterator[None]:
    """The Redshift proxy on a given port (psycopg speaks through it too)."""
    import subprocess
    import sys

    from tests.peers.redshift_proxy.peer import PROXY
    from tests.support import wait_for_port

    proc = subprocess.Popen(
        [sys.executable, str(PROXY), "--port", str(port), "--upstream-host", "127.0.0.1",
         "--upstream-port", str(upstream)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=15)
        yield
    finally:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------- credentials, grants
async def test_an_unknown_user_is_auth_failed_naming_the_user(pg_peer: PgPeer, kind: str) -> None:
    async with pg_peer.adapter(kind, "zc_nobody_here", password="pw-never-shown") as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.test()
    assert caught.value.code == errors.AUTH_FAILED
    assert "zc_nobody_here" in caught.value.message
    assert_clean(caught.value, "pw-never-shown")


async def test_an_unknown_database_is_scope_not_found_naming_it(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    config = pg_peer.config(kind, role)
    settings = {**config.settings, "database": "zc_no_such_db"}
    async with create_adapter(kind, ConnectionConfig(settings, config.secrets, config.scope)) as a:
        with pytest.raises(ZerocopyError) as caught:
            await a.test()
    assert caught.value.code == errors.SCOPE_NOT_FOUND
    assert "zc_no_such_db" in caught.value.message


async def test_a_missing_scope_schema_is_scope_not_found_at_test_and_at_the_ctas(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    async with pg_peer.adapter(kind, role, schema="No Such Schema") as adapter:
        with pytest.raises(ZerocopyError) as at_test:
            await adapter.test()
        with pytest.raises(ZerocopyError) as at_ctas:
            await adapter.materialize(
                f"SELECT external_user_id FROM {SCHEMA}.users",
                temp_table_name("noschema"),
                deadline=anyio.current_time() + 30,
                tag=tag(),
            )
    for caught in (at_test, at_ctas):
        assert caught.value.code == errors.SCOPE_NOT_FOUND
        assert "No Such Schema" in caught.value.message


async def test_usage_revoked_after_the_test_fails_the_ctas_naming_the_grant(
    pg_peer: PgPeer, kind: str
) -> None:
    with reader_role(pg_peer.url, SCHEMA) as name:
        async with pg_peer.adapter(kind, name) as adapter:
            await adapter.test()
            admin(pg_peer.url, f'REVOKE USAGE ON SCHEMA {SCHEMA} FROM "{name}"')
            with pytest.raises(ZerocopyError) as caught:
                await adapter.materialize(
                    f"SELECT external_user_id FROM {SCHEMA}.users",
                    temp_table_name(f"nousage-{uuid.uuid4().hex[:6]}"),
                    deadline=anyio.current_time() + 30,
                    tag=tag(),
                )
    assert caught.value.code == errors.PERMISSION_DENIED
    assert f"GRANT USAGE ON SCHEMA {SCHEMA} TO {name}" in caught.value.message
    assert temp_tables(pg_peer.url) == []


async def test_select_revoked_on_one_table_drops_it_from_the_catalog_and_names_the_grant(
    pg_peer: PgPeer, kind: str
) -> None:
    with reader_role(pg_peer.url, SCHEMA) as name:
        admin(pg_peer.url, f'REVOKE SELECT ON {SCHEMA}.events FROM "{name}"')
        async with pg_peer.adapter(kind, name) as adapter:
            listed = {t.name for t in (await adapter.test()).tables}
            with pytest.raises(ZerocopyError) as caught:
                await adapter.materialize(
                    f"SELECT DISTINCT external_user_id FROM {SCHEMA}.events",
                    temp_table_name(f"revoked-{uuid.uuid4().hex[:6]}"),
                    deadline=anyio.current_time() + 30,
                    tag=tag(),
                )
    assert listed == pg_peer.warehouse.names - {"events"}
    assert caught.value.code == errors.PERMISSION_DENIED
    assert f"GRANT SELECT ON {SCHEMA}.events TO {name}" in caught.value.message
    assert temp_tables(pg_peer.url) == []


# --------------------------------------------------------------------------- awkward catalogs
ODD = "Odd Schema Ü"
WIDE_COLUMNS = 300
COMMENT = 'It\'s "quoted";\nsecond line -- not a comment */ /*'


@pytest.fixture(scope="module")
def odd_scope(pg_peer: PgPeer) -> Iterator[str]:
    """A schema whose name needs quoting, holding every awkward object the catalog may meet."""
    q = psycopg.sql
    s = q.Identifier(ODD)
    wide = ", ".join(f"c{i:03d} int" for i in range(WIDE_COLUMNS))
    statements = [
        q.SQL("CREATE SCHEMA {}").format(s),
        q.SQL('CREATE TABLE {}."MixedCase" (external_user_id text, "Weird Col" int, '
              '"dotted.col" text, "ünï 表" text)').format(s),
        q.SQL("COMMENT ON TABLE {}.\"MixedCase\" IS {}").format(s, q.Literal(COMMENT)),
        q.SQL('COMMENT ON COLUMN {}."MixedCase"."Weird Col" IS {}').format(s, q.Literal(COMMENT)),
        q.SQL('CREATE TABLE {}."with space" (external_user_id text)').format(s),
        q.SQL('CREATE TABLE {}."with.dot" (external_user_id text)').format(s),
        q.SQL('CREATE TABLE {}."ünïcødé_表" (external_user_id text)').format(s),
        q.SQL('CREATE TABLE {}."Secret Table" (external_user_id text)').format(s),
        q.SQL("CREATE TABLE {}.wide (external_user_id text, " + wide + ")").format(s),
        q.SQL('CREATE VIEW {}."V iew" AS SELECT external_user_id, "Weird Col" FROM {}."MixedCase"')
        .format(s, s),
        q.SQL('CREATE TABLE {}.zc_tmp_orphan (external_user_id text)').format(s),
        q.SQL('CREATE TABLE {}."ZC_TMP_UPPER" (external_user_id text)').format(s),
        q.SQL('INSERT INTO {}."MixedCase" VALUES (\'ü1\', 1, \'a.b\', \'表\')').format(s),
    ]  # fmt: skip
    with psycopg.connect(pg_peer.url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    yield ODD


@pytest.fixture
def odd_role(pg_peer: PgPeer, odd_scope: str) -> Iterator[str]:
    with reader_role(pg_peer.url, odd_scope) as name:
        admin(pg_peer.url, f'REVOKE SELECT ON "{odd_scope}"."Secret Table" FROM "{name}"')
        yield name


ODD_TABLES = {"MixedCase", "with space", "with.dot", "ünïcødé_表", "wide", "V iew"}


async def test_catalog_of_awkward_names_comments_and_widths(
    pg_peer: PgPeer, kind: str, odd_role: str
) -> None:
    """Names needing quotes, comments with quotes and newlines, 300 columns; zerocopy's own
    ``zc_tmp_`` tables, tables without SELECT and other sessions' temp tables are not listed."""
    with psycopg.connect(pg_peer.url, autocommit=True) as other:
        other.execute("CREATE TEMP TABLE other_session_tmp (external_user_id text)")
        async with pg_peer.adapter(kind, odd_role, schema=ODD) as adapter:
            result = await adapter.test()
    by_name = {t.name: t for t in result.tables}
    assert set(by_name) == ODD_TABLES
    mixed = by_name["MixedCase"]
    assert mixed.description == COMMENT
    assert [c.name for c in mixed.columns] == [
        "external_user_id",
        "Weird Col",
        "dotted.col",
        "ünï 表",
    ]
    assert {c.name: c.description for c in mixed.columns}["Weird Col"] == COMMENT
    assert [c.name for c in by_name["wide"].columns][-1] == f"c{WIDE_COLUMNS - 1:03d}"
    assert len(by_name["wide"].columns) == WIDE_COLUMNS + 1
    assert by_name["V iew"].kind == "view"
    assert [c.name for c in by_name["V iew"].columns] == ["external_user_id", "Weird Col"]
    assert result.warnings == []


async def test_ctas_and_reads_in_a_scope_that_needs_quoting(
    pg_peer: PgPeer, kind: str, odd_role: str
) -> None:
    table = temp_table_name(f"odd-{kind}-{uuid.uuid4().hex[:6]}")
    async with pg_peer.adapter(kind, odd_role, schema=ODD) as adapter:
        await adapter.materialize(
            f'SELECT external_user_id FROM "{ODD}"."MixedCase"',
            table,
            deadline=anyio.current_time() + 30,
            tag=tag(),
        )
        assert table in await adapter.list_temp_tables()
        assert table not in {t.name for t in await adapter.list_tables()}
        ids = [
            v async for b in adapter.read_column(table, "external_user_id") for v in b.to_pylist()
        ]
        with pytest.raises(ZerocopyError) as caught:
            await adapter.materialize(
                f'SELECT external_user_id FROM "{ODD}"."Secret Table"',
                temp_table_name(f"odd-secret-{uuid.uuid4().hex[:6]}"),
                deadline=anyio.current_time() + 30,
                tag=tag(),
            )
        await adapter.drop_table(table)
    assert ids == ["ü1"]
    assert caught.value.code == errors.PERMISSION_DENIED
    assert f'GRANT SELECT ON "{ODD}"."Secret Table" TO {odd_role}' in caught.value.message
    assert set(temp_tables(pg_peer.url, ODD)) == {"zc_tmp_orphan", "ZC_TMP_UPPER"}


async def test_postgres_partitioned_tables_and_materialized_views(
    pg_peer: PgPeer, odd_scope: str
) -> None:
    """The partitioned table is listed once (its partitions are storage, not tables to pick),
    a materialized view as a view, with comments."""
    schema = f"parts_{uuid.uuid4().hex[:6]}"
    for sql in (
        f"CREATE SCHEMA {schema}",
        f"CREATE TABLE {schema}.events_p (external_user_id text, at date) PARTITION BY RANGE (at)",
        f"CREATE TABLE {schema}.events_p_2025 PARTITION OF {schema}.events_p "
        "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
        f"CREATE TABLE {schema}.events_p_2026 PARTITION OF {schema}.events_p "
        "FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
        f"COMMENT ON TABLE {schema}.events_p IS 'All events, by year'",
        f"INSERT INTO {schema}.events_p VALUES ('a', '2025-05-01'), ('b', '2026-05-01')",
        f'CREATE MATERIALIZED VIEW {schema}."MV x" AS SELECT external_user_id FROM {schema}.events_p',
        f"COMMENT ON MATERIALIZED VIEW {schema}.\"MV x\" IS e'a\\nb ''c'''",
    ):
        admin(pg_peer.url, sql)
    with reader_role(pg_peer.url, schema) as name:
        async with pg_peer.adapter("postgres", name, schema=schema) as adapter:
            tables = {t.name: t for t in (await adapter.test()).tables}
            table = temp_table_name(f"parts-{uuid.uuid4().hex[:6]}")
            await adapter.materialize(
                f"SELECT external_user_id FROM {schema}.events_p", table,
                deadline=anyio.current_time() + 30, tag=tag(),
            )  # fmt: skip
            ids = sorted(
                [
                    v
                    async for b in adapter.read_column(table, "external_user_id")
                    for v in b.to_pylist()
                ]
            )
            await adapter.drop_table(table)
    assert set(tables) == {"events_p", "MV x"}
    assert (tables["events_p"].kind, tables["events_p"].description) == (
        "table",
        "All events, by year",
    )
    assert [c.name for c in tables["events_p"].columns] == ["external_user_id", "at"]
    assert (tables["MV x"].kind, tables["MV x"].description) == ("view", "a\nb 'c'")
    assert ids == ["a", "b"]


# --------------------------------------------------------------------------- awkward ids
LONG = "é" * 5000 + "-end"


@pytest.mark.parametrize(
    ("type_sql", "values", "expected"),
    [
        ("text", ["b", None, "a", "b", "ü", "表", LONG, ""], ["", "a", "b", "b", "ü", "表", LONG]),
        ("bigint", [10, None, 9, 10, -1, 2**62], [-1, 9, 10, 10, 2**62]),
        ("numeric(30,0)", [Decimal("123456789012345678901234567890"), None, Decimal(7)],
         [Decimal(7), Decimal("123456789012345678901234567890")]),
        ("uuid", [uuid.UUID(int=2), None, uuid.UUID(int=1), uuid.UUID(int=2)],
         [str(uuid.UUID(int=1)), str(uuid.UUID(int=2)), str(uuid.UUID(int=2))]),
    ],
    ids=["text", "bigint", "numeric", "uuid"],
)  # fmt: skip
async def test_ids_of_every_type_with_nulls_duplicates_unicode_and_long_values(
    pg_peer: PgPeer, kind: str, role: str, type_sql: str, values: list[Any], expected: list[Any]
) -> None:
    """The adapter hands back exactly what the table holds (NULLs too: the engine drops them
    and duplicates), in bounded batches, and ``ordered`` reads come in the byte order of the
    ids' text form, whatever the column type."""
    source = f"ids_{uuid.uuid4().hex[:8]}"
    admin(pg_peer.url, f"CREATE TABLE {SCHEMA}.{source} (external_user_id {type_sql})")
    with psycopg.connect(pg_peer.url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {SCHEMA}.{source} VALUES (%s)", [(v,) for v in values])
    admin(pg_peer.url, f'GRANT SELECT ON {SCHEMA}.{source} TO "{role}"')
    table = temp_table_name(f"idtypes-{kind}-{uuid.uuid4().hex[:6]}")
    try:
        async with pg_peer.adapter(kind, role) as adapter:
            done = await adapter.materialize(
                f"SELECT external_user_id FROM {SCHEMA}.{source}",
                table,
                deadline=anyio.current_time() + 30,
                tag=tag(),
            )
            batches = [
                b async for b in adapter.read_column(table, "external_user_id", batch_rows=2)
            ]
            ordered = [
                v
                async for b in adapter.read_column(table, "external_user_id", ordered=True)
                for v in b.to_pylist()
            ]
            await adapter.drop_table(table)
    finally:
        admin(pg_peer.url, f"DROP TABLE {SCHEMA}.{source}")
    got = [v for b in batches for v in b.to_pylist()]
    assert done.rows == len(values)
    assert all(len(b) <= 2 for b in batches)
    assert got.count(None) == 1
    normalise = (lambda v: str(v)) if type_sql == "uuid" else (lambda v: v)
    assert sorted(normalise(v) for v in got if v is not None) == sorted(expected)
    non_null = [normalise(v) for v in ordered if v is not None]
    assert non_null == sorted(non_null, key=lambda v: str(v).encode())
    assert temp_tables(pg_peer.url) == []


async def test_an_empty_result_reads_as_no_batch_ordered_or_not(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    table = temp_table_name(f"empty-{kind}-{uuid.uuid4().hex[:6]}")
    async with pg_peer.adapter(kind, role) as adapter:
        done = await adapter.materialize(
            f"SELECT external_user_id FROM {SCHEMA}.users WHERE false",
            table,
            deadline=anyio.current_time() + 30,
            tag=tag(),
        )
        plain = [b async for b in adapter.read_column(table, "external_user_id", batch_rows=5)]
        ordered = [b async for b in adapter.read_column(table, "external_user_id", ordered=True)]
        await adapter.drop_table(table)
    assert (done.rows, plain, ordered) == (0, [], [])


# --------------------------------------------------------------------------- SSH tunnel
SSHD_PYTHON = REPO / ".peers" / "sshd" / "bin" / "python"
SSHD_SERVER = REPO / "tests" / "peers" / "sshd" / "server.py"


@contextlib.contextmanager
def _bastion(base: Path, port: int, public_key_line: str) -> Iterator[None]:
    """A real SSH bastion (asyncssh peer) on ``port`` accepting only ``public_key_line``."""
    import subprocess

    from tests.support import wait_for_port

    if not SSHD_PYTHON.exists():
        unavailable("SSH bastion peer not installed: run `make peers` (tests/peers/sshd)")
    (base / "authorized_keys").write_text(public_key_line + "\n")
    proc = subprocess.Popen(
        [str(SSHD_PYTHON), str(SSHD_SERVER), "--port", str(port), "--user", "zc-tunnel",
         "--authorized-keys", str(base / "authorized_keys"),
         "--host-key-out", str(base / "host_key.pub")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=20)
        yield
    finally:
        proc.kill()
        proc.wait()


def _tunnelled(pg_peer: PgPeer, kind: str, role: str, ssh_port: int, key: str, **over: Any) -> Any:
    config = pg_peer.config(kind, role)
    settings = {**config.settings, **over}
    settings["ssh_tunnel"] = {"host": "127.0.0.1", "port": ssh_port, "user": "zc-tunnel"}
    return ConnectionConfig(settings, {**config.secrets, "ssh_private_key": key}, config.scope)


async def test_a_tunnel_to_a_closed_warehouse_port_is_unreachable_naming_the_bastion(
    pg_peer: PgPeer, kind: str, role: str, tmp_path: Path
) -> None:
    keys = generate_ssh_keypair()
    ssh_port, closed = free_port(), free_port()
    with _bastion(tmp_path, ssh_port, keys.public_key_line):
        config = _tunnelled(pg_peer, kind, role, ssh_port, keys.private_key_openssh, port=closed)
        async with create_adapter(kind, config) as adapter:
            with anyio.fail_after(HANG_GUARD_S), pytest.raises(ZerocopyError) as caught:
                await adapter.test()
    assert caught.value.code == errors.UNREACHABLE
    assert f"{pg_peer.host}:{closed}" in caught.value.message
    assert f"SSH bastion 127.0.0.1:{ssh_port}" in caught.value.message
    assert_clean(caught.value, keys.private_key_openssh, "PRIVATE KEY")


async def test_a_bastion_restarted_between_runs_is_reconnected(
    pg_peer: PgPeer, kind: str, role: str, tmp_path: Path
) -> None:
    keys = generate_ssh_keypair()
    ssh_port = free_port()
    config = _tunnelled(pg_peer, kind, role, ssh_port, keys.private_key_openssh)
    adapter = create_adapter(kind, config)
    try:
        with _bastion(tmp_path, ssh_port, keys.public_key_line):
            first = {t.name for t in await adapter.list_tables()}
        with pytest.raises(ZerocopyError) as while_down:
            await adapter.list_tables()
        with _bastion(tmp_path, ssh_port, keys.public_key_line):
            table = temp_table_name(f"bastion-{kind}-{uuid.uuid4().hex[:6]}")
            done = await adapter.materialize(
                f"SELECT external_user_id FROM {SCHEMA}.users", table,
                deadline=anyio.current_time() + 60, tag=tag(),
            )  # fmt: skip
            await adapter.drop_table(table)
    finally:
        await adapter.aclose()
    assert first == pg_peer.warehouse.names
    assert while_down.value.code == errors.UNREACHABLE
    assert "SSH bastion" in while_down.value.message
    assert done.rows == pg_peer.warehouse.table("users").data.num_rows
    assert temp_tables(pg_peer.url) == []


# --------------------------------------------------------------------------- a silent warehouse
class _FreezableProxy:
    """A TCP forwarder that can go silent: after :meth:`freeze` it keeps every socket open but
    forwards nothing and answers no new connection (a network partition, a hung load balancer)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.frozen = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = int(self.sock.getsockname()[1])
        self.sockets: list[socket.socket] = [self.sock]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.sock.accept()
                self.sockets.append(client)
                if self.frozen.is_set():
                    continue  # accepted, never answered
                server = socket.create_connection(("127.0.0.1", self.upstream))
                self.sockets.append(server)
                for a, b in ((client, server), (server, client)):
                    threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if self.frozen.is_set():
                    continue  # swallowed
                dst.sendall(data)

    def freeze(self) -> None:
        self.frozen.set()

    def close(self) -> None:
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.close()


async def test_a_warehouse_that_goes_silent_mid_ctas_ends_timed_out_at_the_deadline(
    pg_peer: PgPeer, kind: str, role: str
) -> None:
    """The server stops answering while the CTAS runs: the watchdog ends the run at the
    deadline; its server-side cancel (through the same silent network) must not hold the run
    for the connect timeout. The server's own statement_timeout still stops the statement."""
    upstream = pg_peer.proxy_port if kind == "redshift" else pg_peer.port
    proxy = _FreezableProxy(upstream)
    table = temp_table_name(f"silent-{kind}-{uuid.uuid4().hex[:6]}")
    try:
        settings = adapter_settings(kind, "127.0.0.1", proxy.port, pg_peer.database, role)
        config = ConnectionConfig(settings, {"password": "unused"}, Scope(SCHEMA), max_runtime_s=1)
        cls = _QuickPostgres if kind == "postgres" else _QuickRedshift
        async with cls(config) as adapter:
            await adapter.list_tables()

            def freeze_when_running() -> None:
                wait_for_backend(pg_peer.url, role, "active", what="pg_sleep")
                proxy.freeze()

            freezer = threading.Thread(target=freeze_when_running)
            freezer.start()
            # Far below the 15 s connect timeout a cancel through the silent network would wait.
            with anyio.fail_after(8), pytest.raises(ZerocopyError) as caught:
                await adapter.materialize(SLOW, table, deadline=anyio.current_time() + 1, tag=tag())
            freezer.join()
            # The engine's drop-in-finally meets the same silence: bounded, and it says so.
            with anyio.fail_after(HANG_GUARD_S), pytest.raises(ZerocopyError) as at_drop:
                await adapter.drop_table(table)
    finally:
        proxy.close()
    assert caught.value.code == errors.TIMED_OUT
    assert "max runtime" in caught.value.message
    assert at_drop.value.code == errors.UNREACHABLE
    # Either the connect times out (a new session) or the drop itself does (a kept one).
    assert f"127.0.0.1:{proxy.port}" in at_drop.value.message or (
        table in at_drop.value.message and "janitor" in at_drop.value.message
    )
    # The server's statement_timeout ends the backend's CTAS; nothing is created.
    await anyio.to_thread.run_sync(_wait_no_active_backend, pg_peer.url, role)
    assert temp_tables(pg_peer.url) == []


def _wait_no_active_backend(url: str, user: str) -> None:
    until = time.monotonic() + 10
    while backends(url, user, "active") and time.monotonic() < until:
        time.sleep(0.1)
