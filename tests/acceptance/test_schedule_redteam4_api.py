"""Red-team round 4 of schedules through the API and the real scheduler on a frozen clock.

* Every refusal names its field in ``details: {"field", "reason"}`` — schedule documents,
  the workspace's time zone and a sync's frequency, including wrong JSON types the request
  decoder refuses before any service sees them.
* The scheduler on DST change days: hourly runs in both passes of New York's repeated hour, a
  daily slot inside it runs once; Lord Howe's 30-minute gap and repeated half hour; "run now"
  on a transition day does not move the plan.
* Downtime spanning a DST change and a workspace time-zone change: one catch-up run
  standing for every missed local slot, then on time in the new zone.
* The stale pause with a fractional ``ZEROCOPY_STALE_AFTER_DAYS``: member reads, edits and a
  different schedule do not resume it; ``resume`` does, on the new schedule, without a burst.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.acceptance.conftest import Api, api, state_url, warehouse_file  # noqa: F401
from tests.acceptance.test_api_flow import assert_error
from tests.acceptance.test_schedule_api import _in_zone, _put, _segment
from tests.acceptance.test_schedule_redteam2_api import Clock, Ticker, _state, _sync, _wired
from tests.integration.state_fixtures import db_fixture  # noqa: F401
from zerocopy.scheduling.models import ScheduledRun
from zerocopy.scheduling.schedules import (
    record_member_read,
    resume_schedule,
    schedule_view,
    set_schedule,
)
from zerocopy.services import workspaces
from zerocopy.state.db import Database
from zerocopy.state.models import RunTrigger, Workspace

pytestmark = pytest.mark.anyio


def local(value: str | datetime, zone: str) -> str:
    t = datetime.fromisoformat(value) if isinstance(value, str) else value
    return t.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %z")


async def _zone(db: Database, ws: str, zone: str) -> None:
    async with db.transaction() as s:
        await s.execute(sa.update(Workspace).where(Workspace.id == ws).values(time_zone=zone))


async def _scheduled(db: Database, run_id: str) -> ScheduledRun:
    async with db.session() as s:
        scheduled = await s.get(ScheduledRun, run_id)
    assert scheduled is not None
    return scheduled


# ------------------------------------------------------------------ refusals name the field
@pytest.mark.parametrize(
    ("schedule", "field", "reason"),
    [
        ({"frequency": "hourly", "minute": 60}, "minute", "out_of_range"),
        ({"frequency": "daily", "hour": 24}, "hour", "out_of_range"),
        ({"frequency": "daily", "time": "24:00"}, "time", "out_of_range"),
        ({"frequency": "weekly", "weekday": 1}, "weekday", "invalid_type"),
        ({"frequency": "weekly", "weekday": "caturday"}, "weekday", "invalid_value"),
        ({"frequency": "monthly", "day": 0}, "day", "out_of_range"),
        ({"frequency": "monthly", "day": 32}, "day", "out_of_range"),
        ({"frequency": "every_5_minutes"}, "frequency", "too_frequent"),
        ({"frequency": "every_30_minutes"}, "frequency", "not_allowed_here"),
        ({"frequency": "every_45_minutes"}, "frequency", "too_frequent"),
        ({"frequency": "yearly"}, "frequency", "too_rare"),
        ({"frequency": "daily", "time_zone": "Asia/Tokyo"}, "time_zone", "unknown_field"),
        ("daily", "schedule", "invalid_type"),
    ],
)
async def test_a_refused_schedule_names_its_field_and_changes_nothing(
    api: Api,  # noqa: F811
    schedule: object,
    field: str,
    reason: str,
) -> None:
    ws = await _in_zone(api, "Australia/Lord_Howe")
    segment_id = await _segment(ws)
    ok = await _put(ws, segment_id, {"schedule": {"frequency": "daily", "time": "02:15"}})
    before = ok.json()  # type: ignore[attr-defined]
    error = assert_error(
        await _put(ws, segment_id, {"schedule": schedule}), 400, "validation_error"
    )
    assert error["details"] == {"field": field, "reason": reason}
    after = (await ws.get(f"/v1/segments/{segment_id}/schedule")).json()
    assert (
        after["schedule"] == before["schedule"] == {"frequency": "daily", "hour": 2, "minute": 15}
    )
    assert after["next_runs"] == before["next_runs"]


async def test_a_schedule_body_without_its_schedule_names_it(api: Api) -> None:  # noqa: F811
    segment_id = await _segment(api)
    error = assert_error(await _put(api, segment_id, {}), 400, "validation_error")
    assert error["details"] == {"field": "schedule", "reason": "required"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"time_zone": "Mars/Olympus"}, "unknown_time_zone"),
        ({"time_zone": "utc"}, "unknown_time_zone"),
        ({"time_zone": "UTC+5"}, "unknown_time_zone"),
        ({"time_zone": ""}, "unknown_time_zone"),
        ({"time_zone": 5}, "invalid_type"),
        ({"time_zone": None}, "invalid_type"),
        ({}, "required"),
    ],
)
async def test_a_refused_time_zone_names_the_field(
    api: Api,  # noqa: F811
    body: dict[str, object],
    reason: str,
) -> None:
    error = assert_error(await api.patch("/v1/workspace", body), 400, "validation_error")
    assert (error["details"]["field"], error["details"]["reason"]) == ("time_zone", reason)
    assert (await api.get("/v1/workspace")).json()["time_zone"] == "UTC"


@pytest.mark.parametrize(
    ("frequency", "reason"),
    [
        ("5m", "too_frequent"),
        ("2mo", "too_rare"),
        ("31d", "unknown_frequency"),
        (15, "invalid_type"),
        (None, "invalid_type"),
    ],
)
async def test_a_refused_sync_frequency_names_the_field(
    api: Api,  # noqa: F811
    frequency: object,
    reason: str,
) -> None:
    sync = await _sync(api)
    error = assert_error(
        await api.patch(f"/v1/syncs/{sync['id']}", {"frequency": frequency}),
        400,
        "validation_error",
    )
    assert (error["details"]["field"], error["details"]["reason"]) == ("frequency", reason)
    assert (await api.get(f"/v1/syncs/{sync['id']}")).json()["frequency"] == "1h"


async def test_weekday_abbreviations_through_the_api(api: Api) -> None:  # noqa: F811
    ws = await _in_zone(api, "Asia/Kathmandu")
    segment_id = await _segment(ws)
    resp = await _put(
        ws, segment_id, {"schedule": {"frequency": "weekly", "weekday": "Thurs", "time": "09:45"}}
    )
    view = resp.json()  # type: ignore[attr-defined]
    assert view["schedule"] == {
        "frequency": "weekly",
        "weekday": "thursday",
        "hour": 9,
        "minute": 45,
    }
    walls = [
        datetime.fromisoformat(t).astimezone(ZoneInfo("Asia/Kathmandu")) for t in view["next_runs"]
    ]
    assert len(walls) == 5 and {(w.weekday(), w.hour, w.minute) for w in walls} == {(3, 9, 45)}


# ------------------------------------------------------------------ DST days, frozen clock
@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {"frequency": "hourly", "minute": 30},
            [
                "2026-11-01 00:30 -0400",
                "2026-11-01 01:30 -0400",
                "2026-11-01 01:30 -0500",
                "2026-11-01 02:30 -0500",
            ],
        ),
        ({"frequency": "daily", "time": "01:30"}, ["2026-11-01 01:30 -0400"]),
    ],
)
async def test_the_scheduler_on_new_york_fall_back_night(
    db: Database, tmp_path: Path, doc: dict[str, object], expected: list[str]
) -> None:
    """Ticking every 5 minutes through the night: hourly runs in both 01:30s, a daily 01:30
    once, each on time (none a catch-up)."""
    zone = "America/New_York"
    w, ws = await _wired(db, tmp_path)
    await _zone(db, ws, zone)
    t0 = datetime(2026, 11, 1, 3, 50, tzinfo=UTC)  # 23:50 EDT on 10-31
    await set_schedule(db, ws, w.segment_id, doc, now=t0)
    clock = Clock(t0)
    ticker = Ticker(w, clock, stale_days="0")
    due: list[str] = []
    while clock.now < datetime(2026, 11, 1, 8, 0, tzinfo=UTC):  # 03:00 EST
        clock.now += timedelta(minutes=5)
        fired, _ = await ticker.tick()
        for run_id in fired:
            scheduled = await _scheduled(db, run_id)
            assert scheduled.catch_up is False and scheduled.coalesced == 1
            due.append(local(scheduled.due_at, zone))
    assert due == expected


async def test_lord_howe_half_hour_gap_and_repeat_with_run_now_in_between(
    db: Database, tmp_path: Path
) -> None:
    """Daily 02:15 Lord Howe: on 10-04 the clock jumps 02:00 → 02:30, the run is at 02:30
    +11; a "run now" at 01:00 that night moves nothing. Daily 01:45 on 04-05 (01:30-02:00
    repeated) runs once, at the first 01:45."""
    zone = "Australia/Lord_Howe"
    w, ws = await _wired(db, tmp_path)
    await _zone(db, ws, zone)
    t0 = datetime(2026, 10, 3, 3, 0, tzinfo=UTC)  # 13:30 on 10-03
    view = await set_schedule(db, ws, w.segment_id, {"frequency": "daily", "time": "02:15"}, now=t0)
    assert [local(t, zone) for t in view["next_runs"][:2]] == [
        "2026-10-04 02:30 +1100",
        "2026-10-05 02:15 +1100",
    ]
    clock = Clock(t0)
    ticker = Ticker(w, clock, stale_days="0")
    clock.now = datetime(2026, 10, 3, 14, 30, tzinfo=UTC)  # 01:00 +10:30 on 10-04
    manual = await w.engine.request(w.segment_id, RunTrigger.API)
    await w.engine.execute(manual.id)
    after_run_now = await schedule_view(db, ws, w.segment_id, now=clock.now)
    assert after_run_now["next_runs"] == view["next_runs"]
    assert after_run_now["last_run"]["trigger"] == RunTrigger.API
    fired_at: list[str] = []
    while clock.now < datetime(2026, 10, 4, 17, 0, tzinfo=UTC):
        clock.now += timedelta(minutes=5)
        fired, _ = await ticker.tick()
        fired_at += [local((await _scheduled(db, r)).due_at, zone) for r in fired]
    assert fired_at == ["2026-10-04 02:30 +1100", "2026-10-05 02:15 +1100"]

    t1 = datetime(2026, 4, 4, 3, 0, tzinfo=UTC)
    await set_schedule(db, ws, w.segment_id, {"frequency": "daily", "time": "01:45"}, now=t1)
    clock.now, fired_at = t1, []
    while clock.now < datetime(2026, 4, 4, 16, 0, tzinfo=UTC):  # 02:30 +10:30 on 04-05
        clock.now += timedelta(minutes=5)
        fired, _ = await ticker.tick()
        fired_at += [local((await _scheduled(db, r)).due_at, zone) for r in fired]
    assert fired_at == ["2026-04-05 01:45 +1100"]


# ------------------------------------------------------------------ downtime
async def test_downtime_spanning_spring_forward_and_a_zone_change_is_one_catch_up_run(
    db: Database, tmp_path: Path
) -> None:
    """Daily 02:30 planned in Paris on 03-27; the scheduler stops; Paris springs forward on
    03-29; the workspace moves to New York on 03-29 12:00 UTC; the scheduler comes back on
    03-31 12:00 UTC. One run, a catch-up standing for the 28th to the 31st; then 04-01 02:30
    New York, on time, and nothing in between."""
    w, ws = await _wired(db, tmp_path)
    await _zone(db, ws, "Europe/Paris")
    t0 = datetime(2026, 3, 27, 10, 0, tzinfo=UTC)
    await set_schedule(db, ws, w.segment_id, {"frequency": "daily", "time": "02:30"}, now=t0)
    async with db.session() as s:
        await workspaces.set_time_zone(
            s, ws, "America/New_York", now=datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
        )
    clock = Clock(datetime(2026, 3, 31, 12, 0, tzinfo=UTC))
    ticker = Ticker(w, clock, stale_days="0")
    fired, _ = await ticker.tick()
    assert len(fired) == 1
    scheduled = await _scheduled(db, fired[0])
    assert scheduled.catch_up is True and scheduled.coalesced == 4
    assert scheduled.due_at <= datetime(2026, 3, 28, 6, 30, tzinfo=UTC)
    state = await _state(db, w.segment_id)
    assert local(state.next_due_at, "America/New_York") == "2026-04-01 02:30 -0400"  # type: ignore[arg-type]
    view = await schedule_view(db, ws, w.segment_id, now=clock.now)
    assert view["last_run"]["catch_up"] is True and view["last_run"]["coalesced"] == 4
    assert [local(t, "America/New_York")[11:] for t in view["next_runs"]] == ["02:30 -0400"] * 5
    for _ in range(3):
        clock.now += timedelta(hours=6)
        assert (await ticker.tick())[0] == []
    clock.now = datetime(2026, 4, 1, 6, 30, 1, tzinfo=UTC)
    fired, _ = await ticker.tick()
    assert len(fired) == 1 and (await _scheduled(db, fired[0])).catch_up is False


# ------------------------------------------------------------------ stale pause
async def test_a_half_day_stale_pause_survives_reads_and_edits_until_resumed(
    db: Database, tmp_path: Path
) -> None:
    w, ws = await _wired(db, tmp_path)
    await _zone(db, ws, "Asia/Kathmandu")
    t0 = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    await set_schedule(db, ws, w.segment_id, {"frequency": "hourly", "minute": 15}, now=t0)
    clock = Clock(t0)
    ticker = Ticker(w, clock, stale_days="0.5", n=1)
    clock.now = t0 + timedelta(hours=11, minutes=59)
    _, paused = await ticker.tick()
    assert paused == []
    clock.now = t0 + timedelta(hours=12, minutes=1)
    fired, paused = await ticker.tick()
    assert paused == [w.segment_id] and fired == []
    view = await schedule_view(db, ws, w.segment_id, now=clock.now)
    assert view["status"] == "paused" and view["next_runs"] == []
    assert "0.5 days" in view["paused"]["message"]
    # A member read, an SQL edit and a different schedule: still paused, nothing runs.
    await record_member_read(db, w.segment_id, now=clock.now)
    await w.set_sql("SELECT external_user_id FROM users WHERE external_user_id <= 3")
    await set_schedule(db, ws, w.segment_id, {"frequency": "daily", "time": "06:00"}, now=clock.now)
    for _ in range(4):
        clock.now += timedelta(hours=3)
        assert await ticker.tick() == ([], [])
    view = await schedule_view(db, ws, w.segment_id, now=clock.now)
    assert view["status"] == "paused" and view["schedule"]["hour"] == 6
    # Resume: the new schedule's next 06:00 Kathmandu, once, not a catch-up.
    view = await resume_schedule(db, ws, w.segment_id, now=clock.now)
    assert view["status"] == "active"
    first = datetime.fromisoformat(view["next_runs"][0])
    assert local(first, "Asia/Kathmandu")[11:] == "06:00 +0545"
    assert await ticker.tick() == ([], [])
    clock.now = first + timedelta(seconds=2)
    fired, paused = await ticker.tick()
    assert len(fired) == 1 and paused == []
    assert (await _scheduled(db, fired[0])).catch_up is False


# ------------------------------------------------------------------ syncs on a DST night
@pytest.mark.parametrize(
    ("frequency", "expected"),
    [
        (
            "1h",
            [
                "2026-11-01 00:00 -0400",
                "2026-11-01 01:00 -0400",
                "2026-11-01 01:00 -0500",
                "2026-11-01 02:00 -0500",
                "2026-11-01 03:00 -0500",
                "2026-11-01 04:00 -0500",
                "2026-11-01 05:00 -0500",
                "2026-11-01 06:00 -0500",
            ],
        ),
        ("6h", ["2026-11-01 00:00 -0400", "2026-11-01 06:00 -0500"]),
    ],
)
async def test_sync_schedules_through_new_york_fall_back(
    db: Database, tmp_path: Path, frequency: str, expected: list[str]
) -> None:
    """Hourly syncs run in both passes of the repeated hour; every 6 hours keeps its local
    00:00 and 06:00 (7 real hours apart that night)."""
    from tests.integration.test_sync_engine import make_sync, new_engine, warehouse
    from zerocopy.scheduling.config import SchedulingConfig
    from zerocopy.scheduling.sync_scheduler import SyncScheduler
    from zerocopy.state.sync_models import Sync

    zone = "America/New_York"
    sync_id, ws, _src = await make_sync(db, warehouse(tmp_path / "wh.duckdb", rows=5))
    async with db.transaction() as s:
        await s.execute(sa.update(Sync).where(Sync.id == sync_id).values(frequency=frequency))
    await _zone(db, ws, zone)
    clock = Clock(datetime(2026, 11, 1, 3, 50, tzinfo=UTC))  # 23:50 EDT on 10-31
    submitted: list[str] = []

    async def submit(run_id: str) -> None:
        submitted.append(run_id)

    engine = new_engine(db)
    sched = SyncScheduler(db, engine, submit, config=SchedulingConfig(), clock=clock)
    await sched.tick()  # plans
    due: list[str] = []
    while clock.now < datetime(2026, 11, 1, 11, 30, tzinfo=UTC):  # 06:30 EST
        clock.now += timedelta(minutes=5)
        for run_id in (await sched.tick()).fired:
            await engine.execute(run_id)
            scheduled = await _scheduled(db, run_id)
            assert scheduled.catch_up is False and scheduled.coalesced == 1
            due.append(local(scheduled.due_at, zone))
    assert due == expected


async def test_a_sync_down_across_fall_back_catches_up_once_for_every_real_quarter_hour(
    db: Database, tmp_path: Path
) -> None:
    """15m sync planned for 00:15 EDT; the scheduler is down until 02:00 EST (2h45m of real
    time, the repeated hour included): one catch-up run standing for 12 quarter hours, then
    on time at 02:15 EST."""
    from tests.integration.test_sync_engine import make_sync, new_engine, warehouse
    from zerocopy.scheduling.config import SchedulingConfig
    from zerocopy.scheduling.sync_scheduler import SyncScheduler, sync_schedule_view
    from zerocopy.state.sync_models import Sync

    zone = "America/New_York"
    sync_id, ws, _src = await make_sync(db, warehouse(tmp_path / "wh.duckdb", rows=5))
    async with db.transaction() as s:
        await s.execute(sa.update(Sync).where(Sync.id == sync_id).values(frequency="15m"))
    await _zone(db, ws, zone)
    clock = Clock(datetime(2026, 11, 1, 4, 5, tzinfo=UTC))  # 00:05 EDT
    submitted: list[str] = []

    async def submit(run_id: str) -> None:
        submitted.append(run_id)

    engine = new_engine(db)
    sched = SyncScheduler(db, engine, submit, config=SchedulingConfig(), clock=clock)
    await sched.tick()
    view = await sync_schedule_view(db, ws, sync_id, now=clock.now)
    assert local(view["next_runs"][0], zone) == "2026-11-01 00:15 -0400"
    clock.now = datetime(2026, 11, 1, 7, 0, 30, tzinfo=UTC)  # 02:00:30 EST
    fired = (await sched.tick()).fired
    assert len(fired) == 1
    await engine.execute(fired[0])
    scheduled = await _scheduled(db, fired[0])
    assert (scheduled.catch_up, scheduled.coalesced) == (True, 12)
    assert local(scheduled.due_at, zone) == "2026-11-01 00:15 -0400"
    view = await sync_schedule_view(db, ws, sync_id, now=clock.now)
    assert view["last_run"]["catch_up"] is True and view["last_run"]["coalesced"] == 12
    assert view["last_run"]["due_at"] == view["last_run"]["scheduled_for"]
    assert local(view["last_run"]["due_at"], zone) == "2026-11-01 00:15 -0400"
    assert [local(t, zone)[11:] for t in view["next_runs"]] == [
        "02:15 -0500",
        "02:30 -0500",
        "02:45 -0500",
        "03:00 -0500",
        "03:15 -0500",
    ]
