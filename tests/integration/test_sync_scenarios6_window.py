"""Round 6: changing a sync's settings between runs never applies a row twice.

Each scenario runs a sync, changes one setting through ``PATCH /v1/syncs/{id}``, runs again
and compares the store with what one clean run gives.
"""

from __future__ import annotations

import pytest

from tests.integration.test_sync_spec_harness import (  # noqa: F401
    COMBOS,
    Spec,
    j,
    spec_fixture,
)

pytestmark = pytest.mark.anyio

EVENTS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


def ev(at: str, user: str, name: str) -> tuple[str, str, str]:
    return (f"2026-04-01 {at}", user, j({"name": name, "time": "2026-04-01T08:00:00Z"}))


async def event_names(spec: Spec, user: str) -> list[str]:
    prof = await spec.profile(external_id=user)
    assert prof is not None
    return sorted(e["name"] for e in await spec.events(prof["id"]))


async def test_a_longer_lookback_does_not_apply_old_rows_again(spec: Spec) -> None:
    """Hashes are kept for the lookback the last run had: a longer one set afterwards reads
    rows delivered before that window again. They are recognised as after a watermark reset
    (applied once in effect; sent again, so counted as delivered), and a late row inside the
    new window is delivered once. Before, the events before the old window were appended a
    second time."""
    spec.warehouse.create(
        "evs",
        EVENTS,
        [ev("10:00:00", "u1", "a"), ev("10:05:00", "u1", "b"), ev("10:10:00", "u1", "c")],
    )
    spec.warehouse.create(
        "attrs",
        EVENTS,
        [
            ("2026-04-01 10:00:00", "u2", j({"tier": "gold", "seats": 1})),
            ("2026-04-01 10:05:00", "u2", j({"tier": "silver"})),
        ],
    )
    events_id = await spec.ready("custom_events", "evs")
    attrs_id = await spec.ready("user_attributes", "attrs")
    assert (await spec.run(events_id))["rows_delivered"] == 3
    assert (await spec.run(attrs_id))["rows_delivered"] == 2
    for sync_id in (events_id, attrs_id):
        resp = await spec.patch(f"/v1/syncs/{sync_id}", {"lookback_minutes": 30})
        assert resp.status_code == 200 and resp.json()["lookback_minutes"] == 30, resp.text
    spec.warehouse.insert("evs", EVENTS, [ev("10:02:00", "u1", "late")])
    run = await spec.run(events_id)
    assert (run["status"], run["rows_read"]) == ("success", 4), run
    assert await event_names(spec, "u1") == ["a", "b", "c", "late"]
    run = await spec.run(attrs_id)
    assert run["status"] == "success", run
    prof = await spec.profile(external_id="u2")
    assert prof is not None and prof["attributes"] == {"tier": "silver", "seats": 1}
    # Later runs read the same window and find everything known.
    for sync_id in (events_id, attrs_id):
        run = await spec.run(sync_id)
        assert (run["rows_delivered"], run["rows_errored"]) == (0, 0), run
    assert await event_names(spec, "u1") == ["a", "b", "c", "late"]
    # A shorter lookback needs nothing: the hashes kept cover it.
    resp = await spec.patch(f"/v1/syncs/{events_id}", {"lookback_minutes": 5})
    assert resp.status_code == 200, resp.text
    assert (await spec.run(events_id))["rows_delivered"] == 0


async def test_a_longer_lookback_is_refused_while_a_run_is_running(spec: Spec) -> None:
    """The running run would commit its watermark without the mark the change needs."""
    spec.warehouse.create("evs", EVENTS, [ev("10:00:00", "u1", "a")])
    sync_id = await spec.ready("custom_events", "evs", lookback_minutes=10)
    running = await spec.engine.request(sync_id, "api")
    resp = await spec.patch(f"/v1/syncs/{sync_id}", {"lookback_minutes": 20, "name": "renamed"})
    assert resp.status_code == 409, resp.text
    err = resp.json()["error"]
    assert err["code"] == "sync_in_progress" and err["details"]["run_id"] == running.id
    sync = await spec.sync(sync_id)
    assert (sync["lookback_minutes"], sync["name"]) != (20, "renamed"), sync
    assert sync["lookback_minutes"] == 10 and sync["name"] != "renamed", sync
    # Shortening it is harmless and allowed.
    resp = await spec.patch(f"/v1/syncs/{sync_id}", {"lookback_minutes": 5})
    assert resp.status_code == 200, resp.text
    assert (await spec.engine.execute(running.id)).status == "success"
    resp = await spec.patch(f"/v1/syncs/{sync_id}", {"lookback_minutes": 20})
    assert resp.status_code == 200, resp.text
    assert await event_names(spec, "u1") == ["a"]
    assert (await spec.run(sync_id))["rows_delivered"] == 0  # the row at the watermark: known
    assert await event_names(spec, "u1") == ["a"]
