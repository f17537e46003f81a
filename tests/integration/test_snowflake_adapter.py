"""SnowflakeAdapter with the official connector against the fakesnow peer (nothing of ours mocked).

What the peer cannot show (grants, JWT checks, statement timeout, SYSTEM$CANCEL_QUERY) is
named here where it matters and checked statement by statement in
tests/unit/dialects/test_snowflake.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pyarrow as pa
import pytest

from dialects.base import temp_table_name
from dialects.protocol import ConnectionConfig, QueryHandle, QueryTag, Scope
from dialects.snowflake import SnowflakeAdapter
from fixtures import Warehouse, build
from tests.peers.fakesnow.peer import FakesnowPeer, peer_python, running_peer
from tests.support import free_port, unavailable
from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.secrets.keypairs import generate_rsa_keypair

pytestmark = [pytest.mark.anyio, pytest.mark.peer("fakesnow")]

PEM = generate_rsa_keypair().private_key_pem


@pytest.fixture(scope="module")
def warehouse() -> Warehouse:
    return build(users=100)


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory, warehouse: Warehouse) -> Iterator[FakesnowPeer]:
    if peer_python() is None:
        unavailable("fakesnow peer not installed: run tests/peers/fakesnow/install.sh")
    base: Path = tmp_path_factory.mktemp("fakesnow_it")
    with running_peer(base, warehouse, database="ZC", schema="ANALYTICS") as started:
        yield started


def config(
    peer: FakesnowPeer, *, scope: str = "zc.analytics", port: int | None = None, **extra: Any
) -> ConnectionConfig:
    return ConnectionConfig(
        settings={
            "account": "zerocopy-peer",
            "user": "zerocopy",
            "role": "zerocopy_role",
            "warehouse": "zerocopy_wh",
            "host": peer.host,
            "port": port or peer.port,
            "protocol": "http",
            "login_timeout": 2,
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
            **extra,
        },
        secrets={"private_key": PEM},
        scope=Scope.parse(scope),
    )


def tag() -> tuple[str, QueryTag]:
    run_id = str(uuid.uuid4())
    return temp_table_name(run_id), QueryTag(run_id=run_id, segment_id="seg-1")


async def test_key_pair_login_lists_the_scope_with_table_comments(
    peer: FakesnowPeer, warehouse: Warehouse
) -> None:
    """The connector signs a JWT with the stored key; the peer accepts and ignores it."""
    async with SnowflakeAdapter(config(peer)) as adapter:
        result = await adapter.test()
    listed = {t.name: t for t in result.tables}
    assert set(listed) == warehouse.names
    users = listed["users"]
    assert users.kind == "table"
    assert users.description == warehouse.table("users").description
    assert [c.name for c in users.columns] == warehouse.table("users").column_names
    assert {c.name: c.description for c in users.columns} == {
        c.name: c.description for c in warehouse.table("users").columns
    }
    # Views are listed (from INFORMATION_SCHEMA.VIEWS); the peer returns their comment NULL.
    assert listed["active_users"].kind == "view" and listed["active_users"].columns
    assert result.server_version


async def test_numeric_ids_come_back_as_int64_in_bounded_batches(
    peer: FakesnowPeer, warehouse: Warehouse
) -> None:
    table, run = tag()
    async with SnowflakeAdapter(config(peer)) as adapter:
        try:
            result = await adapter.materialize(
                f'SELECT DISTINCT "account_id" FROM {adapter.quote_table("accounts")}',
                table,
                deadline=anyio.current_time() + 30,
                tag=run,
            )
            assert result.query_id  # captured from execute_async before waiting
            batches = [b async for b in adapter.read_column(table, "account_id", batch_rows=3)]
        finally:
            await adapter.drop_table(table)
    # The peer sends the whole result as one Arrow batch; the adapter re-cuts it.
    assert [len(b) for b in batches][:-1] == [3] * (len(batches) - 1)
    assert all(b.type == pa.int64() for b in batches)
    got = sorted(v for b in batches for v in b.to_pylist())
    assert got == sorted(set(warehouse.table("accounts").data.column("account_id").to_pylist()))


async def test_temporary_tables_are_transient_and_listed_for_the_janitor(
    peer: FakesnowPeer,
) -> None:
    table, run = tag()
    async with SnowflakeAdapter(config(peer)) as adapter:
        sql = adapter.ctas_sql(table, "SELECT 1 AS x", run)
        assert sql.startswith("CREATE TRANSIENT TABLE ")
        await adapter.materialize(
            "SELECT 1 AS x", table, deadline=anyio.current_time() + 30, tag=run
        )
        assert table in await adapter.list_temp_tables()
        await adapter.drop_table(table)
        await adapter.drop_table(table)
        assert table not in await adapter.list_temp_tables()


async def test_missing_database_is_scope_not_found_at_test_and_at_ctas(peer: FakesnowPeer) -> None:
    table, run = tag()
    async with SnowflakeAdapter(config(peer, scope="no_such_db.analytics")) as adapter:
        with pytest.raises(ZerocopyError) as at_test:
            await adapter.test()
        with pytest.raises(ZerocopyError) as at_ctas:
            await adapter.materialize(
                "SELECT 1 AS x", table, deadline=anyio.current_time() + 30, tag=run
            )
        await adapter.drop_table(table)  # nothing can exist there: the drop still succeeds
    for caught in (at_test, at_ctas):
        assert caught.value.code == errors.SCOPE_NOT_FOUND, caught.value
        assert "NO_SUCH_DB.ANALYTICS" in caught.value.message
        assert "GRANT USAGE ON SCHEMA" in caught.value.message


async def test_closed_port_is_unreachable_within_the_login_timeout(peer: FakesnowPeer) -> None:
    started = time.monotonic()
    async with SnowflakeAdapter(config(peer, port=free_port())) as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.test()
    assert caught.value.code == errors.UNREACHABLE
    assert time.monotonic() - started < 10


async def test_unreadable_private_key_fails_before_any_request(peer: FakesnowPeer) -> None:
    cfg = config(peer)
    broken = ConnectionConfig(
        settings=cfg.settings,
        secrets={"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"},
        scope=cfg.scope,
    )
    async with SnowflakeAdapter(broken) as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.test()
    assert caught.value.code == errors.INVALID_CREDENTIAL
    assert "AAAA" not in caught.value.message


async def test_peer_cannot_show_system_cancel_query_it_lacks_the_function(
    peer: FakesnowPeer,
) -> None:
    """Our cancel reaches the peer as SYSTEM$CANCEL_QUERY('<id>'); fakesnow has no such function."""
    async with SnowflakeAdapter(config(peer)) as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.cancel(QueryHandle(query_id=str(uuid.uuid4())))
    assert caught.value.code == errors.WAREHOUSE_ERROR
    assert "system$cancel_query" in caught.value.message.lower()


async def test_sql_error_is_warehouse_error_with_the_warehouse_message(peer: FakesnowPeer) -> None:
    table, run = tag()
    async with SnowflakeAdapter(config(peer)) as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.materialize(
                f'SELECT "nope" FROM {adapter.quote_table("users")}',
                table,
                deadline=anyio.current_time() + 30,
                tag=run,
            )
    assert caught.value.code == errors.WAREHOUSE_ERROR
    assert "nope" in caught.value.message.lower()


async def test_private_key_and_login_token_stay_out_of_debug_logs(
    peer: FakesnowPeer, caplog: pytest.LogCaptureFixture
) -> None:
    """Driver and adapter logs at DEBUG carry neither the key nor the JWT signed with it."""
    import logging

    table, run = tag()
    caplog.set_level(logging.DEBUG)
    async with SnowflakeAdapter(config(peer)) as adapter:
        await adapter.test()
        await adapter.materialize(
            "SELECT 1 AS x", table, deadline=anyio.current_time() + 30, tag=run
        )
        await adapter.drop_table(table)
    text = caplog.text
    assert "snowflake.connector" in text, "the driver's debug logging was captured"
    body = "".join(PEM.strip().splitlines()[1:-1])
    for start in range(0, len(body) - 40, 40):
        assert body[start : start + 40] not in text
    assert "BEGIN PRIVATE KEY" not in text
    assert "eyJ" not in text, "a JWT (base64 of '{\"') appeared in the logs"
