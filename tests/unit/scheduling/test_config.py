"""Scheduling settings from the environment: defaults, and refusals that name the variable."""

from __future__ import annotations

from datetime import timedelta

import pytest

from zerocopy.errors import ZerocopyError
from zerocopy.scheduling.config import SchedulingConfig, load_config


def test_defaults_and_values() -> None:
    assert load_config({}) == SchedulingConfig()
    config = load_config(
        {
            "ZEROCOPY_STALE_AFTER_DAYS": "0.5",
            "ZEROCOPY_SCHEDULER_TICK_S": "2",
            "ZEROCOPY_SCHEDULE_LATE_AFTER_S": "30",
            "ZEROCOPY_RUNNER": "Procrastinate",
        }
    )
    assert config.stale_after == timedelta(hours=12)
    assert (config.tick_s, config.late_after_s, config.runner) == (2.0, 30.0, "procrastinate")


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("ZEROCOPY_STALE_AFTER_DAYS", "abc", "invalid_type"),
        ("ZEROCOPY_STALE_AFTER_DAYS", "-1", "out_of_range"),
        ("ZEROCOPY_STALE_AFTER_DAYS", "nan", "invalid_value"),
        ("ZEROCOPY_STALE_AFTER_DAYS", "inf", "invalid_value"),
        ("ZEROCOPY_STALE_AFTER_DAYS", "1e9", "out_of_range"),
        ("ZEROCOPY_SCHEDULER_TICK_S", "nan", "invalid_value"),
        ("ZEROCOPY_SCHEDULER_TICK_S", "-inf", "invalid_value"),
        ("ZEROCOPY_SCHEDULE_LATE_AFTER_S", "-5", "out_of_range"),
        ("ZEROCOPY_RUNNER", "celery", "invalid_value"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(name: str, value: str, reason: str) -> None:
    with pytest.raises(ZerocopyError) as info:
        load_config({name: value})
    assert info.value.code == "validation_error"
    assert info.value.details == {"field": name, "reason": reason}
    assert name in info.value.message and repr(value) in info.value.message
