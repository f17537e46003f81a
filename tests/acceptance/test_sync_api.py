"""Ingestion syncs over HTTP: create / test / activate / run / runs / row errors / export.

Every data type on a DuckDB source (the fixture warehouse plus one small table per type),
state on SQLite and PostgreSQL; attributes and events on a PostgreSQL source too.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import duckdb
import pytest

from tests.acceptance.conftest import SCHEMA, Api
from zerocopy.services import syncs

pytestmark = pytest.mark.anyio

TYPE_TABLES = """
CREATE TABLE app_events AS SELECT * FROM (VALUES
  (TIMESTAMP '2026-01-01 10:00', 'u00000001', '{"name": "login", "time": "2026-01-01T10:00:00Z", "properties": {"app": "ios"}}'),
  (TIMESTAMP '2026-01-01 10:00', 'u00000002', '{"time": "2026-01-01T10:00:00Z"}'),
  (TIMESTAMP '2026-01-01 10:01', 'u00000003', '{"name": "login", "time": "yesterday"}'),
  (TIMESTAMP '2026-01-01 10:02', 'u00000004', '{"name": "login", "time": "2026-01-01T10:02:00", "properties": [1]}'),
  (TIMESTAMP '2026-01-01 10:03', 'u00000001', '{"name": "logout", "time": "2026-01-01T10:03:00+02:00"}')
) t(UPDATED_AT, EXTERNAL_ID, PAYLOAD);
CREATE TABLE shop_purchases AS SELECT * FROM (VALUES
  (TIMESTAMP '2026-01-02', 'u00000001', '{"product_id": "sku-1", "currency": "eur", "price": 9.5, "time": "2026-01-02T00:00:00Z"}'),
  (TIMESTAMP '2026-01-02', 'u00000002', '{"product_id": "sku-1", "currency": "XXQ", "price": 9.5, "time": "2026-01-02T00:00:00Z"}'),
  (TIMESTAMP '2026-01-02', 'u00000003', '{"product_id": "sku-2", "currency": "USD", "price": 1, "quantity": 0, "time": "2026-01-02T00:00:00Z"}'),
  (TIMESTAMP '2026-01-03', 'u00000004', '{"product_id": "sku-2", "currency": "USD", "time": "2026-01-02T00:00:00Z"}'),
  (TIMESTAMP '2026-01-03', 'u00000005', '{"product_id": "sku-3", "currency": "USD", "price": 3, "quantity": 2, "time": "2026-01-03T00:00:00Z"}')
) t(UPDATED_AT, EXTERNAL_ID, PAYLOAD);
CREATE TABLE user_deletes AS SELECT * FROM (VALUES
  (TIMESTAMP '2026-01-04', 'u00000005', NULL),
  (TIMESTAMP '2026-01-04', NULL, 'someone@example.com')
) t(UPDATED_AT, EXTERNAL_ID, EMAIL);
CREATE TABLE catalog_items AS SELECT * FROM (VALUES
  (TIMESTAMP '2026-01-05', 'sku-1', '{"title": "Mug", "price": 9.5}', false),
  (TIMESTAMP '2026-01-05', 'sku-2', '{"title": "Cap"}', false),
  (TIMESTAMP '2026-01-06', 'sku-2', NULL, true),
  (TIMESTAMP '2026-01-06', NULL, '{"title": "?"}', false),
  (TIMESTAMP '2026-01-06', 'sku-3', '"just text"', false)
) t(updated_at, id, payload, deleted);
CREATE TABLE accounts_sync AS SELECT * FROM (VALUES
  (TIMESTAMP '2026-01-07', 'acc-1', 'Acme', '{"plan": "pro", "seats": 10, "color": "red"}', false),
  (TIMESTAMP '2026-01-07', 'acc-2', 'Globex', '{"plan": "basic"}', false),
  (TIMESTAMP '2026-01-08', 'acc-2', 'Globex', NULL, true),
  (TIMESTAMP '2026-01-08', 'acc-3', NULL, '{"plan": "basic"}', false)
) t(UPDATED_AT, ID, NAME, PAYLOAD, DELETED);
"""


def add_type_tables(path: Path) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute(f"SET schema = '{SCHEMA}'")
        con.execute(TYPE_TABLES)
    finally:
        con.close()


async def duckdb_source(api: Api) -> str:
    resp = await api.post(
        "/v1/credentials",
        json={"name": "dw", "kind": "duckdb", "settings": {"path": str(api.warehouse)}},
    )
    assert resp.status_code == 201, resp.text
    resp = await api.post(
        "/v1/sources", json={"name": "dw", "credential_id": resp.json()["id"], "scope": SCHEMA}
    )
    assert resp.status_code == 201, resp.text
    source_id: str = resp.json()["id"]
    assert (await api.post(f"/v1/sources/{source_id}/test")).status_code == 200
    return source_id


async def ready_sync(api: Api, **body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create → test → activate; returns the sync and the test answer."""
    resp = await api.post("/v1/syncs", json=body)
    assert resp.status_code == 201, resp.text
    sync = resp.json()
    assert sync["status"] == "draft"
    test = await api.post(f"/v1/syncs/{sync['id']}/test")
    assert test.status_code == 200, test.text
    resp = await api.post(f"/v1/syncs/{sync['id']}/activate")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "active"
    return resp.json(), test.json()


async def run_now(api: Api, sync_id: str) -> dict[str, Any]:
    resp = await api.post(f"/v1/syncs/{sync_id}/runs", params={"wait": "true"})
    assert resp.status_code == 200, resp.text
    run: dict[str, Any] = resp.json()
    return run


async def error_codes(api: Api, run_id: str) -> list[str]:
    resp = await api.get(f"/v1/sync-runs/{run_id}/rows", params={"errors_only": "true"})
    assert resp.status_code == 200, resp.text
    return [r["code"] for r in resp.json()]


async def test_attributes_sync_end_to_end(api: Api) -> None:
    source_id = await duckdb_source(api)
    # Draft syncs cannot be activated before a successful test.
    resp = await api.post(
        "/v1/syncs",
        json={
            "name": "attrs",
            "data_type": "user_attributes",
            "source_id": source_id,
            "table": "USERS_ATTRIBUTES_SYNC",
            "frequency": "15m",
            "contacts": ["ops@example.com"],
            "notifications": {"notify_on_error": True, "row_error_threshold_pct": 10},
        },
    )
    assert resp.status_code == 201, resp.text
    sync = resp.json()
    resp = await api.post(f"/v1/syncs/{sync['id']}/activate")
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "conflict"
    resp = await api.post(f"/v1/syncs/{sync['id']}/runs")
    assert resp.status_code == 409
    # Data type is immutable.
    resp = await api.patch(f"/v1/syncs/{sync['id']}", json={"data_type": "custom_events"})
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "data_type_immutable"

    test = await api.post(f"/v1/syncs/{sync['id']}/test")
    assert test.status_code == 200, test.text
    preview = test.json()["preview"]
    assert len(preview) == 10
    assert all(p["valid"] for p in preview)  # positions 0-9 of the fixture are good rows
    assert (await api.post(f"/v1/syncs/{sync['id']}/activate")).json()["status"] == "active"

    run = await run_now(api, sync["id"])
    assert run["status"] == "partial_success", run
    # Fixture: 60 rows for USERS=120; per 20 rows: 3 bad kinds + 1 braze id nobody has.
    assert run["rows_read"] == 60
    assert run["rows_errored"] == 12
    assert run["rows_delivered"] == 48
    assert run["watermark_before"] is None and run["watermark_after"] is not None
    codes = await error_codes(api, run["id"])
    assert sorted(set(codes)) == [
        "invalid_json",
        "multiple_identifiers",
        "no_identifier",
        "unknown_braze_id",
    ]
    assert codes.count("no_identifier") == 3
    rows = (
        await api.get(
            f"/v1/sync-runs/{run['id']}/rows", params={"errors_only": "false", "limit": 1000}
        )
    ).json()
    assert len(rows) == 60 and [r["position"] for r in rows] == list(range(60))
    bad = next(r for r in rows if r["code"] == "invalid_json")
    assert bad["row"]["PAYLOAD"].startswith('{"plan": "pro"')

    # Export: CSV and JSON lines carry the same error rows.
    resp = await api.get(f"/v1/sync-runs/{run['id']}/rows/export", params={"format": "csv"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(resp.text)))
    assert [r["code"] for r in table] == codes
    resp = await api.get(f"/v1/sync-runs/{run['id']}/rows/export", params={"format": "jsonl"})
    lines = [json.loads(x) for x in resp.text.splitlines()]
    assert [x["code"] for x in lines] == codes

    # The profile store: lookup by any identifier.
    prof = await api.get("/v1/profiles", params={"external_id": "u00000001"})
    assert prof.status_code == 200, prof.text
    assert set(prof.json()["attributes"]) == {"plan", "score"}
    alias = await api.get(
        "/v1/profiles", params={"alias_name": "alias_14", "alias_label": "crm_id"}
    )
    assert alias.status_code == 200, alias.text
    by_braze = await api.get("/v1/profiles", params={"braze_id": alias.json()["braze_id"]})
    assert by_braze.json()["id"] == alias.json()["id"]
    phone = await api.get("/v1/profiles", params={"phone": "+15550000012"})
    assert phone.status_code == 200, phone.text

    # A second run reads the rows tied at the watermark again and recognises them.
    again = await run_now(api, sync["id"])
    assert again["status"] == "success"
    assert again["rows_delivered"] == 0 and again["rows_skipped"] == 3
    runs = (await api.get(f"/v1/syncs/{sync['id']}/runs")).json()
    assert [r["id"] for r in runs] == [again["id"], run["id"]]


async def test_every_other_data_type(api: Api) -> None:
    add_type_tables(api.warehouse)
    source_id = await duckdb_source(api)
    attrs, _ = await ready_sync(
        api,
        name="attrs",
        data_type="user_attributes",
        source_id=source_id,
        table="users_attributes_sync",
    )
    await run_now(api, attrs["id"])

    events, test = await ready_sync(
        api, name="events", data_type="custom_events", source_id=source_id, table="app_events"
    )
    verdicts = [p["code"] for p in test["preview"]]
    assert verdicts == [None, "missing_field", "invalid_field", "invalid_field", None]
    run = await run_now(api, events["id"])
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == ("partial_success", 2, 3)
    profile = (await api.get("/v1/profiles", params={"external_id": "u00000001"})).json()
    evs = (await api.get(f"/v1/profiles/{profile['id']}/events")).json()
    # Oldest first: 10:03+02:00 is 08:03 UTC, before the 10:00 UTC login.
    assert [e["name"] for e in evs] == ["logout", "login"]
    assert evs[0]["time"].startswith("2026-01-01T08:03:00")

    purchases, _ = await ready_sync(
        api, name="purchases", data_type="purchases", source_id=source_id, table="shop_purchases"
    )
    run = await run_now(api, purchases["id"])
    assert (run["rows_delivered"], run["rows_errored"]) == (2, 3)
    assert await error_codes(api, run["id"]) == ["invalid_field", "invalid_field", "missing_field"]
    bought = (await api.get(f"/v1/profiles/{profile['id']}/purchases")).json()
    assert bought == [
        {
            "product_id": "sku-1",
            "currency": "EUR",
            "price": 9.5,
            "quantity": 1,
            "time": bought[0]["time"],
            "properties": {},
        }
    ]

    deletes, _ = await ready_sync(
        api, name="deletes", data_type="user_deletes", source_id=source_id, table="user_deletes"
    )
    assert (await api.get("/v1/profiles", params={"external_id": "u00000005"})).status_code == 200
    run = await run_now(api, deletes["id"])
    assert (run["rows_delivered"], run["rows_errored"]) == (1, 1)
    assert await error_codes(api, run["id"]) == ["invalid_identifier"]
    assert (await api.get("/v1/profiles", params={"external_id": "u00000005"})).status_code == 404

    catalog, _ = await ready_sync(
        api,
        name="catalog",
        data_type="catalog_items",
        source_id=source_id,
        table="catalog_items",
        catalog_name="products",
    )
    run = await run_now(api, catalog["id"])
    assert await error_codes(api, run["id"]) == ["missing_field", "payload_not_object"]
    items = (await api.get("/v1/catalogs/products/items")).json()
    assert [(i["id"], i["fields"]) for i in items] == [("sku-1", {"title": "Mug", "price": 9.5})]

    accounts, _ = await ready_sync(
        api,
        name="accounts",
        data_type="accounts",
        source_id=source_id,
        table="accounts_sync",
        settings={"account_fields": ["plan", "seats"]},
    )
    run = await run_now(api, accounts["id"])
    assert await error_codes(api, run["id"]) == ["missing_field"]
    rows = (
        await api.get(f"/v1/sync-runs/{run['id']}/rows", params={"errors_only": "false"})
    ).json()
    warning = next(r for r in rows if r["verdict"] == "warning")
    assert warning["code"] == "unknown_field" and "color" in warning["message"]
    accs = (await api.get("/v1/accounts")).json()
    assert [(a["id"], a["name"], a["fields"]) for a in accs] == [
        ("acc-1", "Acme", {"plan": "pro", "seats": 10})
    ]


async def test_missing_table_and_columns_fail_the_test(api: Api) -> None:
    source_id = await duckdb_source(api)
    resp = await api.post(
        "/v1/syncs",
        json={"name": "x", "data_type": "custom_events", "source_id": source_id, "table": "nope"},
    )
    sync = resp.json()
    resp = await api.post(f"/v1/syncs/{sync['id']}/test")
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "unknown_table"
    resp = await api.patch(f"/v1/syncs/{sync['id']}", json={"table": "users"})
    resp = await api.post(f"/v1/syncs/{sync['id']}/test")
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "unknown_column"
    assert "PAYLOAD" in resp.json()["error"]["message"]
    assert (await api.post(f"/v1/syncs/{sync['id']}/activate")).status_code == 409


async def test_postgres_source(api: Api, postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("CREATE SCHEMA crm")
        con.execute(
            'CREATE TABLE crm.attrs ("UPDATED_AT" timestamptz, "EXTERNAL_ID" text, '
            '"EMAIL" text, "PHONE" text, "PAYLOAD" jsonb)'
        )
        con.execute(
            "INSERT INTO crm.attrs VALUES "
            "('2026-01-01 00:00+00', 'p1', NULL, NULL, '{\"tier\": \"gold\"}'), "
            "('2026-01-01 00:00+00', NULL, 'A@Example.com', '+15551234567', '{\"tier\": \"silver\"}'), "
            "('2026-01-01 01:00+01', NULL, NULL, NULL, '{}'), "
            "(NULL, 'p2', NULL, NULL, '{}')"
        )
        con.execute(
            'CREATE VIEW crm.events_v AS SELECT "UPDATED_AT" AS updated_at, "EXTERNAL_ID" AS external_id, '
            "jsonb_build_object('name', 'visit', 'time', '2026-01-01T00:00:00Z') AS payload "
            'FROM crm.attrs WHERE "EXTERNAL_ID" IS NOT NULL'
        )
    parts = urlsplit(postgres_url)
    resp = await api.post(
        "/v1/credentials",
        json={
            "name": "pg",
            "kind": "postgres",
            "settings": {
                "host": parts.hostname,
                "port": parts.port or 5432,
                "database": parts.path.lstrip("/"),
                "user": parts.username,
            },
            "secrets": {"password": parts.password or ""},
        },
    )
    assert resp.status_code == 201, resp.text
    resp = await api.post(
        "/v1/sources", json={"name": "pg", "credential_id": resp.json()["id"], "scope": "crm"}
    )
    source_id = resp.json()["id"]
    assert (await api.post(f"/v1/sources/{source_id}/test")).status_code == 200, resp.text

    attrs, test = await ready_sync(
        api, name="pg attrs", data_type="user_attributes", source_id=source_id, table="attrs"
    )
    assert [p["code"] for p in test["preview"]] == [
        None,
        None,
        "no_identifier",
        "invalid_updated_at",
    ]
    run = await run_now(api, attrs["id"])
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == ("partial_success", 2, 2)
    prof = (await api.get("/v1/profiles", params={"email": "a@example.com"})).json()
    assert prof["attributes"] == {"tier": "silver"} and prof["phone"] == "+15551234567"

    events, _ = await ready_sync(
        api, name="pg events", data_type="custom_events", source_id=source_id, table="EVENTS_V"
    )
    run = await run_now(api, events["id"])
    # p2's row has no UPDATED_AT: a row error, never a crash.
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == ("partial_success", 1, 1)
    assert await error_codes(api, run["id"]) == ["invalid_updated_at"]


async def test_background_run_one_at_a_time_and_cancel(api: Api) -> None:
    con = duckdb.connect(str(api.warehouse))
    try:
        con.execute(
            f"CREATE TABLE {SCHEMA}.many_events AS SELECT TIMESTAMP '2026-01-01' + "
            "to_seconds(i // 2) AS UPDATED_AT, 'u' || (i % 50) AS EXTERNAL_ID, "
            "json_object('name', 'n' || i, 'time', '2026-01-01T00:00:00Z')::VARCHAR AS PAYLOAD "
            "FROM range(20000) t(i)"
        )
    finally:
        con.close()
    source_id = await duckdb_source(api)
    sync, _ = await ready_sync(
        api, name="many", data_type="custom_events", source_id=source_id, table="many_events"
    )
    # A run held by another worker: "run now" is refused with its id, cancel reaches it.
    engine = syncs.sync_engine(api.app.state.runtime)
    held = await engine.request(sync["id"])
    resp = await api.post(f"/v1/syncs/{sync['id']}/runs")
    assert resp.status_code == 409, resp.text
    err = resp.json()["error"]
    assert err["code"] == "sync_in_progress" and err["details"]["run_id"] == held.id
    resp = await api.post(f"/v1/sync-runs/{held.id}/cancel")
    assert resp.status_code == 202, resp.text
    stopped = await engine.execute(held.id)
    assert (stopped.status, stopped.rows_delivered) == ("cancelled", 0)
    assert (await api.post(f"/v1/sync-runs/{held.id}/cancel")).status_code == 409
    # "Run now" without waiting: 202 with the running run, executed in the background.
    resp = await api.post(f"/v1/syncs/{sync['id']}/runs")
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "running"
    with anyio.fail_after(60):
        while True:
            final = (await api.get(f"/v1/sync-runs/{resp.json()['id']}")).json()
            if final["status"] != "running":
                break
            await anyio.sleep(0.05)
    assert (final["status"], final["rows_delivered"]) == ("success", 20000)
