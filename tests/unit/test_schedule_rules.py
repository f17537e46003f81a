"""The documented schedule rules, one scenario each, with a frozen clock (explicit instants).

Transitions used (2026 unless said): Paris 03-29 02:00→03:00 and 10-25 03:00→02:00; New York
03-08 02:00→03:00 and 11-01 02:00→01:00; Lord Howe 10-04 02:00→02:30 and 04-05 02:00→01:30;
Sydney 10-04 02:00→03:00 and 04-05 03:00→02:00; Santiago 09-06 00:00→01:00 and 04-05
00:00→04-04 23:00; Havana 03-08 00:00→01:00 and 11-01 01:00→00:00; Troll (+00/+02) 03-29
01:00→03:00; Apia skipped 2011-12-30 entirely; Kathmandu is +05:45 all year.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from zerocopy.errors import ZerocopyError
from zerocopy.scheduling.schedule import (
    SEGMENT_FREQUENCIES,
    load_zone,
    next_run,
    next_runs,
    parse_schedule,
    plan_firing,
)
from zerocopy.scheduling.sync_frequency import check_sync_frequency, sync_schedule


def local(zone: str, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)  # type: ignore[misc]


def walls(instants: list[datetime], zone: str) -> list[str]:
    return [i.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %z") for i in instants]


def runs(doc: dict[str, object], zone: str, after: datetime, count: int) -> list[str]:
    return walls(next_runs(parse_schedule(doc), after, zone, count), zone)


# ----------------------------------------------------------------- every 15 / 30 minutes
def test_quarter_hours_are_local_and_real_time_across_fall_back() -> None:
    # Paris 10-25: 02:00-02:59 happens twice; every 15 minutes of real time, both passes.
    got = runs(
        {"frequency": "every_15_minutes"},
        "Europe/Paris",
        local("Europe/Paris", 2026, 10, 25, 2, 40),
        6,
    )
    assert got == [
        "2026-10-25 02:45 +0200",
        "2026-10-25 02:00 +0100",
        "2026-10-25 02:15 +0100",
        "2026-10-25 02:30 +0100",
        "2026-10-25 02:45 +0100",
        "2026-10-25 03:00 +0100",
    ]


def test_quarter_hours_across_spring_forward_have_no_slot_in_the_gap() -> None:
    got = runs(
        {"frequency": "every_15_minutes"},
        "America/New_York",
        local("America/New_York", 2026, 3, 8, 1, 30),
        3,
    )
    assert got == ["2026-03-08 01:45 -0500", "2026-03-08 03:00 -0400", "2026-03-08 03:15 -0400"]


def test_half_hours_follow_the_local_clock_in_an_odd_offset_zone() -> None:
    # Kathmandu is +05:45: the local half hours are :15 and :45 UTC.
    got = next_runs(
        parse_schedule({"frequency": "every_30_minutes"}),
        datetime(2026, 6, 1, 0, 0, tzinfo=UTC),
        "Asia/Kathmandu",
        3,
    )
    assert walls(got, "Asia/Kathmandu") == [
        "2026-06-01 06:00 +0545",
        "2026-06-01 06:30 +0545",
        "2026-06-01 07:00 +0545",
    ]
    assert [(t.hour, t.minute) for t in got] == [(0, 15), (0, 45), (1, 15)]
    assert walls(
        next_runs(sync_schedule("30m"), got[0], "Asia/Kathmandu", 1), "Asia/Kathmandu"
    ) == ["2026-06-01 06:30 +0545"]


def test_half_hours_through_lord_howe_half_hour_shifts() -> None:
    back = runs(
        {"frequency": "every_30_minutes"},
        "Australia/Lord_Howe",
        local("Australia/Lord_Howe", 2026, 4, 5, 1, 0),
        4,
    )
    assert back == [
        "2026-04-05 01:30 +1100",
        "2026-04-05 01:30 +1030",  # the same wall time, 30 real minutes later: a new instant
        "2026-04-05 02:00 +1030",
        "2026-04-05 02:30 +1030",
    ]
    forward = runs(
        {"frequency": "every_30_minutes"},
        "Australia/Lord_Howe",
        local("Australia/Lord_Howe", 2026, 10, 4, 1, 0),
        3,
    )
    assert forward == ["2026-10-04 01:30 +1030", "2026-10-04 02:30 +1100", "2026-10-04 03:00 +1100"]


def test_strictly_after_with_sub_second_instants() -> None:
    schedule = parse_schedule({"frequency": "every_15_minutes"})
    at = datetime(2026, 6, 1, 10, 15, tzinfo=UTC)
    assert next_run(schedule, at, "UTC") == at + timedelta(minutes=15)
    assert next_run(schedule, at - timedelta(microseconds=1), "UTC") == at
    assert next_run(schedule, at + timedelta(microseconds=1), "UTC") == at + timedelta(minutes=15)
    daily = parse_schedule({"frequency": "daily", "hour": 10, "minute": 15})
    assert next_run(daily, at - timedelta(microseconds=1), "UTC") == at
    assert next_run(daily, at, "UTC") == at + timedelta(days=1)


# ----------------------------------------------------------------- wall-clock slots and DST
@pytest.mark.parametrize(
    ("zone", "doc", "after", "expected"),
    [
        (  # Sydney spring forward (southern hemisphere, October)
            "Australia/Sydney",
            {"frequency": "daily", "hour": 2, "minute": 30},
            local("Australia/Sydney", 2026, 10, 3, 12),
            ["2026-10-04 03:00 +1100", "2026-10-05 02:30 +1100"],
        ),
        (  # Sydney fall back (April): 02:30 happens twice, runs once
            "Australia/Sydney",
            {"frequency": "daily", "hour": 2, "minute": 30},
            local("Australia/Sydney", 2026, 4, 4, 12),
            ["2026-04-05 02:30 +1100", "2026-04-06 02:30 +1000"],
        ),
        (  # Santiago: midnight does not exist on 09-06; 00:00 runs at 01:00
            "America/Santiago",
            {"frequency": "daily", "hour": 0, "minute": 0},
            local("America/Santiago", 2026, 9, 5, 12),
            ["2026-09-06 01:00 -0300", "2026-09-07 00:00 -0300"],
        ),
        (  # Santiago: 23:00-23:59 on 04-04 happens twice; 23:30 runs once
            "America/Santiago",
            {"frequency": "daily", "hour": 23, "minute": 30},
            local("America/Santiago", 2026, 4, 4, 12),
            ["2026-04-04 23:30 -0300", "2026-04-05 23:30 -0400"],
        ),
        (  # Havana: 00:30 does not exist on 03-08
            "America/Havana",
            {"frequency": "daily", "hour": 0, "minute": 30},
            local("America/Havana", 2026, 3, 7, 12),
            ["2026-03-08 01:00 -0400", "2026-03-09 00:30 -0400"],
        ),
        (  # Havana: 00:00-00:59 on 11-01 happens twice; 00:30 runs once
            "America/Havana",
            {"frequency": "daily", "hour": 0, "minute": 30},
            local("America/Havana", 2026, 10, 31, 12),
            ["2026-11-01 00:30 -0400", "2026-11-02 00:30 -0500"],
        ),
        (  # Troll: a two-hour gap (+00 → +02); 02:00 runs when it ends, 03:00
            "Antarctica/Troll",
            {"frequency": "daily", "hour": 2, "minute": 0},
            local("Antarctica/Troll", 2026, 3, 28, 12),
            ["2026-03-29 03:00 +0200", "2026-03-30 02:00 +0200"],
        ),
        (  # Apia skipped Friday 2011-12-30: its slot runs once, at the first instant after
            "Pacific/Apia",
            {"frequency": "daily", "hour": 9, "minute": 0},
            datetime(2011, 12, 29, 12, tzinfo=ZoneInfo("Pacific/Apia")).astimezone(UTC),
            ["2011-12-31 00:00 +1400", "2011-12-31 09:00 +1400", "2012-01-01 09:00 +1400"],
        ),
        (  # Kathmandu: a daily slot is plain local time
            "Asia/Kathmandu",
            {"frequency": "daily", "hour": 9, "minute": 0},
            datetime(2026, 1, 1, tzinfo=UTC),
            ["2026-01-01 09:00 +0545", "2026-01-02 09:00 +0545"],
        ),
        (  # weekly on the Santiago gap day (a Sunday) at midnight
            "America/Santiago",
            {"frequency": "weekly", "weekday": "sunday", "hour": 0, "minute": 15},
            local("America/Santiago", 2026, 9, 1),
            ["2026-09-06 01:00 -0300", "2026-09-13 00:15 -0300"],
        ),
        (  # monthly day 31 at the Paris spring-forward gap (March 29 is not the 31st: normal)
            "Europe/Paris",
            {"frequency": "monthly", "day": 29, "hour": 2, "minute": 30},
            local("Europe/Paris", 2026, 3, 1),
            ["2026-03-29 03:00 +0200", "2026-04-29 02:30 +0200"],
        ),
    ],
)
def test_gap_and_fold_rules_in_many_zones(
    zone: str, doc: dict[str, object], after: datetime, expected: list[str]
) -> None:
    assert runs(doc, zone, after, len(expected)) == expected


@pytest.mark.parametrize(
    ("zone", "day", "hours_in_day"),
    [
        ("Europe/Paris", date(2026, 3, 29), 23),
        ("Europe/Paris", date(2026, 10, 25), 25),
        ("America/New_York", date(2026, 3, 8), 23),
        ("America/New_York", date(2026, 11, 1), 25),
        ("America/Havana", date(2026, 11, 1), 25),
        ("Australia/Lord_Howe", date(2026, 4, 5), 24.5),
        ("Asia/Kathmandu", date(2026, 4, 5), 24),
    ],
)
def test_every_local_day_has_the_same_slots(zone: str, day: date, hours_in_day: float) -> None:
    """Every-N-hours (N >= 2): one run per local slot, whatever the day's length (hourly runs
    by real-time hours instead: see test_schedule_redteam)."""
    z = ZoneInfo(zone)
    start = datetime.combine(day, datetime.min.time(), z).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), z).astimezone(UTC)
    assert (end - start) / timedelta(hours=1) == hours_in_day
    for doc, per_day in [
        ({"frequency": "every_n_hours", "hours": 3, "minute": 45}, 8),
        ({"frequency": "every_n_hours", "hours": 12, "minute": 0}, 2),
    ]:
        got = [
            t
            for t in next_runs(parse_schedule(doc), start - timedelta(seconds=1), z, 30)
            if t < end
        ]
        assert len(got) == per_day, (doc, walls(got, zone))
        assert len(set(got)) == len(got)


def test_every_n_hours_is_anchored_at_local_midnight() -> None:
    doc = {"frequency": "every_n_hours", "hours": 8, "minute": 10}
    got = runs(doc, "Europe/Paris", local("Europe/Paris", 2026, 3, 28, 17), 4)
    # 00:10, 08:10, 16:10 local every day, even across the 23-hour day.
    assert got == [
        "2026-03-29 00:10 +0100",
        "2026-03-29 08:10 +0200",
        "2026-03-29 16:10 +0200",
        "2026-03-30 00:10 +0200",
    ]


def test_hourly_on_the_gap_day_skips_the_missing_hour() -> None:
    # Santiago 09-06: 00:xx does not exist: 23:20 then 01:20, one real hour apart.
    got = runs(
        {"frequency": "hourly", "minute": 20},
        "America/Santiago",
        local("America/Santiago", 2026, 9, 5, 22, 30),
        4,
    )
    assert got == [
        "2026-09-05 23:20 -0400",
        "2026-09-06 01:20 -0300",
        "2026-09-06 02:20 -0300",
        "2026-09-06 03:20 -0300",
    ]


# ----------------------------------------------------------------- month ends
@pytest.mark.parametrize("day", [28, 29, 30, 31])
@pytest.mark.parametrize("zone", ["UTC", "Pacific/Chatham", "America/Santiago"])
def test_monthly_runs_once_a_month_on_min_day_last_day(day: int, zone: str) -> None:
    schedule = parse_schedule({"frequency": "monthly", "day": day, "hour": 0, "minute": 0})
    got = next_runs(schedule, local(zone, 2027, 12, 31, 23), zone, 12 * 6)  # 2028-2033
    local_days = [t.astimezone(ZoneInfo(zone)).date() for t in got]
    assert Counter((d.year, d.month) for d in local_days) == Counter(
        {(y, m): 1 for y in range(2028, 2034) for m in range(1, 13)}
    )
    for d in local_days:
        last = (date(d.year + d.month // 12, d.month % 12 + 1, 1) - timedelta(days=1)).day
        assert d.day == min(day, last), d
    assert date(2028, 2, 29) in local_days or day < 29  # leap year
    assert all(a < b for a, b in itertools.pairwise(got))


# ----------------------------------------------------------------- catch-up
def test_catch_up_across_a_dst_change_counts_each_occurrence_once() -> None:
    # Hourly at :30 in Paris, down from 01:00 to 04:10 on the fall-back day (4 real hours):
    # 01:30, 02:30 (both passes), 03:30: four occurrences, one catch-up run.
    schedule = parse_schedule({"frequency": "hourly", "minute": 30})
    due = local("Europe/Paris", 2026, 10, 25, 1, 30)
    firing = plan_firing(schedule, "Europe/Paris", due, local("Europe/Paris", 2026, 10, 25, 4, 10))
    assert firing is not None
    assert (firing.due_at, firing.coalesced, firing.catch_up) == (due, 4, True)
    assert walls([firing.next_due_at], "Europe/Paris") == ["2026-10-25 04:30 +0100"]  # type: ignore[list-item]


def test_on_time_firing_is_not_a_catch_up_and_next_is_after_now() -> None:
    schedule = parse_schedule({"frequency": "every_15_minutes"})
    due = datetime(2026, 6, 1, 10, 15, tzinfo=UTC)
    firing = plan_firing(schedule, "UTC", due, due)
    assert firing is not None and (firing.coalesced, firing.catch_up) == (1, False)
    assert firing.next_due_at == due + timedelta(minutes=15)
    late = plan_firing(schedule, "UTC", due, due + timedelta(minutes=2), late_after_s=60)
    assert late is not None and (late.coalesced, late.catch_up) == (1, True)


# ----------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("doc", "field", "reason"),
    [
        ([1, 2], "schedule", "invalid_type"),
        ({}, "frequency", "required"),
        ({"frequency": "yearly"}, "frequency", "too_rare"),
        ({"frequency": "every_2_months"}, "frequency", "too_rare"),
        ({"frequency": "every_5_minutes"}, "frequency", "too_frequent"),
        ({"frequency": "every_minute"}, "frequency", "too_frequent"),
        ({"frequency": "fortnightly"}, "frequency", "unknown_frequency"),
        ({"frequency": 15}, "frequency", "unknown_frequency"),
        ({"frequency": "daily", "hour": 24}, "hour", "out_of_range"),
        ({"frequency": "daily", "hour": -1}, "hour", "out_of_range"),
        ({"frequency": "daily", "hour": "2"}, "hour", "invalid_type"),
        ({"frequency": "daily", "hour": 2.0}, "hour", "invalid_type"),
        ({"frequency": "daily", "hour": None}, "hour", "invalid_type"),
        ({"frequency": "hourly", "minute": 60}, "minute", "out_of_range"),
        ({"frequency": "hourly", "minute": True}, "minute", "invalid_type"),
        ({"frequency": "weekly", "hour": 2}, "weekday", "required"),
        ({"frequency": "weekly", "weekday": "funday"}, "weekday", "invalid_value"),
        ({"frequency": "weekly", "weekday": 1}, "weekday", "invalid_type"),
        ({"frequency": "monthly", "day": 0}, "day", "out_of_range"),
        ({"frequency": "monthly", "day": 32}, "day", "out_of_range"),
        ({"frequency": "every_n_hours", "minute": 0}, "hours", "required"),
        ({"frequency": "every_n_hours", "hours": 5}, "hours", "out_of_range"),
        ({"frequency": "every_n_hours", "hours": 24}, "hours", "out_of_range"),
        ({"frequency": "every_n_hours", "hours": "6"}, "hours", "invalid_type"),
        ({"frequency": "hourly", "hour": 3}, "hour", "not_applicable"),
        ({"frequency": "daily", "hour": 1, "day": 3}, "day", "not_applicable"),
        ({"frequency": "weekly", "weekday": "monday", "day": 3}, "day", "not_applicable"),
        ({"frequency": "manual", "minute": 3}, "minute", "not_applicable"),
        ({"frequency": "every_15_minutes", "minute": 5}, "minute", "not_applicable"),
        ({"frequency": "daily", "at": "02:00"}, "at", "unknown_field"),
    ],
)
def test_invalid_schedules_say_which_field_and_why(doc: object, field: str, reason: str) -> None:
    with pytest.raises(ZerocopyError) as info:
        parse_schedule(doc)  # type: ignore[arg-type]
    assert info.value.code == "validation_error"
    assert info.value.details == {"field": field, "reason": reason}
    assert field in info.value.message


@pytest.mark.parametrize("frequency", ["every_15_minutes", "every_30_minutes", "every_n_hours"])
def test_segments_say_sync_only_frequencies_are_too_frequent_for_them(frequency: str) -> None:
    with pytest.raises(ZerocopyError) as info:
        parse_schedule({"frequency": frequency, "hours": 2}, SEGMENT_FREQUENCIES)
    assert info.value.details == {"field": "frequency", "reason": "not_allowed_here"}
    assert "'hourly'" in info.value.message


def test_valid_documents_and_canonical_form() -> None:
    assert parse_schedule({"frequency": "weekly", "weekday": "Sunday", "hour": 5}).to_dict() == {
        "frequency": "weekly",
        "minute": 0,
        "hour": 5,
        "weekday": "sunday",
    }
    assert parse_schedule({"frequency": "weekly", "weekday": " tue "}).to_dict()["weekday"] == (
        "tuesday"
    )
    doc = {"frequency": "every_n_hours", "hours": 1, "minute": 5}
    assert parse_schedule(doc).to_dict() == doc
    # A field set to null that the frequency does not use is the same as absent.
    assert parse_schedule({"frequency": "daily", "hour": 1, "weekday": None}).hour == 1
    for canonical in (
        {"frequency": "manual"},
        {"frequency": "monthly", "minute": 0, "hour": 0, "day": 31},
        {"frequency": "every_30_minutes"},
    ):
        assert parse_schedule(canonical).to_dict() == canonical


@pytest.mark.parametrize(
    "name",
    [
        "Europe/Pariss",
        "europe/paris",
        "",
        "localtime",
        "posixrules",
        "Factory",
        "posix/Europe/Paris",
        "right/UTC",
        "../etc/passwd",
        "/etc/localtime",
        "Europe/Paris/",
    ],
)
def test_unknown_time_zones_are_refused(name: str) -> None:
    with pytest.raises(ZerocopyError) as info:
        load_zone(name)
    assert info.value.code == "validation_error"
    assert info.value.details == {"field": "time_zone", "reason": "unknown_time_zone"}


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd"])
def test_planning_in_an_unreadable_zone_is_a_validation_error(name: str) -> None:
    with pytest.raises(ZerocopyError) as info:
        next_run(parse_schedule({"frequency": "daily"}), datetime(2026, 1, 1, tzinfo=UTC), name)
    assert info.value.details["field"] == "time_zone"


def test_a_stored_non_iana_zone_still_plans() -> None:
    """Refused for new workspaces, but a workspace stored earlier keeps its schedules."""
    after = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_run(parse_schedule({"frequency": "hourly"}), after, "posix/Europe/Paris") == (
        datetime(2026, 1, 1, 1, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    "name",
    ["UTC", "Etc/UTC", "Europe/Paris", "Asia/Kathmandu", "Australia/Lord_Howe", "US/Eastern"],
)
def test_iana_names_load(name: str) -> None:
    assert str(load_zone(name)) == name


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError):
        next_run(parse_schedule({"frequency": "hourly"}), datetime(2026, 1, 1), "UTC")


# ----------------------------------------------------------------- sync frequency strings
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("5m", "too_frequent"),
        ("1m", "too_frequent"),
        ("10m", "too_frequent"),
        ("30s", "too_frequent"),
        ("2mo", "too_rare"),
        ("1y", "too_rare"),
        ("6w", "too_rare"),
        ("5h", "unknown_frequency"),
        ("7h", "unknown_frequency"),
        ("fortnightly", "unknown_frequency"),
        ("", "unknown_frequency"),
        (None, "unknown_frequency"),
        (15, "unknown_frequency"),
    ],
)
def test_sync_frequencies_outside_15_minutes_to_monthly_say_why(value: object, reason: str) -> None:
    with pytest.raises(ZerocopyError) as info:
        check_sync_frequency(value)
    assert info.value.code == "validation_error"
    assert info.value.details == {"field": "frequency", "reason": reason}
    assert "frequency" in info.value.message and "15m" in info.value.message


@pytest.mark.parametrize(
    "value", ["15m", "30m", "1h", "2h", "3h", "4h", "6h", "8h", "12h", "1d", "1w", "1mo"]
)
def test_every_sync_frequency_between_15_minutes_and_monthly_is_valid(value: str) -> None:
    assert check_sync_frequency(value) == value
    assert not sync_schedule(value).is_manual
