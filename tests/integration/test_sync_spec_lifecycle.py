"""Sync definitions and runs (issue 8, "Sync definitions" and "Runs, logs and notifications").

draft → (test with a 10-row preview of verdicts) → active → paused; the data type never
changes (``data_type_immutable``); a credential in use cannot be deleted
(``credential_in_use``); run statuses ``success`` / ``partial_success`` / ``error`` /
``limit_exceeded`` with rows read / delivered / errored; row errors keep payload and reason,
listed with "errors only" or "all rows" and exported as CSV / JSON lines.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture, ts  # noqa: F401

pytestmark = pytest.mark.anyio

EVENTS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}
GOOD = {"name": "visit", "time": "2026-03-01T00:00:00Z"}


def ev(i: int, payload: object = GOOD, user: str | None = "u1", raw: str | None = None) -> tuple:
    return (f"2026-03-01 00:00:{i:02d}", user, raw if raw is not None else j(payload))


async def test_draft_test_active_paused(spec: Spec) -> None:
    rows = [ev(i) for i in range(12)]
    rows[2] = ev(2, {"time": "2026-03-01T00:00:00Z"})  # missing_field
    rows[5] = ev(5, user=None)  # no_identifier
    rows[7] = ev(7, raw="{oops")  # invalid_json
    rows[11] = ev(11, raw="[]")  # beyond the preview
    spec.warehouse.create("evs", EVENTS, rows)
    sync = await spec.create_sync("custom_events", "evs", frequency="1h")
    assert sync["status"] == "draft" and sync["watermark"] is None
    # Neither activation nor a run before a successful test.
    resp = await spec.post(f"/v1/syncs/{sync['id']}/activate")
    assert resp.status_code == 409, resp.text
    resp = await spec.post(f"/v1/syncs/{sync['id']}/runs", params={"wait": "true"})
    assert resp.status_code == 409, resp.text
    assert (await spec.sync(sync["id"]))["status"] == "draft"

    test = await spec.test_sync(sync["id"])
    preview = test["preview"]
    assert [p["position"] for p in preview] == list(range(10))
    assert [p["code"] for p in preview] == [
        None,
        None,
        "missing_field",
        None,
        None,
        "no_identifier",
        None,
        "invalid_json",
        None,
        None,
    ]
    assert [p["valid"] for p in preview] == [p["code"] is None for p in preview]
    assert all(p["message"] for p in preview if not p["valid"])
    assert "{oops" in json.dumps(preview[7]["row"])
    # A test delivers nothing and moves nothing; the sync is still a draft.
    assert await spec.profile(external_id="u1") is None
    after_test = await spec.sync(sync["id"])
    assert after_test["status"] == "draft" and after_test["watermark"] is None
    assert after_test["last_tested_at"] is not None

    resp = await spec.post(f"/v1/syncs/{sync['id']}/activate")
    assert resp.status_code == 200 and resp.json()["status"] == "active", resp.text
    run = await spec.run(sync["id"])
    assert (run["status"], run["rows_read"], run["rows_delivered"], run["rows_errored"]) == (
        "partial_success",
        12,
        8,
        4,
    )
    assert run["trigger"] and run["duration_s"] is not None
    resp = await spec.post(f"/v1/syncs/{sync['id']}/pause")
    assert resp.status_code == 200 and resp.json()["status"] == "paused", resp.text
    resp = await spec.post(f"/v1/syncs/{sync['id']}/runs", params={"wait": "true"})
    assert resp.status_code == 409, resp.text
    resp = await spec.post(f"/v1/syncs/{sync['id']}/activate")
    assert resp.status_code == 200 and resp.json()["status"] == "active", resp.text
    assert (await spec.run(sync["id"]))["rows_delivered"] == 0
    runs = (await spec.get(f"/v1/syncs/{sync['id']}/runs")).json()
    assert [r["id"] for r in runs][-1] == run["id"] and len(runs) == 2


async def test_a_failing_test_keeps_the_sync_a_draft(spec: Spec) -> None:
    spec.warehouse.create("no_payload", {"UPDATED_AT": "ts", "EXTERNAL_ID": "text"})
    spec.warehouse.create("no_ident", {"UPDATED_AT": "ts", "PAYLOAD": "text"})
    spec.warehouse.create("no_ts", {"EXTERNAL_ID": "text", "PAYLOAD": "text"})
    spec.warehouse.create("cat_no_id", {"UPDATED_AT": "ts", "PAYLOAD": "text"})
    spec.warehouse.create("acc_no_name", {"UPDATED_AT": "ts", "ID": "text", "PAYLOAD": "text"})
    cases = [
        ("custom_events", "no_payload", {}),
        ("user_attributes", "no_ident", {}),
        ("custom_events", "no_ts", {}),
        ("custom_events", "does_not_exist", {}),
        ("catalog_items", "cat_no_id", {"catalog_name": "c"}),
        ("accounts", "acc_no_name", {}),
    ]
    for data_type, table, extra in cases:
        sync = await spec.create_sync(data_type, table, **extra)
        resp = await spec.post(f"/v1/syncs/{sync['id']}/test")
        assert 400 <= resp.status_code < 500, (table, resp.text)
        assert resp.json()["error"]["code"], resp.text
        again = await spec.sync(sync["id"])
        assert again["status"] == "draft" and again["last_test_error"] is not None, table
        assert (await spec.post(f"/v1/syncs/{sync['id']}/activate")).status_code == 409


async def test_data_type_is_immutable(spec: Spec) -> None:
    spec.warehouse.create("evs", EVENTS, [ev(0)])
    sync_id = await spec.ready("custom_events", "evs")
    for other in ("user_attributes", "purchases", "catalog_items"):
        resp = await spec.patch(f"/v1/syncs/{sync_id}", json={"data_type": other})
        assert resp.status_code == 409, resp.text
        assert resp.json()["error"]["code"] == "data_type_immutable"
    assert (await spec.sync(sync_id))["data_type"] == "custom_events"
    # Other changes are fine, and the same data type is not a change.
    resp = await spec.patch(
        f"/v1/syncs/{sync_id}", json={"data_type": "custom_events", "frequency": "15m"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["frequency"] == "15m" and resp.json()["data_type"] == "custom_events"


async def test_credential_in_use_cannot_be_deleted(spec: Spec) -> None:
    spec.warehouse.create("evs", EVENTS, [ev(0)])
    sync_id = await spec.ready("custom_events", "evs")
    cred = await spec.credential()
    source = await spec.source()
    resp = await spec.delete(f"/v1/credentials/{cred}")
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"]["code"] == "credential_in_use"
    resp = await spec.delete(f"/v1/sources/{source}")
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "source_in_use"
    assert sync_id in json.dumps(resp.json()["error"]["details"])
    assert (await spec.get(f"/v1/credentials/{cred}")).status_code == 200
    assert (await spec.delete(f"/v1/syncs/{sync_id}")).status_code == 204
    assert (await spec.delete(f"/v1/sources/{source}")).status_code == 204
    assert (await spec.delete(f"/v1/credentials/{cred}")).status_code == 204


async def test_run_statuses_and_counts(spec: Spec) -> None:
    spec.warehouse.create("clean", EVENTS, [ev(0), ev(1)])
    spec.warehouse.create("mixed", EVENTS, [ev(0), ev(1, user=None)])
    spec.warehouse.create("many", EVENTS, [ev(i) for i in range(5)])
    spec.warehouse.create("gone", EVENTS, [ev(0)])
    clean = await spec.run(await spec.ready("custom_events", "clean"))
    assert (
        clean["status"],
        clean["rows_read"],
        clean["rows_delivered"],
        clean["rows_errored"],
    ) == (
        "success",
        2,
        2,
        0,
    )
    assert clean["error"] is None
    mixed = await spec.run(await spec.ready("custom_events", "mixed"))
    assert (mixed["status"], mixed["rows_delivered"], mixed["rows_errored"]) == (
        "partial_success",
        1,
        1,
    )
    limited = await spec.run(await spec.ready("custom_events", "many", row_limit=3))
    assert (limited["status"], limited["rows_delivered"]) == ("limit_exceeded", 3)
    gone_id = await spec.ready("custom_events", "gone")
    spec.warehouse.execute('DROP TABLE marketing."gone"')
    failed = await spec.run(gone_id)
    assert failed["status"] == "error" and failed["error"]["code"], failed
    assert failed["rows_delivered"] == 0
    assert failed["finished_at"] is not None


async def test_row_errors_keep_payload_and_reason_and_export(spec: Spec) -> None:
    spec.warehouse.create(
        "evs",
        EVENTS,
        [ev(0), ev(1, {"name": "x", "time": "soon"}), ev(2), ev(3, user=None)],
    )
    run = await spec.run(await spec.ready("custom_events", "evs"))
    errors = await spec.rows(run["id"])
    assert [(e["position"], e["code"]) for e in errors] == [
        (1, "invalid_field"),
        (3, "no_identifier"),
    ]
    assert "soon" in json.dumps(errors[0]["row"]) and "time" in errors[0]["message"]
    assert ts(errors[0]["updated_at"]) == ts("2026-03-01T00:00:01Z")
    every = await spec.rows(run["id"], errors_only=False)
    assert [e["position"] for e in every] == [0, 1, 2, 3]
    assert [e["verdict"] == "error" for e in every] == [False, True, False, True]
    resp = await spec.get(f"/v1/sync-runs/{run['id']}/rows/export", params={"format": "jsonl"})
    assert resp.status_code == 200, resp.text
    lines = [json.loads(line) for line in resp.text.splitlines()]
    assert [(x["position"], x["code"]) for x in lines] == [
        (1, "invalid_field"),
        (3, "no_identifier"),
    ]
    assert "soon" in json.dumps(lines[0]["row"])
    resp = await spec.get(
        f"/v1/sync-runs/{run['id']}/rows/export", params={"format": "csv", "errors_only": "false"}
    )
    assert resp.status_code == 200, resp.text
    table = list(csv.DictReader(io.StringIO(resp.text)))
    assert [r["position"] for r in table] == ["0", "1", "2", "3"]
    assert table[1]["code"] == "invalid_field" and "soon" in table[1]["row"]


async def test_one_run_at_a_time(spec: Spec) -> None:
    spec.warehouse.create("evs", EVENTS, [ev(0)])
    sync_id = await spec.ready("custom_events", "evs")
    held = await spec.engine.request(sync_id)
    resp = await spec.post(f"/v1/syncs/{sync_id}/runs", params={"wait": "true"})
    assert resp.status_code == 409, resp.text
    err = resp.json()["error"]
    assert err["code"] == "sync_in_progress" and err["details"]["run_id"] == held.id
    done = await spec.engine.execute(held.id)
    assert done.status == "success"
    assert (await spec.run(sync_id))["status"] == "success"


async def test_the_row_limit_can_be_removed(spec: Spec) -> None:
    spec.warehouse.create("evs", EVENTS, [ev(i) for i in range(5)])
    sync_id = await spec.ready("custom_events", "evs", row_limit=2)
    assert (await spec.run(sync_id))["status"] == "limit_exceeded"
    resp = await spec.patch(f"/v1/syncs/{sync_id}", json={"row_limit": None})
    assert resp.status_code == 200, resp.text
    assert resp.json()["row_limit"] is None
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 3)
