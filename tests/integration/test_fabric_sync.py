"""An attributes sync from a Fabric table (TDS peer), over HTTP: incremental reads with ties."""

from __future__ import annotations

import pytest

from fixtures import build
from fixtures.warehouse import SYNC_TIE_SIZE
from tests.acceptance.conftest import Api
from tests.integration.test_fabric_api_flow import api, peer  # noqa: F401
from tests.peers.tds.launch import CLIENTS, DATABASE, TENANT, TdsPeer

pytestmark = pytest.mark.anyio


async def test_attributes_sync_from_fabric(api: Api, peer: TdsPeer) -> None:  # noqa: F811
    resp = await api.post(
        "/v1/credentials",
        json={
            "name": "fabric",
            "kind": "fabric",
            "settings": {
                "server": f"localhost,{peer.port}",
                "database": DATABASE,
                "tenant_id": TENANT,
                "client_id": "app-zerocopy",
                "authority_host": f"http://127.0.0.1:{peer.sts_port}",
            },
            "secrets": {"client_secret": CLIENTS["app-zerocopy"][0]},
        },
    )
    assert resp.status_code == 201, resp.text
    resp = await api.post(
        "/v1/sources", json={"name": "fb", "credential_id": resp.json()["id"], "scope": "marketing"}
    )
    source_id = resp.json()["id"]
    resp = await api.post(f"/v1/sources/{source_id}/test")
    assert resp.status_code == 200, resp.text
    resp = await api.post(
        "/v1/syncs",
        json={
            "name": "fabric attrs",
            "data_type": "user_attributes",
            "source_id": source_id,
            "table": "USERS_ATTRIBUTES_SYNC",
        },
    )
    assert resp.status_code == 201, resp.text
    sync = resp.json()
    test = await api.post(f"/v1/syncs/{sync['id']}/test")
    assert test.status_code == 200, test.text
    assert [p["valid"] for p in test.json()["preview"]] == [True] * 10
    assert (await api.post(f"/v1/syncs/{sync['id']}/activate")).status_code == 200
    run = (await api.post(f"/v1/syncs/{sync['id']}/runs", params={"wait": "true"})).json()
    warehouse = build()
    rows = warehouse.table("users_attributes_sync").data.num_rows
    bad = sum(len(v) for v in warehouse.bad_sync_rows.values())
    braze = rows // 20 + (1 if rows % 20 > 13 else 0)  # braze ids nobody has: unknown_braze_id
    assert run["status"] == "partial_success", run
    assert (run["rows_read"], run["rows_errored"]) == (rows, bad + braze)
    assert run["rows_delivered"] == rows - bad - braze
    again = (await api.post(f"/v1/syncs/{sync['id']}/runs", params={"wait": "true"})).json()
    tied = rows % SYNC_TIE_SIZE or SYNC_TIE_SIZE  # rows sharing the last UPDATED_AT, re-read
    assert (again["status"], again["rows_delivered"], again["rows_skipped"]) == ("success", 0, tied)
