"""Sync scenarios, fourth round: what a run's counts mean, and the reset route's contract.

``rows_read = rows_delivered + rows_skipped + rows_errored`` in every run record, whatever
the run met: boundary rows read again (skipped), a lookback window, rows with a NULL
``UPDATED_AT`` reported once and then skipped, row errors, a row limit. Notifications count
only what changed: rows re-read and skipped are not a change.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_sync_spec_harness import (  # noqa: F401
    Spec,
    j,
    spec_fixture,
)
from zerocopy.notify.decision import AlertState, NotificationSettings, RunOutcome, decide

pytestmark = pytest.mark.anyio

EVENTS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


def ev(at: str | None, user: str | None, name: str) -> tuple[Any, ...]:
    return (
        None if at is None else f"2026-05-01 {at}",
        user,
        j({"name": name, "time": "2026-05-01T00:00:00Z"}),
    )


def counts(run: dict[str, Any]) -> tuple[int, int, int, int]:
    got = (run["rows_read"], run["rows_delivered"], run["rows_skipped"], run["rows_errored"])
    assert got[0] == got[1] + got[2] + got[3], run
    return got


async def test_rows_read_is_delivered_plus_skipped_plus_errored_in_every_run(spec: Spec) -> None:
    rows = [
        ev("10:00:00", "u1", "a"),
        ev("10:00:00", None, "no-identifier"),
        ev(None, "u2", "null-updated-at"),
        ev("10:01:00", "u1", "b"),
        ev("10:01:00", "u2", "c"),
    ]
    spec.warehouse.create("evs", EVENTS, rows)
    sync_id = await spec.ready("custom_events", "evs", lookback_minutes=5)
    first = await spec.run(sync_id)
    assert counts(first) == (5, 3, 0, 2), first
    # Everything is read again (lookback), nothing is new: all of it skipped.
    second = await spec.run(sync_id)
    assert counts(second) == (5, 0, 5, 0), second
    # One new row tied with the watermark and one later.
    spec.warehouse.insert("evs", EVENTS, [ev("10:01:00", "u3", "d"), ev("10:02:00", "u3", "e")])
    third = await spec.run(sync_id)
    assert counts(third) == (7, 2, 5, 0), third
    # A row limit stops the run: what it did not take is not counted as read.
    spec.warehouse.insert("evs", EVENTS, [ev(f"10:03:0{i}", "u4", f"f{i}") for i in range(4)])
    assert (await spec.patch(f"/v1/syncs/{sync_id}", {"row_limit": 2})).status_code == 200
    limited = await spec.run(sync_id)
    assert limited["status"] == "limit_exceeded"
    assert counts(limited)[1] == 2, limited
    rest = await spec.run(sync_id)
    assert counts(rest)[1] == 2, rest
    assert (await spec.run(sync_id))["rows_delivered"] == 0


def test_rows_read_again_and_skipped_are_not_a_change_for_notifications() -> None:
    settings = NotificationSettings(
        contacts=("ops@example.com",),
        notify_on_success=True,
        success_even_if_no_rows=False,
        row_error_threshold_pct=10.0,
    )

    def outcome(read: int, delivered: int, skipped: int, errors: int) -> RunOutcome:
        return RunOutcome(
            sync_id="s",
            sync_name="events",
            run_id="r",
            status="partial_success" if errors else "success",
            rows_read=read,
            rows_delivered=delivered,
            rows_skipped=skipped,
            row_errors=errors,
        )

    quiet = decide(AlertState(), outcome(500, 0, 500, 0), settings)
    assert quiet.notifications == ()
    # 2 refused of 10 new rows is 20 %, above the 10 % threshold, however many were re-read.
    noisy = decide(AlertState(), outcome(510, 8, 500, 2), settings)
    assert [n.event.value for n in noisy.notifications] == [
        "row_errors_above_threshold",
        "sync_succeeded",
    ]


async def test_the_reset_route_documents_its_body_as_optional(spec: Spec) -> None:
    schema = (await spec.client.get("/schema/openapi.json")).json()
    body = schema["paths"]["/v1/syncs/{sync_id}/watermark/reset"]["post"]["requestBody"]
    assert body.get("required") is False
    # As documented: no body, an empty object and {"to": null} all read the whole table.
    spec.warehouse.create("evs", EVENTS, [ev("10:00:00", "u1", "a")])
    sync_id = await spec.ready("custom_events", "evs")
    bodies: list[dict[str, Any]] = [{}, {"json": {}}, {"json": {"to": None}}]
    for kwargs in bodies:
        assert (await spec.run(sync_id))["status"] == "success"
        resp = await spec.client.post(
            f"/v1/syncs/{sync_id}/watermark/reset", headers=spec.auth, **kwargs
        )
        assert resp.status_code == 200, (kwargs, resp.text)
        assert (await spec.sync(sync_id))["watermark"] is None


async def test_a_reset_point_takes_the_iso_8601_spellings_of_every_other_time(spec: Spec) -> None:
    spec.warehouse.create("evs", EVENTS, [ev("10:00:00", "u1", "a")])
    sync_id = await spec.ready("custom_events", "evs")
    for given, watermark in (
        ("2026-04-01", "2026-04-01T00:00:00Z"),  # a date alone: its midnight (UTC)
        ("2026-091T10:00:00+02:00", "2026-04-01T08:00:00Z"),  # ordinal date, offset
        ("2026-03-31T24:00:00Z", "2026-04-01T00:00:00Z"),
        ("2026-04-01 10:00:00", "2026-04-01T10:00:00Z"),  # no zone: UTC
    ):
        resp = await spec.post(f"/v1/syncs/{sync_id}/watermark/reset", json={"to": given})
        assert resp.status_code == 200, (given, resp.text)
        assert resp.json()["watermark_after"] == watermark, given
    resp = await spec.post(f"/v1/syncs/{sync_id}/watermark/reset", json={"to": "yesterday"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "validation_error"
    assert (await spec.sync(sync_id))["watermark"] == "2026-04-01T10:00:00Z"
