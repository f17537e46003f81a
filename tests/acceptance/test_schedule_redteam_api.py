"""Red-team scenarios of schedules over HTTP on the real app, with a frozen-clock scheduler.

* The workspace's time zone changes while an occurrence is due (the scheduler was down): the
  owed occurrence still runs, once, as a catch-up, and the plan goes on in the new zone.
* Hourly schedules run by real-time hours (both passes of a repeated hour).
* Frequency names in odd case are accepted and stored canonically; refusals name field and
  reason.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.acceptance.conftest import Api, api, state_url, warehouse_file  # noqa: F401
from tests.acceptance.test_api_flow import assert_error
from tests.acceptance.test_schedule_api import _in_zone, _put, _segment
from tests.integration.refresh_fixtures import wire
from tests.integration.state_fixtures import db_fixture  # noqa: F401
from zerocopy.scheduling.config import SchedulingConfig
from zerocopy.scheduling.models import SEGMENT, ScheduledRun, ScheduleState
from zerocopy.scheduling.scheduler import Scheduler
from zerocopy.scheduling.schedules import schedule_view, set_schedule
from zerocopy.state.db import Database
from zerocopy.state.models import Segment, Workspace

pytestmark = pytest.mark.anyio


async def test_zone_change_while_a_segment_run_is_due_still_runs_it_once(
    db: Database,
    tmp_path: Path,
) -> None:
    """The scheduler is down past 09:00 Paris; meanwhile the workspace moves to Tokyo."""
    w = await wire(db, tmp_path, "SELECT external_user_id FROM users WHERE external_user_id <= 10")
    async with db.session() as s:
        seg = await s.get(Segment, w.segment_id)
        assert seg is not None
        ws = seg.workspace_id
    async with db.transaction() as s:
        await s.execute(
            sa.update(Workspace).where(Workspace.id == ws).values(time_zone="Europe/Paris")
        )
    t0 = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
    await set_schedule(db, ws, w.segment_id, {"frequency": "daily", "hour": 9}, now=t0)
    due = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)  # 09:00 Paris
    async with db.transaction() as s:
        await s.execute(
            sa.update(Workspace).where(Workspace.id == ws).values(time_zone="Asia/Tokyo")
        )
    now = [due + timedelta(hours=2)]
    submitted: list[str] = []

    async def submit(run_id: str) -> None:
        submitted.append(run_id)

    sched = Scheduler(db, w.engine, submit, config=SchedulingConfig(), clock=lambda: now[0])
    report = await sched.tick()
    assert len(report.fired) == 1 and report.catch_up == report.fired == submitted
    assert (await sched.tick()).fired == []  # once
    async with db.session() as s:
        scheduled = await s.get(ScheduledRun, report.fired[0])
        state = await s.get(ScheduleState, (SEGMENT, w.segment_id))
    assert scheduled is not None and scheduled.due_at.replace(tzinfo=UTC) == due
    assert state is not None and state.planned_time_zone == "Asia/Tokyo"
    # Next: 09:00 Tokyo = 00:00 UTC the next day.
    assert state.next_due_at.replace(tzinfo=UTC) == datetime(2026, 6, 2, 0, 0, tzinfo=UTC)  # type: ignore[union-attr]
    view = await schedule_view(db, ws, w.segment_id, now=now[0])
    assert datetime.fromisoformat(view["next_runs"][0]) == datetime.fromisoformat(
        "2026-06-02T00:00:00+00:00"
    )
    # Without anything due, a zone change only re-plans (nothing fires).
    async with db.transaction() as s:
        await s.execute(sa.update(Workspace).where(Workspace.id == ws).values(time_zone="UTC"))
    report = await sched.tick()
    assert report.fired == [] and report.replanned == 1


async def test_hourly_segment_shows_real_time_hours_and_odd_case_frequency(
    api: Api,  # noqa: F811
) -> None:
    ws = await _in_zone(api, "Australia/Lord_Howe")
    segment_id = await _segment(ws)
    view = (await _put(ws, segment_id, {"schedule": {"frequency": "Hourly", "minute": 5}})).json()  # type: ignore[attr-defined]
    assert view["schedule"] == {"frequency": "hourly", "minute": 5}
    times = [datetime.fromisoformat(t) for t in view["next_runs"]]
    assert len(times) == 5 and len(set(times)) == 5
    zone = ZoneInfo("Australia/Lord_Howe")
    assert {t.astimezone(zone).minute for t in times} == {5}
    assert all(
        timedelta(minutes=30) <= b - a <= timedelta(minutes=90)
        for a, b in itertools.pairwise(times)
    )


@pytest.mark.parametrize(
    ("schedule", "field", "reason"),
    [
        ({"frequency": "weekly", "weekday": 1}, "weekday", "invalid_type"),
        ({"frequency": "weekly", "weekday": "Caturday"}, "weekday", "invalid_value"),
        ({"frequency": "monthly", "day": 0}, "day", "out_of_range"),
        ({"frequency": "monthly", "day": 32}, "day", "out_of_range"),
        ({"frequency": "daily", "hour": 24}, "hour", "out_of_range"),
        ({"frequency": "every 7 hours"}, "frequency", "unknown_frequency"),
        ({"frequency": "Every 5 Minutes"}, "frequency", "too_frequent"),
        ({"frequency": "every_15_minutes"}, "frequency", "not_allowed_here"),
    ],
)
async def test_refusals_name_field_and_reason(
    api: Api,  # noqa: F811
    schedule: dict[str, object],
    field: str,
    reason: str,
) -> None:
    segment_id = await _segment(api)
    error = assert_error(
        await _put(api, segment_id, {"schedule": schedule}),  # type: ignore[arg-type]
        400,
        "validation_error",
    )
    assert error["details"] == {"field": field, "reason": reason}


async def test_contacts_refusals_name_field_and_reason(api: Api) -> None:  # noqa: F811
    segment_id = await _segment(api)
    for contacts, reason in [("a@b.co", "invalid_type"), (["not-an-address"], "invalid_value")]:
        error = assert_error(
            await _put(api, segment_id, {"schedule": {"frequency": "daily"}, "contacts": contacts}),  # type: ignore[arg-type]
            400,
            "validation_error",
        )
        assert error["details"] == {"field": "contacts", "reason": reason}


async def test_zone_change_while_a_sync_run_is_due_still_runs_it_once(
    db: Database,
    tmp_path: Path,
) -> None:
    from tests.integration.test_sync_engine import make_sync, new_engine, warehouse
    from zerocopy.scheduling.models import SYNC
    from zerocopy.scheduling.sync_scheduler import SyncScheduler
    from zerocopy.state.sync_models import Sync

    sync_id, ws, _src = await make_sync(db, warehouse(tmp_path / "wh.duckdb", rows=5))
    async with db.transaction() as s:
        await s.execute(sa.update(Sync).where(Sync.id == sync_id).values(frequency="1d"))
        await s.execute(
            sa.update(Workspace).where(Workspace.id == ws).values(time_zone="America/New_York")
        )
    now = [datetime(2026, 6, 1, 12, 0, tzinfo=UTC)]
    submitted: list[str] = []

    async def submit(run_id: str) -> None:
        submitted.append(run_id)

    sched = SyncScheduler(
        db, new_engine(db), submit, config=SchedulingConfig(), clock=lambda: now[0]
    )
    await sched.tick()  # plans 00:00 New York = 04:00 UTC on 06-02
    due = datetime(2026, 6, 2, 4, 0, tzinfo=UTC)
    async with db.transaction() as s:
        await s.execute(
            sa.update(Workspace).where(Workspace.id == ws).values(time_zone="Europe/Paris")
        )
    now[0] = due + timedelta(hours=3)
    report = await sched.tick()
    assert len(report.fired) == 1 and submitted == report.fired
    assert (await sched.tick()).fired == []
    async with db.session() as s:
        scheduled = await s.get(ScheduledRun, report.fired[0])
        state = await s.get(ScheduleState, (SYNC, sync_id))
    # The slot the plan waited for (06-02 00:00) is run once, standing at its Paris instant
    # (00:00 Paris on 06-02 = 22:00 UTC on 06-01), as a catch-up.
    assert scheduled is not None
    assert scheduled.due_at.replace(tzinfo=UTC) == due - timedelta(hours=6)
    assert scheduled.catch_up is True
    assert state is not None and state.planned_time_zone == "Europe/Paris"
    # 00:00 Paris on 06-03 = 22:00 UTC on 06-02.
    assert state.next_due_at.replace(tzinfo=UTC) == datetime(2026, 6, 2, 22, 0, tzinfo=UTC)  # type: ignore[union-attr]
