"""The API flow over HTTP for a Fabric source on the TDS peer.

credential → source (draft) → test (active, the peer's tables) → validate (T-SQL, target
``fabric``) → segment → refresh → members. Expected members come from the peer itself
(admin query through the driver), never from zerocopy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from fixtures import build
from tests.acceptance.conftest import Api
from tests.peers.tds.launch import CLIENTS, DATABASE, TENANT, TdsPeer, running_peer
from zerocopy.services import workspaces
from zerocopy.settings import load_settings

pytestmark = pytest.mark.anyio

SEGMENT_SQL = "SELECT TOP 1000 external_user_id FROM users WHERE [plan] <> 'free'"
TRUTH_SQL = "SELECT external_user_id FROM [marketing].[users] WHERE [plan] <> 'free'"


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TdsPeer]:
    with running_peer(Path(tmp_path_factory.mktemp("fabric_api"))) as running:
        yield running


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = load_settings(
        {
            "ZEROCOPY_DATA_DIR": str(tmp_path / "data"),
            "ZEROCOPY_DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite3'}",
            "ZEROCOPY_LOG_LEVEL": "warning",
        }
    )
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        async with app.state.runtime.db.session() as session:
            ws, key = await workspaces.create_workspace(session, name="Acme")
        yield Api(client, key, ws.id, settings, tmp_path / "unused.duckdb", app)


async def test_fabric_flow_end_to_end(api: Api, peer: TdsPeer) -> None:
    secret = CLIENTS["app-zerocopy"][0]
    resp = await api.post(
        "/v1/credentials",
        {
            "name": "fabric sp",
            "kind": "fabric",
            "settings": {
                "server": f"localhost,{peer.port}",
                "database": DATABASE,
                "tenant_id": TENANT,
                "client_id": "app-zerocopy",
                "authority_host": f"http://127.0.0.1:{peer.sts_port}",
            },
            "secrets": {"client_secret": secret},
        },
    )
    assert resp.status_code == 201, resp.text
    assert secret not in resp.text  # write-only
    credential_id = resp.json()["id"]

    resp = await api.post(
        "/v1/sources",
        {"name": "fabric source", "credential_id": credential_id, "scope": "marketing"},
    )
    assert resp.status_code == 201, resp.text
    source = resp.json()
    resp = await api.post(f"/v1/sources/{source['id']}/test")
    assert resp.status_code == 200, resp.text
    assert resp.json()["source"]["status"] == "active"
    assert {t["name"] for t in resp.json()["tables"]} == build().names

    resp = await api.post("/v1/segments/validate", {"source_id": source["id"], "sql": SEGMENT_SQL})
    assert resp.status_code == 200, resp.text
    assert resp.json()["valid"] is True and resp.json()["target"] == "fabric", resp.json()

    expected = {str(row[0]) for row in peer.admin(TRUTH_SQL)}
    assert 0 < len(expected) < build().table("users").data.num_rows
    resp = await api.post(
        "/v1/segments", {"name": "Paying", "source_id": source["id"], "sql": SEGMENT_SQL}
    )
    assert resp.status_code == 201, resp.text
    segment = resp.json()
    resp = await api.post(f"/v1/segments/{segment['id']}/refresh")
    assert resp.status_code == 202, resp.text
    run = await api.wait_run(resp.json()["id"], timeout=120)
    assert run["status"] == "succeeded", run
    assert run["member_count"] == len(expected)
    members: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        resp = await api.get(f"/v1/segments/{segment['id']}/members", params=params)
        assert resp.status_code == 200, resp.text
        members += resp.json()["items"]
        cursor = resp.json()["next_cursor"]
        if cursor is None:
            break
    assert set(members) == expected and len(members) == len(expected)
    tables = {r[0] for r in peer.admin("SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES")}
    assert run["temp_table"] and run["temp_table"] not in tables
