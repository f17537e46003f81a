"""Red-team round 2 of schedules beyond the arithmetic: the API, the scheduler, real e-mail.

* Sync frequencies are refused through the API with the field and the reason (a negative
  period used to be read as its positive: ``-1h`` was stored as hourly).
* The next 5 runs the API shows for every sync frequency in a zone with a midnight DST gap
  strictly increase, never repeat, and sit on the local grid of the frequency.
* The stale pause (``ZEROCOPY_STALE_AFTER_DAYS``) mails the contacts once through a real SMTP
  server however many schedulers tick, an edit before it postpones it, reading or editing
  after it does not resume, resume does (with a fresh stale clock), and a second pause mails
  again.
* A workspace time-zone change goes on from the local slot the old plan waited for (round 3):
  the old zone's planned instant fires nothing, a slot already run is not run again, one not
  run yet runs once (at once when its new-zone instant has passed), not once per scheduler.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.acceptance.conftest import Api, api, state_url, warehouse_file  # noqa: F401
from tests.acceptance.test_schedule_api import _in_zone, _put, _segment
from tests.acceptance.test_sync_api import duckdb_source, ready_sync
from tests.integration.refresh_fixtures import Wired, wire
from tests.integration.state_fixtures import db_fixture  # noqa: F401
from tests.integration.test_notify import Inbox, smtp_server  # noqa: F401
from tests.support import free_port
from zerocopy.scheduling.config import load_config
from zerocopy.scheduling.models import SEGMENT, Notice, ScheduledRun, ScheduleState
from zerocopy.scheduling.scheduler import Scheduler
from zerocopy.scheduling.schedules import (
    record_member_read,
    resume_schedule,
    schedule_view,
    set_schedule,
)
from zerocopy.state.db import Database
from zerocopy.state.models import Segment, Workspace

pytestmark = pytest.mark.anyio


# ------------------------------------------------------------------ sync frequencies, API
async def _sync(api: Api, frequency: str = "1h") -> dict[str, object]:  # noqa: F811
    source_id = await duckdb_source(api)
    sync, _ = await ready_sync(
        api,
        name="attrs",
        data_type="user_attributes",
        source_id=source_id,
        table="USERS_ATTRIBUTES_SYNC",
        frequency=frequency,
    )
    return sync


@pytest.mark.parametrize(
    ("frequency", "reason"),
    [
        ("-1h", "out_of_range"),
        ("every -2 hours", "out_of_range"),
        ("0h", "out_of_range"),
        ("10m", "too_frequent"),
        ("5h", "unknown_frequency"),
        ("25h", "unknown_frequency"),
        ("1y", "too_rare"),
    ],
)
async def test_sync_frequency_refusals_through_the_api(
    api: Api,  # noqa: F811
    frequency: str,
    reason: str,
) -> None:
    sync = await _sync(api)
    resp = await api.patch(f"/v1/syncs/{sync['id']}", json={"frequency": frequency})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["field"] == "frequency" and error["details"]["reason"] == reason
    assert repr(frequency) in error["message"]
    # Nothing was stored: the sync still runs hourly.
    assert (await api.get(f"/v1/syncs/{sync['id']}")).json()["frequency"] == "1h"


async def test_next_five_sync_runs_in_a_midnight_gap_zone_for_every_frequency(
    api: Api,  # noqa: F811
) -> None:
    zone_name = "America/Santiago"  # spring-forward at local midnight
    zone = ZoneInfo(zone_name)
    ws = await _in_zone(api, zone_name)
    sync = await _sync(ws)
    for frequency, step in [
        ("15m", timedelta(minutes=15)),
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("2h", None),
        ("3h", None),
        ("4h", None),
        ("6h", None),
        ("8h", None),
        ("12h", None),
        ("1d", None),
        ("1w", None),
        ("1mo", None),
    ]:
        resp = await ws.patch(f"/v1/syncs/{sync['id']}", json={"frequency": frequency})
        assert resp.status_code == 200, resp.text
        view = (await ws.get(f"/v1/syncs/{sync['id']}/schedule")).json()
        assert view["frequency"] == frequency and view["time_zone"] == zone_name
        times = [datetime.fromisoformat(t) for t in view["next_runs"]]
        assert len(times) == 5 and len(set(times)) == 5, frequency
        assert all(a < b for a, b in itertools.pairwise(times)), frequency
        assert times[0] > datetime.now(UTC) - timedelta(seconds=5)
        local = [t.astimezone(zone) for t in times]
        if step is not None:
            # Real-time cadence on the local grid: Santiago's shifts are whole hours.
            assert [b - a for a, b in itertools.pairwise(times)] == [step] * 4, frequency
            assert {t.minute % (step.seconds // 60 % 60 or 60) for t in local} == {0}
            continue
        # Wall-clock slots at local N:00 from midnight (01:00 where midnight is skipped).
        for t in local:
            skipped_midnight = (t.hour, t.minute) == (1, 0) and (
                t - timedelta(hours=1)
            ).utcoffset() != t.utcoffset()
            if frequency.endswith("h"):
                n = int(frequency[:-1])
                assert t.minute == 0 and (t.hour % n == 0 or skipped_midnight), (frequency, t)
            else:
                assert (t.hour, t.minute) == (0, 0) or skipped_midnight, (frequency, t)
                if frequency == "1w":
                    assert t.weekday() == 0
                if frequency == "1mo":
                    assert t.day == 1


async def test_a_segment_schedule_written_with_hh_mm_is_stored_as_hour_and_minute(
    api: Api,  # noqa: F811
) -> None:
    ws = await _in_zone(api, "Europe/Paris")
    segment_id = await _segment(ws)
    doc = {"frequency": "weekly", "weekday": "sunday", "time": "02:30"}
    resp = await _put(ws, segment_id, {"schedule": doc})
    assert resp.status_code == 200, resp.text  # type: ignore[attr-defined]
    view = (await ws.get(f"/v1/segments/{segment_id}/schedule")).json()
    assert view["schedule"] == {"frequency": "weekly", "weekday": "sunday", "hour": 2, "minute": 30}
    for t in view["next_runs"]:
        local = datetime.fromisoformat(t).astimezone(ZoneInfo("Europe/Paris"))
        # 02:30 every Sunday (03:00 on the spring-forward Sunday, whose 02:30 does not exist).
        assert local.weekday() == 6 and (local.hour, local.minute) in {(2, 30), (3, 0)}
    bad = {"frequency": "daily", "time": "25:00"}
    resp = await _put(ws, segment_id, {"schedule": bad})
    assert resp.status_code == 400  # type: ignore[attr-defined]
    assert resp.json()["error"]["details"] == {"field": "time", "reason": "out_of_range"}  # type: ignore[attr-defined]


# ------------------------------------------------------------------ stale pause, real mail
class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


T0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


async def _wired(db: Database, tmp_path: Path) -> tuple[Wired, str]:
    w = await wire(db, tmp_path, "SELECT external_user_id FROM users WHERE external_user_id <= 10")
    async with db.session() as s:
        seg = await s.get(Segment, w.segment_id)
        assert seg is not None
        return w, seg.workspace_id


class Ticker:
    """Several schedulers on one frozen clock; each tick runs what they fired on the engine."""

    def __init__(self, w: Wired, clock: Clock, *, stale_days: str = "7", n: int = 2) -> None:
        self.w = w
        self.submitted: list[str] = []

        async def submit(run_id: str) -> None:
            self.submitted.append(run_id)

        config = load_config({"ZEROCOPY_STALE_AFTER_DAYS": stale_days})
        self.schedulers = [
            Scheduler(w.db, w.engine, submit, config=config, clock=clock) for _ in range(n)
        ]

    async def tick(self) -> tuple[list[str], list[str]]:
        """(runs fired, segments paused) by all schedulers at this instant."""
        fired: list[str] = []
        paused: list[str] = []
        for sched in self.schedulers:
            report = await sched.tick()
            fired += report.fired
            paused += report.paused
        assert self.submitted == fired
        for run_id in self.submitted:
            await self.w.engine.execute(run_id)
        self.submitted.clear()
        return fired, paused


async def test_stale_pause_mails_once_edits_postpone_it_and_only_resume_lifts_it(
    db: Database,
    tmp_path: Path,
    smtp_server: tuple[Inbox, int],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp_server
    monkeypatch.setenv("ZEROCOPY_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ZEROCOPY_SMTP_PORT", str(port))
    monkeypatch.setenv("ZEROCOPY_SMTP_FROM", "zerocopy@example.com")
    w, ws = await _wired(db, tmp_path)
    contacts = ["owner@example.com", "team@example.com"]
    await set_schedule(
        db, ws, w.segment_id, {"frequency": "daily", "hour": 9}, contacts=contacts, now=T0
    )
    clock = Clock(T0)
    ticker = Ticker(w, clock, stale_days="3")
    await ticker.tick()

    # Day 2: the segment's SQL is edited (not its schedule): the stale clock restarts then.
    clock.now = T0 + timedelta(days=2)
    await w.set_sql("SELECT external_user_id FROM users WHERE external_user_id <= 5")
    _, paused = await ticker.tick()
    assert paused == []
    # Day 4: 4 days after the schedule was set, 2 after the edit: still active.
    clock.now = T0 + timedelta(days=4)
    _, paused = await ticker.tick()
    assert paused == [] and inbox.messages == []
    # Day 5 plus a minute: 3 days after the edit: paused by exactly one scheduler, one mail.
    clock.now = T0 + timedelta(days=5, minutes=1)
    fired, paused = await ticker.tick()
    assert paused == [w.segment_id] and fired == []
    for _ in range(3):  # more ticks, later days, both schedulers: no second mail, no run
        clock.now += timedelta(days=1)
        fired, paused = await ticker.tick()
        assert fired == [] and paused == []
    assert len(inbox.messages) == 1
    recipients, message = inbox.messages[0]
    assert sorted(recipients) == sorted(contacts)
    assert "paused" in message["Subject"] and message["X-Zerocopy-Event"] == "schedule_paused"
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes) and "3 days" in body.decode()
    async with db.session() as s:
        notices = (await s.scalars(sa.select(Notice).where(Notice.owner_id == w.segment_id))).all()
    assert [(n.delivered, n.error) for n in notices] == [(True, None)]
    view = await schedule_view(db, ws, w.segment_id, now=clock.now)
    assert view["status"] == "paused" and view["paused"]["reason"] == "stale"
    assert "3 days" in view["paused"]["message"] and view["next_runs"] == []
    # Both say how to resume it.
    how = f"POST /v1/segments/{w.segment_id}/schedule/resume"
    assert how in view["paused"]["message"] and how in body.decode()
    assert f"zerocopy segment resume {w.segment_id}" in view["paused"]["message"]

    # Reading members, editing the SQL, re-sending or changing the schedule: still paused.
    await record_member_read(db, w.segment_id, now=clock.now)
    await w.set_sql("SELECT external_user_id FROM users WHERE external_user_id <= 7")
    await set_schedule(db, ws, w.segment_id, {"frequency": "daily", "hour": 10}, now=clock.now)
    for _ in range(2):
        clock.now += timedelta(hours=13)
        fired, paused = await ticker.tick()
        assert fired == [] and paused == []
    assert (await schedule_view(db, ws, w.segment_id, now=clock.now))["status"] == "paused"

    # Resume: the next occurrence after now, once; the stale clock starts again from resume.
    resumed_at = clock.now
    resumed = await resume_schedule(db, ws, w.segment_id, now=resumed_at)
    assert resumed["status"] == "active" and resumed["paused"] is None
    first = datetime.fromisoformat(resumed["next_runs"][0])
    assert first > resumed_at and first.hour == 10 and first - resumed_at <= timedelta(days=1)
    fired, paused = await ticker.tick()  # right after resuming: nothing due, no pause
    assert fired == [] and paused == []
    clock.now = first + timedelta(seconds=5)
    fired, paused = await ticker.tick()
    assert len(fired) == 1 and paused == []
    async with db.session() as s:
        scheduled = await s.get(ScheduledRun, fired[0])
    assert scheduled is not None and scheduled.due_at == first and scheduled.catch_up is False
    # Three days after the resume without reads: paused again, and mailed again (once).
    clock.now = resumed_at + timedelta(days=3, minutes=1)
    _, paused = await ticker.tick()
    assert paused == [w.segment_id] and len(inbox.messages) == 2


async def test_contacts_are_stored_once_each(db: Database, tmp_path: Path) -> None:
    """The same address twice (in another case or with blanks) would be mailed twice."""
    w, ws = await _wired(db, tmp_path)
    contacts = ["Ops@Example.com", "ops@example.com", " team@example.com ", "ops@EXAMPLE.com"]
    view = await set_schedule(
        db, ws, w.segment_id, {"frequency": "daily"}, contacts=contacts, now=T0
    )
    assert view["contacts"] == ["Ops@Example.com", "team@example.com"]


async def test_a_mail_server_that_is_down_does_not_stop_the_pause_or_the_tick(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pause stands and says why; the notice records the failure (nothing listens on
    the port), and the scheduler goes on ticking."""
    monkeypatch.setenv("ZEROCOPY_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ZEROCOPY_SMTP_PORT", str(free_port()))
    w, ws = await _wired(db, tmp_path)
    await set_schedule(
        db, ws, w.segment_id, {"frequency": "hourly"}, contacts=["o@example.com"], now=T0
    )
    clock = Clock(T0 + timedelta(days=3, minutes=30))
    ticker = Ticker(w, clock, stale_days="3")
    fired, paused = await ticker.tick()
    assert paused == [w.segment_id] and fired == []
    async with db.session() as s:
        notices = (await s.scalars(sa.select(Notice).where(Notice.owner_id == w.segment_id))).all()
    assert len(notices) == 1 and notices[0].delivered is False
    assert notices[0].recipients == ["o@example.com"]
    assert notices[0].error is not None and "could not send mail" in notices[0].error
    view = await schedule_view(db, ws, w.segment_id, now=clock.now)
    assert view["status"] == "paused" and view["paused"]["reason"] == "stale"
    clock.now += timedelta(hours=2)
    assert await ticker.tick() == ([], [])  # no second attempt, no run


# ------------------------------------------------------------------ time-zone change
async def _set_zone(db: Database, ws: str, zone: str) -> None:
    async with db.transaction() as s:
        await s.execute(sa.update(Workspace).where(Workspace.id == ws).values(time_zone=zone))


async def _state(db: Database, segment_id: str) -> ScheduleState:
    async with db.session() as s:
        state = await s.get(ScheduleState, (SEGMENT, segment_id))
    assert state is not None
    return state


async def test_zone_change_goes_on_from_the_waited_for_local_slot_never_twice_never_skipped(
    db: Database, tmp_path: Path
) -> None:
    w, ws = await _wired(db, tmp_path)
    await _set_zone(db, ws, "Europe/London")
    start = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)  # 07:00 London, 08:00 Paris
    await set_schedule(db, ws, w.segment_id, {"frequency": "daily", "hour": 9}, now=start)
    london_due = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    assert (await _state(db, w.segment_id)).next_due_at == london_due
    clock = Clock(start)
    ticker = Ticker(w, clock)

    # 08:30 London = 09:30 Paris: the workspace moves to Paris before London's 09:00 ran.
    # The plan waited for the 06-01 slot: it is owed, at 09:00 Paris, already past, so it runs
    # once at once (a catch-up); the old zone's instant and a second 06-01 run never come.
    clock.now = datetime(2026, 6, 1, 7, 30, tzinfo=UTC)
    await _set_zone(db, ws, "Europe/Paris")
    view = await schedule_view(db, ws, w.segment_id, now=clock.now)
    assert datetime.fromisoformat(view["next_runs"][0]) == datetime.fromisoformat(
        "2026-06-02T07:00:00+00:00"
    )
    fired, _ = await ticker.tick()
    assert len(fired) == 1
    async with db.session() as s:
        scheduled = await s.get(ScheduledRun, fired[0])
    assert scheduled is not None and scheduled.catch_up is True
    assert scheduled.due_at == datetime(2026, 6, 1, 7, 0, tzinfo=UTC)  # 09:00 Paris
    state = await _state(db, w.segment_id)
    assert state.planned_time_zone == "Europe/Paris"
    assert state.next_due_at == datetime(2026, 6, 2, 7, 0, tzinfo=UTC)
    clock.now = london_due + timedelta(seconds=1)  # the old zone's instant: nothing fires
    fired, _ = await ticker.tick()
    assert fired == []
    clock.now = datetime(2026, 6, 2, 7, 0, 1, tzinfo=UTC)  # 09:00 Paris: once
    fired, _ = await ticker.tick()
    assert len(fired) == 1

    # Right after that run the workspace moves to Tokyo (09:00 Tokyo = 00:00 UTC): the next
    # run is tomorrow's Tokyo 09:00, and the Paris instant of tomorrow fires nothing.
    clock.now = datetime(2026, 6, 2, 7, 30, tzinfo=UTC)
    await _set_zone(db, ws, "Asia/Tokyo")
    fired, _ = await ticker.tick()
    assert fired == []
    assert (await _state(db, w.segment_id)).next_due_at == datetime(2026, 6, 3, 0, 0, tzinfo=UTC)
    clock.now = datetime(2026, 6, 3, 0, 0, 1, tzinfo=UTC)
    fired, _ = await ticker.tick()
    assert len(fired) == 1
    clock.now = datetime(2026, 6, 3, 7, 0, 1, tzinfo=UTC)  # 09:00 Paris: not a run any more
    fired, _ = await ticker.tick()
    assert fired == []

    # Down from before 09:00 Tokyo on 06-04 to two days later, and the zone changed back to
    # Paris meanwhile: the slots of 06-04 and 06-05 (at 09:00 Paris) run once (not once per
    # scheduler), one catch-up standing for both, then 09:00 Paris on 06-06.
    await _set_zone(db, ws, "Europe/Paris")
    clock.now = datetime(2026, 6, 5, 12, 0, tzinfo=UTC)
    fired, _ = await ticker.tick()
    assert len(fired) == 1
    async with db.session() as s:
        scheduled = await s.get(ScheduledRun, fired[0])
    assert scheduled is not None
    assert (scheduled.due_at, scheduled.catch_up, scheduled.coalesced) == (
        datetime(2026, 6, 4, 7, 0, tzinfo=UTC),
        True,
        2,
    )
    state = await _state(db, w.segment_id)
    assert state.planned_time_zone == "Europe/Paris"
    assert state.next_due_at == datetime(2026, 6, 6, 7, 0, tzinfo=UTC)
    fired, _ = await ticker.tick()
    assert fired == []
