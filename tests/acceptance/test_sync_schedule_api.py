"""``GET /v1/syncs/{id}/schedule``: next 5 run times in the workspace zone, last run's outcome."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from tests.acceptance.conftest import Api
from tests.acceptance.test_sync_api import duckdb_source, ready_sync, run_now

pytestmark = pytest.mark.anyio


async def test_sync_schedule_shows_next_runs_and_last_outcome(api: Api) -> None:
    source_id = await duckdb_source(api)
    sync, _ = await ready_sync(
        api,
        name="attrs",
        data_type="user_attributes",
        source_id=source_id,
        table="USERS_ATTRIBUTES_SYNC",
        frequency="1h",
    )
    resp = await api.get(f"/v1/syncs/{sync['id']}/schedule")
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["frequency"] == "1h" and view["status"] == "active"
    assert view["schedule"] == {"frequency": "hourly", "minute": 0}
    assert view["last_run"] is None
    times = [datetime.fromisoformat(t) for t in view["next_runs"]]
    assert len(times) == 5
    assert all(t.minute == 0 and t.second == 0 for t in times)  # UTC workspace: on the hour
    assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(hours=1)] * 4
    assert timedelta(0) < times[0] - datetime.now(UTC) <= timedelta(hours=1)

    run = await run_now(api, sync["id"])
    view = (await api.get(f"/v1/syncs/{sync['id']}/schedule")).json()
    assert view["last_run"]["id"] == run["id"]
    assert view["last_run"]["status"] == run["status"] == "partial_success"
    assert view["last_run"]["trigger"] == "api" and view["last_run"]["scheduled_for"] is None
    assert view["next_runs"][0] == times[0].isoformat()  # "run now" does not shift it

    assert (await api.post(f"/v1/syncs/{sync['id']}/pause")).status_code == 200
    view = (await api.get(f"/v1/syncs/{sync['id']}/schedule")).json()
    assert view["status"] == "paused" and view["next_runs"] == []

    resp = await api.get("/v1/syncs/00000000-0000-0000-0000-000000000000/schedule")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


async def test_a_frequency_written_as_a_name_is_stored_in_its_short_form(api: Api) -> None:
    source_id = await duckdb_source(api)
    sync, _ = await ready_sync(
        api,
        name="daily attrs",
        data_type="user_attributes",
        source_id=source_id,
        table="USERS_ATTRIBUTES_SYNC",
        frequency="Daily",
    )
    assert sync["frequency"] == "1d"
    view = (await api.get(f"/v1/syncs/{sync['id']}/schedule")).json()
    assert view["schedule"]["frequency"] == "daily"
    resp = await api.patch(f"/v1/syncs/{sync['id']}", json={"frequency": "every 6 hours"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["frequency"] == "6h"
    resp = await api.patch(f"/v1/syncs/{sync['id']}", json={"frequency": "every 5 minutes"})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert (error["code"], error["details"]["reason"]) == ("validation_error", "too_frequent")


async def test_a_scheduled_sync_run_record_says_it_was_a_catch_up(api: Api) -> None:
    """A sync scheduler with a frozen clock ahead of real time: its run records carry the
    occurrence they ran for; a run-now record carries none."""
    from zerocopy.scheduling.config import load_config
    from zerocopy.scheduling.service import _LazySyncEngine
    from zerocopy.scheduling.sync_scheduler import SyncScheduler
    from zerocopy.services import syncs

    source_id = await duckdb_source(api)
    sync, _ = await ready_sync(
        api,
        name="attrs",
        data_type="user_attributes",
        source_id=source_id,
        table="USERS_ATTRIBUTES_SYNC",
        frequency="1h",
    )
    manual = await run_now(api, sync["id"])
    assert manual["scheduled"] is None
    runtime = api.app.state.runtime
    due = datetime.fromisoformat(
        (await api.get(f"/v1/syncs/{sync['id']}/schedule")).json()["next_runs"][0]
    )
    now = [datetime.now(UTC)]  # nothing due yet: the first tick only plans (or keeps) `due`
    submitted: list[str] = []

    async def submit(run_id: str) -> None:
        submitted.append(run_id)

    sched = SyncScheduler(
        runtime.db, _LazySyncEngine(runtime), submit, config=load_config(), clock=lambda: now[0]
    )
    assert (await api.in_app(sched.tick)).fired == []
    now[0] = due + timedelta(hours=3, minutes=10)  # down for 4 hourly occurrences
    report = await api.in_app(sched.tick)
    assert len(report.fired) == 1 and submitted == report.fired
    await api.in_app(lambda: syncs.execute_run(runtime, report.fired[0]))
    record = (await api.get(f"/v1/sync-runs/{report.fired[0]}")).json()
    occurrence = record["scheduled"]
    assert occurrence is not None and occurrence["catch_up"] is True
    assert occurrence["coalesced"] == 4
    assert datetime.fromisoformat(occurrence["due_at"].replace("Z", "+00:00")) == due
    listed = (await api.get(f"/v1/syncs/{sync['id']}/runs")).json()
    assert [r["scheduled"] for r in listed] == [occurrence, None]
