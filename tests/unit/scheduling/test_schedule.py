"""Schedule arithmetic with a frozen clock: every frequency, month ends, leap years, DST."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocopy.errors import ZerocopyError
from zerocopy.scheduling.schedule import (
    SEGMENT_FREQUENCIES,
    next_run,
    next_runs,
    parse_schedule,
    plan_firing,
    resolve_local,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")


def local(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold).astimezone(UTC)  # type: ignore[misc]


def walls(instants: list[datetime], zone: ZoneInfo) -> list[str]:
    return [i.astimezone(zone).strftime("%Y-%m-%d %H:%M %z") for i in instants]


def test_manual_never_fires() -> None:
    assert next_run(parse_schedule(None), datetime(2026, 1, 1, tzinfo=UTC), "UTC") is None
    assert next_runs(parse_schedule({"frequency": "manual"}), datetime.now(UTC), "UTC") == []


@pytest.mark.parametrize(
    ("doc", "after", "expected"),
    [
        (
            {"frequency": "every_15_minutes"},
            datetime(2026, 5, 1, 10, 7, tzinfo=UTC),
            ["2026-05-01 10:15 +0000", "2026-05-01 10:30 +0000", "2026-05-01 10:45 +0000"],
        ),
        (
            {"frequency": "every_30_minutes"},
            datetime(2026, 5, 1, 10, 30, tzinfo=UTC),  # strictly after: 10:30 itself is not next
            ["2026-05-01 11:00 +0000", "2026-05-01 11:30 +0000", "2026-05-01 12:00 +0000"],
        ),
        (
            {"frequency": "hourly", "minute": 20},
            datetime(2026, 5, 1, 10, 20, tzinfo=UTC),
            ["2026-05-01 11:20 +0000", "2026-05-01 12:20 +0000", "2026-05-01 13:20 +0000"],
        ),
        (
            {"frequency": "every_n_hours", "hours": 6, "minute": 5},
            datetime(2026, 5, 1, 10, 0, tzinfo=UTC),
            ["2026-05-01 12:05 +0000", "2026-05-01 18:05 +0000", "2026-05-02 00:05 +0000"],
        ),
        (
            {"frequency": "daily", "hour": 7, "minute": 0},
            datetime(2026, 12, 31, 8, 0, tzinfo=UTC),
            ["2027-01-01 07:00 +0000", "2027-01-02 07:00 +0000", "2027-01-03 07:00 +0000"],
        ),
        (
            {"frequency": "weekly", "weekday": "friday", "hour": 9, "minute": 30},
            datetime(2026, 5, 1, 9, 30, tzinfo=UTC),  # a Friday, at the slot
            ["2026-05-08 09:30 +0000", "2026-05-15 09:30 +0000", "2026-05-22 09:30 +0000"],
        ),
        (
            {"frequency": "monthly", "day": 31, "hour": 23, "minute": 0},
            datetime(2026, 1, 1, tzinfo=UTC),
            ["2026-01-31 23:00 +0000", "2026-02-28 23:00 +0000", "2026-03-31 23:00 +0000"],
        ),
        (
            {"frequency": "monthly", "day": 31, "hour": 0, "minute": 0},
            datetime(2026, 4, 1, tzinfo=UTC),
            ["2026-04-30 00:00 +0000", "2026-05-31 00:00 +0000", "2026-06-30 00:00 +0000"],
        ),
        (  # leap year: February has 29 days
            {"frequency": "monthly", "day": 30, "hour": 12, "minute": 0},
            datetime(2028, 1, 31, tzinfo=UTC),
            ["2028-02-29 12:00 +0000", "2028-03-30 12:00 +0000", "2028-04-30 12:00 +0000"],
        ),
        (  # leap day itself, daily
            {"frequency": "daily", "hour": 12, "minute": 0},
            datetime(2028, 2, 28, 13, 0, tzinfo=UTC),
            ["2028-02-29 12:00 +0000", "2028-03-01 12:00 +0000", "2028-03-02 12:00 +0000"],
        ),
        (  # day 29 in a common-year February runs on the 28th
            {"frequency": "monthly", "day": 29, "hour": 6, "minute": 0},
            datetime(2027, 2, 1, tzinfo=UTC),
            ["2027-02-28 06:00 +0000", "2027-03-29 06:00 +0000", "2027-04-29 06:00 +0000"],
        ),
    ],
)
def test_every_frequency_in_utc(
    doc: dict[str, object], after: datetime, expected: list[str]
) -> None:
    assert walls(next_runs(parse_schedule(doc), after, "UTC", 3), ZoneInfo("UTC")) == expected


# Spring-forward days: Paris 2026-03-29 02:00→03:00, New York 2026-03-08 02:00→03:00,
# Lord Howe 2026-10-04 02:00→02:30. Fall-back: Paris 2026-10-25 03:00→02:00, New York
# 2026-11-01 02:00→01:00, Lord Howe 2026-04-05 02:00→01:30.
@pytest.mark.parametrize(
    ("zone", "doc", "after", "expected"),
    [
        (
            PARIS,
            {"frequency": "daily", "hour": 2, "minute": 30},
            local(PARIS, 2026, 3, 28, 12),
            ["2026-03-29 03:00 +0200", "2026-03-30 02:30 +0200"],
        ),
        (
            PARIS,
            {"frequency": "daily", "hour": 2, "minute": 30},
            local(PARIS, 2026, 10, 24, 12),
            ["2026-10-25 02:30 +0200", "2026-10-26 02:30 +0100"],
        ),
        (
            NEW_YORK,
            {"frequency": "daily", "hour": 2, "minute": 30},
            local(NEW_YORK, 2026, 3, 7, 12),
            ["2026-03-08 03:00 -0400", "2026-03-09 02:30 -0400"],
        ),
        (
            NEW_YORK,
            {"frequency": "daily", "hour": 1, "minute": 30},
            local(NEW_YORK, 2026, 10, 31, 12),
            ["2026-11-01 01:30 -0400", "2026-11-02 01:30 -0500"],
        ),
        (
            LORD_HOWE,
            {"frequency": "daily", "hour": 2, "minute": 10},
            local(LORD_HOWE, 2026, 10, 3, 12),
            ["2026-10-04 02:30 +1100", "2026-10-05 02:10 +1100"],
        ),
        (
            LORD_HOWE,
            {"frequency": "daily", "hour": 1, "minute": 45},
            local(LORD_HOWE, 2026, 4, 4, 12),
            ["2026-04-05 01:45 +1100", "2026-04-06 01:45 +1030"],
        ),
        (  # weekly on a Sunday crossing the Paris spring-forward
            PARIS,
            {"frequency": "weekly", "weekday": "sunday", "hour": 2, "minute": 0},
            local(PARIS, 2026, 3, 22, 12),
            ["2026-03-29 03:00 +0200", "2026-04-05 02:00 +0200"],
        ),
        (  # monthly crossing the New York fall-back
            NEW_YORK,
            {"frequency": "monthly", "day": 1, "hour": 1, "minute": 30},
            local(NEW_YORK, 2026, 10, 15, 12),
            ["2026-11-01 01:30 -0400", "2026-12-01 01:30 -0500"],
        ),
    ],
)
def test_dst_daily_like(
    zone: ZoneInfo, doc: dict[str, object], after: datetime, expected: list[str]
) -> None:
    assert walls(next_runs(parse_schedule(doc), after, zone, 2), zone) == expected


@pytest.mark.parametrize(
    ("zone", "after", "expected"),
    [
        (  # 02:15 does not exist: hourly runs by real-time hours, 01:15 then 03:15
            PARIS,
            local(PARIS, 2026, 3, 29, 0, 30),
            ["2026-03-29 01:15 +0100", "2026-03-29 03:15 +0200", "2026-03-29 04:15 +0200"],
        ),
        (  # 02:15 happens twice: an hour apart, both run
            PARIS,
            local(PARIS, 2026, 10, 25, 1, 30),
            ["2026-10-25 02:15 +0200", "2026-10-25 02:15 +0100", "2026-10-25 03:15 +0100"],
        ),
        (
            NEW_YORK,
            local(NEW_YORK, 2026, 11, 1, 0, 30),
            ["2026-11-01 01:15 -0400", "2026-11-01 01:15 -0500", "2026-11-01 02:15 -0500"],
        ),
        (  # 30-minute shift: 02:15 falls in the gap 02:00-02:30
            LORD_HOWE,
            local(LORD_HOWE, 2026, 10, 4, 0, 30),
            ["2026-10-04 01:15 +1030", "2026-10-04 03:15 +1100", "2026-10-04 04:15 +1100"],
        ),
        (  # only 01:30-01:59 repeats (02:00 → 01:30): 01:15 is unique
            LORD_HOWE,
            local(LORD_HOWE, 2026, 4, 5, 0, 30),
            ["2026-04-05 01:15 +1100", "2026-04-05 02:15 +1030", "2026-04-05 03:15 +1030"],
        ),
    ],
)
def test_dst_hourly(zone: ZoneInfo, after: datetime, expected: list[str]) -> None:
    schedule = parse_schedule({"frequency": "hourly", "minute": 15})
    assert walls(next_runs(schedule, after, zone, 3), zone) == expected


def test_lord_howe_half_hour_fold_fires_in_both_passes() -> None:
    schedule = parse_schedule({"frequency": "hourly", "minute": 45})
    runs = next_runs(schedule, local(LORD_HOWE, 2026, 4, 5, 0, 30), LORD_HOWE, 4)
    # 01:45 happens at +1100 and again at +1030 (30 minutes later): hourly runs both.
    assert walls(runs, LORD_HOWE) == [
        "2026-04-05 00:45 +1100",
        "2026-04-05 01:45 +1100",
        "2026-04-05 01:45 +1030",
        "2026-04-05 02:45 +1030",
    ]


def test_intervals_ignore_dst() -> None:
    after = local(PARIS, 2026, 10, 25, 1, 50)
    runs = next_runs(parse_schedule({"frequency": "every_15_minutes"}), after, PARIS, 12)
    gaps = {b - a for a, b in itertools.pairwise(runs)}
    assert gaps == {timedelta(minutes=15)}


def test_resolve_local_gap_and_fold() -> None:
    assert resolve_local(datetime(2026, 3, 29, 2, 30), PARIS) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )
    assert resolve_local(datetime(2026, 10, 25, 2, 30), PARIS) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )
    assert resolve_local(datetime(2026, 10, 4, 2, 10), LORD_HOWE) == datetime(
        2026, 10, 3, 15, 30, tzinfo=UTC
    )


def test_time_zone_change_replans() -> None:
    schedule = parse_schedule({"frequency": "daily", "hour": 9, "minute": 0})
    now = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    assert next_run(schedule, now, "Europe/Paris") == datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
    assert next_run(schedule, now, "America/New_York") == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)


def test_firing_coalesces_missed_occurrences() -> None:
    schedule = parse_schedule({"frequency": "hourly", "minute": 0})
    due = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
    assert plan_firing(schedule, "UTC", due, due - timedelta(seconds=1)) is None
    on_time = plan_firing(schedule, "UTC", due, due + timedelta(seconds=2))
    assert on_time is not None
    assert (on_time.coalesced, on_time.catch_up) == (1, False)
    assert on_time.next_due_at == datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
    # Down from 03:00 to 08:10: one run stands for six occurrences, marked as a catch-up.
    late = plan_firing(schedule, "UTC", due, datetime(2026, 6, 1, 8, 10, tzinfo=UTC))
    assert late is not None
    assert (late.coalesced, late.catch_up, late.due_at) == (6, True, due)
    assert late.next_due_at == datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"frequency": "yearly"}, "frequency"),
        ({"frequency": "daily", "hour": 24}, "hour"),
        ({"frequency": "daily", "minute": -1}, "minute"),
        ({"frequency": "weekly", "weekday": "funday"}, "weekday"),
        ({"frequency": "monthly", "day": 32}, "day"),
        ({"frequency": "every_n_hours", "hours": 5}, "hours"),
        ({"frequency": "daily", "at": "02:00"}, "at"),
        ({"frequency": "daily", "hour": True}, "hour"),
    ],
)
def test_invalid_schedules_name_the_field(doc: dict[str, object], field: str) -> None:
    with pytest.raises(ZerocopyError) as info:
        parse_schedule(doc)
    assert info.value.code == "validation_error"
    assert info.value.details["field"] == field


def test_segments_refuse_sync_only_frequencies() -> None:
    with pytest.raises(ZerocopyError):
        parse_schedule({"frequency": "every_15_minutes"}, SEGMENT_FREQUENCIES)


ZONES = st.sampled_from(
    ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
)
SCHEDULES = st.one_of(
    st.builds(lambda: {"frequency": "every_15_minutes"}),
    st.builds(lambda: {"frequency": "every_30_minutes"}),
    st.builds(lambda m: {"frequency": "hourly", "minute": m}, st.integers(0, 59)),
    st.builds(
        lambda n, m: {"frequency": "every_n_hours", "hours": n, "minute": m},
        st.sampled_from([2, 3, 4, 6, 8, 12]),
        st.integers(0, 59),
    ),
    st.builds(
        lambda h, m: {"frequency": "daily", "hour": h, "minute": m},
        st.integers(0, 23),
        st.integers(0, 59),
    ),
    st.builds(
        lambda w, h, m: {"frequency": "weekly", "weekday": w, "hour": h, "minute": m},
        st.sampled_from(["monday", "sunday"]),
        st.integers(0, 23),
        st.integers(0, 59),
    ),
    st.builds(
        lambda d, h, m: {"frequency": "monthly", "day": d, "hour": h, "minute": m},
        st.integers(1, 31),
        st.integers(0, 23),
        st.integers(0, 59),
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    doc=SCHEDULES,
    zone=ZONES,
    start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)),
)
def test_next_runs_strictly_increase(doc: dict[str, object], zone: str, start: datetime) -> None:
    after = start.replace(tzinfo=UTC)
    runs = next_runs(parse_schedule(doc), after, zone, 30)
    assert len(runs) == 30
    assert runs[0] > after
    assert all(a < b for a, b in itertools.pairwise(runs))  # never the same instant twice
    # Starting anywhere between two runs finds the later one: no slot is skipped or repeated.
    for a, b in itertools.pairwise(runs):
        assert next_run(parse_schedule(doc), a + (b - a) / 2, zone) == b
