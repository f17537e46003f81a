"""The Databricks adapter on the official connector against the TCLIService peer (real HTTP+Thrift).

Beyond the conformance suite: a refresh cancelled through the engine ends ``cancelled`` within
2 s and the peer reports the DuckDB query stopped; a starting warehouse (HTTP 503
TEMPORARILY_UNAVAILABLE) is reported and waited for within the deadline; the CTAS comment
names the run; each missing privilege names its GRANT; no token reaches logs or errors.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from dialects.base import temp_table_name
from dialects.databricks import DatabricksAdapter
from dialects.protocol import ConnectionConfig, QueryTag, Scope
from tests.conformance.targets.databricks import (
    CATALOG,
    SCHEMA,
    SLOW_SQL,
    TOKENS,
    grant_reader_and_writer,
)
from tests.peers.databricks.launch import HTTP_PATH, DatabricksPeer, running_peer
from zerocopy import errors
from zerocopy.errors import ZerocopyError

pytestmark = [pytest.mark.anyio, pytest.mark.peer("databricks")]

PEER_TOKENS = {
    **TOKENS,
    "dapi-nouse-peer": "nouse",  # SELECT on one table, but no USE SCHEMA
    "dapi-noselect-peer": "noselect",  # may use the schema and create tables, but not read
}


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabricksPeer]:
    base = tmp_path_factory.mktemp("databricks_peer")
    with running_peer(base, tokens=PEER_TOKENS, fixtures=(f"{CATALOG}.{SCHEMA}",)) as started:
        grant_reader_and_writer(started.admin)
        started.admin(f"GRANT USE CATALOG ON CATALOG {CATALOG} TO `nouse`")
        started.admin(f"GRANT SELECT ON TABLE {CATALOG}.{SCHEMA}.users TO `nouse`")
        started.admin(f"GRANT USE CATALOG ON CATALOG {CATALOG} TO `noselect`")
        started.admin(f"GRANT USE SCHEMA ON SCHEMA {CATALOG}.{SCHEMA} TO `noselect`")
        started.admin(f"GRANT CREATE TABLE ON SCHEMA {CATALOG}.{SCHEMA} TO `noselect`")
        yield started


def config(
    peer: DatabricksPeer,
    *,
    token: str = "dapi-zerocopy-peer",
    scope: str = f"{CATALOG}.{SCHEMA}",
    max_runtime_s: float = 60.0,
) -> ConnectionConfig:
    return ConnectionConfig(
        settings={
            "server_hostname": "127.0.0.1",
            "http_path": HTTP_PATH,
            "connection_uri": peer.uri,
        },
        secrets={"access_token": token},
        scope=Scope.parse(scope),
        max_runtime_s=max_runtime_s,
    )


@pytest.fixture
async def adapter(peer: DatabricksPeer) -> AsyncIterator[DatabricksAdapter]:
    async with DatabricksAdapter(config(peer)) as opened:
        yield opened  # type: ignore[misc]


def _run() -> tuple[str, QueryTag]:
    run_id = str(uuid.uuid4())
    return temp_table_name(run_id), QueryTag(run_id=run_id, segment_id="seg-1")


def _peer_statement(peer: DatabricksPeer, query_id: str) -> dict[str, Any] | None:
    wanted = query_id.replace("-", "")
    status = peer.status()
    for entry in status["running"] + status["finished"]:
        if entry["id"] == wanted:
            return entry
    return None


# ----------------------------------------------------------------------------- cancel
async def test_cancel_stops_the_duckdb_query_in_the_peer(
    peer: DatabricksPeer, adapter: DatabricksAdapter
) -> None:
    table, tag = _run()
    seen: dict[str, Any] = {}

    async def refresh() -> None:
        await adapter.materialize(SLOW_SQL, table, deadline=anyio.current_time() + 60, tag=tag)

    async with anyio.create_task_group() as tg:
        tg.start_soon(refresh)
        with anyio.fail_after(10):
            while not (running := [r for r in peer.status()["running"] if table in r["sql"]]):  # noqa: ASYNC110
                await anyio.sleep(0.05)
        await anyio.sleep(0.5)  # well inside DuckDB
        seen["id"] = running[0]["id"]
        asked = time.monotonic()
        tg.cancel_scope.cancel()
    took = time.monotonic() - asked
    assert took < 2.0, took
    entry = _peer_statement(peer, seen["id"])
    assert entry is not None and entry["outcome"] == "cancelled", entry
    assert entry["ended"] is not None
    assert seen["id"] not in {r["id"] for r in peer.status()["running"]}
    assert table not in await adapter.list_temp_tables()


async def test_refresh_cancelled_through_the_engine_ends_within_two_seconds(
    peer: DatabricksPeer, tmp_path: Path
) -> None:
    """Issue #6 acceptance: the run ends ``cancelled`` < 2 s after the request; peer stopped."""
    from zerocopy.refresh import RefreshEngine
    from zerocopy.secrets import SecretBox
    from zerocopy.state.db import Database
    from zerocopy.state.models import (
        CatalogTable,
        Credential,
        RunStatus,
        Segment,
        Source,
        SourceStatus,
        Workspace,
    )

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'state.sqlite3'}")
    await db.upgrade()
    box = SecretBox([SecretBox.generate_key()])
    try:
        async with db.transaction() as s:
            ws = Workspace(name="acme")
            s.add(ws)
            await s.flush()
            cred = Credential(
                workspace_id=ws.id,
                name="dbx",
                kind="databricks",
                settings=dict(config(peer).settings),
                secret_ciphertext=box.encrypt({"access_token": "dapi-zerocopy-peer"}),
            )
            s.add(cred)
            await s.flush()
            src = Source(
                workspace_id=ws.id,
                credential_id=cred.id,
                name="dbx",
                kind="databricks",
                scope=f"{CATALOG}.{SCHEMA}",
                max_runtime_s=300,
                status=SourceStatus.ACTIVE,
            )
            s.add(src)
            await s.flush()
            async with DatabricksAdapter(config(peer)) as catalog_adapter:
                tables = await catalog_adapter.list_tables()
            for t in tables:
                s.add(
                    CatalogTable(
                        source_id=src.id,
                        schema=SCHEMA,
                        name=t.name,
                        kind=t.kind,
                        columns=[{"name": c.name, "data_type": c.data_type} for c in t.columns],
                    )
                )
            # Four-way self join of 400 users: 2.56e10 rows, minutes in DuckDB.
            seg = Segment(
                workspace_id=ws.id,
                source_id=src.id,
                name="slow",
                dialect="databricks",
                sql=(
                    "SELECT a.external_user_id FROM users a CROSS JOIN users b "
                    "CROSS JOIN users c CROSS JOIN users d "
                    "WHERE length(concat(a.email, b.email, c.email, d.email)) = 3"
                ),
            )
            s.add(seg)
        engine = RefreshEngine(db, box)
        run = await engine.request(seg.id, max_runtime_s=60)
        async with anyio.create_task_group() as tg:
            tg.start_soon(engine.execute, run.id)
            with anyio.fail_after(20):
                while not [r for r in peer.status()["running"] if "CROSS JOIN" in r["sql"]]:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            await anyio.sleep(0.5)
            asked = time.monotonic()
            await engine.request_cancel(run.id)
            with anyio.fail_after(5):
                while (final := await engine.get(run.id)).status != RunStatus.CANCELLED:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            took = time.monotonic() - asked
        assert took < 2.0, took
        assert final.error_code == errors.CANCELLED
        assert final.temp_table_dropped is True
        stopped = [r for r in peer.status()["finished"] if "CROSS JOIN" in r["sql"]]
        assert [r["outcome"] for r in stopped] == ["cancelled"], stopped
        assert not [r for r in peer.status()["running"] if "CROSS JOIN" in r["sql"]]
        async with db.session() as s:
            assert (await s.execute(sa.select(Segment.id))).first() is not None
    finally:
        await db.dispose()


# ----------------------------------------------------------------------------- starting
async def test_starting_warehouse_is_reported_and_waited_for(
    peer: DatabricksPeer, adapter: DatabricksAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    peer.start_warehouse(2.5)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="dialects.databricks"):
        result = await adapter.test()
    waited = time.monotonic() - started
    assert waited >= 2.0, "the first attempts met the starting warehouse"
    assert {t.name for t in result.tables} >= {"users"}
    assert any("warehouse starting" in w for w in result.warnings), result.warnings
    assert "TEMPORARILY_UNAVAILABLE" in result.warnings[0]
    assert any("warehouse starting" in r.getMessage() for r in caplog.records)


async def test_refresh_meeting_a_starting_warehouse_waits_then_succeeds(
    peer: DatabricksPeer, adapter: DatabricksAdapter
) -> None:
    table, tag = _run()
    peer.start_warehouse(1.5)
    try:
        result = await adapter.materialize(
            f"SELECT DISTINCT external_user_id FROM `{CATALOG}`.`{SCHEMA}`.`users`",
            table,
            deadline=anyio.current_time() + 30,
            tag=tag,
        )
        assert result.rows == 400
    finally:
        await adapter.drop_table(table)


async def test_warehouse_still_starting_at_the_deadline_is_timed_out(peer: DatabricksPeer) -> None:
    peer.start_warehouse(30)
    try:
        started = time.monotonic()
        async with DatabricksAdapter(config(peer, max_runtime_s=2.5)) as short:
            with pytest.raises(ZerocopyError) as caught:
                await short.test()
        assert caught.value.code == errors.TIMED_OUT
        assert "starting" in caught.value.message
        assert time.monotonic() - started < 2.5 + 1
    finally:
        peer.start_warehouse(0)


async def test_running_statement_survives_the_warehouse_answering_503(
    peer: DatabricksPeer, adapter: DatabricksAdapter
) -> None:
    """Polls that meet HTTP 503 back off and go on; the statement keeps running, then cancels."""
    table, tag = _run()

    async def refresh() -> None:
        await adapter.materialize(SLOW_SQL, table, deadline=anyio.current_time() + 60, tag=tag)

    async with anyio.create_task_group() as tg:
        tg.start_soon(refresh)
        await anyio.sleep(0.5)
        peer.start_warehouse(1.5)
        await anyio.sleep(2.5)  # a failed poll would have ended the task group by now
        running = [r for r in peer.status()["running"] if table in r["sql"]]
        assert len(running) == 1, peer.status()
        asked = time.monotonic()
        tg.cancel_scope.cancel()
    assert time.monotonic() - asked < 2.0
    entry = _peer_statement(peer, running[0]["id"])
    assert entry is not None and entry["outcome"] == "cancelled", entry


# ----------------------------------------------------------------------------- CTAS
async def test_ctas_comment_names_the_run(adapter: DatabricksAdapter) -> None:
    table, tag = _run()
    try:
        await adapter.materialize(
            f"SELECT external_user_id FROM `{CATALOG}`.`{SCHEMA}`.`users` WHERE is_subscribed",
            table,
            deadline=anyio.current_time() + 30,
            tag=tag,
        )
        # The catalog leaves zerocopy's own tables out: read the warehouse's listing itself.
        listed = {t.name: t for t in await adapter._call(adapter._list_tables)}
        assert table not in {t.name for t in await adapter.list_tables()}
        assert listed[table].description == tag.as_text()
        assert f"run={tag.run_id}" in (listed[table].description or "")
    finally:
        await adapter.drop_table(table)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("token", "at", "grant"),
    [
        ("dapi-reader-peer", "ctas", f"GRANT CREATE TABLE ON SCHEMA {CATALOG}.{SCHEMA}"),
        ("dapi-nouse-peer", "test", f"GRANT USE SCHEMA ON SCHEMA {CATALOG}.{SCHEMA}"),
        ("dapi-noselect-peer", "ctas", f"GRANT SELECT ON TABLE {CATALOG}.{SCHEMA}.users"),
    ],
)
async def test_missing_privilege_names_the_grant(
    peer: DatabricksPeer, token: str, at: str, grant: str
) -> None:
    table, tag = _run()
    async with DatabricksAdapter(config(peer, token=token)) as limited:
        with pytest.raises(ZerocopyError) as caught:
            if at == "test":
                await limited.test()
            else:
                await limited.materialize(
                    f"SELECT external_user_id FROM `{CATALOG}`.`{SCHEMA}`.`users`",
                    table,
                    deadline=anyio.current_time() + 30,
                    tag=tag,
                )
    assert caught.value.code == errors.PERMISSION_DENIED, caught.value
    assert grant in caught.value.message, caught.value.message


@pytest.mark.parametrize("scope", ["no_such_catalog.mkt", f"{CATALOG}.no_such_schema"])
async def test_missing_catalog_or_schema_is_scope_not_found(
    peer: DatabricksPeer, scope: str
) -> None:
    async with DatabricksAdapter(config(peer, scope=scope)) as missing:
        with pytest.raises(ZerocopyError) as caught:
            await missing.test()
    assert caught.value.code == errors.SCOPE_NOT_FOUND, caught.value


async def test_scope_without_catalog_uses_the_session_catalog(peer: DatabricksPeer) -> None:
    async with DatabricksAdapter(config(peer, scope=SCHEMA)) as plain:
        result = await plain.test()
        assert "users" in {t.name for t in result.tables}
        batches = [b async for b in plain.read_column("users", "external_user_id", batch_rows=150)]
    assert [len(b) for b in batches] == [150, 150, 100]


async def test_no_token_in_logs_or_errors(
    peer: DatabricksPeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    for token in ("dapi-zerocopy-peer", "dapi-wrong-canary-token"):
        async with DatabricksAdapter(config(peer, token=token)) as probe:
            try:
                await probe.test()
            except ZerocopyError as exc:
                messages.append(str(exc.to_dict()))
    assert messages and "auth" in messages[0]
    for token in ("dapi-zerocopy-peer", "dapi-wrong-canary-token"):
        assert token not in caplog.text
        assert all(token not in m for m in messages)


# ----------------------------------------------------------------------------- API flow
async def test_api_flow_end_to_end(peer: DatabricksPeer, tmp_path: Path) -> None:
    """credential → source → test → tables → validate → segment → refresh → members, over HTTP."""
    from litestar.testing import AsyncTestClient

    from api.app import create_app
    from fixtures import build
    from zerocopy.services import workspaces
    from zerocopy.settings import load_settings

    settings = load_settings(
        {
            "ZEROCOPY_DATA_DIR": str(tmp_path / "data"),
            "ZEROCOPY_DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite3'}",
            "ZEROCOPY_LOG_LEVEL": "warning",
        }
    )
    app = create_app(settings)
    token = "dapi-zerocopy-peer"
    sql = "SELECT external_user_id FROM users WHERE is_subscribed = TRUE AND country = 'US'"
    expected = sorted(
        r["external_user_id"]
        for r in build().table("users").data.to_pylist()
        if r["is_subscribed"] and r["country"] == "US"
    )
    async with AsyncTestClient(app) as client:
        async with app.state.runtime.db.session() as session:
            _, key = await workspaces.create_workspace(session, name="Acme")
        auth = {"Authorization": f"Bearer {key}"}
        bodies: list[str] = []

        async def call(method: str, path: str, json: Any = None) -> Any:
            resp = await client.request(method, path, json=json, headers=auth)
            bodies.append(resp.text)
            assert resp.status_code < 300, resp.text
            return resp.json() if resp.content else None

        cred = await call(
            "POST",
            "/v1/credentials",
            {
                "name": "Databricks",
                "kind": "databricks",
                "settings": dict(config(peer).settings),
                "secrets": {"access_token": token},
            },
        )
        assert cred["secret_fields"] == ["access_token"]
        source = await call(
            "POST",
            "/v1/sources",
            {"name": "Lakehouse", "credential_id": cred["id"], "scope": f"{CATALOG}.{SCHEMA}"},
        )
        tested = await call("POST", f"/v1/sources/{source['id']}/test")
        assert tested["source"]["status"] == "active"
        assert {"users", "events", "active_users"} <= {t["name"] for t in tested["tables"]}
        users = await call("GET", f"/v1/sources/{source['id']}/tables/users")
        assert users["description"]
        assert all(c["description"] for c in users["columns"])
        check = await call("POST", "/v1/segments/validate", {"source_id": source["id"], "sql": sql})
        assert check["valid"] is True, check
        segment = await call(
            "POST",
            "/v1/segments",
            {"name": "US subscribers", "source_id": source["id"], "sql": sql},
        )
        run = await call("POST", f"/v1/segments/{segment['id']}/refresh")
        with anyio.fail_after(60):
            while run["status"] in ("queued", "running"):
                await anyio.sleep(0.1)
                run = await call("GET", f"/v1/runs/{run['id']}")
        assert run["status"] == "succeeded", run
        assert run["member_count"] == len(expected) > 0
        page = await call("GET", f"/v1/segments/{segment['id']}/members?limit=1000")
        assert page["items"] == expected
    assert all(token not in body for body in bodies)
