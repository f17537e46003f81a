"""The sync frequency strings map to schedule arithmetic in one place."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from zerocopy.errors import ZerocopyError
from zerocopy.scheduling.schedule import next_runs
from zerocopy.scheduling.sync_frequency import (
    SYNC_FREQUENCY_SCHEDULES,
    check_sync_frequency,
    sync_schedule,
)
from zerocopy.services.syncs import FREQUENCIES

T0 = datetime(2026, 3, 28, 22, 7, 13, tzinfo=UTC)  # Paris springs forward on March 29


def test_every_frequency_the_sync_api_accepts_has_a_schedule() -> None:
    assert set(FREQUENCIES) <= set(SYNC_FREQUENCY_SCHEDULES)


@pytest.mark.parametrize(
    ("frequency", "gap"),
    [
        ("15m", timedelta(minutes=15)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("6h", timedelta(hours=6)),
        ("12h", timedelta(hours=12)),
    ],
)
def test_interval_frequencies_in_utc(frequency: str, gap: timedelta) -> None:
    runs = next_runs(sync_schedule(frequency), T0, "UTC", 5)
    assert runs[0] > T0 and runs[0] - T0 <= gap
    assert [b - a for a, b in itertools.pairwise(runs)] == [gap] * 4


def test_hourly_is_on_the_local_hour_in_a_half_hour_zone() -> None:
    runs = next_runs(sync_schedule("1h"), T0, "Asia/Kolkata", 3)
    assert [r.minute for r in runs] == [30, 30, 30]  # 00:00 local = xx:30 UTC (+05:30)


def test_daily_weekly_monthly_fire_at_local_midnight() -> None:
    daily = next_runs(sync_schedule("1d"), T0, "Europe/Paris", 3)
    assert daily == [
        datetime(2026, 3, 28, 23, 0, tzinfo=UTC),  # 00:00 CET on the switch day
        datetime(2026, 3, 29, 22, 0, tzinfo=UTC),  # CEST after the switch
        datetime(2026, 3, 30, 22, 0, tzinfo=UTC),
    ]
    weekly = next_runs(sync_schedule("1w"), T0, "America/New_York", 2)
    assert weekly == [
        datetime(2026, 3, 30, 4, 0, tzinfo=UTC),  # Monday 00:00 EDT
        datetime(2026, 4, 6, 4, 0, tzinfo=UTC),
    ]
    monthly = next_runs(sync_schedule("1mo"), T0, "UTC", 2)
    assert monthly == [datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)]


def test_every_n_hours_restarts_at_local_midnight() -> None:
    runs = next_runs(sync_schedule("6h"), datetime(2026, 7, 1, tzinfo=UTC), "Europe/Paris", 4)
    # 00/06/12/18 local (CEST, UTC+2) = 22/04/10/16 UTC
    assert [r.hour for r in runs] == [4, 10, 16, 22]


@pytest.mark.parametrize("bad", ["1m", "", "fortnightly", None, "2d", "every 5 hours", "1h30m"])
def test_unknown_frequency_is_a_validation_error(bad: object) -> None:
    with pytest.raises(ZerocopyError) as info:
        sync_schedule(bad)  # type: ignore[arg-type]
    assert info.value.code == "validation_error"
    assert info.value.details["field"] == "frequency"


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("daily", "1d"), ("Daily", "1d"), (" HOURLY ", "1h"), ("weekly", "1w"),
        ("monthly", "1mo"), ("every day", "1d"), ("Every Hour", "1h"),
        ("every 15 minutes", "15m"), ("15 min", "15m"), ("30 Minutes", "30m"),
        ("every 2 hours", "2h"), ("every_6_hours", "6h"), ("12 hrs", "12h"), ("1D", "1d"),
        ("1MO", "1mo"), ("1 month", "1mo"), ("60m", "1h"), ("24h", "1d"), ("7d", "1w"),
    ],
)  # fmt: skip
def test_other_spellings_of_a_sync_frequency_are_stored_in_the_short_form(
    written: str, stored: str
) -> None:
    assert check_sync_frequency(written) == stored
    assert sync_schedule(written) == sync_schedule(stored)


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("5 minutes", "too_frequent"),
        ("2 months", "too_rare"),
        ("every 5 hours", "unknown_frequency"),
    ],
)
def test_spelled_out_frequencies_are_refused_for_the_same_reasons(
    written: str, reason: str
) -> None:
    with pytest.raises(ZerocopyError) as info:
        check_sync_frequency(written)
    assert info.value.details["reason"] == reason
