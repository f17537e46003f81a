"""The watermark safety kit (issue 8, "Reading: the watermark safety kit"), through the API.

Inclusive boundary (ties inserted after a run are picked up by the next, exactly once), the
lookback window (late rows once, re-read rows not applied twice), time zones (naive = UTC),
null / unparseable ``UPDATED_AT`` as row errors, the watermark unchanged by a failed or
cancelled run, and the row limit (``limit_exceeded``, watermark at the last delivered row,
the next run continuing from there).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture, ts  # noqa: F401

pytestmark = pytest.mark.anyio

EVENTS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


def ev(updated_at: str, name: str, user: str = "w1") -> tuple[str, str, str]:
    return (updated_at, user, j({"name": name, "time": "2026-03-01T00:00:00Z"}))


async def names(spec: Spec, user: str = "w1") -> list[str]:
    prof = await spec.profile(external_id=user)
    return [] if prof is None else sorted(e["name"] for e in await spec.events(prof["id"]))


def wm(value: str | None) -> Any:
    return None if value is None else ts(value)


async def test_ties_at_the_inclusive_boundary_are_picked_up_once(spec: Spec) -> None:
    spec.warehouse.create(
        "evs",
        EVENTS,
        [
            ev("2026-03-01 00:00:00", "a0"),
            ev("2026-03-01 00:00:01", "a1"),
            ev("2026-03-01 00:00:01", "b1"),
        ],
    )
    sync_id = await spec.ready("custom_events", "evs")
    first = await spec.run(sync_id)
    assert (first["status"], first["rows_read"], first["rows_delivered"]) == ("success", 3, 3)
    assert first["watermark_before"] is None
    assert wm(first["watermark_after"]) == ts("2026-03-01T00:00:01Z")
    assert wm((await spec.sync(sync_id))["watermark"]) == ts("2026-03-01T00:00:01Z")
    # Committed after the run, with the watermark's own timestamp, and one later row.
    spec.warehouse.insert(
        "evs", EVENTS, [ev("2026-03-01 00:00:01", "c1-late"), ev("2026-03-01 00:00:02", "d2")]
    )
    second = await spec.run(sync_id)
    assert wm(second["watermark_before"]) == ts("2026-03-01T00:00:01Z")
    assert (second["status"], second["rows_delivered"]) == ("success", 2)
    assert wm(second["watermark_after"]) == ts("2026-03-01T00:00:02Z")
    third = await spec.run(sync_id)
    assert (third["status"], third["rows_delivered"], third["rows_errored"]) == ("success", 0, 0)
    assert wm(third["watermark_after"]) == ts("2026-03-01T00:00:02Z")
    assert await names(spec) == ["a0", "a1", "b1", "c1-late", "d2"]


async def test_lookback_picks_late_rows_once_and_never_reapplies(spec: Spec) -> None:
    rows = [ev(f"2026-03-01 00:{m:02d}:00", f"m{m}") for m in range(0, 30, 5)]
    spec.warehouse.create("evs", EVENTS, rows)
    buys = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}
    purchase = {"product_id": "p", "currency": "USD", "price": 1, "time": "2026-03-01T00:00:00Z"}
    spec.warehouse.create(
        "buys", buys, [(f"2026-03-01 00:{m:02d}:00", "w1", j(purchase)) for m in range(0, 30, 5)]
    )
    events = await spec.ready("custom_events", "evs", lookback_minutes=10)
    purchases = await spec.ready("purchases", "buys", lookback_minutes=10)
    assert (await spec.run(events))["rows_delivered"] == 6
    assert (await spec.run(purchases))["rows_delivered"] == 6
    spec.warehouse.insert(
        "evs",
        EVENTS,
        [ev("2026-03-01 00:20:00", "late-inside"), ev("2026-03-01 00:03:00", "late-outside")],
    )
    second = await spec.run(events)
    assert (second["status"], second["rows_delivered"]) == ("success", 1)
    assert wm(second["watermark_after"]) == ts("2026-03-01T00:25:00Z")
    for _ in range(2):  # re-reads of the window change nothing
        again = await spec.run(events)
        assert again["rows_delivered"] == 0 and again["status"] == "success"
        assert (await spec.run(purchases))["rows_delivered"] == 0
    got = await names(spec)
    assert got.count("late-inside") == 1 and "late-outside" not in got
    assert len(got) == 7
    prof = await spec.profile(external_id="w1")
    assert prof is not None and len(await spec.purchases(prof["id"])) == 6


async def test_attributes_reread_at_the_boundary_are_not_applied_twice(spec: Spec) -> None:
    """A removal re-applied later would undo an attribute set by another sync in between."""
    cols = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}
    spec.warehouse.create("a1", cols, [("2026-03-01 00:00:00", "w1", j({"x": None, "y": 1}))])
    spec.warehouse.create("a2", cols, [("2026-03-01 00:00:00", "w1", j({"x": "set"}))])
    first = await spec.ready("user_attributes", "a1")
    other = await spec.ready("user_attributes", "a2")
    await spec.run(first)
    await spec.run(other)
    again = await spec.run(first)  # re-reads its boundary row: recognised, not re-applied
    assert (again["rows_delivered"], again["rows_skipped"]) == (0, 1)
    prof = await spec.profile(external_id="w1")
    assert prof is not None and prof["attributes"] == {"x": "set", "y": 1}


async def test_naive_timestamps_are_utc_and_aware_ones_are_converted(spec: Spec) -> None:
    if spec.warehouse.kind == "postgres":
        # A session time zone far from UTC must not shift anything.
        assert spec.warehouse.url is not None
        db = spec.warehouse.url.rsplit("/", 1)[1].split("?")[0]
        spec.warehouse.execute(f"ALTER DATABASE \"{db}\" SET timezone TO 'Asia/Kolkata'")
    spec.warehouse.create("naive", EVENTS, [ev("2026-03-01 10:00:00", "naive", "n1")])
    spec.warehouse.create(
        "aware",
        {"UPDATED_AT": "tstz", "EXTERNAL_ID": "text", "PAYLOAD": "text"},
        [
            ("2026-03-01 12:00:00+02:00", "z1", j({"name": "aware", "time": "2026-03-01T00:00Z"})),
            ("2026-03-01 09:30:00+00:00", "z1", j({"name": "early", "time": "2026-03-01T00:00Z"})),
        ],
    )
    naive = await spec.run(await spec.ready("custom_events", "naive"))
    assert naive["status"] == "success", naive
    assert wm(naive["watermark_after"]) == ts("2026-03-01T10:00:00Z")
    aware_id = await spec.ready("custom_events", "aware")
    aware = await spec.run(aware_id)
    assert (aware["status"], aware["rows_delivered"]) == ("success", 2)
    assert wm(aware["watermark_after"]) == ts("2026-03-01T10:00:00Z")
    logs = await spec.rows(aware["id"], errors_only=False)
    assert sorted(ts(r["updated_at"]) for r in logs) == [
        ts("2026-03-01T09:30:00Z"),
        ts("2026-03-01T10:00:00Z"),
    ]
    # Inclusive at 10:00Z whatever the zone a new row is written in.
    spec.warehouse.insert(
        "aware",
        {"UPDATED_AT": "tstz", "EXTERNAL_ID": "text", "PAYLOAD": "text"},
        [
            ("2026-03-01 05:00:00-05:00", "z1", j({"name": "tie", "time": "2026-03-01T00:00Z"})),
            ("2026-03-01 10:59:59+01:00", "z1", j({"name": "old", "time": "2026-03-01T00:00Z"})),
        ],
    )
    again = await spec.run(aware_id)
    assert again["rows_delivered"] == 1
    assert await names(spec, "z1") == ["aware", "early", "tie"]


async def test_null_and_unparseable_updated_at_are_row_errors(spec: Spec) -> None:
    spec.warehouse.create(
        "evs",
        EVENTS,
        [
            ev("2026-03-01 00:00:00", "ok-1"),
            (None, "w1", j({"name": "null-ts", "time": "2026-03-01T00:00:00Z"})),
            ev("2026-03-01 00:00:05", "ok-2"),
        ],
    )
    run = await spec.run(await spec.ready("custom_events", "evs"))
    assert (run["status"], run["rows_read"], run["rows_delivered"], run["rows_errored"]) == (
        "partial_success",
        3,
        2,
        1,
    )
    errors = await spec.rows(run["id"])
    assert [e["code"] for e in errors] == ["invalid_updated_at"]
    assert "null-ts" in str(errors[0]["row"])
    assert wm(run["watermark_after"]) == ts("2026-03-01T00:00:05Z")
    assert await names(spec) == ["ok-1", "ok-2"]


async def test_text_updated_at_is_parsed_and_garbage_is_a_row_error(spec: Spec) -> None:
    cols = {"UPDATED_AT": "text", "EXTERNAL_ID": "text", "PAYLOAD": "text"}
    spec.warehouse.create(
        "evs",
        cols,
        [
            ev("2026-03-01T00:00:00Z", "iso-z"),
            ev("2026-03-01T02:00:01+02:00", "iso-offset"),
            ev("2026-03-01 00:00:02", "iso-naive"),
            ev("not a time", "garbage"),
        ],
    )
    sync_id = await spec.ready("custom_events", "evs")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == ("partial_success", 3, 1)
    assert await spec.codes(run["id"]) == ["invalid_updated_at"]
    assert wm(run["watermark_after"]) == ts("2026-03-01T00:00:02Z")
    assert await names(spec) == ["iso-naive", "iso-offset", "iso-z"]
    spec.warehouse.insert("evs", cols, [ev("2026-03-01T00:00:03Z", "later")])
    again = await spec.run(sync_id)
    assert again["rows_delivered"] == 1, again["error"]
    assert await names(spec) == ["iso-naive", "iso-offset", "iso-z", "later"]


async def test_a_failed_run_leaves_the_watermark_and_the_next_run_catches_up(
    spec: Spec,
) -> None:
    spec.warehouse.create("evs", EVENTS, [ev("2026-03-01 00:00:00", "e0")])
    sync_id = await spec.ready("custom_events", "evs")
    first = await spec.run(sync_id)
    before = first["watermark_after"]
    # The table disappears (renamed away): the run fails, nothing moves.
    spec.warehouse.execute('ALTER TABLE marketing."evs" RENAME TO "evs_away"')
    failed = await spec.run(sync_id)
    assert failed["status"] == "error" and failed["error"] is not None, failed
    assert failed["error"]["code"], failed
    assert failed["rows_delivered"] == 0
    assert wm(failed["watermark_before"]) == wm(before)
    assert wm(failed["watermark_after"]) == wm(before)
    assert wm((await spec.sync(sync_id))["watermark"]) == wm(before)
    spec.warehouse.execute('ALTER TABLE marketing."evs_away" RENAME TO "evs"')
    spec.warehouse.insert("evs", EVENTS, [ev("2026-03-01 00:00:01", "e1")])
    final = await spec.run(sync_id)
    assert (final["status"], final["rows_delivered"]) == ("success", 1)
    assert await names(spec) == ["e0", "e1"]


async def test_a_cancelled_run_leaves_the_watermark(spec: Spec) -> None:
    spec.warehouse.create("evs", EVENTS, [ev("2026-03-01 00:00:00", "e0")])
    sync_id = await spec.ready("custom_events", "evs")
    await spec.run(sync_id)
    spec.warehouse.insert("evs", EVENTS, [ev("2026-03-01 00:00:01", "e1")])
    held = await spec.engine.request(sync_id)
    resp = await spec.post(f"/v1/sync-runs/{held.id}/cancel")
    assert resp.status_code == 202, resp.text
    stopped = await spec.engine.execute(held.id)
    assert stopped.status == "cancelled"
    run = (await spec.get(f"/v1/sync-runs/{held.id}")).json()
    assert run["status"] == "cancelled" and run["rows_delivered"] == 0
    assert wm(run["watermark_after"]) == ts("2026-03-01T00:00:00Z")
    assert wm((await spec.sync(sync_id))["watermark"]) == ts("2026-03-01T00:00:00Z")
    assert await names(spec) == ["e0"]
    final = await spec.run(sync_id)
    assert (final["status"], final["rows_delivered"]) == ("success", 1)
    assert await names(spec) == ["e0", "e1"]


async def test_row_limit_stops_at_the_last_delivered_row_and_continues(spec: Spec) -> None:
    stamps = [
        "2026-03-01 00:00:00",
        "2026-03-01 00:00:01",
        "2026-03-01 00:00:02",
        "2026-03-01 00:00:02",
        "2026-03-01 00:00:02",
        "2026-03-01 00:00:03",
        "2026-03-01 00:00:04",
    ]
    spec.warehouse.create("evs", EVENTS, [ev(s, f"r{i}") for i, s in enumerate(stamps)])
    sync_id = await spec.ready("custom_events", "evs", row_limit=2)
    delivered = 0
    statuses = []
    for _ in range(10):
        run = await spec.run(sync_id)
        statuses.append(run["status"])
        logs = [r for r in await spec.rows(run["id"], errors_only=False) if r["verdict"] != "error"]
        assert len(logs) == run["rows_delivered"]
        delivered += run["rows_delivered"]
        if run["status"] == "limit_exceeded":
            assert run["rows_delivered"] == 2, run
            # The watermark says how far the delivered rows go.
            assert wm(run["watermark_after"]) == max(ts(r["updated_at"]) for r in logs)
        else:
            assert run["status"] == "success", run
            break
    assert statuses[0] == "limit_exceeded" and statuses[-1] == "success"
    assert delivered == len(stamps)
    assert await names(spec) == sorted(f"r{i}" for i in range(len(stamps)))
    final = await spec.run(sync_id)
    assert (final["status"], final["rows_delivered"]) == ("success", 0)
    assert wm(final["watermark_after"]) == ts("2026-03-01T00:00:04Z")
