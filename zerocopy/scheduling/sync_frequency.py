"""The one place that maps a sync's stored ``frequency`` string to schedule arithmetic.

Sync frequencies carry no time of day; everything is in the workspace's time zone, with the
DST rules of :mod:`zerocopy.scheduling.schedule`:

* ``15m``/``30m``: every local quarter/half hour (:00/:15/:30/:45, :00/:30), exactly 15/30
  minutes of real time apart, also across DST (a repeated hour runs in both passes).
* ``1h``: minute 0 of every local hour; ``2h``…``12h``: local 00:00, N:00, 2N:00, … of every
  day (anchored at local midnight, N divides 24). Each local slot runs once: a slot in a
  spring-forward gap runs when the gap ends, a repeated one on its first pass only.
* ``1d`` daily 00:00, ``1w`` Monday 00:00, ``1mo`` the 1st at 00:00 (where midnight does not
  exist, e.g. America/Santiago's spring-forward day, at the first instant after the gap).
"""

from __future__ import annotations

from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.scheduling.schedule import (
    DAILY,
    EVERY_15_MINUTES,
    EVERY_30_MINUTES,
    EVERY_N_HOURS,
    HOURLY,
    MONTHLY,
    WEEKLY,
    Schedule,
)

SYNC_FREQUENCY_SCHEDULES: dict[str, Schedule] = {
    "15m": Schedule(frequency=EVERY_15_MINUTES),
    "30m": Schedule(frequency=EVERY_30_MINUTES),
    "1h": Schedule(frequency=HOURLY, minute=0),
    "2h": Schedule(frequency=EVERY_N_HOURS, hours=2, minute=0),
    "3h": Schedule(frequency=EVERY_N_HOURS, hours=3, minute=0),
    "4h": Schedule(frequency=EVERY_N_HOURS, hours=4, minute=0),
    "6h": Schedule(frequency=EVERY_N_HOURS, hours=6, minute=0),
    "8h": Schedule(frequency=EVERY_N_HOURS, hours=8, minute=0),
    "12h": Schedule(frequency=EVERY_N_HOURS, hours=12, minute=0),
    "1d": Schedule(frequency=DAILY, hour=0, minute=0),
    "1w": Schedule(frequency=WEEKLY, weekday=0, hour=0, minute=0),
    "1mo": Schedule(frequency=MONTHLY, day=1, hour=0, minute=0),
}
"""Every frequency string a sync may store (a superset of what the sync API accepts today)."""


def sync_schedule(frequency: str) -> Schedule:
    """The :class:`Schedule` of a sync ``frequency`` string; ``validation_error`` when unknown."""
    try:
        return SYNC_FREQUENCY_SCHEDULES[frequency]
    except (KeyError, TypeError):
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"sync frequency must be one of {', '.join(SYNC_FREQUENCY_SCHEDULES)}, "
            f"got {frequency!r}",
            details={"field": "frequency"},
        ) from None
