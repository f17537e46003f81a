"""Schedule scenarios of issue 9 ("Schedules") with hand-computed UTC instants, frozen clock.

Every expectation below was worked out from the zone's published rules, not from the code:
Paris 2026-03-29 02:00 CET → 03:00 CEST, 2026-10-25 03:00 CEST → 02:00 CET; New York
2026-03-08 02:00 EST → 03:00 EDT, 2026-11-01 02:00 EDT → 01:00 EST; Lord Howe 2026-10-04
02:00 (+10:30) → 02:30 (+11), 2026-04-05 02:00 (+11) → 01:30 (+10:30); Santiago 2026-09-06
00:00 (-04) → 01:00 (-03), 2026-04-05 00:00 (-03) → 2026-04-04 23:00 (-04); Havana 2026-03-08
00:00 (-05) → 01:00 (-04), 2026-11-01 01:00 (-04) → 00:00 (-05); Kathmandu +05:45 all year;
Sydney (southern hemisphere) 2026-10-04 02:00 → 03:00, 2026-04-05 03:00 → 02:00.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from zerocopy.scheduling.schedule import next_run, next_runs, parse_schedule, plan_firing
from zerocopy.scheduling.sync_frequency import sync_schedule


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def plan(doc: dict[str, object], zone: str, after: datetime, count: int) -> list[datetime]:
    got = next_runs(parse_schedule(doc), after, zone, count)
    assert all(a < b for a, b in itertools.pairwise(got)) and got[0] > after
    return got


DAILY_0230 = {"frequency": "daily", "hour": 2, "minute": 30}


@pytest.mark.parametrize(
    ("zone", "after", "want"),
    [
        # Spring forward: 02:30 does not exist → the first instant after the gap, once.
        (
            "Europe/Paris",
            utc(2026, 3, 27, 12),
            [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)],
        ),
        (
            "America/New_York",
            utc(2026, 3, 6, 12),
            [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 30)],
        ),
        # Fall back: 02:30 occurs twice in Paris (CEST then CET) → once, on the first pass.
        (
            "Europe/Paris",
            utc(2026, 10, 23, 12),
            [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
        ),
        # New York's repeated hour is 01:xx: 02:30 exists once either side.
        (
            "America/New_York",
            utc(2026, 10, 30, 12),
            [utc(2026, 10, 31, 6, 30), utc(2026, 11, 1, 7, 30), utc(2026, 11, 2, 7, 30)],
        ),
        # Lord Howe: the gap is 02:00-02:30, so 02:30 exists (+11) on the change day;
        # the day before it is 02:30 at +10:30 = 16:00 UTC.
        (
            "Australia/Lord_Howe",
            utc(2026, 10, 2, 12),
            [utc(2026, 10, 2, 16), utc(2026, 10, 3, 15, 30), utc(2026, 10, 4, 15, 30)],
        ),
        # Kathmandu +05:45: 02:30 local is 20:45 UTC the day before.
        (
            "Asia/Kathmandu",
            utc(2026, 1, 1),
            [utc(2026, 1, 1, 20, 45), utc(2026, 1, 2, 20, 45), utc(2026, 1, 3, 20, 45)],
        ),
    ],
)
def test_daily_0230_across_transitions(zone: str, after: datetime, want: list[datetime]) -> None:
    assert plan(DAILY_0230, zone, after, 3) == want


def test_lord_howe_half_hour_gap_and_fold() -> None:
    # 02:15 falls in the 30-minute gap → 02:30 (+11) = 15:30 UTC, once.
    doc = {"frequency": "daily", "hour": 2, "minute": 15}
    assert plan(doc, "Australia/Lord_Howe", utc(2026, 10, 3, 12), 2) == [
        utc(2026, 10, 3, 15, 30),
        utc(2026, 10, 4, 15, 15),
    ]
    # 01:45 is repeated on 2026-04-05 (+11 then +10:30): first pass only, 14:45 UTC.
    doc = {"frequency": "daily", "hour": 1, "minute": 45}
    assert plan(doc, "Australia/Lord_Howe", utc(2026, 4, 4, 0), 2) == [
        utc(2026, 4, 4, 14, 45),
        utc(2026, 4, 5, 15, 15),
    ]


def test_hourly_in_lord_howe_follows_real_time_on_change_days() -> None:
    # Hourly at :00, fall back 02:00 (+11) → 01:30: 01:00 (+11) = 14:00 UTC, then the local
    # clock next shows :00 at 02:00 (+10:30) = 15:30 UTC (90 minutes later).
    got = plan(
        {"frequency": "hourly", "minute": 0}, "Australia/Lord_Howe", utc(2026, 4, 4, 13, 30), 3
    )
    assert got == [utc(2026, 4, 4, 14), utc(2026, 4, 4, 15, 30), utc(2026, 4, 4, 16, 30)]
    # Spring forward 02:00 (+10:30) → 02:30 (+11): 01:00 (+10:30) = 14:30 UTC, then 03:00 (+11)
    # = 16:00 UTC (the clock never shows 02:00) — 90 minutes; 04:00 = 17:00.
    got = plan({"frequency": "hourly", "minute": 0}, "Australia/Lord_Howe", utc(2026, 10, 3, 14), 3)
    assert got == [utc(2026, 10, 3, 14, 30), utc(2026, 10, 3, 16), utc(2026, 10, 3, 17)]
    # Hourly at :45: 01:45 (+10:30) = 15:15, then 02:45 (+11) = 15:45 (30 minutes).
    got = plan(
        {"frequency": "hourly", "minute": 45}, "Australia/Lord_Howe", utc(2026, 10, 3, 15), 2
    )
    assert got == [utc(2026, 10, 3, 15, 15), utc(2026, 10, 3, 15, 45)]


def test_kathmandu_odd_offset_quarter_hours_and_hourly() -> None:
    # Local :00/:15/:30/:45 at +05:45 are UTC :15/:30/:45/:00.
    got = plan({"frequency": "every_30_minutes"}, "Asia/Kathmandu", utc(2026, 5, 1, 0, 0), 3)
    assert got == [utc(2026, 5, 1, 0, 15), utc(2026, 5, 1, 0, 45), utc(2026, 5, 1, 1, 15)]
    got = plan({"frequency": "hourly", "minute": 0}, "Asia/Kathmandu", utc(2026, 5, 1, 0, 0), 2)
    assert got == [utc(2026, 5, 1, 0, 15), utc(2026, 5, 1, 1, 15)]
    got = plan({"frequency": "every_15_minutes"}, "Asia/Kathmandu", utc(2026, 5, 1, 0, 0), 2)
    assert got == [utc(2026, 5, 1, 0, 15), utc(2026, 5, 1, 0, 30)]


@pytest.mark.parametrize(
    ("zone", "after", "want"),
    [
        # Santiago skips 00:00-01:00 on 2026-09-06: midnight runs at 01:00 (-03) = 04:00 UTC.
        ("America/Santiago", utc(2026, 9, 5, 12), [utc(2026, 9, 6, 4), utc(2026, 9, 7, 3)]),
        # Santiago repeats 23:xx on 2026-04-04; midnight of 04-05 exists once (-04).
        ("America/Santiago", utc(2026, 4, 4, 12), [utc(2026, 4, 5, 4)]),
        # Havana skips 00:00-01:00 on 2026-03-08: 01:00 (-04) = 05:00 UTC.
        ("America/Havana", utc(2026, 3, 7, 12), [utc(2026, 3, 8, 5), utc(2026, 3, 9, 4)]),
        # Havana repeats 00:xx on 2026-11-01: midnight on its first pass (-04) = 04:00 UTC.
        ("America/Havana", utc(2026, 10, 31, 12), [utc(2026, 11, 1, 4), utc(2026, 11, 2, 5)]),
    ],
)
def test_sync_daily_where_midnight_is_skipped_or_repeated(
    zone: str, after: datetime, want: list[datetime]
) -> None:
    got = next_runs(sync_schedule("1d"), after, zone, len(want))
    assert got == want


def test_monthly_day_31_and_29_through_a_leap_year() -> None:
    day31 = {"frequency": "monthly", "day": 31, "hour": 6, "minute": 0}
    got = plan(day31, "UTC", utc(2027, 12, 31, 7), 4)
    assert got == [
        utc(2028, 1, 31, 6),
        utc(2028, 2, 29, 6),
        utc(2028, 3, 31, 6),
        utc(2028, 4, 30, 6),
    ]
    day29 = {"frequency": "monthly", "day": 29, "hour": 0, "minute": 0}
    assert plan(day29, "UTC", utc(2027, 1, 30), 2) == [utc(2027, 2, 28), utc(2027, 3, 29)]
    assert plan(day29, "UTC", utc(2028, 1, 30), 2) == [utc(2028, 2, 29), utc(2028, 3, 29)]
    # Southern hemisphere month end across Sydney's October spring-forward (AEST → AEDT).
    day30 = {"frequency": "monthly", "day": 30, "hour": 23, "minute": 0}
    assert plan(day30, "Australia/Sydney", utc(2026, 9, 1), 2) == [
        utc(2026, 9, 30, 13),  # 23:00 AEST (+10)
        utc(2026, 10, 30, 12),  # 23:00 AEDT (+11)
    ]


def test_weekly_across_sydney_fall_back() -> None:
    # Sunday 02:30 on 2026-04-05: 02:xx is repeated (AEDT then AEST) → first pass, 15:30 UTC.
    doc = {"frequency": "weekly", "weekday": "sun", "hour": 2, "minute": 30}
    assert plan(doc, "Australia/Sydney", utc(2026, 4, 1), 2) == [
        utc(2026, 4, 4, 15, 30),
        utc(2026, 4, 11, 16, 30),
    ]


def test_every_n_hours_keeps_local_slots_across_dst() -> None:
    # Documented choice: every-N-hours (N >= 2) runs each local slot 00:00, N:00, … once.
    # Paris spring day, every 2 hours: 00:00 CET, 02:00 → 03:00 CEST (gap end), 04:00 CEST …
    got = next_runs(sync_schedule("2h"), utc(2026, 3, 28, 22, 30), "Europe/Paris", 4)
    assert got == [
        utc(2026, 3, 28, 23),
        utc(2026, 3, 29, 1),
        utc(2026, 3, 29, 2),
        utc(2026, 3, 29, 4),
    ]
    # New York fall-back day, every 6 hours: 00:00 EDT, 06:00 EST, 12:00 EST (7 real hours).
    got = next_runs(sync_schedule("6h"), utc(2026, 11, 1, 3), "America/New_York", 3)
    assert got == [utc(2026, 11, 1, 4), utc(2026, 11, 1, 11), utc(2026, 11, 1, 17)]
    # Every local day has 24/N runs, 23- and 25-hour days included.
    for day in (utc(2026, 3, 29), utc(2026, 10, 25)):
        start = day - timedelta(hours=3)  # 22:00 CET / 23:00 CEST the evening before
        runs = next_runs(sync_schedule("3h"), start, "Europe/Paris", 8)
        assert {r.astimezone(ZoneInfo("Europe/Paris")).date() for r in runs} == {day.date()}


def test_fifteen_minutes_across_new_york_fall_back_are_real_time() -> None:
    got = next_runs(sync_schedule("15m"), utc(2026, 11, 1, 5, 50), "America/New_York", 6)
    assert got == [utc(2026, 11, 1, 6) + timedelta(minutes=15 * i) for i in range(6)]


def test_catch_up_after_downtime_is_one_run_flagged_and_plans_after_now() -> None:
    schedule = parse_schedule(DAILY_0230)
    due = utc(2026, 3, 28, 1, 30)  # Paris 02:30 CET on the day before spring-forward
    now = utc(2026, 3, 31, 9)  # down for three days, through the DST change
    firing = plan_firing(schedule, "Europe/Paris", due, now)
    assert firing is not None
    # 03-28 01:30Z, 03-29 01:00Z (gap end), 03-30 00:30Z, 03-31 00:30Z: one run for all four.
    assert (firing.due_at, firing.coalesced, firing.catch_up) == (due, 4, True)
    assert firing.next_due_at == utc(2026, 4, 1, 0, 30)
    assert next_run(schedule, now, "Europe/Paris") == firing.next_due_at
