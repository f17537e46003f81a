"""Red-team round 2 of the schedule arithmetic (issue 9), frozen instants only, no clock.

Two kinds of probes:

* **hand-computed scenarios** for every segment frequency (manual, hourly at M, daily HH:MM,
  weekly, monthly incl. 29/30/31 in short months and February of leap and common years) and
  every sync frequency (15m, 30m, 1h, every N hours, 1d, 1w, 1mo), across both DST
  transitions in Europe/Paris, America/New_York and Australia/Lord_Howe (30-minute shift) and
  in zones with unusual rules: Asia/Kathmandu (+05:45, and its 15-minute shift of 1986),
  Pacific/Chatham (+12:45/+13:45), America/Santiago (midnight gap), Africa/Casablanca (DST
  *off* during Ramadan), Antarctica/Troll (a two-hour shift), Pacific/Apia (skipped
  2011-12-30), Pacific/Kwajalein (skipped 1993-08-21);
* a **one-pass oracle** over many more transitions: it walks real time minute by minute and
  keeps the highest local wall-clock time reached so far. A wall-clock slot (daily, weekly,
  monthly, every N >= 2 hours) fires at the first minute whose wall clock reaches or jumps
  past it (so a slot in a gap fires once, at the end of the gap, and a slot repeated by a
  fall-back fires on its first pass only); a real-time frequency (15m, 30m, hourly, 1h) fires
  at every minute whose local clock shows its minute. ``next_run`` must agree from every
  starting instant, including instants inside gaps and repeated hours.

The rule these probes pin down for syncs across DST (a choice, documented in
:mod:`zerocopy.scheduling.sync_frequency`): 15m/30m/1h keep a *real-time* cadence on the local
grid (15/30/60 minutes apart across a one-hour shift, never two runs at one instant); every N
hours (N >= 2), daily, weekly and monthly keep *wall-clock* slots (a 6h sync runs at local
00:00/06:00/12:00/18:00 every day, so 5 or 7 real hours apart around a one-hour shift).
"""

from __future__ import annotations

import bisect
import calendar
import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from zerocopy.errors import ZerocopyError
from zerocopy.scheduling.schedule import (
    SEGMENT_FREQUENCIES,
    WEEKDAYS,
    Schedule,
    next_run,
    next_runs,
    parse_schedule,
    plan_firing,
    replan_in_zone,
)
from zerocopy.scheduling.sync_frequency import check_sync_frequency, sync_schedule


def at(zone: str, *args: int, fold: int = 0) -> datetime:
    """The UTC instant of an existing local wall time (``fold=1``: its second pass)."""
    wall = datetime(*args, tzinfo=ZoneInfo(zone), fold=fold)  # type: ignore[misc]
    assert wall.astimezone(UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None) == wall.replace(
        tzinfo=None
    ), f"{wall} does not exist in {zone}"
    return wall.astimezone(UTC)


def z(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def shown(instants: list[datetime], zone: str) -> list[str]:
    return [i.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %z") for i in instants]


def seg(doc: dict[str, Any] | None) -> Schedule:
    return parse_schedule(doc, SEGMENT_FREQUENCIES)


# ------------------------------------------------------------------ segment frequencies
def test_manual_has_no_runs_and_no_firing_anywhere() -> None:
    for doc in (None, {"frequency": "manual"}, {"frequency": "Manual"}):
        schedule = seg(doc)
        assert schedule.is_manual and schedule.to_dict() == {"frequency": "manual"}
        assert next_run(schedule, z(2026, 3, 29), "Europe/Paris") is None
        assert next_runs(schedule, z(2026, 3, 29), "Europe/Paris", 5) == []


@pytest.mark.parametrize("minute", [0, 1, 29, 30, 45, 59])
def test_hourly_at_minute_m_in_utc_is_every_hour_at_m(minute: int) -> None:
    runs = next_runs(seg({"frequency": "hourly", "minute": minute}), z(2026, 1, 1, 0, 0), "UTC", 5)
    assert runs == [z(2026, 1, 1, h, minute) for h in range(1 if minute == 0 else 0, 6)][:5]


@pytest.mark.parametrize(
    ("zone", "after", "want"),
    [
        # Paris spring-forward 2026-03-29 02:00 → 03:00: the 02:15 of the skipped hour has no
        # run; the hours around it are one real hour apart.
        (
            "Europe/Paris",
            (2026, 3, 29, 0, 30),
            ["2026-03-29 01:15 +0100", "2026-03-29 03:15 +0200", "2026-03-29 04:15 +0200"],
        ),
        # Paris fall-back 2026-10-25 03:00 → 02:00: 02:15 runs in both passes (distinct
        # instants, one real hour apart).
        (
            "Europe/Paris",
            (2026, 10, 25, 1, 30),
            ["2026-10-25 02:15 +0200", "2026-10-25 02:15 +0100", "2026-10-25 03:15 +0100"],
        ),
        # New York fall-back 2026-11-01 02:00 → 01:00.
        (
            "America/New_York",
            (2026, 11, 1, 0, 30),
            ["2026-11-01 01:15 -0400", "2026-11-01 01:15 -0500", "2026-11-01 02:15 -0500"],
        ),
        # Lord Howe spring-forward 2026-10-04 02:00 → 02:30: 02:15 is skipped, so 01:15 and
        # 03:15 are 90 real minutes apart.
        (
            "Australia/Lord_Howe",
            (2026, 10, 4, 0, 30),
            ["2026-10-04 01:15 +1030", "2026-10-04 03:15 +1100", "2026-10-04 04:15 +1100"],
        ),
        # Lord Howe fall-back 2026-04-05 02:00 → 01:30: 01:45 is repeated, 30 minutes apart.
        (
            "Australia/Lord_Howe",
            (2026, 4, 5, 0, 30),
            ["2026-04-05 00:45 +1100", "2026-04-05 01:45 +1100", "2026-04-05 01:45 +1030"],
        ),
    ],
)
def test_hourly_across_dst_runs_every_time_the_local_clock_shows_minute_m(
    zone: str, after: tuple[int, ...], want: list[str]
) -> None:
    minute = 45 if zone == "Australia/Lord_Howe" and after[1] == 4 else 15
    runs = next_runs(seg({"frequency": "hourly", "minute": minute}), at(zone, *after), zone, 3)
    assert shown(runs, zone) == want


@pytest.mark.parametrize(
    ("zone", "hour", "minute", "after", "want"),
    [
        # Spring-forward: 02:30 is in the gap → once, at the first valid instant after it.
        (
            "Europe/Paris",
            2,
            30,
            (2026, 3, 28, 12),
            ["2026-03-29 03:00 +0200", "2026-03-30 02:30 +0200"],
        ),
        (
            "America/New_York",
            2,
            30,
            (2026, 3, 7, 12),
            ["2026-03-08 03:00 -0400", "2026-03-09 02:30 -0400"],
        ),
        (
            "Australia/Lord_Howe",
            2,
            15,
            (2026, 10, 3, 12),
            ["2026-10-04 02:30 +1100", "2026-10-05 02:15 +1100"],
        ),
        # A slot at the first instant after the gap is an ordinary slot, run once.
        (
            "Europe/Paris",
            3,
            0,
            (2026, 3, 28, 12),
            ["2026-03-29 03:00 +0200", "2026-03-30 03:00 +0200"],
        ),
        # Fall-back: the repeated 02:30 (Paris), 01:30 (New York), 01:45 (Lord Howe) run once,
        # on the first pass.
        (
            "Europe/Paris",
            2,
            30,
            (2026, 10, 24, 12),
            ["2026-10-25 02:30 +0200", "2026-10-26 02:30 +0100"],
        ),
        (
            "America/New_York",
            1,
            30,
            (2026, 10, 31, 12),
            ["2026-11-01 01:30 -0400", "2026-11-02 01:30 -0500"],
        ),
        (
            "Australia/Lord_Howe",
            1,
            45,
            (2026, 4, 4, 12),
            ["2026-04-05 01:45 +1100", "2026-04-06 01:45 +1030"],
        ),
    ],
)
def test_daily_runs_once_on_both_transition_days(
    zone: str, hour: int, minute: int, after: tuple[int, ...], want: list[str]
) -> None:
    schedule = seg({"frequency": "daily", "hour": hour, "minute": minute})
    runs = next_runs(schedule, at(zone, *after), zone, 2)
    assert shown(runs, zone) == want
    # Asked again from the run itself, or from inside the repeated hour's second pass, the
    # same occurrence is never offered again.
    assert next_run(schedule, runs[0], zone) == runs[1]
    assert next_run(schedule, runs[0] + timedelta(hours=1), zone) == runs[1]


def test_daily_asked_from_inside_a_gap_or_a_second_pass() -> None:
    paris = "Europe/Paris"
    schedule = seg({"frequency": "daily", "hour": 2, "minute": 30})
    # 2026-03-29 00:59:59 UTC is 01:59:59 CET, the last second before the gap.
    assert shown([next_run(schedule, z(2026, 3, 29, 0, 59, 59), paris)], paris) == [  # type: ignore[list-item]
        "2026-03-29 03:00 +0200"
    ]
    # From the second pass of 02:10 (after the 02:30 first pass ran) → tomorrow.
    second = at(paris, 2026, 10, 25, 2, 10, fold=1)
    assert shown([next_run(schedule, second, paris)], paris) == ["2026-10-26 02:30 +0100"]  # type: ignore[list-item]
    # From the first pass of 02:10 → today's first-pass 02:30.
    first = at(paris, 2026, 10, 25, 2, 10)
    assert shown([next_run(schedule, first, paris)], paris) == ["2026-10-25 02:30 +0200"]  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("zone", "weekday", "hour", "minute", "after", "want"),
    [
        (
            "Europe/Paris",
            "sunday",
            2,
            30,
            (2026, 3, 27),
            ["2026-03-29 03:00 +0200", "2026-04-05 02:30 +0200"],
        ),
        (
            "Europe/Paris",
            "sun",
            2,
            30,
            (2026, 10, 23),
            ["2026-10-25 02:30 +0200", "2026-11-01 02:30 +0100"],
        ),
        (
            "America/New_York",
            "Sunday",
            2,
            0,
            (2026, 3, 6),
            ["2026-03-08 03:00 -0400", "2026-03-15 02:00 -0400"],
        ),
        (
            "America/New_York",
            "SUNDAY",
            1,
            0,
            (2026, 10, 30),
            ["2026-11-01 01:00 -0400", "2026-11-08 01:00 -0500"],
        ),
        (
            "Australia/Lord_Howe",
            "sunday",
            2,
            0,
            (2026, 10, 2),
            ["2026-10-04 02:30 +1100", "2026-10-11 02:00 +1100"],
        ),
        (
            "Australia/Lord_Howe",
            "sunday",
            1,
            30,
            (2026, 4, 3),
            ["2026-04-05 01:30 +1100", "2026-04-12 01:30 +1030"],
        ),
    ],
)
def test_weekly_on_the_transition_weekday(
    zone: str, weekday: str, hour: int, minute: int, after: tuple[int, ...], want: list[str]
) -> None:
    doc = {"frequency": "weekly", "weekday": weekday, "hour": hour, "minute": minute}
    assert shown(next_runs(seg(doc), at(zone, *after), zone, 2), zone) == want


@pytest.mark.parametrize("weekday", range(7))
def test_weekly_each_weekday_name_and_abbreviation_runs_on_that_day(weekday: int) -> None:
    name = WEEKDAYS[weekday]
    for spelling in (name, name[:3], name.upper(), f" {name.title()} "):
        doc = {"frequency": "weekly", "weekday": spelling, "hour": 9, "minute": 5}
        runs = next_runs(seg(doc), z(2026, 6, 1), "Asia/Tokyo", 3)
        local = [r.astimezone(ZoneInfo("Asia/Tokyo")) for r in runs]
        assert [t.weekday() for t in local] == [weekday] * 3
        assert {(t.hour, t.minute) for t in local} == {(9, 5)}
        assert [b - a for a, b in itertools.pairwise(runs)] == [timedelta(days=7)] * 2


@pytest.mark.parametrize(
    ("day", "year", "want"),
    [
        # day → the day it runs each month from January to May, then December
        (29, 2024, [29, 29, 29, 29, 29]),  # leap year: 29 February exists
        (29, 2025, [29, 28, 29, 29, 29]),
        (29, 2100, [29, 28, 29, 29, 29]),  # 2100 is not a leap year
        (30, 2024, [30, 29, 30, 30, 30]),
        (30, 2026, [30, 28, 30, 30, 30]),
        (31, 2024, [31, 29, 31, 30, 31]),
        (31, 2026, [31, 28, 31, 30, 31]),
        (31, 2000, [31, 29, 31, 30, 31]),  # 2000 is a leap year
        (28, 2026, [28, 28, 28, 28, 28]),
        (1, 2026, [1, 1, 1, 1, 1]),
    ],
)
def test_monthly_late_days_in_short_months_and_february(
    day: int, year: int, want: list[int]
) -> None:
    schedule = seg({"frequency": "monthly", "day": day, "hour": 6, "minute": 0})
    runs = next_runs(schedule, z(year - 1, 12, 31, 12), "UTC", 5)
    assert [r.month for r in runs] == [1, 2, 3, 4, 5]  # once a month, none skipped or doubled
    assert [r.day for r in runs] == want
    assert {(r.hour, r.minute) for r in runs} == {(6, 0)}


def test_monthly_31_over_a_year_runs_twelve_times_on_each_last_day() -> None:
    schedule = seg({"frequency": "monthly", "day": 31, "hour": 23, "minute": 59})
    runs = next_runs(schedule, at("America/New_York", 2027, 12, 31, 23, 59), "America/New_York", 12)
    local = [r.astimezone(ZoneInfo("America/New_York")) for r in runs]
    assert [(t.month, t.day) for t in local] == [
        (m, calendar.monthrange(2028, m)[1]) for m in range(1, 13)
    ]
    assert {(t.hour, t.minute) for t in local} == {(23, 59)}


def test_monthly_on_a_transition_day_follows_the_gap_and_fold_rules() -> None:
    paris = "Europe/Paris"
    gap = seg({"frequency": "monthly", "day": 29, "hour": 2, "minute": 30})
    assert shown(next_runs(gap, z(2026, 3, 1), paris, 2), paris) == [
        "2026-03-29 03:00 +0200",
        "2026-04-29 02:30 +0200",
    ]
    fold = seg({"frequency": "monthly", "day": 25, "hour": 2, "minute": 30})
    assert shown(next_runs(fold, z(2026, 10, 1), paris, 2), paris) == [
        "2026-10-25 02:30 +0200",
        "2026-11-25 02:30 +0100",
    ]


# ------------------------------------------------------------------ unusual zones
@pytest.mark.parametrize(
    ("zone", "doc", "after", "want"),
    [
        # Kathmandu +05:45 all year: local 09:00 is 03:15 UTC.
        (
            "Asia/Kathmandu",
            {"frequency": "daily", "hour": 9},
            z(2026, 6, 1),
            ["2026-06-01 09:00 +0545", "2026-06-02 09:00 +0545"],
        ),
        # Chatham spring-forward 2026-09-27 02:45 → 03:45: 02:50 runs at 03:45.
        (
            "Pacific/Chatham",
            {"frequency": "daily", "hour": 2, "minute": 50},
            z(2026, 9, 26, 0),
            ["2026-09-27 03:45 +1345", "2026-09-28 02:50 +1345"],
        ),
        # Chatham fall-back 2026-04-05 03:45 → 02:45: 03:15 runs on its first pass only.
        (
            "Pacific/Chatham",
            {"frequency": "daily", "hour": 3, "minute": 15},
            z(2026, 4, 4, 0),
            ["2026-04-05 03:15 +1345", "2026-04-06 03:15 +1245"],
        ),
        # Santiago spring-forward 2026-09-06 00:00 → 01:00: a midnight daily runs at 01:00.
        (
            "America/Santiago",
            {"frequency": "daily", "hour": 0},
            z(2026, 9, 5, 12),
            ["2026-09-06 01:00 -0300", "2026-09-07 00:00 -0300"],
        ),
        # Santiago fall-back 2026-04-05 00:00 → 23:00 the day before: 23:30 runs once.
        (
            "America/Santiago",
            {"frequency": "daily", "hour": 23, "minute": 30},
            z(2026, 4, 4, 12),
            ["2026-04-04 23:30 -0300", "2026-04-05 23:30 -0400"],
        ),
        # Casablanca goes *back* for Ramadan (2025-02-23 03:00 → 02:00) and forward after it
        # (2025-04-06 02:00 → 03:00).
        (
            "Africa/Casablanca",
            {"frequency": "daily", "hour": 2, "minute": 30},
            z(2025, 2, 22, 12),
            ["2025-02-23 02:30 +0100", "2025-02-24 02:30 +0000"],
        ),
        (
            "Africa/Casablanca",
            {"frequency": "daily", "hour": 2, "minute": 30},
            z(2025, 4, 5, 12),
            ["2025-04-06 03:00 +0100", "2025-04-07 02:30 +0100"],
        ),
        # Troll shifts by two hours (2026-03-29 01:00 → 03:00, 2026-10-25 03:00 → 01:00).
        (
            "Antarctica/Troll",
            {"frequency": "daily", "hour": 1, "minute": 30},
            z(2026, 3, 28, 12),
            ["2026-03-29 03:00 +0200", "2026-03-30 01:30 +0200"],
        ),
        (
            "Antarctica/Troll",
            {"frequency": "daily", "hour": 1, "minute": 30},
            z(2026, 10, 24, 12),
            ["2026-10-25 01:30 +0200", "2026-10-26 01:30 +0000"],
        ),
        # Apia skipped Friday 2011-12-30: its daily 10:00 runs once, when the skip ends.
        (
            "Pacific/Apia",
            {"frequency": "daily", "hour": 10},
            z(2011, 12, 29, 0),
            ["2011-12-29 10:00 -1000", "2011-12-31 00:00 +1400", "2011-12-31 10:00 +1400"],
        ),
        (
            "Pacific/Apia",
            {"frequency": "weekly", "weekday": "friday", "hour": 10},
            z(2011, 12, 24),
            ["2011-12-31 00:00 +1400", "2012-01-06 10:00 +1400"],
        ),
        (
            "Pacific/Apia",
            {"frequency": "monthly", "day": 30, "hour": 10},
            z(2011, 12, 1),
            ["2011-12-31 00:00 +1400", "2012-01-30 10:00 +1400"],
        ),
        # Kwajalein skipped 1993-08-21 (-12 → +12).
        (
            "Pacific/Kwajalein",
            {"frequency": "daily", "hour": 12},
            z(1993, 8, 20, 0),
            ["1993-08-20 12:00 -1200", "1993-08-22 00:00 +1200", "1993-08-22 12:00 +1200"],
        ),
    ],
)
def test_unusual_zones(zone: str, doc: dict[str, Any], after: datetime, want: list[str]) -> None:
    schedule = seg(doc)
    runs = next_runs(schedule, after, zone, len(want))
    assert shown(runs, zone) == want
    assert len(set(runs)) == len(runs)


def test_hourly_in_unusual_zones_keeps_real_time_hours() -> None:
    # Troll's two-hour fall-back: local 02:30 happens twice, two real hours apart, and every
    # UTC :30 in between runs (the local clock shows :30 every real hour).
    troll = next_runs(
        seg({"frequency": "hourly", "minute": 30}), z(2026, 10, 24, 23, 0), "Antarctica/Troll", 4
    )
    assert troll == [
        z(2026, 10, 24, 23, 30),
        z(2026, 10, 25, 0, 30),
        z(2026, 10, 25, 1, 30),
        z(2026, 10, 25, 2, 30),
    ]
    assert shown(troll, "Antarctica/Troll") == [
        "2026-10-25 01:30 +0200",
        "2026-10-25 02:30 +0200",
        "2026-10-25 01:30 +0000",
        "2026-10-25 02:30 +0000",
    ]
    # Apia's skipped day: hourly goes straight on in real time.
    apia = next_runs(
        seg({"frequency": "hourly", "minute": 0}), z(2011, 12, 30, 8, 30), "Pacific/Apia", 3
    )
    assert apia == [z(2011, 12, 30, 9), z(2011, 12, 30, 10), z(2011, 12, 30, 11)]
    # Kathmandu's 1986-01-01 shift of 15 minutes (+05:30 → +05:45): the local clock never
    # shows 00:00 that night (23:59:59 → 00:15), so hourly at :00 has no run then, like a
    # skipped hour (the rule is "every instant the local clock shows minute M").
    ktm = next_runs(
        seg({"frequency": "hourly", "minute": 0}), z(1985, 12, 31, 16, 45), "Asia/Kathmandu", 3
    )
    assert shown(ktm, "Asia/Kathmandu") == [
        "1985-12-31 23:00 +0530",
        "1986-01-01 01:00 +0545",
        "1986-01-01 02:00 +0545",
    ]


# ------------------------------------------------------------------ sync frequencies
def test_every_sync_frequency_in_utc() -> None:
    start = z(2026, 6, 3, 10, 7)  # a Wednesday
    expect = {
        "15m": [z(2026, 6, 3, 10, 15), z(2026, 6, 3, 10, 30), z(2026, 6, 3, 10, 45)],
        "30m": [z(2026, 6, 3, 10, 30), z(2026, 6, 3, 11), z(2026, 6, 3, 11, 30)],
        "1h": [z(2026, 6, 3, 11), z(2026, 6, 3, 12), z(2026, 6, 3, 13)],
        "2h": [z(2026, 6, 3, 12), z(2026, 6, 3, 14), z(2026, 6, 3, 16)],
        "3h": [z(2026, 6, 3, 12), z(2026, 6, 3, 15), z(2026, 6, 3, 18)],
        "4h": [z(2026, 6, 3, 12), z(2026, 6, 3, 16), z(2026, 6, 3, 20)],
        "6h": [z(2026, 6, 3, 12), z(2026, 6, 3, 18), z(2026, 6, 4, 0)],
        "8h": [z(2026, 6, 3, 16), z(2026, 6, 4, 0), z(2026, 6, 4, 8)],
        "12h": [z(2026, 6, 3, 12), z(2026, 6, 4, 0), z(2026, 6, 4, 12)],
        "1d": [z(2026, 6, 4), z(2026, 6, 5), z(2026, 6, 6)],
        "1w": [z(2026, 6, 8), z(2026, 6, 15), z(2026, 6, 22)],
        "1mo": [z(2026, 7, 1), z(2026, 8, 1), z(2026, 9, 1)],
    }
    for frequency, want in expect.items():
        assert next_runs(sync_schedule(frequency), start, "UTC", 3) == want, frequency


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Europe/Paris", z(2026, 3, 28, 20)),
        ("Europe/Paris", z(2026, 10, 24, 20)),
        ("America/New_York", z(2026, 3, 8, 2)),
        ("America/New_York", z(2026, 11, 1, 2)),
        ("Australia/Lord_Howe", z(2026, 10, 3, 12)),
        ("Australia/Lord_Howe", z(2026, 4, 4, 12)),
        ("Pacific/Chatham", z(2026, 9, 26, 10)),
        ("Antarctica/Troll", z(2026, 10, 24, 20)),
        ("Africa/Casablanca", z(2025, 2, 22, 20)),
        ("America/Santiago", z(2026, 9, 5, 20)),
    ],
)
@pytest.mark.parametrize(("frequency", "minutes"), [("15m", 15), ("30m", 30)])
def test_quarter_and_half_hour_syncs_keep_a_fixed_real_time_cadence_across_dst(
    zone: str, start: datetime, frequency: str, minutes: int
) -> None:
    """Every shift here is a multiple of 30 minutes, so the local grid is also a UTC grid."""
    runs = next_runs(sync_schedule(frequency), start, zone, 24 * 60 // minutes * 2)
    assert {b - a for a, b in itertools.pairwise(runs)} == {timedelta(minutes=minutes)}
    assert {r.astimezone(ZoneInfo(zone)).minute % minutes for r in runs} == {0}


def test_hourly_sync_across_dst_is_one_real_hour_apart_for_whole_hour_shifts() -> None:
    for zone, start in [
        ("Europe/Paris", z(2026, 3, 28, 20)),
        ("Europe/Paris", z(2026, 10, 24, 20)),
        ("America/New_York", z(2026, 11, 1, 2)),
    ]:
        runs = next_runs(sync_schedule("1h"), start, zone, 30)
        assert {b - a for a, b in itertools.pairwise(runs)} == {timedelta(hours=1)}, zone


@pytest.mark.parametrize(
    ("frequency", "zone", "after", "want"),
    [
        # 6h in Paris on the 23-hour day: local 00/06/12/18 → 5 real hours from 00:00 CET to
        # 06:00 CEST; on the 25-hour day 7 real hours.
        (
            "6h",
            "Europe/Paris",
            (2026, 3, 28, 19),
            ["2026-03-29 00:00 +0100", "2026-03-29 06:00 +0200", "2026-03-29 12:00 +0200"],
        ),
        (
            "6h",
            "Europe/Paris",
            (2026, 10, 24, 19),
            ["2026-10-25 00:00 +0200", "2026-10-25 06:00 +0100", "2026-10-25 12:00 +0100"],
        ),
        # 2h: the 02:00 slot is in the gap → 03:00 CEST (once), the next at 04:00 CEST.
        (
            "2h",
            "Europe/Paris",
            (2026, 3, 29, 0, 30),
            ["2026-03-29 03:00 +0200", "2026-03-29 04:00 +0200", "2026-03-29 06:00 +0200"],
        ),
        # 2h: the 02:00 slot is repeated → first pass only, then 04:00 CET.
        (
            "2h",
            "Europe/Paris",
            (2026, 10, 25, 0, 30),
            ["2026-10-25 02:00 +0200", "2026-10-25 04:00 +0100", "2026-10-25 06:00 +0100"],
        ),
        # 3h in New York's fall-back: the repeated 01:00 hour holds no slot, 03:00 is 4 real
        # hours after 00:00.
        (
            "3h",
            "America/New_York",
            (2026, 10, 31, 22),
            ["2026-11-01 00:00 -0400", "2026-11-01 03:00 -0500", "2026-11-01 06:00 -0500"],
        ),
        # 12h in Santiago's midnight gap.
        (
            "12h",
            "America/Santiago",
            (2026, 9, 5, 11),
            ["2026-09-05 12:00 -0400", "2026-09-06 01:00 -0300", "2026-09-06 12:00 -0300"],
        ),
        # 1d / 1w / 1mo at local midnight.
        (
            "1d",
            "America/Santiago",
            (2026, 9, 5, 11),
            ["2026-09-06 01:00 -0300", "2026-09-07 00:00 -0300"],
        ),
        (
            "1w",
            "Europe/Paris",
            (2026, 10, 24),
            ["2026-10-26 00:00 +0100", "2026-11-02 00:00 +0100"],
        ),
        (
            "1mo",
            "Australia/Lord_Howe",
            (2026, 3, 15),
            ["2026-04-01 00:00 +1100", "2026-05-01 00:00 +1030"],
        ),
    ],
)
def test_every_n_hours_daily_weekly_monthly_syncs_keep_wall_clock_slots(
    frequency: str, zone: str, after: tuple[int, ...], want: list[str]
) -> None:
    runs = next_runs(sync_schedule(frequency), at(zone, *after), zone, len(want))
    assert shown(runs, zone) == want


@pytest.mark.parametrize("frequency", ["2h", "3h", "4h", "6h", "8h", "12h"])
@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("Europe/Paris", date(2026, 3, 29)),
        ("Europe/Paris", date(2026, 10, 25)),
        ("Australia/Lord_Howe", date(2026, 10, 4)),
        ("Antarctica/Troll", date(2026, 10, 25)),
        ("Asia/Kathmandu", date(2026, 6, 1)),
    ],
)
def test_every_n_hours_has_24_over_n_runs_on_every_local_day(
    frequency: str, zone: str, day: date
) -> None:
    n = int(frequency[:-1])
    tz = ZoneInfo(zone)
    start = at(zone, day.year, day.month, day.day) - timedelta(seconds=1)
    runs = next_runs(sync_schedule(frequency), start, zone, 24 // n + 1)
    on_day = [r for r in runs if r.astimezone(tz).date() == day]
    assert len(on_day) == 24 // n
    assert runs[24 // n].astimezone(tz).replace(tzinfo=None) == datetime(
        day.year, day.month, day.day
    ) + timedelta(days=1)


# ------------------------------------------------------------------ the one-pass oracle
def _slot_walls(doc: dict[str, Any], first: date, last: date) -> list[datetime]:
    out: list[datetime] = []
    d = first
    while d <= last:
        f = doc["frequency"]
        if f == "every_n_hours":
            out += [
                datetime(d.year, d.month, d.day, h, doc.get("minute", 0))
                for h in range(0, 24, doc["hours"])
            ]
        elif (
            f == "daily"
            or (f == "weekly" and d.weekday() == WEEKDAYS.index(doc["weekday"]))
            or (
                f == "monthly" and d.day == min(doc["day"], calendar.monthrange(d.year, d.month)[1])
            )
        ):
            out.append(datetime(d.year, d.month, d.day, doc.get("hour", 0), doc.get("minute", 0)))
        d += timedelta(days=1)
    return out


def oracle(doc: dict[str, Any], zone: str, start: datetime, end: datetime) -> list[datetime]:
    """Firing instants in (start, end], found by walking real time minute by minute."""
    tz = ZoneInfo(zone)
    step = {"every_15_minutes": 15, "every_30_minutes": 30}.get(doc["frequency"])
    real_time = step is not None or doc["frequency"] == "hourly" or doc.get("hours") == 1
    walls = []
    t = start
    while t <= end:
        walls.append((t, t.astimezone(tz).replace(tzinfo=None)))
        t += timedelta(minutes=1)
    if real_time:
        minute = doc.get("minute", 0)
        return [
            t
            for t, w in walls[1:]
            if (w.minute % step == 0 if step else w.minute == minute) and w.second == 0
        ]
    slots = _slot_walls(
        doc, walls[0][1].date() - timedelta(days=2), walls[-1][1].date() + timedelta(days=2)
    )
    slots.sort()
    out: list[datetime] = []
    high = walls[0][1]  # the highest wall-clock time reached so far
    for t, w in walls[1:]:
        if w > high:
            i = bisect.bisect_right(slots, high)  # the first slot after the high-water mark
            if i < len(slots) and slots[i] <= w:
                out.append(t)
            high = w
    return out


# (zone, a UTC instant a day before a transition): transitions not in the scenarios above
# as well as those that are.
TRANSITIONS = [
    ("Europe/Paris", z(2026, 3, 28, 12)),
    ("Europe/Paris", z(2026, 10, 24, 12)),
    ("America/New_York", z(2026, 3, 7, 12)),
    ("America/New_York", z(2026, 10, 31, 12)),
    ("Australia/Lord_Howe", z(2026, 10, 3, 4)),
    ("Australia/Lord_Howe", z(2026, 4, 4, 4)),
    ("Asia/Kathmandu", z(1985, 12, 31, 0)),  # +05:30 → +05:45
    ("Pacific/Chatham", z(2026, 9, 26, 4)),
    ("Pacific/Chatham", z(2026, 4, 4, 4)),
    ("America/Santiago", z(2026, 9, 5, 4)),
    ("America/Santiago", z(2026, 4, 4, 4)),
    ("Africa/Casablanca", z(2025, 2, 22, 4)),
    ("Africa/Casablanca", z(2025, 4, 5, 4)),
    ("Antarctica/Troll", z(2026, 3, 28, 4)),
    ("Antarctica/Troll", z(2026, 10, 24, 4)),
    ("Pacific/Apia", z(2011, 12, 29, 4)),  # skips 2011-12-30
    ("Pacific/Kwajalein", z(1993, 8, 20, 4)),  # skips 1993-08-21
    ("America/Havana", z(2026, 3, 7, 12)),  # 00:00 → 01:00
    ("Asia/Tehran", z(2022, 9, 20, 12)),  # its last fall-back, at midnight
    ("Asia/Pyongyang", z(2015, 8, 13, 12)),  # 00:00 → 23:30 (-30 min)
    ("Asia/Pyongyang", z(2018, 5, 3, 12)),  # 23:30 → 00:00 (+30 min)
    ("America/Caracas", z(2016, 4, 30, 12)),  # 02:30 → 03:00
    ("Europe/Moscow", z(2014, 10, 25, 0)),  # 02:00 → 01:00 for good
    ("Europe/Dublin", z(2026, 10, 24, 12)),  # "negative" DST in the tz data
    ("America/St_Johns", z(2026, 3, 7, 12)),  # -03:30 → -02:30
    ("America/Nuuk", z(2023, 10, 27, 12)),  # -02 → -02 (DST ends onto a new standard time)
]
DOCS = [
    {"frequency": "daily", "hour": 0, "minute": 0},
    {"frequency": "daily", "hour": 0, "minute": 15},
    {"frequency": "daily", "hour": 1, "minute": 30},
    {"frequency": "daily", "hour": 2, "minute": 0},
    {"frequency": "daily", "hour": 2, "minute": 30},
    {"frequency": "daily", "hour": 2, "minute": 50},
    {"frequency": "daily", "hour": 3, "minute": 15},
    {"frequency": "daily", "hour": 23, "minute": 45},
    {"frequency": "every_n_hours", "hours": 2, "minute": 0},
    {"frequency": "every_n_hours", "hours": 3, "minute": 30},
    {"frequency": "every_n_hours", "hours": 8, "minute": 45},
    {"frequency": "every_n_hours", "hours": 1, "minute": 15},
    {"frequency": "hourly", "minute": 0},
    {"frequency": "hourly", "minute": 45},
    {"frequency": "every_15_minutes"},
    {"frequency": "every_30_minutes"},
]


@pytest.mark.parametrize(
    ("zone", "start"), TRANSITIONS, ids=[f"{zn}-{s:%Y%m%d}" for zn, s in TRANSITIONS]
)
def test_next_run_agrees_with_the_one_pass_oracle_from_every_instant(
    zone: str, start: datetime
) -> None:
    end = start + timedelta(days=3)
    for doc in DOCS:
        schedule = parse_schedule(doc)
        want = oracle(doc, zone, start, end)
        assert want, (zone, doc)
        got = next_runs(schedule, start, zone, len(want))
        assert got == want, (zone, doc, shown(got, zone), shown(want, zone))
        # From any instant (every 17 minutes and 13 seconds, so inside gaps and both passes of
        # repeated hours too), the next run is the oracle's first one after it.
        t = start
        while t < want[-1]:
            expected = next(w for w in want if w > t)
            assert next_run(schedule, t, zone) == expected, (zone, doc, t)
            t += timedelta(minutes=17, seconds=13)


@pytest.mark.parametrize(
    ("zone", "start"), TRANSITIONS[:8], ids=[f"{zn}-{s:%Y%m%d}" for zn, s in TRANSITIONS[:8]]
)
def test_weekly_and_monthly_on_transition_days_agree_with_the_oracle(
    zone: str, start: datetime
) -> None:
    tz = ZoneInfo(zone)
    end = start + timedelta(days=3)
    for offset in range(3):
        day = (start + timedelta(days=offset)).astimezone(tz).date()
        for hour, minute in [(0, 0), (1, 45), (2, 30), (3, 0)]:
            for doc in (
                {
                    "frequency": "weekly",
                    "weekday": WEEKDAYS[day.weekday()],
                    "hour": hour,
                    "minute": minute,
                },
                {"frequency": "monthly", "day": day.day, "hour": hour, "minute": minute},
            ):
                want = oracle(doc, zone, start, end)
                assert next_runs(parse_schedule(doc), start, zone, len(want)) == want, (zone, doc)


# ------------------------------------------------------------------ next five
@pytest.mark.parametrize(
    ("zone", "start"), TRANSITIONS, ids=[f"{zn}-{s:%Y%m%d}" for zn, s in TRANSITIONS]
)
def test_next_five_strictly_increase_from_every_instant_around_a_transition(
    zone: str, start: datetime
) -> None:
    schedules = (
        [parse_schedule(doc) for doc in DOCS]
        + [sync_schedule(f) for f in ("1d", "1w", "1mo", "6h", "12h")]
        + [seg({"frequency": "monthly", "day": 31, "hour": 2, "minute": 30})]
    )
    t = start
    while t < start + timedelta(days=2):
        for schedule in schedules:
            five = next_runs(schedule, t, zone, 5)
            assert len(five) == 5 and five[0] > t
            assert all(a < b for a, b in itertools.pairwise(five)), (zone, schedule, t)
        t += timedelta(minutes=97)


# ------------------------------------------------------------------ catch-up, zone change
def test_downtime_across_a_transition_coalesces_into_one_catch_up_firing() -> None:
    paris = "Europe/Paris"
    schedule = seg({"frequency": "daily", "hour": 2, "minute": 30})
    due = at(paris, 2026, 3, 28, 2, 30)
    now = at(paris, 2026, 4, 2, 12, 0)  # down for five days, including the gap day
    firing = plan_firing(schedule, paris, due, now)
    assert firing is not None
    assert (firing.due_at, firing.coalesced, firing.catch_up) == (due, 6, True)
    assert shown([firing.next_due_at], paris) == ["2026-04-03 02:30 +0200"]  # type: ignore[list-item]
    # Ticking again at the same instant with the new plan owes nothing more.
    assert plan_firing(schedule, paris, firing.next_due_at, now) is None  # type: ignore[arg-type]


def test_a_run_on_time_is_not_a_catch_up_and_a_late_one_is() -> None:
    schedule = sync_schedule("15m")
    due = z(2026, 6, 1, 12, 0)
    on_time = plan_firing(schedule, "UTC", due, due + timedelta(seconds=59))
    assert on_time is not None and (on_time.coalesced, on_time.catch_up) == (1, False)
    assert on_time.next_due_at == z(2026, 6, 1, 12, 15)
    late = plan_firing(schedule, "UTC", due, due + timedelta(minutes=5))
    assert late is not None and (late.coalesced, late.catch_up) == (1, True)
    burst = plan_firing(schedule, "UTC", due, due + timedelta(hours=10, minutes=1))
    assert burst is not None and (burst.coalesced, burst.catch_up) == (41, True)
    assert burst.next_due_at == z(2026, 6, 1, 22, 15)


def test_zone_change_goes_on_from_the_slot_the_old_plan_waited_for() -> None:
    schedule = seg({"frequency": "daily", "hour": 9, "minute": 0})
    due = at("Europe/Paris", 2026, 6, 1, 9, 0)
    fired = due - timedelta(days=1)
    # Nothing due at the change: 09:00 New York on the same local day (06-01), later.
    moved = replan_in_zone(
        schedule, "Europe/Paris", "America/New_York", due, fired, due - timedelta(minutes=1)
    )
    assert moved == at("America/New_York", 2026, 6, 1, 9, 0)
    # Due (the scheduler was down two days over the change): the 06-01 slot in New York,
    # then one catch-up coalescing 06-01 and 06-02 (New York), then 06-03 New York.
    now = due + timedelta(days=1, hours=8)
    moved = replan_in_zone(schedule, "Europe/Paris", "America/New_York", due, fired, now)
    owed = plan_firing(schedule, "America/New_York", moved, now)  # type: ignore[arg-type]
    assert owed is not None
    assert (owed.due_at, owed.coalesced, owed.catch_up) == (moved, 2, True)
    assert owed.next_due_at == at("America/New_York", 2026, 6, 3, 9, 0) and owed.next_due_at > now


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    ("doc", "field", "reason"),
    [
        ({"frequency": "hourly", "minute": 60}, "minute", "out_of_range"),
        ({"frequency": "hourly", "minute": -1}, "minute", "out_of_range"),
        ({"frequency": "daily", "hour": 24}, "hour", "out_of_range"),
        ({"frequency": "daily", "hour": 12, "minute": 60}, "minute", "out_of_range"),
        ({"frequency": "monthly", "day": 0}, "day", "out_of_range"),
        ({"frequency": "monthly", "day": 32}, "day", "out_of_range"),
        ({"frequency": "weekly", "weekday": 7}, "weekday", "invalid_type"),
        ({"frequency": "weekly", "weekday": 0}, "weekday", "invalid_type"),
        ({"frequency": "weekly", "weekday": "7"}, "weekday", "invalid_value"),
        ({"frequency": "weekly", "weekday": "Funday"}, "weekday", "invalid_value"),
        ({"frequency": "weekly", "weekday": "mo"}, "weekday", "invalid_value"),
        ({"frequency": "weekly"}, "weekday", "required"),
        ({"frequency": "daily", "hour": "2"}, "hour", "invalid_type"),
        ({"frequency": "daily", "hour": True}, "hour", "invalid_type"),
        ({"frequency": "daily", "minute": 1.5}, "minute", "invalid_type"),
        ({"frequency": "daily", "day": 3}, "day", "not_applicable"),
        ({"frequency": "hourly", "hour": 3}, "hour", "not_applicable"),
        ({"frequency": "every_10_minutes"}, "frequency", "too_frequent"),
        ({"frequency": "every 5 minutes"}, "frequency", "too_frequent"),
        ({"frequency": "every_15_minutes"}, "frequency", "not_allowed_here"),
        ({"frequency": "every_n_hours", "hours": 6}, "frequency", "not_allowed_here"),
        ({"frequency": "yearly"}, "frequency", "too_rare"),
        ({"frequency": "sometimes"}, "frequency", "unknown_frequency"),
        ({"hour": 3}, "frequency", "required"),
        ({"frequency": "daily", "tz": "UTC"}, "tz", "unknown_field"),
    ],
)
def test_invalid_segment_schedules_are_refused_naming_the_field(
    doc: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ZerocopyError) as info:
        seg(doc)
    assert info.value.code == "validation_error"
    assert info.value.details == {"field": field, "reason": reason}
    assert field in info.value.message


@pytest.mark.parametrize(
    ("hours", "reason"),
    [
        (0, "out_of_range"),
        (5, "out_of_range"),
        (7, "out_of_range"),
        (24, "out_of_range"),
        (25, "out_of_range"),
        (-6, "out_of_range"),
        ("6", "invalid_type"),
        (None, "required"),
    ],
)
def test_every_n_hours_documents_refuse_bad_n_naming_hours(hours: object, reason: str) -> None:
    with pytest.raises(ZerocopyError) as info:
        parse_schedule({"frequency": "every_n_hours", "hours": hours})
    assert info.value.details == {"field": "hours", "reason": reason}
    assert "schedule.hours" in info.value.message


@pytest.mark.parametrize(
    ("value", "reason", "says"),
    [
        ("0h", "out_of_range", "at least"),
        ("0m", "out_of_range", "at least"),
        ("every 0 hours", "out_of_range", "at least"),
        ("-1h", "out_of_range", "at least"),
        ("-15m", "out_of_range", "at least"),
        ("every -2 hours", "out_of_range", "at least"),
        ("10m", "too_frequent", "15m"),
        ("14 minutes", "too_frequent", "15m"),
        ("5h", "unknown_frequency", "divide"),
        ("every 7 hours", "unknown_frequency", "divide"),
        ("23h", "unknown_frequency", "divide"),
        ("25h", "unknown_frequency", "longer than a day"),
        ("every 25 hours", "unknown_frequency", "longer than a day"),
        ("48h", "unknown_frequency", "longer than a day"),
        ("45m", "unknown_frequency", "15m or 30m"),
        ("2mo", "too_rare", "1mo"),
    ],
)
def test_sync_frequency_refusals_say_why(value: str, reason: str, says: str) -> None:
    with pytest.raises(ZerocopyError) as info:
        check_sync_frequency(value)
    assert info.value.code == "validation_error"
    assert info.value.details == {"field": "frequency", "reason": reason}
    assert says in info.value.message and repr(value) in info.value.message


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("every 15 minutes", "15m"),
        ("Every 6 Hours", "6h"),
        ("24h", "1d"),
        ("60m", "1h"),
        ("7d", "1w"),
        ("hourly", "1h"),
        ("every-2-hours", "2h"),
        (" 12H ", "12h"),
    ],
)
def test_sync_frequency_spellings_are_stored_in_short_form(value: str, stored: str) -> None:
    assert check_sync_frequency(value) == stored


@pytest.mark.parametrize("weekday", [0, 1, 6, 7])
def test_a_numbered_weekday_is_refused_saying_names_are_expected(weekday: int) -> None:
    """Numbering differs between conventions (0 is Monday in ISO-like APIs, Sunday in cron):
    a number is refused rather than guessed, and the message says what to send."""
    with pytest.raises(ZerocopyError) as info:
        seg({"frequency": "weekly", "weekday": weekday, "hour": 9})
    assert info.value.details == {"field": "weekday", "reason": "invalid_type"}
    assert "name" in info.value.message and "monday" in info.value.message
    assert "number" in info.value.message


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("europe/paris", "Europe/Paris"),
        ("AMERICA/NEW_YORK", "America/New_York"),
        (" Europe/Paris ", "Europe/Paris"),
        ("Australia/Lord Howe", "Australia/Lord_Howe"),
        ("utc", "UTC"),
    ],
)
def test_a_misspelled_time_zone_is_refused_with_the_iana_spelling(name: str, hint: str) -> None:
    from zerocopy.scheduling.schedule import load_zone

    with pytest.raises(ZerocopyError) as info:
        load_zone(name)
    assert info.value.details == {"field": "time_zone", "reason": "unknown_time_zone"}
    assert f"did you mean {hint!r}" in info.value.message


@pytest.mark.parametrize("name", ["Mars/Olympus", "CEST", "+02:00", "", "Europe"])
def test_an_unknown_time_zone_is_refused_without_a_guess(name: str) -> None:
    from zerocopy.scheduling.schedule import load_zone

    with pytest.raises(ZerocopyError) as info:
        load_zone(name)
    assert info.value.details == {"field": "time_zone", "reason": "unknown_time_zone"}
    assert "did you mean" not in info.value.message and repr(name) in info.value.message


@pytest.mark.parametrize("frequency", ["every_n_hours", "every_15_minutes", "every_30_minutes"])
def test_a_sync_only_frequency_on_a_segment_says_it_is_for_syncs(frequency: str) -> None:
    doc: dict[str, Any] = {"frequency": frequency}
    if frequency == "every_n_hours":
        doc["hours"] = 6
    with pytest.raises(ZerocopyError) as info:
        seg(doc)
    assert info.value.details == {"field": "frequency", "reason": "not_allowed_here"}
    assert "syncs" in info.value.message
    assert "manual, hourly, daily, weekly, monthly" in info.value.message


@pytest.mark.parametrize(
    ("doc", "canonical"),
    [
        ({"frequency": "daily", "time": "02:30"}, {"frequency": "daily", "hour": 2, "minute": 30}),
        ({"frequency": "daily", "time": "2:05"}, {"frequency": "daily", "hour": 2, "minute": 5}),
        (
            {"frequency": "weekly", "weekday": "monday", "time": "23:59"},
            {"frequency": "weekly", "weekday": "monday", "hour": 23, "minute": 59},
        ),
        (
            {"frequency": "monthly", "day": 31, "time": "00:00"},
            {"frequency": "monthly", "day": 31, "hour": 0, "minute": 0},
        ),
    ],
)
def test_a_time_of_day_may_be_written_hh_mm(doc: dict[str, Any], canonical: dict[str, Any]) -> None:
    """The issue writes "daily at HH:MM": ``time`` is read as hour and minute, and the
    schedule is stored and shown with ``hour`` and ``minute``."""
    schedule = seg(doc)
    assert schedule == seg(canonical)
    assert schedule.to_dict() == seg(canonical).to_dict()


@pytest.mark.parametrize(
    ("doc", "field", "reason"),
    [
        ({"frequency": "daily", "time": "24:00"}, "time", "out_of_range"),
        ({"frequency": "daily", "time": "12:60"}, "time", "out_of_range"),
        ({"frequency": "daily", "time": "2:5"}, "time", "invalid_value"),
        ({"frequency": "daily", "time": "02:30:00"}, "time", "invalid_value"),
        ({"frequency": "daily", "time": "2pm"}, "time", "invalid_value"),
        ({"frequency": "daily", "time": 230}, "time", "invalid_type"),
        ({"frequency": "daily", "time": "02:30", "hour": 2}, "time", "invalid_value"),
        ({"frequency": "daily", "time": "02:30", "minute": 30}, "time", "invalid_value"),
        ({"frequency": "hourly", "time": "02:30"}, "time", "not_applicable"),
        ({"frequency": "manual", "time": "02:30"}, "time", "not_applicable"),
    ],
)
def test_a_bad_time_of_day_is_refused_naming_time(
    doc: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ZerocopyError) as info:
        seg(doc)
    assert info.value.details == {"field": field, "reason": reason}
    assert "schedule.time" in info.value.message


def _transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The instants (to the minute) where ``zone``'s UTC offset changes in [start, end)."""
    out: list[datetime] = []
    t, before = start, start.astimezone(zone).utcoffset()
    while t < end:
        after_week = t + timedelta(days=7)
        offset = after_week.astimezone(zone).utcoffset()
        if offset != before:
            lo, hi = t, after_week
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (mid, hi) if mid.astimezone(zone).utcoffset() == before else (lo, mid)
            out.append(hi)
            before = offset
        t = after_week
    return out


def test_every_iana_zone_around_each_2025_2026_transition() -> None:
    """Every zone the workspace may take, around each of its offset changes in 2025-2026:
    the next 5 runs strictly increase, and a daily slot runs once a local day, at its wall
    time or (when that time does not exist) at the first instant after the gap."""
    from zerocopy.scheduling.schedule import _iana_names

    daily = seg({"frequency": "daily", "hour": 2, "minute": 30})
    schedules = [daily, sync_schedule("15m"), sync_schedule("1h"), sync_schedule("6h")]
    checked = 0
    for name in sorted(_iana_names()):
        zone = ZoneInfo(name)
        for change in _transitions(zone, z(2025, 1, 1), z(2027, 1, 1)):
            for after in (change - timedelta(hours=26), change - timedelta(minutes=1)):
                for schedule in schedules:
                    five = next_runs(schedule, after, zone, 5)
                    assert len(five) == 5 and five[0] > after, (name, after, schedule)
                    assert all(a < b for a, b in itertools.pairwise(five)), (name, after)
                days = [r.astimezone(zone).date() for r in next_runs(daily, after, zone, 3)]
                assert len(set(days)) == 3, (name, after, days)
                for r in next_runs(daily, after, zone, 3):
                    wall = r.astimezone(zone).replace(tzinfo=None)
                    slot = datetime.combine(wall.date(), datetime.min.time()).replace(
                        hour=2, minute=30
                    )
                    # At the slot, or at the end of a gap containing it (the minute before
                    # shows a wall time before the slot).
                    before = (r - timedelta(seconds=1)).astimezone(zone).replace(tzinfo=None)
                    assert wall == slot or before < slot < wall, (name, r)
                checked += 1
    assert checked > 1000  # 804 offset changes in 2025-2026, two starting points each
