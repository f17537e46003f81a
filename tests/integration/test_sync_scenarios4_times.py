"""Sync scenarios, fourth round: time values a data engineer writes in ISO 8601.

Every data type reads its times with one parser: payload ``time`` of events and purchases and
a text ``UPDATED_AT`` accept the same ISO 8601 spellings — ordinal dates (``2026-330``),
``24:00`` as the end of a day (00:00 of the next day), decimal fractions of the hour or minute
(``10.5`` = 10:30, ``10:30.5`` = 10:30:30), a leap second ``23:59:60`` (the next second, as
PostgreSQL reads it) — and refuse the same impossible ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.integration.test_sync_scenarios3 import other_workspace
from tests.integration.test_sync_spec_harness import (  # noqa: F401
    COMBOS,
    Spec,
    j,
    spec_fixture,
    ts,
)

pytestmark = pytest.mark.anyio

EVENTS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}

# (time as written, the instant it means); None: refused (invalid_field).
SPELLINGS: list[tuple[str, str | None]] = [
    ("2026-11-26T24:00:00Z", "2026-11-27T00:00:00Z"),
    ("2026-11-26T24:00Z", "2026-11-27T00:00:00Z"),
    ("2026-12-31T24:00:00.000+01:00", "2026-12-31T23:00:00Z"),
    ("2026-330T10:00:00Z", "2026-11-26T10:00:00Z"),
    ("2026330T100000Z", "2026-11-26T10:00:00Z"),
    ("2024-366", "2024-12-31T00:00:00Z"),
    ("2026-11-26T10:30.5Z", "2026-11-26T10:30:30Z"),
    ("2026-11-26T10.5Z", "2026-11-26T10:30:00Z"),
    ("2026-11-26t10:00:00z", "2026-11-26T10:00:00Z"),
    ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z"),  # a leap second (RFC 3339)
    ("2016-12-31T23:59:61Z", None),
    ("2026-11-26T24:00:01Z", None),
    ("2026-11-26T24:30Z", None),
    ("2026-366T10:00Z", None),
    ("2026-000", None),
    ("2026-11-26T25:00Z", None),
]


def _instant(value: str) -> datetime:
    return ts(value)


async def _by_user(spec: Spec, n: int, reader: str) -> list[dict[str, Any]]:
    prof = await spec.profile(external_id=f"u{n}")
    if prof is None:
        return []
    items: list[dict[str, Any]] = await getattr(spec, reader)(prof["id"])
    return items


async def test_event_and_purchase_times_accept_the_same_iso_8601_spellings(spec: Spec) -> None:
    events = [
        ("2026-03-01 00:00:00", f"u{n}", j({"name": "seen", "time": when}))
        for n, (when, _) in enumerate(SPELLINGS)
    ]
    purchases = [
        (
            "2026-03-01 00:00:00",
            f"u{n}",
            j({"product_id": "p", "currency": "EUR", "price": 1, "time": when}),
        )
        for n, (when, _) in enumerate(SPELLINGS)
    ]
    spec.warehouse.create("events", EVENTS, events)
    spec.warehouse.create("purchases", EVENTS, purchases)
    refused = sum(1 for _, want in SPELLINGS if want is None)
    for data_type, table, reader in (
        ("custom_events", "events", "events"),
        ("purchases", "purchases", "purchases"),
    ):
        run = await spec.run(await spec.ready(data_type, table))
        assert (run["status"], run["rows_errored"]) == ("partial_success", refused), run
        assert await spec.codes(run["id"]) == ["invalid_field"] * refused
        for n, (when, want) in enumerate(SPELLINGS):
            got = await _by_user(spec, n, reader)
            if want is None:
                assert got == [], (data_type, when)
            else:
                assert [_instant(x["time"]) for x in got] == [_instant(want)], (data_type, when)


async def test_a_text_updated_at_reads_the_same_spellings_and_orders_by_the_instant(
    spec: Spec,
) -> None:
    cols = {"UPDATED_AT": "text", "EXTERNAL_ID": "text", "PAYLOAD": "text"}
    # In text order these come the other way round from their instants.
    rows = [
        ("2026-330T23:00:00Z", "u1", j({"step": 1})),  # 2026-11-26 23:00
        ("2026-11-26T24:00:00Z", "u1", j({"step": 2})),  # 2026-11-27 00:00
        ("2026-11-26T24:00:01Z", "u2", j({"step": 0})),  # refused
    ]
    spec.warehouse.create("attrs", cols, rows)
    sync_id = await spec.ready("user_attributes", "attrs")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == (
        "partial_success",
        2,
        1,
    ), run
    assert await spec.codes(run["id"]) == ["invalid_updated_at"]
    prof = await spec.profile(external_id="u1")
    assert prof is not None and prof["attributes"] == {"step": 2}
    assert _instant(run["watermark_after"]) == _instant("2026-11-27T00:00:00Z")
    # The watermark is that instant: a second run re-reads the boundary row and skips it.
    again = await spec.run(sync_id)
    assert (again["rows_delivered"], again["rows_errored"]) == (0, 0), again


async def test_a_text_updated_at_with_offsets_merges_in_time_order_not_text_order(
    spec: Spec,
) -> None:
    """``…T10:00:00+05:00`` (05:00 UTC) is before ``…T06:00:00Z`` although it sorts after it
    as text: the later instant wins, as it would with a timestamp column."""
    cols = {"UPDATED_AT": "text", "ID": "text", "PAYLOAD": "text", "DELETED": "text"}
    rows = [
        ("2026-04-01T06:00:00Z", "i1", j({"color": "blue"}), "false"),
        ("2026-04-01T10:00:00+05:00", "i1", j({"color": "red", "size": "m"}), "false"),
        ("2026-04-01T07:00:00+01:00", "i2", None, "true"),  # 06:00 UTC: after its create
        ("2026-04-01T05:30:00Z", "i2", j({"color": "green"}), "false"),
    ]
    spec.warehouse.create("items", cols, rows)
    sync_id = await spec.ready("catalog_items", "items", catalog_name="shop")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 4), run
    items = await spec.catalog("shop")
    assert set(items) == {"i1"}
    assert items["i1"]["fields"] == {"color": "blue", "size": "m"}
    assert _instant(run["watermark_after"]) == _instant("2026-04-01T06:00:00Z")


DUCKDB_ONLY = [c for c in COMBOS if c.values[0][0] == "duckdb"]  # type: ignore[index]
"""TIMESTAMP_NS is DuckDB's (PostgreSQL timestamps stop at microseconds)."""


@pytest.mark.parametrize("spec", DUCKDB_ONLY, indirect=True)
async def test_nanosecond_updated_at_applies_rows_of_one_microsecond_in_source_order(
    spec: Spec,
) -> None:
    """DuckDB ``TIMESTAMP_NS``: the watermark keeps microseconds, but rows of one key a few
    nanoseconds apart still merge in source time order — in one run, and when the earlier
    row is committed after a run delivered the later one."""
    cols = '("UPDATED_AT" TIMESTAMP_NS, "EXTERNAL_ID" VARCHAR, "PAYLOAD" VARCHAR)'
    later = "('2026-03-01 00:00:00.123456789', 'u1', '{\"a\": \"later\"}')"
    earlier = "('2026-03-01 00:00:00.123456100', 'u1', '{\"a\": \"earlier\", \"b\": 1}')"
    other = "('2026-03-01 00:00:00.123456999', 'u2', '{\"a\": 3}')"
    spec.warehouse.execute(
        f'CREATE TABLE marketing."clean" {cols}',
        f'INSERT INTO marketing."clean" VALUES {later}, {earlier}',
        f'CREATE TABLE marketing."split" {cols}',
        f'INSERT INTO marketing."split" VALUES {later}',
    )
    clean = await spec.run(await spec.ready("user_attributes", "clean"))
    assert clean["rows_delivered"] == 2
    want = {"a": "later", "b": 1}
    assert (await spec.profile(external_id="u1"))["attributes"] == want  # type: ignore[index]

    split = await other_workspace(spec)
    sync_id = await split.ready("user_attributes", "split")
    assert (await split.run(sync_id))["rows_delivered"] == 1
    split.warehouse.execute(f'INSERT INTO marketing."split" VALUES {earlier}, {other}')
    second = await split.run(sync_id)
    assert (second["rows_read"], second["rows_delivered"], second["rows_skipped"]) == (3, 2, 1)
    assert (await split.profile(external_id="u1"))["attributes"] == want  # type: ignore[index]
    assert (await split.profile(external_id="u2"))["attributes"] == {"a": 3}  # type: ignore[index]
    third = await split.run(sync_id)
    assert (third["rows_delivered"], third["rows_skipped"]) == (0, 3)
