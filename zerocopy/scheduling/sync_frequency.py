"""The one place that maps a sync's stored ``frequency`` string to schedule arithmetic.

Sync frequencies carry no time of day; everything is in the workspace's time zone, with the
DST rules of :mod:`zerocopy.scheduling.schedule`:

* ``15m``/``30m``: every local quarter/half hour (:00/:15/:30/:45, :00/:30), exactly 15/30
  minutes of real time apart, also across DST (a repeated hour runs in both passes).
* ``1h``: minute 0 of every local hour, in real time (both passes of a repeated hour, none in
  a skipped one); ``2h``…``12h``: local 00:00, N:00, 2N:00, … of every day (anchored at local
  midnight, N divides 24). Each of those local slots runs once: a slot in a spring-forward gap
  runs when the gap ends, a repeated one on its first pass only.
* ``1d`` daily 00:00, ``1w`` Monday 00:00, ``1mo`` the 1st at 00:00 (where midnight does not
  exist, e.g. America/Santiago's spring-forward day, at the first instant after the gap).

Why two cadences across DST. A period of an hour or less is about *freshness*: whoever picks
``15m`` wants data at most 15 minutes old at any moment, so these keep a real-time cadence (a
one-hour fall-back gets its four quarter hours twice, a spring-forward loses none of real time;
with every modern shift a multiple of 30 minutes, the local grid is then also a fixed UTC
grid, never two runs at one instant). A period of several hours is about *when in the day*:
whoever picks ``6h`` expects 00:00, 06:00, 12:00 and 18:00 on the wall clock all year, not
01:00/07:00/… after the clocks change, so these keep wall-clock slots (5 or 7 real hours apart
around a one-hour shift, the same number of runs every local day). A period that does not
divide a day (``5h``, ``7h``) is refused: anchored at local midnight it would end every day
with a shorter interval, and anchored anywhere else it would drift across the wall clock.
"""

from __future__ import annotations

import re

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


_AMOUNT = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h|d|w|mo|y)\s*$", re.ASCII)
_MINUTES = {"s": 1 / 60, "sec": 1 / 60, "m": 1, "min": 1, "h": 60, "d": 1440, "w": 10080}
_MINUTES |= {"mo": 44640, "y": 527040}


_NAMES = {"hourly": "1h", "daily": "1d", "weekly": "1w", "monthly": "1mo"}
_NAMES |= {"every hour": "1h", "every day": "1d", "every week": "1w", "every month": "1mo"}
_EVERY = re.compile(r"^every\s+(\d+\s*[a-z]+)$", re.ASCII)
_UNIT_WORDS = re.compile(r"(\d)\s*(minutes?|mins?|hours?|hrs?|days?|weeks?|months?)$", re.ASCII)
_UNIT_SHORT = {"minute": "m", "min": "m", "hour": "h", "hr": "h", "day": "d", "week": "w"}
_UNIT_SHORT |= {"month": "mo"}


def _normalized(value: str) -> str:
    """``value`` lower-cased, in the short unit form where it is written in words."""
    text = " ".join(value.strip().lower().replace("_", " ").replace("-", " ").split())
    text = _NAMES.get(text, text)
    every = _EVERY.match(text)
    if every:
        text = every.group(1)
    words = _UNIT_WORDS.search(text)
    if words:
        unit = words.group(2).rstrip("s")
        text = text[: words.start(2)].strip() + _UNIT_SHORT.get(unit, unit)
    return text.replace(" ", "")


def _canonical(value: str, accepted: tuple[str, ...]) -> str | None:
    """The stored form of a frequency written another way, if it names one of ``accepted``.

    Case and spacing do not matter; names (``daily``), words (``every 2 hours``,
    ``30 minutes``) and other spellings of the same period (``60m``, ``24h``, ``7d``) map to
    the stored form (``1h``, ``1d``, ``1w``). Months only map to months: ``31d`` is refused, not
    read as ``1mo`` (which runs on the 1st of each month, 28 to 31 days apart).
    """
    text = _normalized(value)
    if text in accepted:
        return text
    match = _AMOUNT.match(text)
    if match is None:
        return None
    minutes = int(match.group(1)) * _MINUTES[match.group(2)]
    for candidate in accepted:
        known = _AMOUNT.match(candidate)
        if (
            known
            and int(known.group(1)) * _MINUTES[known.group(2)] == minutes
            # A month is not a number of days: "31d" or "744h" is not "the 1st of each month".
            and (known.group(2) == "mo") == (match.group(2) == "mo")
        ):
            return candidate
    return None


def check_sync_frequency(
    value: object, accepted: tuple[str, ...] = tuple(SYNC_FREQUENCY_SCHEDULES)
) -> str:
    """The stored form of ``value`` (one of ``accepted``), else a ``validation_error``.

    ``value`` may be written in any case and spacing, as a name (``hourly``, ``daily``,
    ``weekly``, ``monthly``) or in words (``every 15 minutes``); see :func:`_canonical`.

    ``details.reason`` says why: ``out_of_range`` (zero or negative: ``0h``, ``-1h``),
    ``too_frequent`` (under 15 minutes: ``5m``, ``30s``), ``too_rare`` (beyond monthly:
    ``2mo``, ``1y``) or ``unknown_frequency`` (anything else; for a period between those the
    message says which are offered: ``45m``, ``5h`` (every N hours must divide a day), ``25h``).
    """
    if isinstance(value, str) and value in accepted:
        return value
    negative = isinstance(value, str) and _NEGATIVE.search(value) is not None
    found = _canonical(value, accepted) if isinstance(value, str) and not negative else None
    if found is not None:
        return found
    choices = ", ".join(accepted)
    match = _AMOUNT.match(_normalized(value)) if isinstance(value, str) else None
    minutes = int(match.group(1)) * _MINUTES[match.group(2)] if match else None
    if negative or minutes == 0:
        reason, why = "out_of_range", "is not a period: a frequency must be at least 15m"
    elif minutes is not None and minutes < 15:
        reason, why = "too_frequent", "is too frequent: the most frequent is 15m"
    elif minutes is not None and minutes > _MINUTES["mo"]:
        reason, why = "too_rare", "is too rare: the least frequent is 1mo"
    elif minutes is not None:
        reason, why = "unknown_frequency", _why_not(minutes, accepted)
    else:
        reason, why = "unknown_frequency", "is not a sync frequency"
    raise ZerocopyError(
        errors.VALIDATION_ERROR,
        f"frequency {value!r} {why} (one of {choices})",
        details={"field": "frequency", "reason": reason},
    )


_NEGATIVE = re.compile(r"(?:^|\s)-\s*\d")
"""A minus sign before the amount (``-1h``, ``every -2 hours``), not a dash between words."""


def _why_not(minutes: float, accepted: tuple[str, ...]) -> str:
    """Why a period between 15 minutes and a month that is not offered is refused."""

    def offered(unit: str) -> list[str]:
        return [f for f in accepted if (m := _AMOUNT.match(f)) and m.group(2) == unit]

    if minutes < 60:
        return f"is not offered: below an hour the frequencies are {' or '.join(offered('m'))}"
    if minutes < _MINUTES["d"]:
        hours = offered("h")
        return (
            f"is not offered: every N hours must divide a day ({', '.join(hours)}), so that "
            "runs land on the same local times every day (N:00, 2N:00, … from local midnight)"
        )
    return "is longer than a day but not one of the longer periods offered: use " + ", ".join(
        offered("d") + offered("w") + offered("mo")
    )


def sync_schedule(frequency: str) -> Schedule:
    """The :class:`Schedule` of a sync ``frequency`` string; ``validation_error`` when unknown."""
    return SYNC_FREQUENCY_SCHEDULES[check_sync_frequency(frequency)]
