"""Sync scenarios, fifth round: the read window over several runs, as a data engineer sees it.

Ties at the watermark and late rows inside the lookback across four runs (each row applied
once, the end equal to one clean run); a row updated twice between two runs (its last
version wins, once); a row whose ``UPDATED_AT`` moves backwards (inside the lookback it is
applied, before it it is not read — the watermark never moves back); rows with a NULL
``UPDATED_AT`` on the keyed types; a run that fails or is cancelled half-way (its committed
batches stay, the watermark says how far they go, and the next run ends where one clean run
ends); ``rows_read = rows_delivered + rows_skipped + rows_errored`` in every outcome.

The expected values come from issue 8 and the README, never from the code.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests.integration.test_sync_scenarios3 import other_workspace
from tests.integration.test_sync_spec_harness import (  # noqa: F401
    COMBOS,
    Spec,
    j,
    spec_fixture,
    ts,
)
from zerocopy.sync.engine import SyncEngine

pytestmark = pytest.mark.anyio

EVENTS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}
ATTRS = EVENTS
ITEMS = {"UPDATED_AT": "ts", "ID": "text", "PAYLOAD": "text", "DELETED": "bool"}


def ev(at: str, user: str, name: str) -> tuple[str, str, str]:
    return (f"2026-06-01 {at}", user, j({"name": name, "time": f"2026-06-01T{at}Z"}))


def counts(run: dict[str, Any]) -> tuple[int, int, int, int]:
    """(read, delivered, skipped, errored), checking read = delivered + skipped + errored."""
    got = (run["rows_read"], run["rows_delivered"], run["rows_skipped"], run["rows_errored"])
    assert got[0] == got[1] + got[2] + got[3], run
    return got


async def events_of(spec: Spec, users: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Per user, its events as sorted (name, time) pairs."""
    out: dict[str, list[tuple[str, str]]] = {}
    for user in users:
        prof = await spec.profile(external_id=user)
        items = [] if prof is None else await spec.events(prof["id"])
        out[user] = sorted((e["name"], ts(e["time"]).isoformat()) for e in items)
    return out


def wm(value: Any) -> Any:
    return None if value is None else ts(value)


# --------------------------------------------------------------------------- ties + lookback
async def test_ties_and_late_rows_over_four_runs_are_each_applied_once(spec: Spec) -> None:
    spec.warehouse.create(
        "evs",
        EVENTS,
        [ev("00:00:00", "u1", "e1"), ev("00:05:00", "u1", "e2"), ev("00:10:00", "u2", "e3")],
    )
    sync_id = await spec.ready("custom_events", "evs", lookback_minutes=10)
    assert counts(await spec.run(sync_id)) == (3, 3, 0, 0)
    # A tie at the watermark, a late row inside the lookback, a later row.
    spec.warehouse.insert(
        "evs",
        EVENTS,
        [ev("00:10:00", "u1", "e4"), ev("00:07:00", "u2", "e5"), ev("00:20:00", "u1", "e6")],
    )
    second = await spec.run(sync_id)
    assert counts(second) == (6, 3, 3, 0), second
    assert wm(second["watermark_after"]) == ts("2026-06-01T00:20:00Z")
    # An identical copy of the last row (a second, identical event is delivered, not taken for
    # the first), a late row inside the new window, and one just before it (not read).
    spec.warehouse.insert(
        "evs",
        EVENTS,
        [ev("00:20:00", "u1", "e6"), ev("00:15:00", "u2", "e7"), ev("00:09:59", "u2", "e8")],
    )
    third = await spec.run(sync_id)
    # Window [00:10, 00:20]: e3, e4, e6, e6', e7 read; e6' and e7 new.
    assert counts(third) == (5, 2, 3, 0), third
    fourth = await spec.run(sync_id)
    assert counts(fourth) == (5, 0, 5, 0), fourth
    assert wm(fourth["watermark_after"]) == ts("2026-06-01T00:20:00Z")
    got = await events_of(spec, ["u1", "u2"])
    assert [n for n, _ in got["u1"]] == ["e1", "e2", "e4", "e6", "e6"]
    assert [n for n, _ in got["u2"]] == ["e3", "e5", "e7"]  # e8 came too late for the window
    # One clean run over the same rows, minus the one no window could see, ends the same.
    spec.warehouse.execute("""DELETE FROM marketing."evs" WHERE "PAYLOAD" LIKE '%"e8"%'""")
    clean = await other_workspace(spec)
    run = await clean.run(await clean.ready("custom_events", "evs"))
    assert counts(run) == (8, 8, 0, 0)
    assert await events_of(clean, ["u1", "u2"]) == got


# --------------------------------------------------------------------------- two updates
async def test_a_row_updated_twice_between_runs_applies_its_last_version_once(
    spec: Spec,
) -> None:
    spec.warehouse.create(
        "attrs",
        ATTRS,
        [
            ("2026-06-01 10:00:00", "u1", j({"plan": "free", "seats": 1})),
            ("2026-06-01 10:00:00", "u2", j({"plan": "free"})),
        ],
    )
    spec.warehouse.create("items", ITEMS, [("2026-06-01 10:00:00", "i1", j({"c": "red"}), False)])
    attrs_id = await spec.ready("user_attributes", "attrs")
    items_id = await spec.ready("catalog_items", "items", catalog_name="shop")
    assert counts(await spec.run(attrs_id)) == (2, 2, 0, 0)
    assert counts(await spec.run(items_id)) == (1, 1, 0, 0)
    table = 'marketing."attrs"'
    for at, payload in (
        ("10:05:00", {"plan": "pro", "seats": 2}),
        ("10:06:00", {"plan": "team", "seats": None, "owner": "ann"}),
    ):
        spec.warehouse.execute(
            f"""UPDATE {table} SET "UPDATED_AT" = '2026-06-01 {at}', "PAYLOAD" = '{j(payload)}'
            WHERE "EXTERNAL_ID" = 'u1'"""
        )
    for at, deleted in (("10:05:00", True), ("10:06:00", False)):
        spec.warehouse.execute(
            f"""UPDATE marketing."items" SET "UPDATED_AT" = '2026-06-01 {at}',
            "DELETED" = {str(deleted).upper()}, "PAYLOAD" = '{j({"size": "m"})}'"""
        )
    second = await spec.run(attrs_id)
    # u2 re-read at the boundary (skipped); u1 read once, in its last version.
    assert counts(second) == (2, 1, 1, 0), second
    u1 = await spec.profile(external_id="u1")
    assert u1 is not None and u1["attributes"] == {"plan": "team", "owner": "ann"}
    assert counts(await spec.run(items_id)) == (1, 1, 0, 0)
    # The delete in between never reached the store: the item merges, it is not re-created.
    assert (await spec.catalog("shop"))["i1"]["fields"] == {"c": "red", "size": "m"}
    assert counts(await spec.run(attrs_id)) == (1, 0, 1, 0)


# --------------------------------------------------------------------------- backwards
async def test_an_updated_at_moved_backwards_is_applied_inside_the_lookback_only(
    spec: Spec,
) -> None:
    spec.warehouse.create(
        "attrs",
        ATTRS,
        [
            ("2026-06-01 10:00:00", "u1", j({"v": 1})),
            ("2026-06-01 10:01:00", "u2", j({"v": 1})),
            ("2026-06-01 10:05:00", "u3", j({"v": 1})),
        ],
    )
    sync_id = await spec.ready("user_attributes", "attrs", lookback_minutes=10)
    assert counts(await spec.run(sync_id)) == (3, 3, 0, 0)
    # u1's row moves back to 09:58 with new content: inside [09:55, 10:05], applied.
    spec.warehouse.execute(
        """UPDATE marketing."attrs" SET "UPDATED_AT" = '2026-06-01 09:58:00',
        "PAYLOAD" = '{"v": 2}' WHERE "EXTERNAL_ID" = 'u1'"""
    )
    # u2's moves back to 09:00, before the window: not read (as issue 8 reads rows at or
    # after the watermark minus the lookback).
    spec.warehouse.execute(
        """UPDATE marketing."attrs" SET "UPDATED_AT" = '2026-06-01 09:00:00',
        "PAYLOAD" = '{"v": 3}' WHERE "EXTERNAL_ID" = 'u2'"""
    )
    second = await spec.run(sync_id)
    assert counts(second) == (2, 1, 1, 0), second
    # The watermark never moves back.
    assert wm(second["watermark_after"]) == ts("2026-06-01T10:05:00Z")
    attrs = {u: (await spec.profile(external_id=u) or {}).get("attributes") for u in ("u1", "u2")}
    assert attrs == {"u1": {"v": 2}, "u2": {"v": 1}}
    assert counts(await spec.run(sync_id)) == (2, 0, 2, 0)
    # A reset to the moved row's time brings it in (the documented way to re-read).
    resp = await spec.post(f"/v1/syncs/{sync_id}/watermark/reset", json={"to": "2026-06-01T09:00Z"})
    assert resp.status_code == 200, resp.text
    third = await spec.run(sync_id)
    assert third["status"] == "success", third
    assert (await spec.profile(external_id="u2") or {})["attributes"] == {"v": 3}
    assert (await spec.profile(external_id="u1") or {})["attributes"] == {"v": 2}


# --------------------------------------------------------------------------- NULL UPDATED_AT
async def test_null_updated_at_on_catalog_items_is_reported_once_until_fixed(
    spec: Spec,
) -> None:
    spec.warehouse.create(
        "items",
        ITEMS,
        [
            ("2026-06-01 10:00:00", "i1", j({"c": "red"}), False),
            (None, "i2", j({"c": "blue"}), False),
            (None, "i3", j({"c": "green"}), False),
        ],
    )
    sync_id = await spec.ready("catalog_items", "items", catalog_name="shop")
    first = await spec.run(sync_id)
    assert counts(first) == (3, 1, 0, 2), first
    assert await spec.codes(first["id"]) == ["invalid_updated_at"] * 2
    second = await spec.run(sync_id)
    assert counts(second) == (3, 0, 3, 0), second  # both NULL rows read again, not reported
    assert second["status"] == "success"
    # i2 gets a time after the watermark: delivered; i3 changes but stays NULL: reported again.
    spec.warehouse.execute(
        """UPDATE marketing."items" SET "UPDATED_AT" = '2026-06-01 10:30:00' WHERE "ID" = 'i2'""",
        """UPDATE marketing."items" SET "PAYLOAD" = '{"c": "lime"}' WHERE "ID" = 'i3'""",
    )
    third = await spec.run(sync_id)
    assert counts(third) == (3, 1, 1, 1), third
    rows = await spec.rows(third["id"])
    assert [(r["code"], r["row"]["ID"]) for r in rows] == [("invalid_updated_at", "i3")]
    assert {k: v["fields"] for k, v in (await spec.catalog("shop")).items()} == {
        "i1": {"c": "red"},
        "i2": {"c": "blue"},
    }


# --------------------------------------------------------------------------- half-way stops
PG_SOURCE = [c for c in COMBOS if c.values[0][0] == "postgres"]  # type: ignore[index]
"""A PostgreSQL view can fail or stall on one row while earlier rows stream out (an index
scan feeds the cursor row by row); DuckDB sorts the whole result before the first batch."""

ROWS = 120
TRAP = 75
"""The row (in UPDATED_AT order) the view fails or stalls on while armed."""


def _trap_view(spec: Spec, effect: str) -> None:
    """``marketing.evs``: 120 events, three per second over 7 users, the 75th a trap."""
    spec.warehouse.execute(
        'CREATE TABLE marketing."evs_base" ("UPDATED_AT" timestamp, "EXTERNAL_ID" text, '
        '"PAYLOAD" text, "TRAP" boolean)',
        f"""INSERT INTO marketing."evs_base" SELECT
            timestamp '2026-06-01 10:00:00' + (i / 3) * interval '1 second',
            'u' || (i % 7),
            json_build_object('name', 'e' || i, 'time', '2026-06-01T00:00:00Z')::text,
            i = {TRAP}
            FROM generate_series(0, {ROWS - 1}) AS i""",
        'CREATE INDEX ON marketing."evs_base" ("UPDATED_AT")',
        'CREATE TABLE marketing."armed" (on_ boolean)',
        'INSERT INTO marketing."armed" VALUES (true)',
        f"""CREATE VIEW marketing."evs" AS SELECT b."UPDATED_AT", b."EXTERNAL_ID",
            CASE WHEN b."TRAP" AND (SELECT on_ FROM marketing."armed") THEN {effect}
            ELSE b."PAYLOAD" END AS "PAYLOAD" FROM marketing."evs_base" AS b""",
    )
    # The trap must fire while rows stream: no sort of the whole view before the first batch.
    db = (spec.warehouse.url or "").rsplit("/", 1)[1].split("?")[0]
    spec.warehouse.execute(f'ALTER DATABASE "{db}" SET enable_sort = off')


def _small_batches(spec: Spec) -> SyncEngine:
    """The app's engine with batches of 10 rows (many committed batches before the trap)."""
    app = spec.engine
    return SyncEngine(
        app.db, app.adapter_factory, app.destination_factory, batch_rows=10, delivery_rows=10
    )


async def _equals_one_clean_run(spec: Spec, sync_id: str, stopped: dict[str, Any]) -> None:
    """Disarm the trap, run again: together the runs equal one clean run."""
    delivered = stopped["rows_delivered"]
    assert 0 < delivered < TRAP, stopped
    counts(stopped)
    # The watermark stopped with the committed batches, before the trap's second.
    assert wm(stopped["watermark_after"]) == wm((await spec.sync(sync_id))["watermark"])
    assert ts("2026-06-01T10:00:00Z") <= wm(stopped["watermark_after"])
    assert wm(stopped["watermark_after"]) <= ts(f"2026-06-01T10:00:{TRAP // 3:02d}Z")
    users = [f"u{i}" for i in range(7)]
    assert sum(len(v) for v in (await events_of(spec, users)).values()) == delivered
    spec.warehouse.execute('UPDATE marketing."armed" SET on_ = false')
    final = await spec.run(sync_id)
    assert final["status"] == "success", final
    _read, rest, _skipped, errored = counts(final)
    assert errored == 0 and delivered + rest == ROWS, (stopped, final)
    clean = await other_workspace(spec)
    clean_run = await clean.run(await clean.ready("custom_events", "evs"))
    assert counts(clean_run) == (ROWS, ROWS, 0, 0)
    assert await events_of(spec, users) == await events_of(clean, users)


@pytest.mark.parametrize("spec", PG_SOURCE, indirect=True)
async def test_a_run_failing_half_way_keeps_its_batches_and_the_next_equals_a_clean_run(
    spec: Spec,
) -> None:
    _trap_view(spec, """(1 / (length(b."EXTERNAL_ID") - length(b."EXTERNAL_ID")))::text""")
    sync_id = await spec.ready("custom_events", "evs", lookback_minutes=1)
    engine = _small_batches(spec)
    failed = await engine.run(sync_id)
    assert (failed.status, failed.error_code) == ("error", "warehouse_error"), failed.error_message
    stopped = (await spec.get(f"/v1/sync-runs/{failed.id}")).json()
    await _equals_one_clean_run(spec, sync_id, stopped)


@pytest.mark.parametrize("spec", PG_SOURCE, indirect=True)
async def test_a_run_cancelled_half_way_keeps_its_batches_and_the_next_equals_a_clean_run(
    spec: Spec,
) -> None:
    # A STABLE function keeps the view flattened (a volatile pg_sleep in it would make
    # PostgreSQL sort the whole view, sleeping before the first row).
    spec.warehouse.execute(
        "CREATE FUNCTION marketing.slow(t text) RETURNS text LANGUAGE plpgsql STABLE AS "
        "$$ BEGIN PERFORM pg_sleep(60); RETURN t; END $$"
    )
    _trap_view(spec, """marketing.slow(b."PAYLOAD")""")
    sync_id = await spec.ready("custom_events", "evs", lookback_minutes=1)
    engine = _small_batches(spec)
    run = await engine.request(sync_id)
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.execute, run.id)
        with anyio.fail_after(30):
            while (await engine.get(run.id)).rows_delivered < 30:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        # Through the engine, in this event loop: the test client runs the app in a thread of
        # its own and blocks this loop for each request, so a POST here could wait on a
        # batch this loop holds open (an artefact of the harness, not of the API).
        await engine.request_cancel(run.id)
    stopped = (await spec.get(f"/v1/sync-runs/{run.id}")).json()
    assert stopped["status"] == "cancelled", stopped
    await _equals_one_clean_run(spec, sync_id, stopped)
