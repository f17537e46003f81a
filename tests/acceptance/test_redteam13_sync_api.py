"""Red-team round 13: what a sync accepts at create is what it can store and run.

* ``row_limit`` is stored in a 32-bit integer column: a larger one was a 500
  ``internal_error`` on PostgreSQL state (``integer out of range``), and past 2**63 on SQLite
  too (``OverflowError``). It is ``validation_error`` naming ``row_limit`` on both, at create
  and at ``PATCH``.
* ``settings.http`` was checked for its types only: ``batch_rows`` over the HTTP destination's
  1,000 or a ``max_attempts`` of 10**20 were stored, and every run of the sync then failed
  (``batch_rows must be between 1 and 1000``) or could retry for ever (its backoff overflowing
  a float after 1,024 attempts). The destination's own bounds apply when the sync is saved:
  ``batch_rows`` 1-1,000, ``max_attempts`` 1-100, delays over 0 and at most 3,600 s.

* A sync's ``contacts`` had no count limit (a thousand addresses were stored, each
  notification one mail to all of them), where a schedule's are at most 20: both are now.
* ``catalog_name`` on a sync of another data type was stored and never used; it is refused
  like the other fields a sync of that kind does not use.

State on SQLite and PostgreSQL (the conftest's backends): the failures were the stores'.
"""

from __future__ import annotations

import pytest

from tests.acceptance.conftest import Api
from tests.acceptance.redteam import assert_refused as refused
from tests.acceptance.test_sync_api import add_type_tables, duckdb_source, ready_sync
from zerocopy.services.contacts import MAX_CONTACTS
from zerocopy.services.syncs import MAX_ROW_LIMIT

pytestmark = pytest.mark.anyio


async def test_row_limit_fits_the_state_column(api: Api) -> None:
    source_id = await duckdb_source(api)
    body = {"name": "ev", "data_type": "custom_events", "source_id": source_id, "table": "t"}
    for limit in (MAX_ROW_LIMIT + 1, 3_000_000_000, 2**63, 2**70, 0, -1):
        resp = await api.post("/v1/syncs", json={**body, "row_limit": limit})
        err = refused(resp, 400, "validation_error", "row_limit")
        assert str(MAX_ROW_LIMIT) in err["message"], err
    assert (await api.get("/v1/syncs")).json() == []
    resp = await api.post("/v1/syncs", json={**body, "row_limit": MAX_ROW_LIMIT})
    assert resp.status_code == 201, resp.text
    sync = resp.json()
    assert sync["row_limit"] == MAX_ROW_LIMIT
    for limit in (MAX_ROW_LIMIT + 1, 2**64):
        resp = await api.patch(f"/v1/syncs/{sync['id']}", {"row_limit": limit})
        refused(resp, 400, "validation_error", "row_limit")
    assert (await api.get(f"/v1/syncs/{sync['id']}")).json()["row_limit"] == MAX_ROW_LIMIT
    resp = await api.patch(f"/v1/syncs/{sync['id']}", {"row_limit": None})
    assert resp.status_code == 200 and resp.json()["row_limit"] is None, resp.text


async def test_http_tuning_is_bounded_when_saved(api: Api) -> None:
    source_id = await duckdb_source(api)
    body = {"name": "ev", "data_type": "custom_events", "source_id": source_id, "table": "t"}
    for http, named in (
        ({"batch_rows": 1001}, "batch_rows"),
        ({"batch_rows": 5000}, "batch_rows"),
        ({"max_attempts": 101}, "max_attempts"),
        ({"max_attempts": 10**20}, "max_attempts"),
        ({"timeout_s": 3601}, "timeout_s"),
        ({"timeout_s": 10**400}, "timeout_s"),
        ({"backoff_max_s": 1e300}, "backoff_max_s"),
    ):
        resp = await api.post("/v1/syncs", json={**body, "settings": {"http": http}})
        err = refused(resp, 400, "validation_error", "settings")
        assert named in err["message"], err
    assert (await api.get("/v1/syncs")).json() == []
    ok = {"batch_rows": 1000, "max_attempts": 100, "timeout_s": 2.5, "backoff_max_s": 60}
    resp = await api.post("/v1/syncs", json={**body, "settings": {"http": ok}})
    assert resp.status_code == 201, resp.text


async def test_a_page_offset_past_64_bits_is_refused(api: Api) -> None:
    """``?offset=`` of the run's rows, catalog items and accounts had no upper bound: 2**63
    and more reached the database driver (a 500 ``internal_error``); now 400."""
    add_type_tables(api.warehouse)
    source_id = await duckdb_source(api)
    sync, _ = await ready_sync(
        api, name="ev", data_type="custom_events", source_id=source_id, table="app_events"
    )
    resp = await api.post(f"/v1/syncs/{sync['id']}/runs?wait=true")
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["id"]
    for path in (f"/v1/sync-runs/{run_id}/rows", "/v1/catalogs/products/items", "/v1/accounts"):
        for offset in (2**63, 2**64, 10**30):
            resp = await api.get(f"{path}?offset={offset}")
            err = refused(resp, 400, "validation_error")
            assert "offset" in resp.text, err
        resp = await api.get(f"{path}?offset={2**63 - 1}")
        assert resp.status_code == 200 and resp.json() == [], resp.text
    resp = await api.get(f"/v1/sync-runs/{run_id}/rows?offset=1&limit=1")
    assert resp.status_code == 200 and len(resp.json()) == 1, resp.text


async def test_sync_contacts_are_bounded_like_schedule_contacts(api: Api) -> None:
    source_id = await duckdb_source(api)
    body = {"name": "ev", "data_type": "custom_events", "source_id": source_id, "table": "t"}
    many = [f"ops{i}@example.com" for i in range(MAX_CONTACTS + 1)]
    resp = await api.post("/v1/syncs", json={**body, "contacts": many})
    err = refused(resp, 400, "validation_error", "contacts")
    assert str(MAX_CONTACTS) in err["message"], err
    assert (await api.get("/v1/syncs")).json() == []
    resp = await api.post("/v1/syncs", json={**body, "contacts": many[:MAX_CONTACTS]})
    assert resp.status_code == 201 and len(resp.json()["contacts"]) == MAX_CONTACTS, resp.text
    sync_id = resp.json()["id"]
    resp = await api.patch(f"/v1/syncs/{sync_id}", {"contacts": many})
    refused(resp, 400, "validation_error", "contacts")
    assert len((await api.get(f"/v1/syncs/{sync_id}")).json()["contacts"]) == MAX_CONTACTS


async def test_catalog_name_only_on_catalog_item_syncs(api: Api) -> None:
    source_id = await duckdb_source(api)
    for data_type in ("user_attributes", "custom_events", "purchases", "user_deletes", "accounts"):
        body = {"name": data_type, "data_type": data_type, "source_id": source_id, "table": "t"}
        resp = await api.post("/v1/syncs", json={**body, "catalog_name": "products"})
        err = refused(resp, 400, "validation_error", "catalog_name")
        assert "catalog_items" in err["message"], err
        for empty in (None, ""):  # left out in effect: accepted, nothing stored
            resp = await api.post("/v1/syncs", json={**body, "catalog_name": empty})
            assert resp.status_code == 201 and resp.json()["catalog_name"] is None, resp.text
            assert (await api.delete(f"/v1/syncs/{resp.json()['id']}")).status_code == 204
    body = {"name": "items", "data_type": "catalog_items", "source_id": source_id, "table": "t"}
    resp = await api.post("/v1/syncs", json={**body, "catalog_name": "products"})
    assert resp.status_code == 201 and resp.json()["catalog_name"] == "products", resp.text
