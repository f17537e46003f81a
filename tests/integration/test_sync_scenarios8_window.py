"""Round 14: a lookback window reaching back past year 1.

A sync whose watermark is within its lookback of 0001-01-01 (rows dated year 1 are legal
timestamps on every warehouse, and a watermark reset may set one) computed ``value -
lookback`` with ``datetime``, which cannot go below year 1: the run failed with
``internal_error`` (an ``OverflowError``), and so did every later run, for good. The window now
starts at 0001-01-01T00:00:00Z, the earliest ``UPDATED_AT`` a sync reads.
"""

from __future__ import annotations

import pytest

from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture  # noqa: F401

pytestmark = pytest.mark.anyio

COLS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


async def test_a_watermark_at_year_one_with_a_lookback_runs_again(spec: Spec) -> None:
    spec.warehouse.create("early", COLS, [("0001-01-01 00:00:00", "u1", j({"x": 1}))])
    sync_id = await spec.ready("user_attributes", "early", lookback_minutes=10)
    first = await spec.run(sync_id)
    assert (first["status"], first["watermark_after"]) == ("success", "0001-01-01T00:00:00Z")
    spec.warehouse.insert("early", COLS, [("0001-01-01 00:03:00", "u2", j({"x": 2}))])
    second = await spec.run(sync_id)
    assert second["status"] == "success", second
    assert (second["rows_read"], second["rows_skipped"], second["rows_delivered"]) == (2, 1, 1)
    assert second["watermark_after"] == "0001-01-01T00:03:00Z"
    third = await spec.run(sync_id)
    assert (third["status"], third["rows_delivered"], third["rows_skipped"]) == ("success", 0, 2)
    for ext, x in (("u1", 1), ("u2", 2)):
        prof = await spec.profile(external_id=ext)
        assert prof is not None and prof["attributes"] == {"x": x}, ext


async def test_a_reset_to_year_one_with_a_lookback_reads_the_table_again(spec: Spec) -> None:
    spec.warehouse.create("late", COLS, [("2026-01-01 00:00:00", "u1", j({"x": 1}))])
    sync_id = await spec.ready("user_attributes", "late", lookback_minutes=60)
    assert (await spec.run(sync_id))["status"] == "success"
    resp = await spec.post(
        f"/v1/syncs/{sync_id}/watermark/reset", json={"to": "0001-01-01T00:30:00Z"}
    )
    assert resp.status_code == 200, resp.text
    spec.warehouse.insert("late", COLS, [("2025-06-01 00:00:00", "u0", j({"x": 0}))])
    run = await spec.run(sync_id)
    assert run["status"] == "success", run
    assert run["rows_read"] == 2 and run["watermark_after"] == "2026-01-01T00:00:00Z", run
    prof = await spec.profile(external_id="u0")
    assert prof is not None and prof["attributes"] == {"x": 0}
