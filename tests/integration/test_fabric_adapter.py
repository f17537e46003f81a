"""Fabric adapter against the TDS peer: what the conformance suite does not look at.

The peer's statement log is the evidence that a deadline (driver timeout → ATTENTION) and a
user cancel (``KILL <spid>`` from a second connection) really stopped the DuckDB query.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from dialects.fabric import FabricAdapter
from dialects.protocol import ConnectionConfig, QueryHandle, QueryTag, Scope
from tests.peers.tds.launch import CLIENTS, DATABASE, TENANT, TdsPeer, running_peer
from zerocopy import errors
from zerocopy.errors import ZerocopyError

pytestmark = pytest.mark.anyio

SLOW = (
    "SELECT u.external_user_id FROM [marketing].[users] AS u, range(100000000000) AS r(n) "
    "WHERE hash(u.external_user_id, r.n) = 42"
)


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TdsPeer]:
    with running_peer(Path(tmp_path_factory.mktemp("fabric"))) as running:
        yield running


def _config(peer: TdsPeer, client_id: str = "app-zerocopy", **kw: Any) -> ConnectionConfig:
    return ConnectionConfig(
        settings={
            "server": f"localhost,{peer.port}",
            "database": DATABASE,
            "tenant_id": TENANT,
            "client_id": client_id,
            "authority_host": f"http://127.0.0.1:{peer.sts_port}",
        },
        secrets={"client_secret": kw.get("secret") or CLIENTS[client_id][0]},
        scope=Scope("marketing"),
        max_runtime_s=kw.get("max_runtime_s", 30.0),
    )


def _state_of(peer: TdsPeer, marker: str) -> str:
    """How the peer says the statement containing ``marker`` ended."""
    until = time.monotonic() + 3
    while True:
        states = [e["state"] for e in peer.statements() if marker in e["sql"]]
        if (states and states[-1] != "running") or time.monotonic() > until:
            return states[-1] if states else "missing"
        time.sleep(0.1)


async def test_expired_secret_says_so_and_hides_the_secret(peer: TdsPeer) -> None:
    async with FabricAdapter(_config(peer, "app-expired")) as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.test()
    assert caught.value.code == errors.AUTH_FAILED
    assert caught.value.message.startswith("service principal secret expired")
    assert "new client secret" in caught.value.message
    assert CLIENTS["app-expired"][0] not in str(caught.value.to_dict())


async def test_wrong_secret_is_auth_failed_without_the_secret(peer: TdsPeer) -> None:
    async with FabricAdapter(_config(peer, secret="wrong-zc-secret-canary")) as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.test()
    assert caught.value.code == errors.AUTH_FAILED
    assert "wrong-zc-secret-canary" not in str(caught.value.to_dict())


async def test_driver_timeout_alone_stops_the_query_in_the_peer(peer: TdsPeer) -> None:
    """No watchdog: the driver's query timeout sends ATTENTION and the peer interrupts DuckDB."""
    adapter = FabricAdapter(_config(peer))
    tag = QueryTag(run_id="drivertimeout")
    sql = adapter.ctas_sql("zc_tmp_drivertimeout", SLOW, tag)
    started = time.monotonic()

    def run() -> BaseException | None:
        try:
            adapter._execute_ctas(sql, QueryHandle(), 1.0, tag)
        except BaseException as exc:
            return exc
        return None

    exc = await anyio.to_thread.run_sync(run)
    assert exc is not None and adapter.map_error(exc).code == errors.TIMED_OUT, exc
    assert time.monotonic() - started < 3
    assert _state_of(peer, "run=drivertimeout") == "interrupted"


async def test_user_cancel_kills_the_session_in_the_peer(peer: TdsPeer) -> None:
    async with FabricAdapter(_config(peer)) as adapter:
        async with anyio.create_task_group() as tg:

            async def refresh() -> None:
                await adapter.materialize(
                    SLOW,
                    "zc_tmp_usercancel",
                    deadline=anyio.current_time() + 60,
                    tag=QueryTag(run_id="usercancel"),
                )

            tg.start_soon(refresh)
            await anyio.sleep(1.0)
            cancelled_at = anyio.current_time()
            tg.cancel_scope.cancel()
        assert anyio.current_time() - cancelled_at < 2
    log = peer.statements()
    assert any(e["sql"].strip().upper().startswith("KILL ") for e in log)
    assert _state_of(peer, "run=usercancel") == "interrupted"


def test_peer_types_rowcounts_temp_tables_and_spid(peer: TdsPeer) -> None:
    """MAX strings (PLP), DML row counts, #temp per session and @@SPID through the driver."""
    import mssql_python

    raw = "tok-zerocopy".encode("utf-16-le")

    def connect() -> Any:
        return mssql_python.connect(
            f"Server=tcp:localhost,{peer.port};Database={{{DATABASE}}};Encrypt=yes",
            attrs_before={1256: struct.pack("<I", len(raw)) + raw},
            autocommit=True,
            timeout=10,
        )

    one, two = connect(), connect()
    try:
        a, b = one.cursor(), two.cursor()
        long_text = "x" * 9000
        assert a.execute("SELECT ? AS t", long_text).fetchone()[0] == long_text
        a.execute("CREATE TABLE #scratch (id INT, name VARCHAR(20))")
        a.execute("INSERT INTO #scratch VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        assert a.rowcount == 3
        assert a.execute("SELECT COUNT(*) FROM #scratch").fetchone()[0] == 3
        with pytest.raises(mssql_python.Error):
            b.execute("SELECT COUNT(*) FROM #scratch")  # another session's #temp
        spid_a = a.execute("SELECT @@SPID").fetchone()[0]
        spid_b = b.execute("SELECT @@SPID").fetchone()[0]
        assert spid_a != spid_b
    finally:
        one.close()
        two.close()


async def test_revoked_permission_is_permission_denied(peer: TdsPeer) -> None:
    """A workspace admin takes the principal's rights away: the next test says what to grant."""
    peer.admin("REVOKE SELECT ON SCHEMA::marketing FROM [zerocopy]")
    try:
        async with FabricAdapter(_config(peer)) as adapter:
            with pytest.raises(ZerocopyError) as caught:
                await adapter.test()
    finally:
        peer.admin("GRANT SELECT ON SCHEMA::marketing TO [zerocopy]")
    assert caught.value.code == errors.PERMISSION_DENIED
    assert "Viewer role" in caught.value.message
    async with FabricAdapter(_config(peer)) as adapter:
        assert (await adapter.test()).tables  # granted back: works again
