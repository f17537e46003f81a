"""Red-team round 3 of schedules beyond the arithmetic: zone changes, durable notices, edits.

* A workspace time-zone change (the service behind ``PATCH /v1/workspace``) re-plans every
  segment and sync schedule in its own transaction, going on from the local slot the plan
  was waiting for: a slot already run in the old zone never runs again in the new one (a
  daily 09:00 that ran 09:00 Paris does not run at 09:00 London the same day), a slot not run
  yet is never skipped (moved to where it has passed, it runs at once, once).
* The stale-pause e-mail is durable: recorded with the pause, retried with a backoff until a
  mail server takes it (once, whatever the number of schedulers), given up after
  ``MAX_ATTEMPTS``, and shown by the schedule view.
* Any user edit of a segment restarts the stale clock: its description too (API and direct).
* A due occurrence of a segment whose source is not ``active`` (draft after a scope change,
  or its last test failed) runs nothing, as "run now" would be refused; it counts as a miss
  and the view says why; once tested again the schedule goes on without a burst.
* Deleting a segment deletes its schedule plan, scheduled-run records and notices; a queued
  run refuses the delete with its id. "Run now" while a scheduled run is queued answers
  ``refresh_in_progress`` with that run's id.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.acceptance.conftest import Api, api, state_url, warehouse_file  # noqa: F401
from tests.acceptance.test_schedule_api import _put, _segment
from tests.acceptance.test_schedule_redteam2_api import Clock, Ticker, _state, _wired
from tests.integration.refresh_fixtures import Wired
from tests.integration.state_fixtures import db_fixture  # noqa: F401
from tests.integration.test_notify import Inbox, smtp_server  # noqa: F401
from tests.support import free_port
from zerocopy.scheduling.config import SchedulingConfig
from zerocopy.scheduling.models import SEGMENT, SYNC, Notice, ScheduledRun, ScheduleState
from zerocopy.scheduling.notices import MAX_ATTEMPTS
from zerocopy.scheduling.schedules import schedule_view, set_schedule
from zerocopy.scheduling.sync_scheduler import SyncScheduler, sync_schedule_view
from zerocopy.services import segments, workspaces
from zerocopy.state.db import Database
from zerocopy.state.models import RefreshRun, Segment, Source, SourceStatus, Workspace
from zerocopy.state.sync_models import Sync

pytestmark = pytest.mark.anyio


async def _move(db: Database, ws: str, zone: str, now: datetime) -> None:
    """The workspace changes zone at ``now``, through the service the API calls."""
    async with db.session() as s:
        await workspaces.set_time_zone(s, ws, zone, now=now)


async def _in(db: Database, ws: str, zone: str) -> None:
    async with db.transaction() as s:
        await s.execute(sa.update(Workspace).where(Workspace.id == ws).values(time_zone=zone))


# ------------------------------------------------------------------ zone change, segments
async def test_a_slot_run_in_the_old_zone_is_not_run_again_after_moving_west(
    db: Database, tmp_path: Path
) -> None:
    w, ws = await _wired(db, tmp_path)
    await _in(db, ws, "Europe/Paris")
    start = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
    await set_schedule(db, ws, w.segment_id, {"frequency": "daily", "hour": 9}, now=start)
    clock = Clock(datetime(2026, 6, 1, 7, 0, 1, tzinfo=UTC))  # 09:00 Paris
    ticker = Ticker(w, clock)
    fired, _ = await ticker.tick()
    assert len(fired) == 1
    # 09:30 Paris: the workspace moves to London, where 09:00 is still ahead today.
    clock.now = datetime(2026, 6, 1, 7, 30, tzinfo=UTC)
    await _move(db, ws, "Europe/London", clock.now)
    state = await _state(db, w.segment_id)  # re-planned by the change itself
    assert state.planned_time_zone == "Europe/London"
    assert state.next_due_at == datetime(2026, 6, 2, 8, 0, tzinfo=UTC)
    view = await schedule_view(db, ws, w.segment_id, now=clock.now)
    assert datetime.fromisoformat(view["next_runs"][0]) == datetime.fromisoformat(
        "2026-06-02T08:00:00+00:00"
    )
    clock.now = datetime(2026, 6, 1, 8, 0, 1, tzinfo=UTC)  # 09:00 London on 06-01: nothing
    fired, _ = await ticker.tick()
    assert fired == []
    clock.now = datetime(2026, 6, 2, 8, 0, 1, tzinfo=UTC)
    fired, _ = await ticker.tick()
    assert len(fired) == 1


async def test_a_slot_not_run_yet_runs_once_at_once_after_moving_east(
    db: Database, tmp_path: Path
) -> None:
    w, ws = await _wired(db, tmp_path)
    await _in(db, ws, "Europe/London")
    start = datetime(2026, 5, 31, 12, 0, tzinfo=UTC)
    await set_schedule(db, ws, w.segment_id, {"frequency": "daily", "hour": 9}, now=start)
    clock = Clock(datetime(2026, 6, 1, 7, 30, tzinfo=UTC))  # 08:30 London, 09:30 Paris
    ticker = Ticker(w, clock)
    assert (await ticker.tick())[0] == []
    await _move(db, ws, "Europe/Paris", clock.now)
    fired, _ = await ticker.tick()
    assert len(fired) == 1  # the 06-01 slot, not skipped to 06-02
    async with db.session() as s:
        scheduled = await s.get(ScheduledRun, fired[0])
    assert scheduled is not None and scheduled.catch_up is True and scheduled.coalesced == 1
    assert scheduled.due_at == datetime(2026, 6, 1, 7, 0, tzinfo=UTC)  # 09:00 Paris
    for instant in (
        datetime(2026, 6, 1, 8, 0, 1, tzinfo=UTC),
        datetime(2026, 6, 1, 23, 0, tzinfo=UTC),
    ):
        clock.now = instant  # London's 09:00, later that day: nothing
        assert (await ticker.tick())[0] == []
    assert (await _state(db, w.segment_id)).next_due_at == datetime(2026, 6, 2, 7, 0, tzinfo=UTC)


async def test_a_zone_change_through_the_api_replans_at_once(api: Api) -> None:  # noqa: F811
    segment_id = await _segment(api)
    resp = await _put(api, segment_id, {"schedule": {"frequency": "weekly", "weekday": "monday"}})
    assert resp.status_code == 200, resp.text  # type: ignore[attr-defined]
    resp = await api.patch("/v1/workspace", json={"time_zone": "Pacific/Kiritimati"})
    assert resp.status_code == 200, resp.text
    db = api.app.state.runtime.db
    async with db.session() as s:
        state = await s.get(ScheduleState, (SEGMENT, segment_id))
    assert state is not None and state.planned_time_zone == "Pacific/Kiritimati"
    view = (await api.get(f"/v1/segments/{segment_id}/schedule")).json()
    assert view["time_zone"] == "Pacific/Kiritimati"
    first = datetime.fromisoformat(view["next_runs"][0])
    assert state.next_due_at == first
    local = first.astimezone(ZoneInfo("Pacific/Kiritimati"))
    assert (local.weekday(), local.hour, local.minute) == (0, 0, 0)
    # The same zone again changes nothing.
    assert (
        await api.patch("/v1/workspace", json={"time_zone": "Pacific/Kiritimati"})
    ).status_code == 200
    async with db.session() as s:
        again = await s.get(ScheduleState, (SEGMENT, segment_id))
    assert again is not None and again.next_due_at == state.next_due_at


# ------------------------------------------------------------------ zone change, syncs
async def test_a_sync_day_run_in_paris_is_not_run_again_in_new_york(
    db: Database, tmp_path: Path
) -> None:
    from tests.integration.test_sync_engine import make_sync, new_engine, warehouse

    sync_id, ws, _src = await make_sync(db, warehouse(tmp_path / "wh.duckdb", rows=5))
    async with db.transaction() as s:
        await s.execute(sa.update(Sync).where(Sync.id == sync_id).values(frequency="1d"))
    await _in(db, ws, "Europe/Paris")
    now = [datetime(2026, 5, 31, 12, 0, tzinfo=UTC)]
    submitted: list[str] = []

    async def submit(run_id: str) -> None:
        submitted.append(run_id)

    engine = new_engine(db)
    scheds = [
        SyncScheduler(db, engine, submit, config=SchedulingConfig(), clock=lambda: now[0])
        for _ in range(2)
    ]

    async def tick() -> list[str]:
        fired = [r for sched in scheds for r in (await sched.tick()).fired]
        for run_id in fired:
            await engine.execute(run_id)
        return fired

    await tick()  # plans 00:00 Paris on 06-01 = 22:00 UTC on 05-31
    now[0] = datetime(2026, 5, 31, 22, 0, 1, tzinfo=UTC)
    assert len(await tick()) == 1
    now[0] = datetime(2026, 5, 31, 22, 30, tzinfo=UTC)  # 18:30 New York on 05-31
    await _move(db, ws, "America/New_York", now[0])
    view = await sync_schedule_view(db, ws, sync_id, now=now[0])
    assert datetime.fromisoformat(view["next_runs"][0]) == datetime.fromisoformat(
        "2026-06-02T04:00:00+00:00"
    )
    now[0] = datetime(2026, 6, 1, 4, 0, 1, tzinfo=UTC)  # 00:00 New York on 06-01: ran already
    assert await tick() == []
    now[0] = datetime(2026, 6, 2, 4, 0, 1, tzinfo=UTC)
    assert len(await tick()) == 1
    async with db.session() as s:
        state = await s.get(ScheduleState, (SYNC, sync_id))
    assert state is not None and state.planned_time_zone == "America/New_York"


# ------------------------------------------------------------------ durable pause notices
async def _stale_daily(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, n: int = 2
) -> tuple[Wired, str, Clock, Ticker]:
    """A daily segment with a contact, stale after 3 days, 1 minute past that; the mail
    server refuses (nothing listens on its port)."""
    monkeypatch.setenv("ZEROCOPY_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ZEROCOPY_SMTP_PORT", str(free_port()))
    w, ws = await _wired(db, tmp_path)
    t0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    await set_schedule(
        db, ws, w.segment_id, {"frequency": "daily"}, contacts=["o@example.com"], now=t0
    )
    clock = Clock(t0 + timedelta(days=3, minutes=1))
    ticker = Ticker(w, clock, stale_days="3", n=n)
    return w, ws, clock, ticker


async def test_a_failed_pause_mail_is_retried_with_backoff_until_delivered_once(
    db: Database,
    tmp_path: Path,
    smtp_server: tuple[Inbox, int],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp_server
    monkeypatch.setenv("ZEROCOPY_SMTP_FROM", "zerocopy@example.com")
    w, ws, clock, ticker = await _stale_daily(db, tmp_path, monkeypatch)
    _, paused = await ticker.tick()
    assert paused == [w.segment_id]
    view = await schedule_view(db, ws, w.segment_id, now=clock.now)
    notice = view["paused"]["notice"]
    assert notice["delivered"] is False and notice["attempts"] == 1
    assert "could not send mail" in notice["error"]
    assert datetime.fromisoformat(notice["next_attempt_at"]) == clock.now + timedelta(minutes=1)
    # The server comes back; before the backoff is over nothing is tried.
    monkeypatch.setenv("ZEROCOPY_SMTP_PORT", str(port))
    clock.now += timedelta(seconds=30)
    await ticker.tick()
    assert inbox.messages == []
    clock.now += timedelta(seconds=31)
    await ticker.tick()  # two schedulers: one sends
    assert len(inbox.messages) == 1
    assert inbox.messages[0][0] == ["o@example.com"]
    body = inbox.messages[0][1].get_payload(decode=True)
    assert (
        isinstance(body, bytes) and f"/v1/segments/{w.segment_id}/schedule/resume" in body.decode()
    )
    for _ in range(3):
        clock.now += timedelta(hours=2)
        await ticker.tick()
    assert len(inbox.messages) == 1
    view = await schedule_view(db, ws, w.segment_id, now=clock.now)
    notice = view["paused"]["notice"]
    assert (notice["delivered"], notice["attempts"], notice["error"]) == (True, 2, None)
    assert notice["next_attempt_at"] is None and notice["delivered_at"] is not None


async def test_a_pause_mail_that_never_gets_through_is_given_up_and_says_why(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w, _ws, clock, ticker = await _stale_daily(db, tmp_path, monkeypatch, n=1)
    await ticker.tick()
    for _ in range(MAX_ATTEMPTS + 3):
        clock.now += timedelta(hours=1, seconds=1)
        await ticker.tick()
    async with db.session() as s:
        notices = (await s.scalars(sa.select(Notice).where(Notice.owner_id == w.segment_id))).all()
    assert len(notices) == 1
    assert (notices[0].attempts, notices[0].delivered, notices[0].next_attempt_at) == (
        MAX_ATTEMPTS,
        False,
        None,
    )
    assert notices[0].error is not None and "could not send mail" in notices[0].error


# ------------------------------------------------------------------ edits restart the stale clock
async def test_editing_the_description_restarts_the_stale_clock(
    db: Database, tmp_path: Path
) -> None:
    w, ws = await _wired(db, tmp_path)
    t0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    await set_schedule(db, ws, w.segment_id, {"frequency": "daily"}, now=t0)
    clock = Clock(t0)
    ticker = Ticker(w, clock, stale_days="3")
    await ticker.tick()
    # Day 2: the description is edited through the service (what PATCH calls).
    async with db.session() as s:
        await segments.update_segment(
            s,
            None,
            ws,
            w.segment_id,
            description="churn risk",
            now=t0 + timedelta(days=2),  # type: ignore[arg-type]
        )
    clock.now = t0 + timedelta(days=3, minutes=1)
    assert (await ticker.tick())[1] == []
    # Day 4: edited again, outside the API (the stored digest notices it).
    clock.now = t0 + timedelta(days=4)
    async with db.transaction() as s:
        await s.execute(
            sa.update(Segment).where(Segment.id == w.segment_id).values(description="other")
        )
    assert (await ticker.tick())[1] == []
    clock.now = t0 + timedelta(days=5, minutes=1)  # 3 days after the API edit: not yet
    assert (await ticker.tick())[1] == []
    clock.now = t0 + timedelta(days=7, minutes=1)  # 3 days after the direct edit
    assert (await ticker.tick())[1] == [w.segment_id]
    # Editing while paused does not resume.
    async with db.session() as s:
        await segments.update_segment(s, None, ws, w.segment_id, description="x", now=clock.now)  # type: ignore[arg-type]
    clock.now += timedelta(days=1)
    fired, paused = await ticker.tick()
    assert fired == [] and paused == []
    assert (await schedule_view(db, ws, w.segment_id, now=clock.now))["status"] == "paused"


async def test_patching_a_segment_through_the_api_counts_as_a_change(api: Api) -> None:  # noqa: F811
    segment_id = await _segment(api)
    await _put(api, segment_id, {"schedule": {"frequency": "daily"}})
    db = api.app.state.runtime.db
    async with db.session() as s:
        before = await s.get(ScheduleState, (SEGMENT, segment_id))
    assert before is not None and before.last_changed_at is not None
    resp = await api.patch(f"/v1/segments/{segment_id}", json={"description": "new words"})
    assert resp.status_code == 200, resp.text
    async with db.session() as s:
        after = await s.get(ScheduleState, (SEGMENT, segment_id))
    assert after is not None and after.last_changed_at is not None
    assert after.last_changed_at > before.last_changed_at


# ------------------------------------------------------------------ inactive source
async def test_due_occurrences_on_an_untested_source_run_nothing_and_say_why(
    db: Database, tmp_path: Path
) -> None:
    w, ws = await _wired(db, tmp_path)
    t0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    await set_schedule(db, ws, w.segment_id, {"frequency": "hourly"}, now=t0)
    async with db.session() as s:
        segment = await s.get(Segment, w.segment_id)
        assert segment is not None
        source_id = segment.source_id

    async def source_status(status: str) -> None:
        async with db.transaction() as s:
            await s.execute(sa.update(Source).where(Source.id == source_id).values(status=status))

    await source_status(SourceStatus.DRAFT)  # e.g. its scope changed: not tested since
    clock = Clock(datetime(2026, 6, 1, 7, 0, 1, tzinfo=UTC))
    ticker = Ticker(w, clock)
    fired, _ = await ticker.tick()
    assert fired == []
    async with db.session() as s:
        runs = (
            await s.scalars(sa.select(RefreshRun).where(RefreshRun.segment_id == w.segment_id))
        ).all()
    assert runs == []
    view = await schedule_view(db, ws, w.segment_id, now=clock.now)
    assert view["misses"] == 1 and view["status"] == "active"
    assert view["blocked"]["reason"] == "source_not_active"
    assert view["blocked"]["source_status"] == "draft"
    assert view["next_runs"][0] == "2026-06-01T08:00:00+00:00"
    await source_status(SourceStatus.ERROR)
    clock.now = datetime(2026, 6, 1, 11, 30, tzinfo=UTC)  # 4 more occurrences, one miss entry
    assert (await ticker.tick())[0] == []
    # Tested again: the next occurrence runs, once, no burst for the ones skipped.
    await source_status(SourceStatus.ACTIVE)
    assert (await ticker.tick())[0] == []
    clock.now = datetime(2026, 6, 1, 12, 0, 1, tzinfo=UTC)
    fired, _ = await ticker.tick()
    assert len(fired) == 1
    view = await schedule_view(db, ws, w.segment_id, now=clock.now)
    assert view["blocked"] is None and view["misses"] == 5


# ------------------------------------------------------------------ delete, run now
async def test_deleting_a_segment_removes_its_schedule_and_a_queued_run_refuses_it(
    db: Database, tmp_path: Path
) -> None:
    w, ws = await _wired(db, tmp_path)
    t0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    await set_schedule(
        db, ws, w.segment_id, {"frequency": "hourly"}, contacts=["o@example.com"], now=t0
    )
    clock = Clock(datetime(2026, 6, 1, 7, 0, 1, tzinfo=UTC))
    submitted: list[str] = []
    from zerocopy.errors import ZerocopyError
    from zerocopy.scheduling.scheduler import Scheduler

    async def submit(run_id: str) -> None:
        submitted.append(run_id)

    report = await Scheduler(db, w.engine, submit, clock=clock).tick()
    assert len(report.fired) == 1  # queued, not executed yet
    # "Run now" meanwhile: refused with the scheduled run's id.
    with pytest.raises(ZerocopyError) as info:
        await w.engine.request(w.segment_id, "api")
    assert info.value.code == "refresh_in_progress"
    assert info.value.details["run_id"] == report.fired[0]
    async with db.session() as s:
        with pytest.raises(ZerocopyError) as info:
            await segments.delete_segment(s, ws, w.segment_id)
    assert info.value.code == "refresh_in_progress"
    assert info.value.details["run_id"] == report.fired[0]
    await w.engine.execute(report.fired[0])
    async with db.session() as s:
        await segments.delete_segment(s, ws, w.segment_id)
    async with db.session() as s:
        left = [
            (await s.scalars(sa.select(model).where(model.owner_id == w.segment_id))).all()
            for model in (ScheduleState, ScheduledRun, Notice)
        ]
    assert left == [[], [], []]
    # The scheduler goes on without it.
    clock.now += timedelta(hours=1)
    assert (await Scheduler(db, w.engine, submit, clock=clock).tick()).fired == []


async def test_deleting_a_workspace_removes_its_schedule_rows(db: Database, tmp_path: Path) -> None:
    w, ws = await _wired(db, tmp_path)
    t0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    await set_schedule(db, ws, w.segment_id, {"frequency": "hourly"}, now=t0)
    clock = Clock(datetime(2026, 6, 1, 7, 0, 1, tzinfo=UTC))
    assert len((await Ticker(w, clock, n=1).tick())[0]) == 1
    async with db.session() as s:
        await workspaces.delete_workspace(s, ws)
    async with db.session() as s:
        left = [
            (await s.scalars(sa.select(model).where(model.owner_id == w.segment_id))).all()
            for model in (ScheduleState, ScheduledRun, Notice)
        ]
    assert left == [[], [], []]


async def test_deleting_a_sync_removes_its_schedule_rows(db: Database, tmp_path: Path) -> None:
    from tests.integration.test_sync_engine import make_sync, new_engine, warehouse
    from zerocopy.services import syncs

    sync_id, ws, _src = await make_sync(db, warehouse(tmp_path / "wh.duckdb", rows=5))
    async with db.transaction() as s:
        await s.execute(sa.update(Sync).where(Sync.id == sync_id).values(frequency="1h"))
    now = [datetime(2026, 6, 1, 6, 0, tzinfo=UTC)]
    engine = new_engine(db)
    fired: list[str] = []

    async def submit(run_id: str) -> None:
        fired.append(run_id)

    sched = SyncScheduler(db, engine, submit, config=SchedulingConfig(), clock=lambda: now[0])
    await sched.tick()  # plans 07:00
    now[0] = datetime(2026, 6, 1, 7, 0, 1, tzinfo=UTC)
    await sched.tick()
    assert len(fired) == 1
    await engine.execute(fired[0])

    async def left() -> list[list[object]]:
        async with db.session() as s:
            return [
                list((await s.scalars(sa.select(m).where(m.owner_id == sync_id))).all())
                for m in (ScheduleState, ScheduledRun)
            ]

    assert all(await left())  # the plan and the scheduled run's record exist
    async with db.session() as s:
        await syncs.delete_sync(s, ws, sync_id)
    assert await left() == [[], []]
    now[0] += timedelta(hours=1)
    assert (await sched.tick()).fired == []


# ------------------------------------------------------------------ edits and resume around runs
async def test_a_frequency_edit_while_a_scheduled_run_is_queued_replans_from_the_edit(
    db: Database, tmp_path: Path
) -> None:
    """The queued run goes on; the new schedule starts after the edit; an occurrence of it
    due while that run is still active is a miss (no second run at once), the next runs."""
    w, ws = await _wired(db, tmp_path)
    t0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    await set_schedule(db, ws, w.segment_id, {"frequency": "daily", "hour": 7}, now=t0)
    clock = Clock(datetime(2026, 6, 1, 7, 0, 1, tzinfo=UTC))
    submitted: list[str] = []
    from zerocopy.scheduling.scheduler import Scheduler

    async def submit(run_id: str) -> None:
        submitted.append(run_id)

    sched = Scheduler(db, w.engine, submit, clock=clock)
    first = (await sched.tick()).fired
    assert len(first) == 1  # queued, still active
    clock.now = datetime(2026, 6, 1, 7, 10, tzinfo=UTC)
    view = await set_schedule(
        db, ws, w.segment_id, {"frequency": "hourly", "minute": 30}, now=clock.now
    )
    assert view["next_runs"][0] == "2026-06-01T07:30:00+00:00"
    assert view["last_run"]["id"] == first[0] and view["last_run"]["status"] == "queued"
    clock.now = datetime(2026, 6, 1, 7, 30, 1, tzinfo=UTC)
    report = await sched.tick()
    assert report.fired == [] and report.skipped_in_progress == [w.segment_id]
    await w.engine.execute(first[0])
    clock.now = datetime(2026, 6, 1, 8, 30, 1, tzinfo=UTC)
    assert len((await sched.tick()).fired) == 1
    assert (await schedule_view(db, ws, w.segment_id, now=clock.now))["misses"] == 1


async def test_resume_after_missed_due_times_runs_nothing_until_the_next_occurrence(
    db: Database, tmp_path: Path
) -> None:
    w, ws = await _wired(db, tmp_path)
    t0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    await set_schedule(db, ws, w.segment_id, {"frequency": "hourly"}, now=t0)
    clock = Clock(t0 + timedelta(days=1, minutes=1))
    ticker = Ticker(w, clock, stale_days="1")
    assert (await ticker.tick())[1] == [w.segment_id]
    # Paused for ten hourly occurrences; resumed one second after one of them.
    clock.now = datetime(2026, 6, 2, 16, 0, 1, tzinfo=UTC)
    assert await ticker.tick() == ([], [])
    from zerocopy.scheduling.schedules import resume_schedule

    view = await resume_schedule(db, ws, w.segment_id, now=clock.now)
    assert view["status"] == "active" and view["next_runs"][0] == "2026-06-02T17:00:00+00:00"
    assert await ticker.tick() == ([], [])  # no burst, no catch-up for the paused time
    clock.now = datetime(2026, 6, 2, 17, 0, 2, tzinfo=UTC)
    fired, _ = await ticker.tick()
    assert len(fired) == 1
    async with db.session() as s:
        scheduled = await s.get(ScheduledRun, fired[0])
    assert scheduled is not None and (scheduled.catch_up, scheduled.coalesced) == (False, 1)


async def test_a_pause_mail_still_failing_when_the_schedule_is_resumed_is_not_sent_late(
    db: Database,
    tmp_path: Path,
    smtp_server: tuple[Inbox, int],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp_server
    w, ws, clock, ticker = await _stale_daily(db, tmp_path, monkeypatch)
    assert (await ticker.tick())[1] == [w.segment_id]
    from zerocopy.scheduling.schedules import resume_schedule

    await resume_schedule(db, ws, w.segment_id, now=clock.now + timedelta(seconds=10))
    monkeypatch.setenv("ZEROCOPY_SMTP_PORT", str(port))  # the server is back
    clock.now += timedelta(minutes=5)
    await ticker.tick()
    assert inbox.messages == []
    async with db.session() as s:
        notice = await s.scalar(sa.select(Notice).where(Notice.owner_id == w.segment_id))
    assert notice is not None and notice.delivered is False and notice.next_attempt_at is None
    assert notice.attempts == 1 and "resumed" in (notice.error or "")


async def test_member_reads_are_marked_at_most_once_a_minute(db: Database, tmp_path: Path) -> None:
    """Paging through members is one read for the stale clock, not a write per page."""
    from zerocopy.scheduling.schedules import record_member_read

    w, ws = await _wired(db, tmp_path)
    t0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    await set_schedule(db, ws, w.segment_id, {"frequency": "daily"}, now=t0)
    for seconds in (0, 20, 59):
        await record_member_read(db, w.segment_id, now=t0 + timedelta(seconds=seconds))
    assert (await _state(db, w.segment_id)).last_member_read_at == t0
    await record_member_read(db, w.segment_id, now=t0 + timedelta(seconds=61))
    assert (await _state(db, w.segment_id)).last_member_read_at == t0 + timedelta(seconds=61)


async def test_weekly_friday_in_apia_over_the_skipped_day_runs_once_per_week(
    db: Database, tmp_path: Path
) -> None:
    """Pacific/Apia skipped Friday 2011-12-30: the scheduler on a frozen clock runs that
    week's Friday 09:00 once, at the first instant after the skip (31st 00:00 +14)."""
    w, ws = await _wired(db, tmp_path)
    await _in(db, ws, "Pacific/Apia")
    t0 = datetime(2011, 12, 20, 0, 0, tzinfo=UTC)
    await set_schedule(
        db, ws, w.segment_id, {"frequency": "weekly", "weekday": "friday", "time": "09:00"}, now=t0
    )
    view = await schedule_view(db, ws, w.segment_id, now=t0)
    expected = [datetime.fromisoformat(t) for t in view["next_runs"][:3]]
    apia = ZoneInfo("Pacific/Apia")
    assert [t.astimezone(apia).strftime("%m-%d %H:%M") for t in expected] == [
        "12-23 09:00",
        "12-31 00:00",
        "01-06 09:00",
    ]
    clock = Clock(t0)
    ticker = Ticker(w, clock, stale_days="0", n=1)
    fired_at: list[datetime] = []
    while clock.now < datetime(2012, 1, 8, tzinfo=UTC):
        clock.now += timedelta(hours=3)
        fired, _ = await ticker.tick()
        fired_at += [clock.now] * len(fired)
    assert len(fired_at) == 3
    lags = [f - e for f, e in zip(fired_at, expected, strict=True)]
    assert all(timedelta(0) <= lag < timedelta(hours=3) for lag in lags), lags
