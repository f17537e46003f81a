"""Red-team round 4 of the schedule arithmetic (issue 9), frozen instants only, no clock.

* **Every transition of odd zones** against a brute-force oracle that knows nothing of
  zoneinfo folds or gaps: it walks real time minute by minute and fires a daily slot the first
  time the local clock reaches or jumps past it (the high-water mark of the wall clock). Zones
  with 30/45-minute offsets and shifts (Lord Howe, Kathmandu's 15-minute jump of 1986,
  Chatham, Adelaide, St John's), two-hour DST (Troll), midnight transitions (Havana, Santiago,
  Azores, Asuncion, Beirut), zones that moved across the date line (Apia and Fakaofo skipped
  2011-12-30, Kiritimati 1994-12-31), permanent offset changes (Moscow 2011/2014, Caracas
  2007/2016, Pyongyang 2015/2018, Nuuk 2023) and Casablanca's Ramadan reversals.
* Real-time frequencies (15/30 minutes, hourly at minute M): every instant whose local minute
  matches, so a repeated hour runs in both passes ("on time … exactly once each" per real
  occurrence of the wall time) and a skipped one has none.
* Named examples of the same rules, monthly on 29/30/31 through February of leap, common and
  century years, every-N-hours syncs (wall-clock slots, the same count every local day),
  downtime catch-up across a DST change and across a zone change, and the refusals: every
  invalid input names its field and says why.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from zerocopy.errors import ZerocopyError
from zerocopy.scheduling.schedule import (
    SEGMENT_FREQUENCIES,
    Schedule,
    load_zone,
    next_run,
    next_runs,
    parse_schedule,
    plan_firing,
    replan_in_zone,
)
from zerocopy.scheduling.sync_frequency import check_sync_frequency, sync_schedule

MINUTE = timedelta(minutes=1)


def at(zone: str, *args: int, fold: int = 0) -> datetime:
    """The UTC instant of an existing local wall time (``fold=1``: its second pass)."""
    wall = datetime(*args, tzinfo=ZoneInfo(zone), fold=fold)  # type: ignore[misc]
    back = wall.astimezone(UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    assert back == wall.replace(tzinfo=None), f"{wall} does not exist in {zone}"
    return wall.astimezone(UTC)


def shown(instants: list[datetime], zone: str) -> list[str]:
    return [i.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %z") for i in instants]


def seg(doc: dict[str, Any]) -> Schedule:
    return parse_schedule(doc, SEGMENT_FREQUENCIES)


# ------------------------------------------------------------------ the oracle
def transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The first UTC minute of each new offset between ``start`` and ``end`` (hourly scan,
    then bisection to the minute; every transition since 1970 falls on a whole minute)."""
    out: list[datetime] = []
    t, previous = start, start.astimezone(zone).utcoffset()
    while t < end:
        step = t + timedelta(hours=1)
        offset = step.astimezone(zone).utcoffset()
        if offset != previous:
            lo, hi = t, step
            while hi - lo > MINUTE:
                mid = lo + ((hi - lo) // MINUTE // 2) * MINUTE
                if mid.astimezone(zone).utcoffset() == previous:
                    lo = mid
                else:
                    hi = mid
            out.append(hi)
        t, previous = step, offset
    return out


class Window:
    """Real time minute by minute around an instant, with the local wall clock of each minute."""

    def __init__(self, zone: ZoneInfo, around: datetime, days: int = 3) -> None:
        self.start = (around - timedelta(days=days)).replace(second=0, microsecond=0)
        self.utc = [self.start + k * MINUTE for k in range(2 * days * 1440)]
        self.walls = [u.astimezone(zone).replace(tzinfo=None) for u in self.utc]
        self.high = list(itertools.accumulate(self.walls, max))

    def first_reaching(self, wall: datetime) -> datetime | None:
        """The first instant the local clock shows ``wall`` or jumps past it."""
        i = bisect.bisect_left(self.high, wall)
        return self.utc[i] if 0 < i < len(self.utc) else None

    def showing(self, after: datetime, minute_ok: Any) -> list[datetime]:
        """Every instant after ``after`` whose local minute passes ``minute_ok``."""
        return [u for u, w in zip(self.utc, self.walls, strict=True) if u > after and minute_ok(w)]


ODD_ZONES = {
    "Australia/Lord_Howe": (2024, 2027),
    "Asia/Kathmandu": (1985, 1987),
    "Pacific/Chatham": (2025, 2027),
    "Australia/Adelaide": (2025, 2027),
    "America/St_Johns": (2025, 2027),
    "Antarctica/Troll": (2025, 2027),
    "America/Havana": (2025, 2027),
    "America/Santiago": (2025, 2027),
    "Atlantic/Azores": (2025, 2027),
    "America/Asuncion": (2023, 2025),
    "Asia/Beirut": (2025, 2027),
    "Pacific/Apia": (2011, 2013),
    "Pacific/Fakaofo": (2011, 2012),
    "Pacific/Kiritimati": (1994, 1996),
    "Europe/Moscow": (2011, 2015),
    "America/Caracas": (2007, 2017),
    "Asia/Pyongyang": (2015, 2019),
    "America/Nuuk": (2022, 2025),
    "Africa/Casablanca": (2025, 2026),
    "Europe/Dublin": (2025, 2027),
}


def _cases() -> list[tuple[str, datetime]]:
    out = []
    for name, (first, last) in ODD_ZONES.items():
        found = transitions(
            ZoneInfo(name), datetime(first, 1, 1, tzinfo=UTC), datetime(last, 12, 31, tzinfo=UTC)
        )
        assert found, name
        out += [(name, t) for t in found]
    return out


TRANSITIONS = _cases()


def _slot_times(zone: ZoneInfo, moment: datetime) -> list[time]:
    """Every quarter hour from an hour before to an hour after the transition's wall times,
    and the minutes on each side of it."""
    before = (moment - MINUTE).astimezone(zone).replace(tzinfo=None)
    after = moment.astimezone(zone).replace(tzinfo=None)
    lo, hi = min(before, after) - timedelta(hours=1), max(before, after) + timedelta(hours=1)
    wall = lo.replace(minute=lo.minute // 15 * 15)
    out = {before.time(), (before + MINUTE).time(), after.time()}
    while wall <= hi:
        out.add(wall.time())
        wall += timedelta(minutes=15)
    return sorted(out)


@pytest.mark.parametrize(
    ("name", "moment"), TRANSITIONS, ids=[f"{n}@{t:%Y-%m-%dT%H:%M}" for n, t in TRANSITIONS]
)
def test_daily_slots_around_every_transition_match_the_wall_clock_oracle(
    name: str, moment: datetime
) -> None:
    """Daily at every quarter hour near the transition: each local date's slot runs once, at
    its wall time, or at the first instant after a gap that swallowed it, or on the first pass
    of a repeated time; slots that a skipped day folds onto one instant run once."""
    zone = ZoneInfo(name)
    window = Window(zone, moment, days=5)
    after = moment - timedelta(days=2)
    first_day = after.astimezone(zone).date()
    for slot in _slot_times(zone, moment):
        schedule = seg({"frequency": "daily", "hour": slot.hour, "minute": slot.minute})
        expected = sorted(
            {
                t
                for d in range(7)
                if (t := window.first_reaching(datetime.combine(first_day + timedelta(d), slot)))
                is not None
                and t > after
            }
        )[:4]
        got = next_runs(schedule, after, zone, 4)
        assert shown(got, name) == shown(expected, name), slot


def _at_minute(m: int) -> Any:
    return lambda w: w.minute == m


@pytest.mark.parametrize(
    ("name", "moment"), TRANSITIONS, ids=[f"{n}@{t:%Y-%m-%dT%H:%M}" for n, t in TRANSITIONS]
)
def test_real_time_frequencies_around_every_transition_match_the_oracle(
    name: str, moment: datetime
) -> None:
    """Every 15/30 minutes and hourly at :00/:15/:30/:45: every instant whose local minute
    matches, both passes of a repeated time, none in a skipped one."""
    zone = ZoneInfo(name)
    window = Window(zone, moment, days=1)
    after = moment - timedelta(hours=3)
    rules: list[tuple[Schedule, Any, int]] = [
        (sync_schedule("15m"), lambda w: w.minute % 15 == 0, 24),
        (sync_schedule("30m"), lambda w: w.minute % 30 == 0, 12),
    ]
    rules += [
        (seg({"frequency": "hourly", "minute": m}), _at_minute(m), 7) for m in (0, 15, 30, 45)
    ]
    for schedule, minute_ok, count in rules:
        got = next_runs(schedule, after, zone, count)
        assert shown(got, name) == shown(window.showing(after, minute_ok)[:count], name), (
            schedule.to_dict()
        )
        assert all(a < b for a, b in itertools.pairwise(got))


# ------------------------------------------------------------------ named examples
def test_lord_howe_half_hour_gap_and_repeated_half_hour_for_daily_weekly_monthly() -> None:
    """Lord Howe moves 30 minutes: 2026-10-04 02:00 → 02:30 (+10:30 → +11), 2026-04-05
    02:00 → 01:30 (+11 → +10:30). A 02:15 slot on the gap day runs at 02:30 +11; a 01:45
    slot on the repeated day runs once, on the first pass (+11)."""
    zone = "Australia/Lord_Howe"
    for doc in (
        {"frequency": "daily", "time": "02:15"},
        {"frequency": "weekly", "weekday": "sunday", "time": "02:15"},
        {"frequency": "monthly", "day": 4, "time": "02:15"},
    ):
        got = next_runs(seg(doc), at(zone, 2026, 10, 3, 12, 0), zone, 2)
        assert shown(got, zone)[0] == "2026-10-04 02:30 +1100", doc
    for doc in (
        {"frequency": "daily", "time": "01:45"},
        {"frequency": "weekly", "weekday": "sun", "time": "01:45"},
        {"frequency": "monthly", "day": 5, "time": "01:45"},
    ):
        got = next_runs(seg(doc), at(zone, 2026, 4, 4, 12, 0), zone, 2)
        assert shown(got, zone)[0] == "2026-04-05 01:45 +1100", doc
        assert not shown(got, zone)[1].startswith("2026-04-05"), doc


def test_kathmandu_1986_quarter_hour_jump() -> None:
    """Asia/Kathmandu went from +05:30 to +05:45 at 1986-01-01 00:00 (00:00-00:14 never
    existed): daily 00:05 runs at 00:15; every 15 minutes stays 15 real minutes apart."""
    zone = "Asia/Kathmandu"
    daily = next_runs(
        seg({"frequency": "daily", "time": "00:05"}), at(zone, 1985, 12, 31, 12, 0), zone, 2
    )
    assert shown(daily, zone) == ["1986-01-01 00:15 +0545", "1986-01-02 00:05 +0545"]
    quarter = next_runs(sync_schedule("15m"), at(zone, 1985, 12, 31, 23, 20), zone, 4)
    assert shown(quarter, zone) == [
        "1985-12-31 23:30 +0530",
        "1985-12-31 23:45 +0530",
        "1986-01-01 00:15 +0545",
        "1986-01-01 00:30 +0545",
    ]
    assert {b - a for a, b in itertools.pairwise(quarter)} == {timedelta(minutes=15)}


def test_hourly_runs_in_both_passes_of_a_repeated_hour_and_not_in_a_skipped_one() -> None:
    """Hourly at :30 on New York's change days: 23 runs the spring day, 25 the fall day
    (01:30 EDT and 01:30 EST are two real hours, each runs once), all an hour apart."""
    zone = "America/New_York"
    schedule = seg({"frequency": "hourly", "minute": 30})
    for day, count in ((date(2026, 3, 8), 23), (date(2026, 11, 1), 25), (date(2026, 6, 1), 24)):
        start = at(zone, day.year, day.month, day.day, 0, 0) - timedelta(seconds=1)
        runs = [
            t
            for t in next_runs(schedule, start, zone, 30)
            if t.astimezone(ZoneInfo(zone)).date() == day
        ]
        assert len(runs) == count, day
        assert {b - a for a, b in itertools.pairwise(runs)} == {timedelta(hours=1)}
    fall = next_runs(schedule, at(zone, 2026, 11, 1, 0, 45), zone, 3)
    assert shown(fall, zone) == [
        "2026-11-01 01:30 -0400",
        "2026-11-01 01:30 -0500",
        "2026-11-01 02:30 -0500",
    ]


@pytest.mark.parametrize(
    ("zone", "spring", "fall"),
    [
        ("Europe/Paris", date(2026, 3, 29), date(2026, 10, 25)),
        ("Australia/Sydney", date(2026, 10, 4), date(2026, 4, 5)),
        ("Australia/Lord_Howe", date(2026, 10, 4), date(2026, 4, 5)),
        ("America/Santiago", date(2026, 9, 6), date(2026, 4, 5)),
        ("Antarctica/Troll", date(2026, 3, 29), date(2026, 10, 25)),
    ],
)
@pytest.mark.parametrize("frequency", ["2h", "3h", "4h", "6h", "8h", "12h"])
def test_every_n_hours_syncs_keep_the_same_local_slots_every_day(
    zone: str, spring: date, fall: date, frequency: str
) -> None:
    """Every N hours: 24/N runs every local date, DST days included, each at a distinct
    instant; every run's local time is a slot (N:00 multiples) or the end of the gap that
    swallowed one."""
    schedule = sync_schedule(frequency)
    per_day = 24 // schedule.hours
    tz = ZoneInfo(zone)
    for day in (spring, fall):
        start = datetime.combine(day - timedelta(days=1), time(12), tzinfo=tz).astimezone(UTC)
        runs = next_runs(schedule, start, zone, 4 * per_day)
        days = Counter(t.astimezone(tz).date() for t in runs)
        assert days[day] == per_day, (zone, day, shown(runs, zone))
        assert len(set(runs)) == len(runs)
        for t in runs:
            wall = t.astimezone(tz)
            jumped = (t - timedelta(seconds=1)).astimezone(tz).utcoffset() != wall.utcoffset()
            assert (wall.hour % schedule.hours, wall.minute) == (0, 0) or jumped, wall


@pytest.mark.parametrize(
    "zone",
    [
        "Asia/Kathmandu",
        "Pacific/Chatham",
        "Australia/Adelaide",
        "Asia/Kolkata",
        "America/St_Johns",
        "Australia/Eucla",
    ],
)
@pytest.mark.parametrize("frequency", ["15m", "30m"])
def test_quarter_and_half_hours_in_odd_offset_zones_are_local_and_evenly_spaced(
    zone: str, frequency: str
) -> None:
    """Across a whole year (every DST change included) 15m/30m runs fall on local :00/:15/
    :30/:45 (:00/:30) and are exactly 15 (30) real minutes apart."""
    schedule = sync_schedule(frequency)
    step = timedelta(minutes=15 if frequency == "15m" else 30)
    tz = ZoneInfo(zone)
    for moment in transitions(
        tz, datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    ) or [datetime(2026, 6, 1, tzinfo=UTC)]:
        runs = next_runs(schedule, moment - timedelta(hours=2), zone, 24)
        assert {b - a for a, b in itertools.pairwise(runs)} == {step}, (zone, moment)
        assert all(t.astimezone(tz).minute % (step // MINUTE) == 0 for t in runs)


@pytest.mark.parametrize(
    ("day", "year", "february"),
    [
        (29, 2024, 29),
        (30, 2024, 29),
        (31, 2024, 29),
        (29, 2025, 28),
        (30, 2025, 28),
        (31, 2025, 28),
        (29, 2100, 28),  # a century that is not a leap year
        (31, 2000, 29),  # a century that is
    ],
)
def test_monthly_29_30_31_runs_once_in_february_on_its_last_day(
    day: int, year: int, february: int
) -> None:
    """Once a month, twelve a year: on ``day`` where the month has it, else its last day;
    never twice in a month and never spilling into March."""
    zone = "Europe/Paris"
    schedule = seg({"frequency": "monthly", "day": day, "time": "06:00"})
    runs = next_runs(schedule, at(zone, year - 1, 12, 31, 12, 0), zone, 12)
    local = [t.astimezone(ZoneInfo(zone)) for t in runs]
    assert [w.month for w in local] == list(range(1, 13))
    assert local[1].day == february
    assert [w.day for w in local if w.month in (3, 5, 7, 8, 10, 12)] == [min(day, 31)] * 6
    assert [w.day for w in local if w.month in (4, 6, 9, 11)] == [min(day, 30)] * 4
    assert all((w.hour, w.minute) == (6, 0) for w in local)


def test_monthly_on_a_transition_day_at_the_gap_and_at_the_overlap() -> None:
    """Paris 2024-03-31 is both the month's 31st and the spring-forward day: monthly day 31
    at 02:30 runs at 03:00 CEST; New York 2026-11-01 is the 1st and the fall-back day:
    monthly day 1 at 01:30 runs once, at 01:30 EDT."""
    paris = next_runs(
        seg({"frequency": "monthly", "day": 31, "time": "02:30"}),
        at("Europe/Paris", 2024, 3, 1),
        "Europe/Paris",
        2,
    )
    assert shown(paris, "Europe/Paris") == ["2024-03-31 03:00 +0200", "2024-04-30 02:30 +0200"]
    ny = next_runs(
        seg({"frequency": "monthly", "day": 1, "time": "01:30"}),
        at("America/New_York", 2026, 10, 15),
        "America/New_York",
        2,
    )
    assert shown(ny, "America/New_York") == ["2026-11-01 01:30 -0400", "2026-12-01 01:30 -0500"]


def test_a_day_skipped_by_the_date_line_runs_its_slot_once_after_the_skip() -> None:
    """Pacific/Kiritimati skipped 1994-12-31 (-10 → +14): monthly day 31 runs December's
    slot at the first instant after the skip, January's on the 31st; daily 00:00 runs the
    two slots that fold onto 1995-01-01 00:00 once."""
    zone = "Pacific/Kiritimati"
    monthly = next_runs(
        seg({"frequency": "monthly", "day": 31, "time": "12:00"}), at(zone, 1994, 12, 1), zone, 2
    )
    assert shown(monthly, zone) == ["1995-01-01 00:00 +1400", "1995-01-31 12:00 +1400"]
    daily = next_runs(seg({"frequency": "daily"}), at(zone, 1994, 12, 29, 12, 0), zone, 3)
    assert shown(daily, zone) == [
        "1994-12-30 00:00 -1000",
        "1995-01-01 00:00 +1400",
        "1995-01-02 00:00 +1400",
    ]


# ------------------------------------------------------------------ catch-up after downtime
def test_downtime_across_spring_forward_is_one_catch_up_run_for_every_missed_slot() -> None:
    """Daily 02:30 Paris, due 03-28, scheduler down until 03-31 10:00: one firing for the
    28th, the 29th (its 02:30 did not exist: due 03:00 CEST), the 30th and the 31st; the plan
    goes on at 04-01 02:30."""
    zone = "Europe/Paris"
    schedule = seg({"frequency": "daily", "time": "02:30"})
    due = at(zone, 2026, 3, 28, 2, 30)
    firing = plan_firing(schedule, zone, due, at(zone, 2026, 3, 31, 10, 0))
    assert firing is not None
    assert (firing.due_at, firing.coalesced, firing.catch_up) == (due, 4, True)
    assert firing.next_due_at == at(zone, 2026, 4, 1, 2, 30)


def test_downtime_across_fall_back_counts_both_passes_of_an_hourly_schedule() -> None:
    zone = "America/New_York"
    schedule = seg({"frequency": "hourly", "minute": 30})
    due = at(zone, 2026, 11, 1, 0, 30)
    firing = plan_firing(schedule, zone, due, at(zone, 2026, 11, 1, 3, 0))
    assert firing is not None
    # 00:30 EDT, 01:30 EDT, 01:30 EST, 02:30 EST
    assert (firing.coalesced, firing.catch_up) == (4, True)
    assert shown([firing.next_due_at], zone) == ["2026-11-01 03:30 -0500"]  # type: ignore[list-item]
    # A daily 01:30 missed over the same night is one slot, not two.
    daily = plan_firing(
        seg({"frequency": "daily", "time": "01:30"}),
        zone,
        at(zone, 2026, 11, 1, 1, 30),
        at(zone, 2026, 11, 1, 3, 0),
    )
    assert daily is not None and daily.coalesced == 1
    assert shown([daily.next_due_at], zone) == ["2026-11-02 01:30 -0500"]  # type: ignore[list-item]


def test_downtime_across_a_dst_change_and_a_zone_change_is_one_run() -> None:
    """Planned in Paris on 03-27 (daily 02:30), nothing ran; the workspace moved to New York
    on 03-29 12:00 UTC (after Paris's spring-forward) while the scheduler was down; it comes
    back on 03-31 12:00 UTC. The plan goes on from the local slot it waited for (03-28), now
    in New York, and the restart fires one catch-up run for the 28th..31st; no slot runs
    twice and the next run is 04-01 02:30 New York."""
    schedule = seg({"frequency": "daily", "time": "02:30"})
    planned = datetime(2026, 3, 27, 10, 0, tzinfo=UTC)
    pending = next_run(schedule, planned, "Europe/Paris")
    assert pending == at("Europe/Paris", 2026, 3, 28, 2, 30)
    changed = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    moved = replan_in_zone(
        schedule, "Europe/Paris", "America/New_York", pending, planned, changed, fired=False
    )
    assert moved is not None and moved <= pending + timedelta(hours=6)
    now = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
    firing = plan_firing(schedule, "America/New_York", moved, now)
    assert firing is not None and firing.catch_up
    assert firing.coalesced == 4  # the 28th, 29th, 30th and 31st, once each
    assert firing.next_due_at == at("America/New_York", 2026, 4, 1, 2, 30)


# ------------------------------------------------------------------ refusals name the field
@pytest.mark.parametrize(
    ("doc", "field", "reason"),
    [
        ({"frequency": "hourly", "minute": 60}, "minute", "out_of_range"),
        ({"frequency": "hourly", "minute": -1}, "minute", "out_of_range"),
        ({"frequency": "daily", "hour": 24}, "hour", "out_of_range"),
        ({"frequency": "daily", "hour": "2"}, "hour", "invalid_type"),
        ({"frequency": "daily", "minute": 30.0}, "minute", "invalid_type"),
        ({"frequency": "daily", "hour": True}, "hour", "invalid_type"),
        ({"frequency": "daily", "time": "24:00"}, "time", "out_of_range"),
        ({"frequency": "daily", "time": "12:60"}, "time", "out_of_range"),
        ({"frequency": "daily", "time": "2:30 PM"}, "time", "invalid_value"),
        ({"frequency": "daily", "time": 230}, "time", "invalid_type"),
        ({"frequency": "monthly", "day": 0}, "day", "out_of_range"),
        ({"frequency": "monthly", "day": 32}, "day", "out_of_range"),
        ({"frequency": "monthly", "day": "last"}, "day", "invalid_type"),
        ({"frequency": "weekly"}, "weekday", "required"),
        ({"frequency": "weekly", "weekday": 0}, "weekday", "invalid_type"),
        ({"frequency": "weekly", "weekday": 7}, "weekday", "invalid_type"),
        ({"frequency": "weekly", "weekday": "mo"}, "weekday", "invalid_value"),
        ({"frequency": "weekly", "weekday": "funday"}, "weekday", "invalid_value"),
        ({"frequency": "daily", "weekday": "monday"}, "weekday", "not_applicable"),
        ({"frequency": "hourly", "hour": 3}, "hour", "not_applicable"),
        ({"frequency": "daily", "time_zone": "Europe/Paris"}, "time_zone", "unknown_field"),
        ({"frequency": "every_5_minutes"}, "frequency", "too_frequent"),
        ({"frequency": "every_45_minutes"}, "frequency", "too_frequent"),
        ({"frequency": "every_15_minutes"}, "frequency", "not_allowed_here"),
        ({"frequency": "every_n_hours", "hours": 6}, "frequency", "not_allowed_here"),
        ({"frequency": "yearly"}, "frequency", "too_rare"),
        ({"frequency": "every_2_months"}, "frequency", "too_rare"),
        ({"frequency": "every_6_weeks"}, "frequency", "too_rare"),
        ({"frequency": "fortnightly"}, "frequency", "unknown_frequency"),
        ({"minute": 5}, "frequency", "required"),
    ],
)
def test_invalid_segment_schedules_name_the_field_and_the_reason(
    doc: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ZerocopyError) as caught:
        seg(doc)
    assert caught.value.code == "validation_error"
    assert caught.value.details == {"field": field, "reason": reason}
    assert field in caught.value.message


def test_a_zone_given_in_the_schedule_says_where_the_zone_is_set() -> None:
    with pytest.raises(ZerocopyError) as caught:
        seg({"frequency": "daily", "hour": 9, "timezone": "Europe/Paris"})
    assert "PATCH /v1/workspace" in caught.value.message


@pytest.mark.parametrize(
    ("doc", "stored"),
    [
        ({"frequency": "weekly", "weekday": "Tues", "time": "9:05"}, {"weekday": "tuesday"}),
        ({"frequency": "weekly", "weekday": " THURS ", "hour": 9}, {"weekday": "thursday"}),
        ({"frequency": "weekly", "weekday": "wednes"}, {"weekday": "wednesday"}),
        ({"frequency": " Monthly ", "day": 31}, {"frequency": "monthly", "day": 31}),
    ],
)
def test_usual_spellings_are_read(doc: dict[str, Any], stored: dict[str, Any]) -> None:
    assert seg(doc).to_dict().items() >= stored.items()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("5m", "too_frequent"),
        ("10 minutes", "too_frequent"),
        ("30s", "too_frequent"),
        ("0h", "out_of_range"),
        ("-15m", "out_of_range"),
        ("2mo", "too_rare"),
        ("1y", "too_rare"),
        ("5w", "too_rare"),
        ("45m", "unknown_frequency"),
        ("5h", "unknown_frequency"),
        ("31d", "unknown_frequency"),  # not the 1st of each month
        ("744h", "unknown_frequency"),
        ("2w", "unknown_frequency"),
        ("often", "unknown_frequency"),
        ("", "unknown_frequency"),
    ],
)
def test_invalid_sync_frequencies_name_the_field_and_the_reason(value: str, reason: str) -> None:
    with pytest.raises(ZerocopyError) as caught:
        check_sync_frequency(value)
    assert caught.value.details == {"field": "frequency", "reason": reason}


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("every 15 minutes", "15m"),
        ("60m", "1h"),
        ("Every 6 Hours", "6h"),
        ("24h", "1d"),
        ("7d", "1w"),
        ("monthly", "1mo"),
        ("1 month", "1mo"),
    ],
)
def test_sync_frequencies_written_another_way(value: str, stored: str) -> None:
    assert check_sync_frequency(value) == stored


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "utc", "UTC+5", "", " Europe/Paris", "localtime", "posix/Europe/Paris"]
)
def test_unknown_zones_are_refused_on_the_time_zone_field(name: str) -> None:
    with pytest.raises(ZerocopyError) as caught:
        load_zone(name)
    assert caught.value.details == {"field": "time_zone", "reason": "unknown_time_zone"}


# ------------------------------------------------------------------ next 5, aliases
_PLAN_ZONES = [
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/Santiago",
    "Pacific/Apia",
    "Antarctica/Troll",
]
_PLAN_SCHEDULES = [
    *(sync_schedule(f) for f in ("15m", "30m", "1h", "3h", "6h", "1d", "1w", "1mo")),
    seg({"frequency": "hourly", "minute": 30}),
    seg({"frequency": "daily", "time": "02:30"}),
    seg({"frequency": "weekly", "weekday": "sun", "time": "01:30"}),
    seg({"frequency": "monthly", "day": 31, "time": "00:00"}),
]


@pytest.mark.parametrize("zone", _PLAN_ZONES)
def test_the_next_five_shown_are_the_next_five_after_now_whatever_is_pending(zone: str) -> None:
    """The API's list from a stored plan (maybe with an occurrence due, not fired yet: it
    fires at once, coalesced, and is not listed) is the next 5 instants strictly after now —
    around DST changes too, and whatever ran in between ("run now" touches no plan)."""
    from zerocopy.scheduling.models import ScheduleState
    from zerocopy.scheduling.scheduler import upcoming_runs

    for moment in transitions(
        ZoneInfo(zone), datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    ):
        for schedule in _PLAN_SCHEDULES:
            for back, ahead in ((timedelta(hours=3), timedelta(0)), (timedelta(days=2), MINUTE)):
                planned = moment - back
                now = moment + ahead
                state = ScheduleState(
                    next_due_at=next_run(schedule, planned, zone),
                    planned_time_zone=zone,
                    planned_key=schedule.key(),
                    planned_from=planned,
                )
                shown_now = upcoming_runs(schedule, state, zone, now)
                assert shown_now == next_runs(schedule, now, zone, 5), (schedule, moment)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("America/New_York", "US/Eastern"),
        ("Asia/Kolkata", "Asia/Calcutta"),
        ("Europe/Kyiv", "Europe/Kiev"),
        ("Pacific/Auckland", "NZ"),
        ("UTC", "Etc/UTC"),
    ],
)
def test_moving_to_another_name_of_the_same_zone_moves_nothing(old: str, new: str) -> None:
    for schedule in _PLAN_SCHEDULES:
        for planned in (
            datetime(2026, 3, 7, 22, 0, tzinfo=UTC),
            datetime(2026, 10, 31, 11, 0, tzinfo=UTC),
        ):
            pending = next_run(schedule, planned, old)
            assert pending is not None
            for changed in (planned + (pending - planned) / 2, pending + timedelta(minutes=5)):
                for fired in (True, False):
                    moved = replan_in_zone(
                        schedule, old, new, pending, planned, changed, fired=fired
                    )
                    assert moved == pending, (schedule, planned, changed, fired)
