"""Red-team round 11: schedule routes with ids and contacts the state cannot hold.

On PostgreSQL state a NUL in a schedule route's id, or in a schedule contact, was a 500
``internal_error`` (text cannot hold NUL); a long id was echoed whole. They are answered as
everywhere else: ``not_found`` with the id shortened, ``validation_error`` for the contact.
"""

from __future__ import annotations

import pytest

from tests.acceptance.conftest import Api
from tests.acceptance.redteam import assert_refused as _error
from tests.acceptance.test_sync_api import duckdb_source

pytestmark = pytest.mark.anyio


async def test_schedule_routes_with_impossible_ids_are_not_found(api: Api) -> None:
    long_id = "a" * 80
    for bad in ("a%00b", long_id):
        for method, path, body in (
            ("GET", f"/v1/segments/{bad}/schedule", None),
            ("PUT", f"/v1/segments/{bad}/schedule", {"schedule": None}),
            ("POST", f"/v1/segments/{bad}/schedule/resume", None),
            ("GET", f"/v1/syncs/{bad}/schedule", None),
        ):
            resp = await api.client.request(method, path, json=body, headers=api.auth)
            err = _error(resp, 404, "not_found")
            assert long_id not in resp.text, (path, err)  # shown shortened
    resp = await api.get("/v1/catalogs/a%00b/items")
    assert resp.status_code == 200 and resp.json() == [], resp.text
    resp = await api.get("/v1/catalogs/" + "c" * 300 + "/items")
    assert resp.status_code == 200 and resp.json() == [], resp.text


async def test_schedule_contacts_the_state_cannot_hold_or_smtp_send(api: Api) -> None:
    source_id = await duckdb_source(api)
    resp = await api.post(
        "/v1/segments",
        json={"name": "all", "source_id": source_id, "sql": "SELECT external_user_id FROM users"},
    )
    base = f"/v1/segments/{resp.json()['id']}/schedule"
    resp = await api.client.put(
        base,
        json={"schedule": {"frequency": "daily", "time": "09:00"}, "contacts": ["ops@example.com"]},
        headers=api.auth,
    )
    assert resp.status_code == 200, resp.text
    before = resp.json()
    for address in ("a\x00@example.com", "x" * 65 + "@example.com", "a@" + "b" * 260 + ".io"):
        resp = await api.client.put(
            base,
            json={"schedule": {"frequency": "hourly", "minute": 5}, "contacts": [address]},
            headers=api.auth,
        )
        err = _error(resp, 400, "validation_error")
        assert err["details"] == {"field": "contacts", "reason": "invalid_value"}
        after = (await api.get(base)).json()
        assert (after["schedule"], after["contacts"], after["next_runs"]) == (
            before["schedule"],
            before["contacts"],
            before["next_runs"],
        )
