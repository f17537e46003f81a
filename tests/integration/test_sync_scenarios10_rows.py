"""Sync scenarios, round 16: the row report of a run, as a data engineer reads it.

* an account row with ``DELETED`` true deletes the account whatever its ``PAYLOAD`` holds:
  its fields are not applied, so none is "dropped" -- the row is delivered without an
  ``unknown_field`` warning (it was reported on every delete of an account whose warehouse
  row carried fields outside ``settings.account_fields``, filling the errors-only export with
  rows nobody has to look at);
* the row listing and the export of one run agree: every logged row (``errors_only=false``)
  is the same row with the same verdict, code, reason, time and payload in the listing, the
  JSON-lines export and the CSV export; the errors-only listing is the refused rows
  (``rows_errored`` of them) and the errors-only export those plus the rows applied with a
  warning, as the README says -- also past one page of the listing.

The expected values come from issue 8 and the README, never from the code.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture  # noqa: F401

pytestmark = pytest.mark.anyio

ACCOUNTS = {"UPDATED_AT": "ts", "ID": "text", "NAME": "text", "PAYLOAD": "text", "DELETED": "bool"}
USERS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


def at(second: int, minute: int = 0) -> str:
    return f"2026-07-01 10:{minute:02d}:{second:02d}"


def counts(run: dict[str, Any]) -> tuple[int, int, int, int]:
    got = (run["rows_read"], run["rows_delivered"], run["rows_skipped"], run["rows_errored"])
    assert got[0] == got[1] + got[2] + got[3], run
    return got


async def export(spec: Spec, run_id: str, fmt: str, *, errors_only: bool) -> list[dict[str, Any]]:
    resp = await spec.get(
        f"/v1/sync-runs/{run_id}/rows/export",
        params={"format": fmt, "errors_only": "true" if errors_only else "false"},
    )
    assert resp.status_code == 200, resp.text
    if fmt == "jsonl":
        return [json.loads(line) for line in resp.text.splitlines()]
    out = []
    for rec in csv.DictReader(io.StringIO(resp.text.lstrip("\ufeff"))):
        out.append(
            {
                "position": int(rec["position"]),
                "verdict": rec["verdict"],
                "code": rec["code"] or None,
                "message": rec["message"] or None,
                "updated_at": rec["updated_at"] or None,
                "row": json.loads(rec["row"]),
            }
        )
    return out


# --------------------------------------------------------------------------- account deletes
async def test_an_account_delete_with_fields_outside_the_schema_is_not_reported(
    spec: Spec,
) -> None:
    spec.warehouse.create(
        "accs",
        ACCOUNTS,
        [
            (at(0), "a1", "Acme", j({"plan": "pro", "color": "red"}), False),  # dropped: warn
            (at(1), "a2", "Beta", j({"plan": "free"}), False),
            # The warehouse keeps the last fields of a deleted account in its row.
            (at(2), "a2", "Beta", j({"plan": "free", "color": "blue"}), True),
            (at(3), "a9", "Never", j({"color": "green"}), True),  # unknown id: quiet no-op
        ],
    )
    sync_id = await spec.ready("accounts", "accs", settings={"account_fields": ["plan"]})
    run = await spec.run(sync_id)
    assert (run["status"], counts(run)) == ("success", (4, 4, 0, 0)), run
    logs = await spec.rows(run["id"], errors_only=False)
    assert [(r["position"], r["verdict"], r["code"]) for r in logs] == [
        (0, "warning", "unknown_field"),
        (1, "delivered", None),
        (2, "delivered", None),
        (3, "delivered", None),
    ], logs
    report = await export(spec, run["id"], "jsonl", errors_only=True)
    assert [(r["position"], r["code"]) for r in report] == [(0, "unknown_field")], report
    accounts = await spec.accounts()
    assert {k: (v["name"], v["fields"]) for k, v in accounts.items()} == {
        "a1": ("Acme", {"plan": "pro"})
    }


# --------------------------------------------------------------------------- listing = export
async def listing(spec: Spec, run_id: str, *, errors_only: bool) -> list[dict[str, Any]]:
    """Every row of the listing, page after page (``limit`` 1000 and ``offset``)."""
    out: list[dict[str, Any]] = []
    while True:
        resp = await spec.get(
            f"/v1/sync-runs/{run_id}/rows",
            params={
                "errors_only": "true" if errors_only else "false",
                "limit": 1000,
                "offset": len(out),
            },
        )
        assert resp.status_code == 200, resp.text
        page = resp.json()
        out.extend(page)
        if len(page) < 1000:
            return out


async def test_the_listing_and_both_exports_of_a_run_hold_the_same_rows(spec: Spec) -> None:
    rows: list[tuple[Any, ...]] = []
    for i in range(1_150):  # past one page of the listing and one query of the export
        minute, second = divmod(i, 60)
        when = f"2026-07-01 {10 + minute // 60:02d}:{minute % 60:02d}:{second:02d}"
        if i % 97 == 3:
            rows.append((when, None, j({"n": i})))  # no_identifier
        elif i % 101 == 5:
            rows.append((when, f"u{i}", "{not json"))  # invalid_json
        elif i % 211 == 7:
            rows.append((when, f"u{i}", j([1, 2])))  # payload_not_object
        else:
            rows.append((when, f"u{i}", j({"n": i, "note": '=SUM(A1) ünïcode, "q"\n'})))
    spec.warehouse.create("users", USERS, rows)
    sync_id = await spec.ready("user_attributes", "users")
    run = await spec.run(sync_id)
    read, delivered, skipped, errored = counts(run)
    assert (read, skipped) == (1_150, 0) and errored > 20, run
    every = await listing(spec, run["id"], errors_only=False)
    assert [r["position"] for r in every] == list(range(1_150))
    assert sum(r["verdict"] == "delivered" for r in every) == delivered
    for fmt in ("jsonl", "csv"):
        assert await export(spec, run["id"], fmt, errors_only=False) == every, fmt
    refused = await listing(spec, run["id"], errors_only=True)
    assert refused == [r for r in every if r["verdict"] == "error"]
    assert len(refused) == errored
    assert {r["code"] for r in refused} == {"no_identifier", "invalid_json", "payload_not_object"}
    for fmt in ("jsonl", "csv"):  # no warnings in this run: the report is the refused rows
        assert await export(spec, run["id"], fmt, errors_only=True) == refused, fmt
    assert every[0]["row"]["payload"]["note"] == '=SUM(A1) ünïcode, "q"\n'
