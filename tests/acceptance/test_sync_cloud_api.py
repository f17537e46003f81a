"""An attributes sync from a cloud adapter peer (Redshift, through the local Redshift proxy)."""

from __future__ import annotations

import pytest

from fixtures.warehouse import SYNC_TIE_SIZE
from tests.acceptance.conftest import Api
from tests.peers.redshift_proxy import fixtures as pg_fixtures
from tests.peers.redshift_proxy.fixtures import SCHEMA, PgPeer, adapter_settings
from tests.peers.redshift_proxy.peer import conninfo

pytestmark = pytest.mark.anyio

redshift_proxy_port = pg_fixtures.redshift_proxy_port
pg_peer = pg_fixtures.pg_peer


async def test_attributes_sync_from_redshift(api: Api, pg_peer: PgPeer) -> None:
    info = conninfo(pg_peer.url)
    resp = await api.post(
        "/v1/credentials",
        json={
            "name": "redshift",
            "kind": "redshift",
            "settings": adapter_settings(
                "redshift", pg_peer.host, pg_peer.proxy_port, pg_peer.database, info["user"]
            ),
            "secrets": {"password": info.get("password") or "unused-on-trust"},
        },
    )
    assert resp.status_code == 201, resp.text
    resp = await api.post(
        "/v1/sources", json={"name": "rs", "credential_id": resp.json()["id"], "scope": SCHEMA}
    )
    source_id = resp.json()["id"]
    resp = await api.post(f"/v1/sources/{source_id}/test")
    assert resp.status_code == 200, resp.text
    resp = await api.post(
        "/v1/syncs",
        json={
            "name": "rs attrs",
            "data_type": "user_attributes",
            "source_id": source_id,
            "table": "USERS_ATTRIBUTES_SYNC",
        },
    )
    sync = resp.json()
    test = await api.post(f"/v1/syncs/{sync['id']}/test")
    assert test.status_code == 200, test.text
    assert [p["valid"] for p in test.json()["preview"]] == [True] * 10
    assert (await api.post(f"/v1/syncs/{sync['id']}/activate")).status_code == 200
    run = (await api.post(f"/v1/syncs/{sync['id']}/runs", params={"wait": "true"})).json()
    rows = pg_peer.warehouse.table("users_attributes_sync").data.num_rows
    bad = sum(len(v) for v in pg_peer.warehouse.bad_sync_rows.values())
    braze = rows // 20 + (1 if rows % 20 > 13 else 0)  # braze ids nobody has: unknown_braze_id
    assert run["status"] == "partial_success", run
    assert (run["rows_read"], run["rows_errored"]) == (rows, bad + braze)
    assert run["rows_delivered"] == rows - bad - braze
    again = (await api.post(f"/v1/syncs/{sync['id']}/runs", params={"wait": "true"})).json()
    tied = rows % SYNC_TIE_SIZE or SYNC_TIE_SIZE  # rows sharing the last UPDATED_AT, re-read
    assert (again["status"], again["rows_delivered"], again["rows_skipped"]) == ("success", 0, tied)
