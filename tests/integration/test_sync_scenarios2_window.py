"""Lookback with rows committed late on PostgreSQL, and the per-run row limit (issue 8).

A row whose ``UPDATED_AT`` lies before the watermark but whose transaction commits after a run
read the table is picked up once by the next run when it falls inside the lookback window. A
row limit ends a run ``limit_exceeded`` with the watermark at the last delivered row; the next
runs continue from there, ties at the limit included, and nothing is applied twice.
"""

from __future__ import annotations

import psycopg
import pytest

from tests.integration.test_sync_spec_harness import (  # noqa: F401
    SCHEMA,
    Spec,
    j,
    spec_fixture,
    ts,
)

pytestmark = pytest.mark.anyio

EVENTS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}
PG_ONLY = [
    pytest.param(("postgres", "sqlite"), id="pg-sqlite", marks=pytest.mark.postgres),
    pytest.param(("postgres", "postgres"), id="pg-pgstate", marks=pytest.mark.postgres),
]


def ev(updated_at: str, name: str, user: str = "w1") -> tuple[str, str, str]:
    return (updated_at, user, j({"name": name, "time": "2026-06-01T00:00:00Z"}))


async def names(spec: Spec, user: str = "w1") -> list[str]:
    prof = await spec.profile(external_id=user)
    assert prof is not None
    return sorted(e["name"] for e in await spec.events(prof["id"]))


@pytest.mark.parametrize("spec", PG_ONLY, indirect=True)
async def test_late_committed_row_within_the_window_is_delivered_exactly_once(
    spec: Spec,
) -> None:
    spec.warehouse.create("evs", EVENTS, [ev("2026-06-01 00:00:00", "first")])
    sync_id = await spec.ready("custom_events", "evs", lookback_minutes=10)
    assert spec.warehouse.url is not None
    late = psycopg.connect(spec.warehouse.url)
    try:
        late.execute(
            f'INSERT INTO {SCHEMA}."evs" VALUES (%s::timestamp, %s, %s)',
            ev("2026-06-01 00:04:00", "late"),
        )
        spec.warehouse.insert(
            "evs", EVENTS, [ev("2026-06-01 00:06:00", "six"), ev("2026-06-01 00:08:00", "eight")]
        )
        run = await spec.run(sync_id)
        assert (run["status"], run["rows_delivered"]) == ("success", 3), run
        assert ts(run["watermark_after"]) == ts("2026-06-01T00:08:00Z")
        late.commit()
    finally:
        late.close()
    run = await spec.run(sync_id)
    # The window re-reads from 23:58: every earlier row is recognised, only "late" applied.
    assert (run["status"], run["rows_delivered"]) == ("success", 1), run
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 0), run
    assert await names(spec) == ["eight", "first", "late", "six"]


async def test_row_limit_stops_at_the_last_delivered_row_and_the_next_run_continues(
    spec: Spec,
) -> None:
    rows = [ev(f"2026-06-01 00:00:{s:02d}", f"r{s:02d}") for s in range(7)]
    spec.warehouse.create("evs", EVENTS, rows)
    sync_id = await spec.ready("custom_events", "evs", row_limit=3)
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_read"], run["rows_delivered"]) == (
        "limit_exceeded",
        3,
        3,
    ), run
    assert run["watermark_before"] is None
    assert ts(run["watermark_after"]) == ts("2026-06-01T00:00:02Z")
    assert ts((await spec.sync(sync_id))["watermark"]) == ts("2026-06-01T00:00:02Z")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("limit_exceeded", 3), run
    assert ts(run["watermark_before"]) == ts("2026-06-01T00:00:02Z")
    assert ts(run["watermark_after"]) == ts("2026-06-01T00:00:05Z")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 1), run
    assert ts(run["watermark_after"]) == ts("2026-06-01T00:00:06Z")
    assert await names(spec) == [f"r{s:02d}" for s in range(7)]


async def test_row_limit_inside_a_tie_makes_progress_and_applies_each_row_once(
    spec: Spec,
) -> None:
    tie = "2026-06-01 00:00:10"
    rows = [ev("2026-06-01 00:00:00", "before")] + [ev(tie, f"t{i}") for i in range(5)]
    spec.warehouse.create("evs", EVENTS, rows)
    sync_id = await spec.ready("custom_events", "evs", row_limit=2)
    delivered = 0
    statuses = []
    for _ in range(10):
        run = await spec.run(sync_id)
        statuses.append(run["status"])
        delivered += run["rows_delivered"]
        if run["status"] != "limit_exceeded":
            break
    assert statuses[-1] == "success", statuses
    assert delivered == 6, statuses
    assert await names(spec) == sorted(["before"] + [f"t{i}" for i in range(5)])
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 0), run


CATALOG = {"UPDATED_AT": "ts", "ID": "text", "PAYLOAD": "text", "DELETED": "bool"}


async def test_lookback_rereads_of_delete_and_recreate_change_nothing(spec: Spec) -> None:
    spec.warehouse.create(
        "items",
        CATALOG,
        [
            ("2026-06-01 00:00:00", "x", j({"a": 1}), False),
            ("2026-06-01 00:01:00", "x", None, True),
            ("2026-06-01 00:02:00", "x", j({"b": 2}), False),
        ],
    )
    sync_id = await spec.ready("catalog_items", "items", catalog_name="c", lookback_minutes=10)
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 3), run
    for minute in (3, 4):
        spec.warehouse.insert(
            "items", CATALOG, [(f"2026-06-01 00:0{minute}:00", f"y{minute}", j({}), False)]
        )
        run = await spec.run(sync_id)
        assert (run["status"], run["rows_delivered"]) == ("success", 1), run
    resp = await spec.get("/v1/catalogs/c/items")
    assert {i["id"]: i["fields"] for i in resp.json()} == {"x": {"b": 2}, "y3": {}, "y4": {}}
