"""Sync scenarios, fourth round: a source table whose columns change under an active sync, and
what a paused sync still allows.

A column the data type needs, dropped after the sync went active: the run fails with a clear
sync-level error naming the column (``unknown_column``), nothing moves (watermark, store), a
re-test says the same with the missing column in its details; once the column is back, the
test passes and the next run continues from the watermark. A paused sync does not run on
request (``conflict``), but its watermark can be reset, and activating it again needs no
new test.
"""

from __future__ import annotations

import pytest

from tests.integration.test_sync_spec_harness import (  # noqa: F401
    Spec,
    j,
    spec_fixture,
    ts,
)

pytestmark = pytest.mark.anyio

ATTRS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


async def test_a_dropped_column_fails_runs_and_tests_clearly_until_it_is_back(spec: Spec) -> None:
    spec.warehouse.create("attrs", ATTRS, [("2026-03-01 00:00:00", "u1", j({"a": 1}))])
    sync_id = await spec.ready("user_attributes", "attrs")
    first = await spec.run(sync_id)
    assert first["status"] == "success"
    spec.warehouse.execute('ALTER TABLE marketing."attrs" DROP COLUMN "PAYLOAD"')
    spec.warehouse.execute("INSERT INTO marketing.\"attrs\" VALUES ('2026-03-01 00:01:00', 'u2')")
    failed = await spec.run(sync_id)
    assert failed["status"] == "error", failed
    assert failed["error"]["code"] == "unknown_column"
    assert "PAYLOAD" in failed["error"]["message"]
    assert failed["rows_read"] == failed["rows_delivered"] == 0
    assert ts(failed["watermark_after"]) == ts(first["watermark_after"])
    resp = await spec.post(f"/v1/syncs/{sync_id}/test")
    assert resp.status_code == 422, resp.text
    err = resp.json()["error"]
    assert err["code"] == "unknown_column" and err["details"]["missing"] == ["PAYLOAD"]
    assert (await spec.sync(sync_id))["last_test_error"]["code"] == "unknown_column"
    assert await spec.profile(external_id="u2") is None

    spec.warehouse.execute('ALTER TABLE marketing."attrs" ADD COLUMN "PAYLOAD" VARCHAR'
                           if spec.source_kind == "duckdb"
                           else 'ALTER TABLE marketing."attrs" ADD COLUMN "PAYLOAD" text')  # fmt: skip
    spec.warehouse.execute(
        'UPDATE marketing."attrs" SET "PAYLOAD" = \'{"b": 2}\' WHERE "EXTERNAL_ID" = \'u2\''
    )
    assert (await spec.test_sync(sync_id))["preview"][1]["valid"] is True
    assert (await spec.sync(sync_id))["last_test_error"] is None
    resumed = await spec.run(sync_id)
    assert (resumed["status"], resumed["rows_delivered"]) == ("partial_success", 1), resumed
    # u1's row (re-read at the boundary) now has a NULL PAYLOAD: a new content, refused.
    assert await spec.codes(resumed["id"]) == ["missing_field"]
    assert (await spec.profile(external_id="u2"))["attributes"] == {"b": 2}  # type: ignore[index]
    assert (await spec.profile(external_id="u1"))["attributes"] == {"a": 1}  # type: ignore[index]


async def test_a_paused_sync_refuses_run_now_but_takes_a_reset(spec: Spec) -> None:
    spec.warehouse.create("attrs", ATTRS, [("2026-03-01 00:00:00", "u1", j({"a": 1}))])
    sync_id = await spec.ready("user_attributes", "attrs")
    assert (await spec.run(sync_id))["status"] == "success"
    assert (await spec.post(f"/v1/syncs/{sync_id}/pause")).json()["status"] == "paused"
    resp = await spec.post(f"/v1/syncs/{sync_id}/runs", params={"wait": "true"})
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"]["code"] == "conflict"
    assert resp.json()["error"]["details"]["status"] == "paused"
    resp = await spec.post(f"/v1/syncs/{sync_id}/watermark/reset", json={"to": None})
    assert resp.status_code == 200, resp.text
    assert (await spec.sync(sync_id))["status"] == "paused"
    resp = await spec.post(f"/v1/syncs/{sync_id}/activate")
    assert resp.status_code == 200 and resp.json()["status"] == "active", resp.text
    again = await spec.run(sync_id)
    assert (again["status"], again["rows_read"], again["rows_delivered"]) == ("success", 1, 1)
    assert (await spec.profile(external_id="u1"))["attributes"] == {"a": 1}  # type: ignore[index]


async def test_a_contact_given_twice_is_kept_once(spec: Spec) -> None:
    """Contacts get one mail per state change: an address listed twice (case, blanks) once."""
    spec.warehouse.create("attrs", ATTRS)
    contacts = ["ops@example.com", " Ops@Example.com ", "data@example.com", "ops@example.com"]
    sync = await spec.create_sync("user_attributes", "attrs", contacts=contacts)
    assert sync["contacts"] == ["ops@example.com", "data@example.com"]
    resp = await spec.patch(f"/v1/syncs/{sync['id']}", {"contacts": ["a@x.io", "A@X.IO"]})
    assert resp.status_code == 200 and resp.json()["contacts"] == ["a@x.io"], resp.text


def test_contacts_stored_twice_before_are_mailed_once() -> None:
    from zerocopy.notify.decision import NotificationSettings

    settings = NotificationSettings.from_sync(["a@x.io", " A@X.io", "b@x.io"], {})
    assert settings.contacts == ("a@x.io", "b@x.io")
