"""Red-team round 3 of the schedule arithmetic (issue 9), frozen instants only, no clock.

* **Time-zone change** (:func:`replan_in_zone`): a plan goes on in the new zone from the local
  slot the old plan was waiting for. The rule: no local calendar slot runs twice (every slot
  run after the change is later, as a local (date, HH:MM), than every slot run before it) and
  none is skipped (every new-zone slot after those whose instant is after the last run gets
  a run, at once and coalesced when its instant has passed; the slot the old plan had
  already come due on when the zone changed runs too). Real-time frequencies go on at the
  new zone's first aligned instant after the last run. Checked on examples and against a
  simulation over zone pairs 1 to 25 hours apart, half-hour and 45-minute zones and DST days.
* Round-3 probes of the arithmetic: weekly on the day Pacific/Apia skipped (2011-12-30),
  monthly 29/30/31 over leap and common years, every N hours across DST (wall-clock slots,
  as documented in :mod:`zerocopy.scheduling.sync_frequency`), hourly at minute M in
  Asia/Kathmandu and Australia/Lord_Howe, schedules created inside a gap or a repeated hour.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from zerocopy.scheduling.schedule import (
    SEGMENT_FREQUENCIES,
    Schedule,
    _slots,
    next_run,
    next_runs,
    parse_schedule,
    plan_firing,
    replan_in_zone,
    resolve_local,
)
from zerocopy.scheduling.sync_frequency import sync_schedule


def at(zone: str, *args: int, fold: int = 0) -> datetime:
    """The UTC instant of an existing local wall time (``fold=1``: its second pass)."""
    wall = datetime(*args, tzinfo=ZoneInfo(zone), fold=fold)  # type: ignore[misc]
    back = wall.astimezone(UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    assert back == wall.replace(tzinfo=None), f"{wall} does not exist in {zone}"
    return wall.astimezone(UTC)


def z(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def shown(instants: list[datetime], zone: str) -> list[str]:
    return [i.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %z") for i in instants]


def seg(doc: dict[str, Any]) -> Schedule:
    return parse_schedule(doc, SEGMENT_FREQUENCIES)


DAILY_9 = {"frequency": "daily", "hour": 9, "minute": 0}


# ------------------------------------------------------------------ zone change: examples
def test_a_slot_already_run_in_the_old_zone_does_not_run_again_in_the_new_one() -> None:
    """Daily 09:00 ran at 09:00 Paris; at 09:30 Paris the workspace moves to London, where
    09:00 is still ahead today: the next run is tomorrow 09:00 London (re-planning from now
    ran the same day twice)."""
    schedule = seg(DAILY_9)
    ran = at("Europe/Paris", 2026, 6, 1, 9, 0)
    pending = at("Europe/Paris", 2026, 6, 2, 9, 0)
    change = at("Europe/Paris", 2026, 6, 1, 9, 30)
    moved = replan_in_zone(schedule, "Europe/Paris", "Europe/London", pending, ran, change)
    assert shown([moved], "Europe/London") == ["2026-06-02 09:00 +0100"]  # type: ignore[list-item]
    # What re-planning from now gave: today 09:00 London, the 06-01 slot a second time.
    assert shown([next_run(schedule, change, "Europe/London")], "Europe/London") == [  # type: ignore[list-item]
        "2026-06-01 09:00 +0100"
    ]


def test_a_slot_not_run_yet_is_not_skipped_when_its_new_instant_has_passed() -> None:
    """Daily 09:00 waiting for 09:00 London; at 08:30 London (09:30 Paris) the workspace
    moves to Paris, whose 09:00 has passed: the 06-01 slot runs at once (due, a catch-up),
    not tomorrow (re-planning from now skipped the day)."""
    schedule = seg(DAILY_9)
    ran = at("Europe/London", 2026, 5, 31, 9, 0)
    pending = at("Europe/London", 2026, 6, 1, 9, 0)
    change = at("Europe/London", 2026, 6, 1, 8, 30)
    moved = replan_in_zone(schedule, "Europe/London", "Europe/Paris", pending, ran, change)
    assert moved == at("Europe/Paris", 2026, 6, 1, 9, 0) and moved < change
    firing = plan_firing(schedule, "Europe/Paris", moved, change)  # type: ignore[arg-type]
    assert firing is not None and (firing.coalesced, firing.catch_up) == (1, True)
    assert firing.next_due_at == at("Europe/Paris", 2026, 6, 2, 9, 0)
    assert next_run(schedule, change, "Europe/Paris") == at("Europe/Paris", 2026, 6, 2, 9, 0)


def test_a_slot_before_the_plan_existed_is_not_owed() -> None:
    """Set at 08:20 London (09:20 Paris), moved to Paris at 08:30 London: Paris's 09:00 of
    that day passed before the schedule existed, so the first run is tomorrow in Paris."""
    schedule = seg(DAILY_9)
    planned = at("Europe/London", 2026, 6, 1, 8, 20)
    pending = at("Europe/London", 2026, 6, 1, 9, 0)
    change = at("Europe/London", 2026, 6, 1, 8, 30)
    moved = replan_in_zone(schedule, "Europe/London", "Europe/Paris", pending, planned, change)
    assert moved == at("Europe/Paris", 2026, 6, 2, 9, 0)


def test_the_occurrence_already_due_at_the_change_runs_once_at_its_old_instant() -> None:
    """The scheduler was down: 09:00 Paris had come due (07:00 UTC), and the zone became
    Tokyo, where the same slot (06-01 09:00 Tokyo) lies before the plan was made. It still
    runs, standing at its Paris instant, then the plan goes on at 09:00 Tokyo."""
    schedule = seg(DAILY_9)
    planned = z(2026, 6, 1, 5, 0)
    pending = at("Europe/Paris", 2026, 6, 1, 9, 0)
    change = z(2026, 6, 1, 8, 0)
    moved = replan_in_zone(schedule, "Europe/Paris", "Asia/Tokyo", pending, planned, change)
    assert moved == pending
    firing = plan_firing(schedule, "Asia/Tokyo", moved, z(2026, 6, 1, 9, 0))  # type: ignore[arg-type]
    assert firing is not None and firing.coalesced == 1
    assert shown([firing.next_due_at], "Asia/Tokyo") == ["2026-06-02 09:00 +0900"]  # type: ignore[list-item]
    # Not due yet at the change: Tokyo's slot of that day lies before the plan, not owed.
    early = replan_in_zone(schedule, "Europe/Paris", "Asia/Tokyo", pending, planned, planned)
    assert shown([early], "Asia/Tokyo") == ["2026-06-02 09:00 +0900"]  # type: ignore[list-item]


def test_a_gap_slot_keeps_its_nominal_time_across_the_change() -> None:
    """Daily 02:30 waiting for Paris's spring-forward day (02:30 does not exist: 03:00 CEST).
    The slot is (03-29, 02:30), not its resolved 03:00: in London (whose gap is 01:00-02:00)
    02:30 exists and runs that day, not the next."""
    schedule = seg({"frequency": "daily", "hour": 2, "minute": 30})
    pending = next_run(schedule, at("Europe/Paris", 2026, 3, 28, 12, 0), "Europe/Paris")
    assert shown([pending], "Europe/Paris") == ["2026-03-29 03:00 +0200"]  # type: ignore[list-item]
    ran = at("Europe/Paris", 2026, 3, 28, 2, 30)
    change = at("Europe/Paris", 2026, 3, 28, 12, 0)
    moved = replan_in_zone(schedule, "Europe/Paris", "Europe/London", pending, ran, change)  # type: ignore[arg-type]
    assert shown([moved], "Europe/London") == ["2026-03-29 02:30 +0100"]  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("doc", "old", "new", "ran", "want"),
    [
        # Weekly Monday 09:00 ran in Tokyo; in New York it is still Sunday: next Monday.
        (
            {"frequency": "weekly", "weekday": "monday", "hour": 9},
            "Asia/Tokyo",
            "America/New_York",
            (2026, 6, 1, 9, 0),
            "2026-06-08 09:00 -0400",
        ),
        # Monthly day 31 ran on 05-31 in Kiritimati (+14); in Pago Pago (-11) it is 05-30:
        # the next is June's last day, not 05-31 again.
        (
            {"frequency": "monthly", "day": 31, "hour": 9},
            "Pacific/Kiritimati",
            "Pacific/Pago_Pago",
            (2026, 5, 31, 9, 0),
            "2026-06-30 09:00 -1100",
        ),
        # Daily 18:00 ran in Paris (16:00 UTC, 01:00 Tokyo on 06-02): 06-02 18:00 Tokyo next.
        (
            {"frequency": "daily", "hour": 18},
            "Europe/Paris",
            "Asia/Tokyo",
            (2026, 6, 1, 18, 0),
            "2026-06-02 18:00 +0900",
        ),
    ],
)
def test_weekly_monthly_daily_across_far_zones(
    doc: dict[str, Any], old: str, new: str, ran: tuple[int, ...], want: str
) -> None:
    schedule = seg(doc)
    last = at(old, *ran)
    pending = next_run(schedule, last, old)
    assert pending is not None
    moved = replan_in_zone(schedule, old, new, pending, last, last + timedelta(minutes=5))
    assert shown([moved], new) == [want]  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("frequency", "old", "new", "ran", "want"),
    [
        # Hourly at :00 ran 10:00 Kathmandu (04:15 UTC); in UTC the next :00 is 05:00.
        ("1h", "Asia/Kathmandu", "UTC", z(2026, 6, 1, 4, 15), z(2026, 6, 1, 5, 0)),
        # 15 minutes, Lord Howe (+10:30 in June) to Sydney (+10:00): the grid is the same.
        (
            "15m",
            "Australia/Lord_Howe",
            "Australia/Sydney",
            z(2026, 6, 1, 0, 0),
            z(2026, 6, 1, 0, 15),
        ),
        # 30 minutes, Kathmandu (+05:45) to Kolkata (+05:30): :00/:30 local is :00/:30 UTC.
        ("30m", "Asia/Kathmandu", "Asia/Kolkata", z(2026, 6, 1, 0, 15), z(2026, 6, 1, 0, 30)),
    ],
)
def test_real_time_frequencies_go_on_after_the_last_run(
    frequency: str, old: str, new: str, ran: datetime, want: datetime
) -> None:
    schedule = sync_schedule(frequency)
    pending = next_run(schedule, ran, old)
    assert pending is not None and pending > ran
    moved = replan_in_zone(schedule, old, new, pending, ran, ran + timedelta(minutes=1))
    assert moved == want and moved > ran


# ------------------------------------------------------------------ zone change: simulation
def _slot_list(schedule: Schedule, zone: str, start: datetime, end: datetime) -> list[Any]:
    """(local label, instant) of every wall-clock slot around [start, end], in label order."""
    tz = ZoneInfo(zone)
    day = start.astimezone(tz).date() - timedelta(days=3)
    out = []
    while day <= end.astimezone(tz).date() + timedelta(days=3):
        for slot in _slots(schedule, day):
            wall = datetime.combine(day, slot)
            out.append((wall, resolve_local(wall, tz)))
        day += timedelta(days=1)
    return out


PAIRS = [
    ("Europe/Paris", "Europe/London"),
    ("Europe/London", "Europe/Paris"),
    ("Europe/Paris", "Asia/Tokyo"),
    ("Asia/Tokyo", "America/New_York"),
    ("Pacific/Pago_Pago", "Pacific/Kiritimati"),
    ("Pacific/Kiritimati", "Pacific/Pago_Pago"),
    ("Asia/Kathmandu", "Australia/Lord_Howe"),
    ("America/New_York", "America/Santiago"),
]
SLOT_DOCS = [
    DAILY_9,
    {"frequency": "daily", "hour": 2, "minute": 30},
    {"frequency": "weekly", "weekday": "sunday", "hour": 23, "minute": 45},
    {"frequency": "monthly", "day": 31, "hour": 0, "minute": 30},
]
# Around Paris/London/New York fall-back days and Santiago/Lord Howe spring-forward days.
STARTS = [z(2026, 3, 28, 0), z(2026, 10, 24, 0), z(2026, 10, 31, 0), z(2026, 9, 5, 0)]
DOWNTIMES = [timedelta(0), timedelta(hours=7, minutes=13)]
"""How long the scheduler was down before the change (0: every occurrence fired on time)."""


@pytest.mark.parametrize(("old", "new"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_zone_change_simulation_never_runs_a_slot_twice_and_never_skips_one(
    old: str, new: str
) -> None:
    docs = [*SLOT_DOCS, {"every_n_hours": 6}]
    for doc, start in itertools.product(docs, STARTS):
        schedule = sync_schedule("6h") if "every_n_hours" in doc else seg(doc)
        span = timedelta(days=40 if schedule.frequency == "monthly" else 3)
        old_slots = _slot_list(schedule, old, start, start + span * 3)
        new_slots = _slot_list(schedule, new, start, start + span * 3)
        label_at_old = {instant: label for label, instant in old_slots}
        step = timedelta(minutes=97) if span.days == 3 else timedelta(hours=23, minutes=7)
        for k, down in itertools.product(range(int(span / step)), DOWNTIMES):
            change = start + timedelta(hours=1) + step * k
            # Before the change: the old plan, made at `start`, fired every occurrence on
            # time until the scheduler went down (`down` before the change).
            ran: list[datetime] = []
            due = next_run(schedule, start, old)
            assert due is not None
            while due <= change - down:
                ran.append(due)
                due = next_run(schedule, due, old)
                assert due is not None
            floor = ran[-1] if ran else start
            done = max((label_at_old[r] for r in ran), default=None)
            # After it: the scheduler fires the re-planned occurrences (on time, or at once).
            moved = replan_in_zone(schedule, old, new, due, floor, change, fired=bool(ran))
            assert moved is not None
            covered: list[datetime] = []  # labels the runs after the change stand for
            firing_at = max(moved, change)
            next_due: datetime | None = moved
            horizon = change + span
            while next_due is not None and next_due <= horizon:
                firing = plan_firing(schedule, new, next_due, max(next_due, firing_at))
                assert firing is not None
                instants = [firing.due_at]
                while len(instants) < firing.coalesced:
                    instants.append(next_run(schedule, instants[-1], new))  # type: ignore[arg-type]
                for instant in instants:
                    labels = [lb for lb, i in new_slots if i == instant]
                    covered.append(labels[0] if labels else label_at_old[instant])
                next_due = firing.next_due_at
                firing_at = next_due or horizon
            where = (doc, old, new, change, down)
            # Never twice: every slot run after the change is later than every one before.
            assert all(done is None or label > done for label in covered), where
            assert covered == sorted(set(covered)), where
            # Never skipped: each new-zone slot after the last run's label whose instant is
            # after the last run (and before the horizon) is covered.
            want = [
                label
                for label, instant in new_slots
                if (done is None or label > done) and floor < instant <= horizon
            ]
            assert set(want) <= set(covered), (where, sorted(set(want) - set(covered)))
            # The slot the old plan had come due on (the scheduler was down) runs: in the new
            # zone's time, at its old instant, or with a later slot due at once as well.
            if due <= change:
                owed = label_at_old[due]
                assert owed in covered or (moved <= change and covered[0] > owed), where


# ------------------------------------------------------------------ round-3 arithmetic probes
def test_weekly_friday_in_apia_when_2011_12_30_was_skipped() -> None:
    """Pacific/Apia jumped from 2011-12-29 23:59:59 (-10) to 2011-12-31 00:00 (+14): Friday
    the 30th never existed. Its weekly Friday 09:00 runs once at the first instant after the
    skip (Saturday 00:00), then on the next Fridays, never twice on the 31st."""
    zone = "Pacific/Apia"
    schedule = seg({"frequency": "weekly", "weekday": "friday", "hour": 9})
    runs = next_runs(schedule, at(zone, 2011, 12, 20), zone, 4)
    assert shown(runs, zone) == [
        "2011-12-23 09:00 -1000",
        "2011-12-31 00:00 +1400",
        "2012-01-06 09:00 +1400",
        "2012-01-13 09:00 +1400",
    ]
    # Asked from inside the skipped day's aftermath (after the catch-up instant): next Friday.
    assert shown([next_run(schedule, runs[1], zone)], zone) == ["2012-01-06 09:00 +1400"]  # type: ignore[list-item]
    # Daily 09:00 and a Saturday weekly: the skip does not double the 31st.
    daily = next_runs(seg(DAILY_9), at(zone, 2011, 12, 29, 12), zone, 3)
    assert shown(daily, zone) == [
        "2011-12-31 00:00 +1400",
        "2011-12-31 09:00 +1400",
        "2012-01-01 09:00 +1400",
    ]


@pytest.mark.parametrize(
    ("day", "year", "want_feb"),
    [
        (29, 2024, 29),
        (29, 2025, 28),
        (30, 2024, 29),
        (31, 2028, 29),
        (31, 2100, 28),
        (30, 2000, 29),
    ],
)
def test_monthly_29_30_31_in_february_of_leap_and_common_years(
    day: int, year: int, want_feb: int
) -> None:
    schedule = seg({"frequency": "monthly", "day": day, "hour": 12})
    runs = next_runs(schedule, z(year, 1, 15), "America/New_York", 3)
    local = [r.astimezone(ZoneInfo("America/New_York")) for r in runs]
    assert [(d.month, d.day) for d in local] == [(1, day), (2, want_feb), (3, day)]


def test_every_n_hours_keeps_wall_clock_slots_across_dst() -> None:
    """Every 6 hours is wall-clock: local 00/06/12/18 every day, 5 or 7 real hours apart
    around a one-hour shift; every 1 hour is real time (no run in the skipped hour, both
    passes of the repeated one)."""
    zone = "Europe/Paris"
    six = next_runs(sync_schedule("6h"), at(zone, 2026, 3, 29, 0, 30), zone, 4)
    assert shown(six, zone) == [
        "2026-03-29 06:00 +0200",
        "2026-03-29 12:00 +0200",
        "2026-03-29 18:00 +0200",
        "2026-03-30 00:00 +0200",
    ]
    first = next_run(sync_schedule("6h"), at(zone, 2026, 3, 28, 23, 0), zone)
    assert shown([first], zone) == ["2026-03-29 00:00 +0100"]  # type: ignore[list-item]
    assert six[0] - first == timedelta(hours=5)  # type: ignore[operator]
    fall = next_runs(sync_schedule("6h"), at(zone, 2026, 10, 24, 23, 0), zone, 2)
    assert fall[1] - fall[0] == timedelta(hours=7)
    one = next_runs(sync_schedule("1h"), at(zone, 2026, 10, 25, 1, 30), zone, 3)
    assert {b - a for a, b in itertools.pairwise(one)} == {timedelta(hours=1)}


@pytest.mark.parametrize(
    ("zone", "minute", "after", "want"),
    [
        ("Asia/Kathmandu", 0, (2026, 6, 1, 10, 1), ["11:00", "12:00", "13:00"]),
        ("Asia/Kathmandu", 45, (2026, 6, 1, 23, 50), ["00:45", "01:45", "02:45"]),
        # Lord Howe's 30-minute spring-forward (02:00 → 02:30) on 2026-10-04: minute 15 of
        # the skipped half hour is gone, minute 45 of hour 2 remains.
        ("Australia/Lord_Howe", 15, (2026, 10, 4, 0, 30), ["01:15", "03:15", "04:15"]),
        ("Australia/Lord_Howe", 45, (2026, 10, 4, 0, 50), ["01:45", "02:45", "03:45"]),
        # Lord Howe's fall-back (02:00 → 01:30) on 2026-04-05: 01:45 runs in both passes.
        ("Australia/Lord_Howe", 45, (2026, 4, 5, 0, 50), ["01:45", "01:45", "02:45"]),
    ],
)
def test_hourly_at_minute_m_in_half_and_three_quarter_hour_zones(
    zone: str, minute: int, after: tuple[int, ...], want: list[str]
) -> None:
    runs = next_runs(seg({"frequency": "hourly", "minute": minute}), at(zone, *after), zone, 3)
    assert [r.astimezone(ZoneInfo(zone)).strftime("%H:%M") for r in runs] == want
    assert all(a < b for a, b in itertools.pairwise(runs))


def test_schedules_created_inside_a_gap_or_a_repeated_hour() -> None:
    """The plan is made from now; now inside Paris's skipped hour (an instant whose wall
    clock reads 03:xx CEST) or in the second pass of the repeated hour."""
    zone = "Europe/Paris"
    in_gap = at(zone, 2026, 3, 29, 3, 10)  # just after the jump
    daily_230 = seg({"frequency": "daily", "hour": 2, "minute": 30})
    # 02:30 of that day has been jumped past already at 03:10: tomorrow.
    assert shown([next_run(daily_230, in_gap, zone)], zone) == ["2026-03-30 02:30 +0200"]  # type: ignore[list-item]
    just_before = at(zone, 2026, 3, 29, 1, 59)
    assert shown([next_run(daily_230, just_before, zone)], zone) == ["2026-03-29 03:00 +0200"]  # type: ignore[list-item]
    second_pass = at(zone, 2026, 10, 25, 2, 10, fold=1)
    # 02:30 ran on the first pass: a schedule made on the second pass waits for tomorrow.
    assert shown([next_run(daily_230, second_pass, zone)], zone) == ["2026-10-26 02:30 +0100"]  # type: ignore[list-item]
    hourly = seg({"frequency": "hourly", "minute": 30})
    # Hourly is real time: the second pass's 02:30 is a run of its own.
    assert shown([next_run(hourly, second_pass, zone)], zone) == ["2026-10-25 02:30 +0100"]  # type: ignore[list-item]
