"""Red-team scenarios of the schedule arithmetic, checked against an independent oracle.

The oracle does no zone arithmetic of its own: it walks real time minute by minute, reads the
local wall clock through zoneinfo and

* for ``hourly`` (and every 1 hour) fires at every instant whose local minute is M: real-time
  hours, so both passes of a repeated hour run and a skipped hour has no run;
* for every other wall-clock frequency fires a local (date, HH:MM) slot at the first instant
  whose wall clock is at or past it (so a repeated slot runs on its first pass only and a
  skipped one at the end of the gap), slots landing on the same instant once.

Zones with unusual transitions: Pacific/Chatham (+12:45/+13:45, at 02:45/03:45), Lord Howe
(30-minute shift), America/Havana and America/Santiago (midnight gaps), Asia/Beirut in 2022
(00:00 → 01:00), Asia/Kolkata and Asia/Kathmandu (no DST, +05:30 / +05:45).
"""

from __future__ import annotations

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
    load_zone,
    next_run,
    next_runs,
    parse_schedule,
    plan_firing,
    replan_in_zone,
)
from zerocopy.scheduling.sync_frequency import sync_schedule


def local(zone: str, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)  # type: ignore[misc]


def walls(instants: list[datetime], zone: str) -> list[str]:
    return [i.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %z") for i in instants]


def _wall(t: datetime, zone: ZoneInfo) -> datetime:
    return t.astimezone(zone).replace(tzinfo=None)


def _slot_days(doc: dict[str, Any], first: date, last: date) -> list[date]:
    out = []
    d = first
    while d <= last:
        f = doc["frequency"]
        if (
            f in ("daily", "every_n_hours")
            or (f == "weekly" and d.weekday() == WEEKDAYS.index(doc["weekday"]))
            or (
                f == "monthly"
                and d.day == min(doc.get("day", 1), calendar.monthrange(d.year, d.month)[1])
            )
        ):
            out.append(d)
        d += timedelta(days=1)
    return out


def oracle(doc: dict[str, Any], after: datetime, zone_name: str, count: int) -> list[datetime]:
    zone = ZoneInfo(zone_name)
    minute = doc.get("minute", 0)
    hourly = doc["frequency"] == "hourly" or doc.get("hours") == 1
    t = after.replace(second=0, microsecond=0)
    if hourly or doc["frequency"] in ("every_15_minutes", "every_30_minutes"):
        step = {"every_15_minutes": 15, "every_30_minutes": 30}.get(doc["frequency"])
        out: list[datetime] = []
        while len(out) < count:
            t += timedelta(minutes=1)
            m = _wall(t, zone).minute
            if t > after and (m == minute if step is None else m % step == 0):
                out.append(t)
        return out
    # Wall-clock slots: the first minute whose wall clock reaches the slot.
    start = _wall(after, zone).date() - timedelta(days=2)
    days = _slot_days(doc, start, start + timedelta(days=400))
    hours = range(0, 24, doc["hours"]) if doc["frequency"] == "every_n_hours" else [doc["hour"]]
    slots = sorted(datetime(d.year, d.month, d.day, h, minute) for d in days for h in hours)
    found: list[datetime] = []
    t = after.replace(second=0, microsecond=0) - timedelta(days=3)
    for slot in slots:
        while _wall(t, zone) < slot:
            t += timedelta(minutes=1)
        # t is the first minute reaching the slot only if the minute before had not.
        first = t
        while _wall(first - timedelta(minutes=1), zone) >= slot:
            first -= timedelta(minutes=1)
        if first > after and (not found or first > found[-1]):
            found.append(first)
        if len(found) == count:
            break
    return found


# Transitions around which to look (local times just before them), 2026 unless said.
AROUND = [
    ("Pacific/Chatham", (2026, 9, 27, 0, 0)),  # 02:45 → 03:45 (+12:45 → +13:45)
    ("Pacific/Chatham", (2026, 4, 5, 0, 0)),  # 03:45 → 02:45
    ("Australia/Lord_Howe", (2026, 10, 4, 0, 0)),  # 02:00 → 02:30
    ("Australia/Lord_Howe", (2026, 4, 5, 0, 0)),  # 02:00 → 01:30
    ("America/Havana", (2026, 3, 7, 22, 0)),  # 00:00 → 01:00
    ("America/Havana", (2026, 10, 31, 22, 0)),  # 01:00 → 00:00
    ("America/Santiago", (2026, 9, 5, 22, 0)),  # 00:00 → 01:00
    ("America/Santiago", (2026, 4, 4, 21, 0)),  # 00:00 → 23:00 the day before
    ("Asia/Beirut", (2022, 3, 26, 22, 0)),  # 00:00 → 01:00
    ("Asia/Beirut", (2022, 10, 29, 22, 0)),  # 00:00 → 23:00
    ("Europe/Paris", (2026, 3, 29, 0, 0)),
    ("Europe/Paris", (2026, 10, 25, 0, 0)),
    ("America/New_York", (2026, 3, 8, 0, 0)),
    ("America/New_York", (2026, 11, 1, 0, 0)),
    ("Asia/Kolkata", (2026, 3, 29, 0, 0)),
    ("Asia/Kathmandu", (2026, 3, 29, 0, 0)),
]


@pytest.mark.parametrize(("zone", "start"), AROUND)
@pytest.mark.parametrize("minute", [0, 15, 30, 44, 45, 59])
def test_hourly_matches_the_oracle_and_runs_by_real_time_hours(
    zone: str, start: tuple[int, ...], minute: int
) -> None:
    after = local(zone, *start)
    doc = {"frequency": "hourly", "minute": minute}
    got = next_runs(parse_schedule(doc), after, zone, 8)
    assert got == oracle(doc, after, zone, 8), (walls(got, zone), zone)
    gaps = {b - a for a, b in itertools.pairwise(got)}
    # Real time between runs: an hour, give or take the zone's DST shift.
    assert all(timedelta(minutes=30) <= g <= timedelta(minutes=90) for g in gaps), gaps
    if zone not in ("Australia/Lord_Howe",):  # whole-hour shifts: exactly an hour apart
        assert gaps == {timedelta(hours=1)}, (walls(got, zone), gaps)
    # every_n_hours 1 and the sync frequency 1h follow the same rule.
    same = parse_schedule({"frequency": "every_n_hours", "hours": 1, "minute": minute})
    assert next_runs(same, after, zone, 8) == got
    if minute == 0:
        assert next_runs(sync_schedule("1h"), after, zone, 8) == got


def test_hourly_fall_back_runs_in_both_passes_of_the_repeated_hour() -> None:
    ny = "America/New_York"
    got = next_runs(
        parse_schedule({"frequency": "hourly", "minute": 0}), local(ny, 2026, 11, 1, 0, 30), ny, 4
    )
    assert walls(got, ny) == [
        "2026-11-01 01:00 -0400",
        "2026-11-01 01:00 -0500",
        "2026-11-01 02:00 -0500",
        "2026-11-01 03:00 -0500",
    ]


def test_hourly_chatham_spring_forward_skips_the_missing_hour() -> None:
    z = "Pacific/Chatham"
    got = next_runs(
        parse_schedule({"frequency": "hourly", "minute": 50}), local(z, 2026, 9, 27, 1), z, 3
    )
    assert walls(got, z) == [
        "2026-09-27 01:50 +1245",
        "2026-09-27 03:50 +1345",
        "2026-09-27 04:50 +1345",
    ]


@pytest.mark.parametrize(("zone", "start"), AROUND)
@pytest.mark.parametrize(
    "doc",
    [
        {"frequency": "daily", "hour": 0, "minute": 0},
        {"frequency": "daily", "hour": 2, "minute": 45},
        {"frequency": "daily", "hour": 1, "minute": 30},
        {"frequency": "daily", "hour": 23, "minute": 30},
        {"frequency": "every_n_hours", "hours": 2, "minute": 45},
        {"frequency": "every_n_hours", "hours": 3, "minute": 0},
        {"frequency": "every_n_hours", "hours": 12, "minute": 30},
    ],
)
def test_daily_and_every_n_hours_match_the_oracle(
    zone: str, start: tuple[int, ...], doc: dict[str, Any]
) -> None:
    after = local(zone, *start)
    got = next_runs(parse_schedule(doc), after, zone, 5)
    assert got == oracle(doc, after, zone, 5), (walls(got, zone), zone, doc)


@pytest.mark.parametrize(("zone", "start"), AROUND)
@pytest.mark.parametrize(("hour", "minute"), [(0, 0), (0, 30), (2, 45), (1, 15)])
def test_weekly_and_monthly_on_the_transition_day_match_the_oracle(
    zone: str, start: tuple[int, ...], hour: int, minute: int
) -> None:
    after = local(zone, *start)
    day = (after + timedelta(hours=12)).astimezone(ZoneInfo(zone)).date()
    for doc in (
        {"frequency": "weekly", "weekday": WEEKDAYS[day.weekday()], "hour": hour, "minute": minute},
        {"frequency": "monthly", "day": day.day, "hour": hour, "minute": minute},
    ):
        got = next_runs(parse_schedule(doc), after, zone, 2)
        assert got == oracle(doc, after, zone, 2), (walls(got, zone), zone, doc)


def test_midnight_gap_daily_runs_once_at_the_end_of_the_gap() -> None:
    for zone, after, expected in [
        (
            "America/Havana",
            local("America/Havana", 2026, 3, 7, 12),
            ["2026-03-08 01:00 -0400", "2026-03-09 00:00 -0400"],
        ),
        (
            "Asia/Beirut",
            local("Asia/Beirut", 2022, 3, 26, 12),
            ["2022-03-27 01:00 +0300", "2022-03-28 00:00 +0300"],
        ),
    ]:
        doc = {"frequency": "daily", "hour": 0, "minute": 0}
        assert walls(next_runs(parse_schedule(doc), after, zone, 2), zone) == expected
        # The sync frequency 1d and 1w (Havana 2026-03-08 is a Sunday, Beirut's a Sunday too).
        assert walls(next_runs(sync_schedule("1d"), after, zone, 2), zone) == expected


@pytest.mark.parametrize(
    ("year", "day", "expected_feb"),
    [
        (2027, 29, 28),
        (2028, 29, 29),
        (2028, 30, 29),
        (2028, 31, 29),
        (2100, 29, 28),  # not a leap year (century)
        (2000, 31, 29),  # a leap year (divisible by 400)
        (2027, 28, 28),
    ],
)
def test_monthly_late_days_across_february(year: int, day: int, expected_feb: int) -> None:
    doc = {"frequency": "monthly", "day": day, "hour": 6, "minute": 0}
    got = next_runs(parse_schedule(doc), local("Europe/Paris", year, 1, 15), "Europe/Paris", 3)
    days = [t.astimezone(ZoneInfo("Europe/Paris")).date() for t in got]
    assert days == [
        date(year, 1, day),
        date(year, 2, expected_feb),
        date(year, 3, min(day, 31)),
    ]


@pytest.mark.parametrize("zone", ["Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham"])
@pytest.mark.parametrize("frequency", ["every_15_minutes", "every_30_minutes"])
def test_intervals_across_any_shift_are_real_time_intervals(zone: str, frequency: str) -> None:
    step = timedelta(minutes=15 if frequency == "every_15_minutes" else 30)
    for start in [(2026, 10, 4, 1, 0), (2026, 4, 5, 1, 0), (2026, 9, 27, 2, 0), (2026, 4, 5, 2, 0)]:
        after = local(zone, *start)
        got = next_runs(parse_schedule({"frequency": frequency}), after, zone, 12)
        assert got == oracle({"frequency": frequency}, after, zone, 12)
        assert {b - a for a, b in itertools.pairwise(got)} == {step}


def test_catch_up_after_downtime_spanning_spring_forward() -> None:
    paris = "Europe/Paris"
    schedule = parse_schedule({"frequency": "daily", "hour": 2, "minute": 30})
    due = next_run(schedule, local(paris, 2026, 3, 28, 12), paris)
    assert walls([due], paris) == ["2026-03-29 03:00 +0200"]  # type: ignore[list-item]
    firing = plan_firing(schedule, paris, due, local(paris, 2026, 3, 31, 1))  # type: ignore[arg-type]
    assert firing is not None
    assert (firing.coalesced, firing.catch_up, firing.due_at) == (2, True, due)
    assert walls([firing.next_due_at], paris) == ["2026-03-31 02:30 +0200"]  # type: ignore[list-item]


def test_catch_up_of_hourly_across_fall_back_counts_real_hours() -> None:
    ny = "America/New_York"
    schedule = parse_schedule({"frequency": "hourly", "minute": 0})
    due = local(ny, 2026, 11, 1, 0)
    firing = plan_firing(schedule, ny, due, local(ny, 2026, 11, 1, 2, 30))
    # 00:00, 01:00 EDT, 01:00 EST, 02:00 EST: four hours of real time, four occurrences.
    assert firing is not None and firing.coalesced == 4
    assert walls([firing.next_due_at], ny) == ["2026-11-01 03:00 -0500"]  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("doc", "field", "reason"),
    [
        ({"frequency": "hourly", "minute": 60}, "minute", "out_of_range"),
        ({"frequency": "daily", "hour": 24}, "hour", "out_of_range"),
        ({"frequency": "monthly", "day": 0}, "day", "out_of_range"),
        ({"frequency": "monthly", "day": 32}, "day", "out_of_range"),
        ({"frequency": "weekly", "weekday": 1}, "weekday", "invalid_type"),
        ({"frequency": "weekly", "weekday": "funday"}, "weekday", "invalid_value"),
        ({"frequency": "weekly"}, "weekday", "required"),
        ({"frequency": "every 7 hours"}, "frequency", "unknown_frequency"),
        ({"frequency": "every 5 minutes"}, "frequency", "too_frequent"),
        ({"frequency": "Every 2 Months"}, "frequency", "too_rare"),
        ({"frequency": "daily", "hour": "2"}, "hour", "invalid_type"),
        ({"frequency": "daily", "hour": 2.5}, "hour", "invalid_type"),
        ({"frequency": "daily", "day": 3}, "day", "not_applicable"),
        ({"frequency": "every_n_hours", "hours": 1}, "frequency", "not_allowed_here"),
        ({"frequency": "daily", "timezone": "UTC"}, "timezone", "unknown_field"),
    ],
)
def test_invalid_segment_schedules_name_field_and_reason(
    doc: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ZerocopyError) as info:
        parse_schedule(doc, SEGMENT_FREQUENCIES)
    assert info.value.code == "validation_error"
    assert info.value.details == {"field": field, "reason": reason}


@pytest.mark.parametrize("spelling", ["Daily", "DAILY", " daily ", "dAiLy"])
def test_frequency_in_odd_case_is_the_frequency(spelling: str) -> None:
    # Like weekday names: case and surrounding blanks do not matter; the stored form is canonical.
    schedule = parse_schedule({"frequency": spelling, "hour": 2}, SEGMENT_FREQUENCIES)
    assert schedule.to_dict() == {"frequency": "daily", "hour": 2, "minute": 0}


@pytest.mark.parametrize("name", ["Mars/Olympus", "europe/paris", "CET ", "", "+02:00"])
def test_unknown_time_zones_are_refused(name: str) -> None:
    with pytest.raises(ZerocopyError) as info:
        load_zone(name)
    assert info.value.details == {"field": "time_zone", "reason": "unknown_time_zone"}


@pytest.mark.parametrize(
    "doc",
    [
        {"frequency": "hourly", "minute": 45},
        {"frequency": "daily", "hour": 0, "minute": 0},
        {"frequency": "weekly", "weekday": "sunday", "hour": 2, "minute": 45},
        {"frequency": "monthly", "day": 31, "hour": 0, "minute": 30},
        {"frequency": "every_30_minutes"},
    ],
)
@pytest.mark.parametrize(("zone", "start"), AROUND[:10])
def test_next_five_strictly_increase_are_unique_and_replan_consistently(
    doc: dict[str, Any], zone: str, start: tuple[int, ...]
) -> None:
    schedule = parse_schedule(doc)
    after = local(zone, *start)
    got = next_runs(schedule, after, zone, 5)
    assert len(got) == 5 and len(set(got)) == 5
    assert all(a < b for a, b in itertools.pairwise([after, *got]))
    # Planning from just before any run finds that run (the scheduler's view of the plan).
    for t in got:
        assert next_run(schedule, t - timedelta(microseconds=1), zone) == t


def test_zone_change_while_due_owes_one_catch_up_then_plans_in_the_new_zone() -> None:
    schedule = parse_schedule({"frequency": "daily", "hour": 9, "minute": 0})
    due = local("Europe/Paris", 2026, 6, 1, 9)
    fired = due - timedelta(days=1)  # the plan last fired at 09:00 Paris on 05-31
    now = due + timedelta(days=1, hours=2)  # down over two Paris occurrences
    # The slot the old plan waited for (06-01) goes on in Tokyo: 09:00 Tokyo on 06-01, then
    # one catch-up firing coalescing 06-01 and 06-02 and the plan goes on in Tokyo.
    moved = replan_in_zone(schedule, "Europe/Paris", "Asia/Tokyo", due, fired, now)
    assert walls([moved], "Asia/Tokyo") == ["2026-06-01 09:00 +0900"]  # type: ignore[list-item]
    owed = plan_firing(schedule, "Asia/Tokyo", moved, now)  # type: ignore[arg-type]
    assert owed is not None
    assert (owed.due_at, owed.coalesced, owed.catch_up) == (moved, 2, True)
    assert walls([owed.next_due_at], "Asia/Tokyo") == ["2026-06-03 09:00 +0900"]  # type: ignore[list-item]
    # Nothing due yet and Tokyo's 06-01 slot before the last firing: tomorrow in Tokyo.
    early = replan_in_zone(
        schedule,
        "Europe/Paris",
        "Asia/Tokyo",
        due,
        due - timedelta(hours=2),
        due - timedelta(hours=1),
    )
    assert walls([early], "Asia/Tokyo") == ["2026-06-02 09:00 +0900"]  # type: ignore[list-item]
    # An old zone nobody can read: the new zone's first occurrence after the floor.
    odd = replan_in_zone(schedule, "Nowhere/Zone", "UTC", due, fired, now)
    assert odd == datetime(2026, 5, 31, 9, 0, tzinfo=UTC)
