"""Segment schedules over HTTP on the real app: next 5 runs in the workspace zone, validation
errors that name the field, "run now" and re-sending or resuming never shift the plan, the
stale pause (with a short ``ZEROCOPY_STALE_AFTER_DAYS``) shown with its reason until resumed."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import anyio
import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from api.app import create_app
from tests.acceptance.conftest import Api, api, state_url, warehouse_file  # noqa: F401
from tests.acceptance.test_api_flow import assert_error, connected_source
from zerocopy.scheduling.models import Notice
from zerocopy.services import workspaces
from zerocopy.settings import load_settings

pytestmark = pytest.mark.anyio


async def _in_zone(api: Api, zone: str) -> Api:  # noqa: F811
    """The same app, authenticated as a new workspace in ``zone``."""
    async with api.app.state.runtime.db.session() as session:
        ws, key = await workspaces.create_workspace(session, name=zone, time_zone=zone)
    return Api(api.client, key, ws.id, api.settings, api.warehouse, api.app)


async def _segment(api: Api) -> str:  # noqa: F811
    source_id = await connected_source(api)
    resp = await api.post(
        "/v1/segments",
        {"name": "S", "source_id": source_id, "sql": "SELECT external_user_id FROM users"},
    )
    assert resp.status_code == 201, resp.text
    segment_id: str = resp.json()["id"]
    return segment_id


async def _put(api: Api, segment_id: str, body: object) -> object:  # noqa: F811
    return await api.client.put(f"/v1/segments/{segment_id}/schedule", json=body, headers=api.auth)


def _times(view: dict[str, object]) -> list[datetime]:
    return [datetime.fromisoformat(t) for t in view["next_runs"]]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("zone", "doc", "wall", "spacing"),
    [
        (
            "Europe/Paris",
            {"frequency": "daily", "hour": 2, "minute": 30},
            (2, 30),
            timedelta(days=1),
        ),
        ("Asia/Kathmandu", {"frequency": "hourly", "minute": 0}, (None, 0), timedelta(hours=1)),
        (
            "America/New_York",
            {"frequency": "weekly", "weekday": "sunday", "hour": 23, "minute": 59},
            (23, 59),
            timedelta(days=7),
        ),
    ],
)
async def test_next_five_runs_are_local_wall_times(
    api: Api,  # noqa: F811
    zone: str,
    doc: dict[str, object],
    wall: tuple[int | None, int],
    spacing: timedelta,
) -> None:
    ws = await _in_zone(api, zone)
    segment_id = await _segment(ws)
    before = datetime.now(UTC)
    resp = await _put(ws, segment_id, {"schedule": doc})
    assert resp.status_code == 200, resp.text  # type: ignore[attr-defined]
    view = (await ws.get(f"/v1/segments/{segment_id}/schedule")).json()
    assert view["time_zone"] == zone and view["status"] == "active"
    times = _times(view)
    assert len(times) == 5 and before < times[0] <= datetime.now(UTC) + spacing
    assert all(a < b for a, b in itertools.pairwise(times))
    for t in times:
        local = t.astimezone(ZoneInfo(zone))
        assert (local.minute, local.second) == (wall[1], 0)
        assert wall[0] is None or local.hour == wall[0]
    if doc["frequency"] == "weekly":
        assert {t.astimezone(ZoneInfo(zone)).weekday() for t in times} == {6}
    if zone == "Asia/Kathmandu":  # +05:45: local :00 is :15 UTC
        assert {t.astimezone(UTC).minute for t in times} == {15}
        assert [b - a for a, b in itertools.pairwise(times)] == [spacing] * 4


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"schedule": {"frequency": "every_15_minutes"}}, "frequency", "not_allowed_here"),
        ({"schedule": {"frequency": "every_5_minutes"}}, "frequency", "too_frequent"),
        ({"schedule": {"frequency": "yearly"}}, "frequency", "too_rare"),
        ({"schedule": {"frequency": "hourly", "minute": 60}}, "minute", "out_of_range"),
        ({"schedule": {"frequency": "daily", "hour": 24}}, "hour", "out_of_range"),
        ({"schedule": {"frequency": "weekly", "weekday": "funday"}}, "weekday", "invalid_value"),
        ({"schedule": {"frequency": "monthly", "day": 32}}, "day", "out_of_range"),
        ({"schedule": {"frequency": "hourly", "hour": 2}}, "hour", "not_applicable"),
        ({"schedule": "daily"}, "schedule", "invalid_type"),
    ],
)
async def test_invalid_schedules_are_refused_naming_the_field(
    api: Api,  # noqa: F811
    body: dict[str, object],
    field: str,
    reason: str,
) -> None:
    segment_id = await _segment(api)
    error = assert_error(await _put(api, segment_id, body), 400, "validation_error")
    assert error["details"] == {"field": field, "reason": reason}
    assert field in error["message"]
    view = (await api.get(f"/v1/segments/{segment_id}/schedule")).json()
    assert view["status"] == "manual" and view["next_runs"] == []


async def test_invalid_contacts_leave_the_schedule_unchanged(api: Api) -> None:  # noqa: F811
    segment_id = await _segment(api)
    good = {"schedule": {"frequency": "daily", "hour": 5, "minute": 0}, "contacts": ["a@x.io"]}
    assert (await _put(api, segment_id, good)).status_code == 200  # type: ignore[attr-defined]
    for contact in ["not an address", "a@b@x.io", "@x.io", "a@x", "a\t@x.io", 42]:
        bad = {"schedule": {"frequency": "hourly", "minute": 7}, "contacts": [contact]}
        error = assert_error(await _put(api, segment_id, bad), 400, "validation_error")
        assert error["details"]["field"] == "contacts"
    view = (await api.get(f"/v1/segments/{segment_id}/schedule")).json()
    assert view["schedule"] == {"frequency": "daily", "minute": 0, "hour": 5}
    assert view["contacts"] == ["a@x.io"]


async def test_run_now_resend_and_resume_do_not_shift_the_plan(api: Api) -> None:  # noqa: F811
    segment_id = await _segment(api)
    base = f"/v1/segments/{segment_id}/schedule"
    doc = {"frequency": "monthly", "day": 31, "hour": 23, "minute": 45}
    assert (await _put(api, segment_id, {"schedule": doc})).status_code == 200  # type: ignore[attr-defined]
    planned = (await api.get(base)).json()["next_runs"]
    run = await api.post(f"/v1/segments/{segment_id}/refresh")
    assert run.status_code == 202, run.text
    await api.wait_run(run.json()["id"])
    view = (await api.get(base)).json()
    assert view["next_runs"] == planned and view["last_run"]["trigger"] == "api"
    assert view["last_run"]["catch_up"] is False and view["last_run"]["due_at"] is None
    assert (await _put(api, segment_id, {"schedule": doc})).json()["next_runs"] == planned  # type: ignore[attr-defined]
    resumed = await api.post(f"{base}/resume")
    assert resumed.status_code == 200 and resumed.json()["next_runs"] == planned
    # Month ends: day 31 runs on each month's last day, once.
    days = [datetime.fromisoformat(t).date() for t in planned]
    assert all((d + timedelta(days=1)).day == 1 for d in days)
    assert len({(d.year, d.month) for d in days}) == 5


@pytest.fixture
async def quick_stale_api(
    tmp_path: Path,
    state_url: str,  # noqa: F811
    warehouse_file: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Api]:
    """The app with schedules going stale after 3 seconds and a fast scheduler tick."""
    monkeypatch.setenv("ZEROCOPY_STALE_AFTER_DAYS", str(3 / 86400))
    monkeypatch.setenv("ZEROCOPY_SCHEDULER_TICK_S", "0.2")
    settings = load_settings(
        {
            "ZEROCOPY_DATA_DIR": str(tmp_path / "data"),
            "ZEROCOPY_DATABASE_URL": state_url,
            "ZEROCOPY_LOG_LEVEL": "warning",
        }
    )
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        async with app.state.runtime.db.session() as session:
            ws, key = await workspaces.create_workspace(session, name="Acme")
        yield Api(client, key, ws.id, settings, warehouse_file, app)


async def _wait_status(api: Api, base: str, status: str) -> dict[str, object]:  # noqa: F811
    with anyio.fail_after(60):
        while True:
            view: dict[str, object] = (await api.get(base)).json()
            if view["status"] == status:
                return view
            await anyio.sleep(0.2)


async def test_stale_pause_is_shown_and_only_resume_lifts_it(quick_stale_api: Api) -> None:
    app_api = quick_stale_api
    segment_id = await _segment(app_api)
    base = f"/v1/segments/{segment_id}/schedule"
    body = {"schedule": {"frequency": "daily", "hour": 4, "minute": 0}, "contacts": ["o@x.io"]}
    assert (await _put(app_api, segment_id, body)).status_code == 200  # type: ignore[attr-defined]
    view = await _wait_status(app_api, base, "paused")
    paused = view["paused"]
    assert isinstance(paused, dict) and paused["reason"] == "stale"
    assert "resume" in paused["message"] and view["next_runs"] == []
    db = app_api.app.state.runtime.db
    async with db.session() as s:
        notices = (await s.scalars(sa.select(Notice).where(Notice.owner_id == segment_id))).all()
    assert [(n.event, n.recipients) for n in notices] == [("schedule_paused", ["o@x.io"])]
    # Reading members and editing the schedule do not resume it.
    assert (await app_api.get(f"/v1/segments/{segment_id}/members")).status_code == 200
    body["schedule"] = {"frequency": "daily", "hour": 5, "minute": 0}
    edited = (await _put(app_api, segment_id, body)).json()  # type: ignore[attr-defined]
    assert edited["status"] == "paused" and edited["next_runs"] == []
    assert edited["schedule"] == {"frequency": "daily", "minute": 0, "hour": 5}
    resumed = await app_api.post(f"{base}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "active" and resumed.json()["paused"] is None
    first = datetime.fromisoformat(resumed.json()["next_runs"][0])
    assert first.astimezone(UTC).hour == 5 and len(resumed.json()["next_runs"]) == 5


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"[1, 2]", None),
        (b"{}", "schedule"),
        (b'{"schedule": {"frequency": "daily"}, "contact": ["a@x.io"]}', None),
        (b"{not json", None),
    ],
)
async def test_malformed_bodies_are_validation_errors(
    api: Api,  # noqa: F811
    content: bytes,
    field: str | None,
) -> None:
    segment_id = await _segment(api)
    resp = await api.client.put(
        f"/v1/segments/{segment_id}/schedule",
        content=content,
        headers={**api.auth, "Content-Type": "application/json"},
    )
    error = assert_error(resp, 400, "validation_error")
    if field is not None:
        assert error["details"]["field"] == field


async def test_sync_frequencies_every_n_hours_and_refusals(api: Api) -> None:  # noqa: F811
    from tests.acceptance.test_sync_api import duckdb_source, ready_sync

    ws = await _in_zone(api, "Asia/Kathmandu")
    source_id = await duckdb_source(ws)
    body = {
        "name": "attrs",
        "data_type": "user_attributes",
        "source_id": source_id,
        "table": "USERS_ATTRIBUTES_SYNC",
    }
    for frequency, reason in [
        ("5m", "too_frequent"),
        ("2mo", "too_rare"),
        ("5h", "unknown_frequency"),
    ]:
        error = assert_error(
            await ws.post("/v1/syncs", json={**body, "frequency": frequency}),
            400,
            "validation_error",
        )
        assert error["details"] == {"field": "frequency", "reason": reason}
    sync, _ = await ready_sync(ws, **body, frequency="3h")
    view = (await ws.get(f"/v1/syncs/{sync['id']}/schedule")).json()
    assert view["schedule"] == {"frequency": "every_n_hours", "minute": 0, "hours": 3}
    local = [
        datetime.fromisoformat(t).astimezone(ZoneInfo("Asia/Kathmandu")) for t in view["next_runs"]
    ]
    assert len(local) == 5 and all(t.hour % 3 == 0 and t.minute == 0 for t in local)
    assert [b - a for a, b in itertools.pairwise(local)] == [timedelta(hours=3)] * 4
    error = assert_error(
        await ws.patch(f"/v1/syncs/{sync['id']}", {"frequency": "1m"}), 400, "validation_error"
    )
    assert error["details"] == {"field": "frequency", "reason": "too_frequent"}
    resp = await ws.patch(f"/v1/syncs/{sync['id']}", {"frequency": "30m"})
    assert resp.status_code == 200, resp.text
    # 30m in Kathmandu (+05:45): the local half hours, i.e. :15 and :45 UTC.
    view = (await ws.get(f"/v1/syncs/{sync['id']}/schedule")).json()
    times = [datetime.fromisoformat(t) for t in view["next_runs"]]
    assert {t.astimezone(ZoneInfo("Asia/Kathmandu")).minute for t in times} <= {0, 30}
    assert {t.astimezone(UTC).minute for t in times} <= {15, 45}
    assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(minutes=30)] * 4


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "localtime", "posix/Europe/Paris", "europe/paris"]
)
async def test_workspace_time_zone_must_be_an_iana_name(api: Api, zone: str) -> None:  # noqa: F811
    from zerocopy.errors import ZerocopyError

    async with api.app.state.runtime.db.session() as session:
        with pytest.raises(ZerocopyError) as info:
            await workspaces.create_workspace(session, name="Z", time_zone=zone)
    assert info.value.code == "validation_error"
    assert info.value.details == {"field": "time_zone", "reason": "unknown_time_zone"}
    assert zone in info.value.message


async def test_scheduled_then_manual_runs_and_a_catch_up_through_the_api(
    api: Api,  # noqa: F811
) -> None:
    """A scheduler with a frozen clock ahead of real time fires on the app's own runner: the
    live scheduler never sees these occurrences due (their plan is moved on first)."""
    from zerocopy.scheduling.config import load_config
    from zerocopy.scheduling.scheduler import Scheduler

    segment_id = await _segment(api)
    base = f"/v1/segments/{segment_id}/schedule"
    view = (await _put(api, segment_id, {"schedule": {"frequency": "hourly", "minute": 7}})).json()  # type: ignore[attr-defined]
    due = datetime.fromisoformat(view["next_runs"][0])
    runtime = api.app.state.runtime
    now = due + timedelta(seconds=1)
    sched = Scheduler(
        runtime.db, runtime.engine, runtime.runner.submit, config=load_config(), clock=lambda: now
    )
    report = await api.in_app(sched.tick)
    assert len(report.fired) == 1 and report.catch_up == []
    assert (await api.wait_run(report.fired[0]))["status"] == "succeeded"
    view = (await api.get(base)).json()
    assert view["last_run"]["id"] == report.fired[0] and view["last_run"]["trigger"] == "schedule"
    assert view["last_run"]["due_at"] == due.isoformat() and view["last_run"]["catch_up"] is False
    assert view["next_runs"][0] == (due + timedelta(hours=1)).isoformat()
    # the run record itself says which occurrence it ran for
    run = (await api.get(f"/v1/runs/{report.fired[0]}")).json()
    assert _occurrence(run) == (due, False, 1)

    # "Run now" afterwards: it is the last run shown, and the plan does not move.
    manual = await api.post(f"/v1/segments/{segment_id}/refresh")
    assert manual.status_code == 202, manual.text
    await api.wait_run(manual.json()["id"])
    view = (await api.get(base)).json()
    assert view["last_run"]["id"] == manual.json()["id"] and view["last_run"]["trigger"] == "api"
    assert manual.json()["scheduled"] is None
    assert view["next_runs"][0] == (due + timedelta(hours=1)).isoformat()

    # Down for three occurrences: one run, marked catch-up, standing for all three.
    now = due + timedelta(hours=3, minutes=10)
    report = await api.in_app(sched.tick)
    assert len(report.fired) == 1 and report.catch_up == report.fired
    await api.wait_run(report.fired[0])
    view = (await api.get(base)).json()
    assert view["last_run"]["catch_up"] is True and view["last_run"]["coalesced"] == 3
    assert view["last_run"]["due_at"] == (due + timedelta(hours=1)).isoformat()
    assert view["misses"] == 2
    assert view["next_runs"][0] == (due + timedelta(hours=4)).isoformat()
    # the catch-up is marked on the run record too, in the segment's run list as well
    caught = (due + timedelta(hours=1), True, 3)
    assert _occurrence((await api.get(f"/v1/runs/{report.fired[0]}")).json()) == caught
    listed = (await api.get(f"/v1/segments/{segment_id}/runs")).json()
    assert [_occurrence(r) for r in listed] == [caught, None, (due, False, 1)]


def _occurrence(run: dict) -> tuple[datetime, bool, int] | None:
    """A run record's schedule occurrence: (due at, catch-up, coalesced), None if not scheduled."""
    found = run["scheduled"]
    if found is None:
        return None
    due_at = datetime.fromisoformat(found["due_at"].replace("Z", "+00:00"))
    return due_at, found["catch_up"], found["coalesced"]


async def test_changing_the_workspace_time_zone_replans_its_schedules(
    api: Api,  # noqa: F811
) -> None:
    from zerocopy.scheduling.config import load_config
    from zerocopy.scheduling.scheduler import Scheduler

    ws = await _in_zone(api, "Europe/Paris")
    segment_id = await _segment(ws)
    base = f"/v1/segments/{segment_id}/schedule"
    doc = {"frequency": "daily", "hour": 9, "minute": 0}
    before = (await _put(ws, segment_id, {"schedule": doc})).json()  # type: ignore[attr-defined]
    assert {
        datetime.fromisoformat(t).astimezone(ZoneInfo("Europe/Paris")).hour
        for t in before["next_runs"]
    } == {9}
    for bad, reason in [("Mars/Olympus", "unknown_time_zone"), ("localtime", "unknown_time_zone")]:
        error = assert_error(
            await ws.patch("/v1/workspace", {"time_zone": bad}), 400, "validation_error"
        )
        assert error["details"] == {"field": "time_zone", "reason": reason}
    assert_error(
        await ws.patch("/v1/workspace", {"time_zone": "UTC", "x": 1}), 400, "validation_error"
    )
    resp = await ws.patch("/v1/workspace", {"time_zone": "Asia/Tokyo"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["time_zone"] == "Asia/Tokyo"
    assert (await ws.get("/v1/workspace")).json()["time_zone"] == "Asia/Tokyo"
    after = (await ws.get(base)).json()
    assert after["time_zone"] == "Asia/Tokyo"
    tokyo = [
        datetime.fromisoformat(t).astimezone(ZoneInfo("Asia/Tokyo")) for t in after["next_runs"]
    ]
    assert len(tokyo) == 5 and {(t.hour, t.minute) for t in tokyo} == {(9, 0)}
    assert tokyo[0] - datetime.now(UTC) <= timedelta(days=1)
    # The scheduler re-plans too (nothing fires for the old plan), and agrees with the view.
    runtime = api.app.state.runtime
    sched = Scheduler(runtime.db, runtime.engine, runtime.runner.submit, config=load_config())
    report = await api.in_app(sched.tick)
    assert report.fired == []
    assert (await ws.get(base)).json()["next_runs"] == after["next_runs"]
