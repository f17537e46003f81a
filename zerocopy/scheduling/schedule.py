"""Schedule arithmetic: pure functions of (schedule, time zone, instant), no clock, no I/O.

Two families of frequencies:

* **elapsed intervals** (``every_15_minutes``, ``every_30_minutes``): UTC instants that are
  multiples of the interval. Elapsed time has no DST: nothing is skipped or doubled.
* **wall-clock slots** (``hourly`` at minute M, ``every_n_hours``, ``daily``, ``weekly``,
  ``monthly``): local times in the workspace's IANA time zone. Each local slot fires at most
  once: a slot inside a spring-forward gap fires at the first valid instant after the gap
  (02:30 on a Paris spring-forward day → 03:00 CEST), a slot repeated by a fall-back fires
  the first time only. Day 31 (or 29, 30) in a shorter month fires on its last day.

Every function takes and returns aware UTC datetimes.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from zerocopy import errors
from zerocopy.errors import ZerocopyError

MANUAL = "manual"
EVERY_15_MINUTES = "every_15_minutes"
EVERY_30_MINUTES = "every_30_minutes"
HOURLY = "hourly"
EVERY_N_HOURS = "every_n_hours"
DAILY = "daily"
WEEKLY = "weekly"
MONTHLY = "monthly"

SEGMENT_FREQUENCIES = (MANUAL, HOURLY, DAILY, WEEKLY, MONTHLY)
"""What a segment may use (issue 9)."""

SYNC_FREQUENCIES = (
    MANUAL,
    EVERY_15_MINUTES,
    EVERY_30_MINUTES,
    HOURLY,
    EVERY_N_HOURS,
    DAILY,
    WEEKLY,
    MONTHLY,
)
"""What a sync may use (issue 9)."""

INTERVAL_MINUTES = {EVERY_15_MINUTES: 15, EVERY_30_MINUTES: 30}

EVERY_N_HOURS_ALLOWED = (2, 3, 4, 6, 8, 12)
"""Divisors of 24, so every day has the same slots."""

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A validated schedule; build it with :func:`parse_schedule`."""

    frequency: str = MANUAL
    minute: int = 0
    hour: int = 0
    weekday: int = 0
    """0 = Monday (``weekly``)."""
    day: int = 1
    """Day of month 1-31 (``monthly``); past the month's end means its last day."""
    hours: int = 1
    """The N of ``every_n_hours``."""

    @property
    def is_manual(self) -> bool:
        return self.frequency == MANUAL

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form (what the API returns and the segment stores)."""
        out: dict[str, Any] = {"frequency": self.frequency}
        if self.frequency in (HOURLY, EVERY_N_HOURS, DAILY, WEEKLY, MONTHLY):
            out["minute"] = self.minute
        if self.frequency in (DAILY, WEEKLY, MONTHLY):
            out["hour"] = self.hour
        if self.frequency == WEEKLY:
            out["weekday"] = WEEKDAYS[self.weekday]
        if self.frequency == MONTHLY:
            out["day"] = self.day
        if self.frequency == EVERY_N_HOURS:
            out["hours"] = self.hours
        return out

    def key(self) -> str:
        """A stable text form, to notice that a stored plan was made for another schedule."""
        return ",".join(f"{k}={v}" for k, v in sorted(asdict(self).items()))


def _bad(message: str, field: str) -> ZerocopyError:
    return ZerocopyError(errors.VALIDATION_ERROR, message, details={"field": field})


def _int_field(doc: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = doc.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(f"schedule.{name} must be an integer from {low} to {high}, got {value!r}", name)
    return value


def parse_schedule(
    doc: Mapping[str, Any] | None, allowed: tuple[str, ...] = SYNC_FREQUENCIES
) -> Schedule:
    """Validate a schedule document (``None`` = manual); ``validation_error`` names the field.

    ``{"frequency": "daily", "hour": 2, "minute": 30}``, ``{"frequency": "weekly",
    "weekday": "monday", ...}``, ``{"frequency": "monthly", "day": 31, ...}``,
    ``{"frequency": "every_n_hours", "hours": 6, "minute": 0}``.
    """
    if doc is None:
        return Schedule()
    if not isinstance(doc, Mapping):
        raise _bad('schedule must be an object like {"frequency": "daily", ...}', "schedule")
    frequency = doc.get("frequency")
    if frequency not in allowed:
        raise _bad(
            f"schedule.frequency must be one of {', '.join(allowed)}, got {frequency!r}",
            "frequency",
        )
    known = {"frequency", "minute", "hour", "weekday", "day", "hours"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise _bad(f"unknown schedule field(s): {', '.join(map(str, unknown))}", unknown[0])
    minute = _int_field(doc, "minute", 0, 0, 59)
    hour = _int_field(doc, "hour", 0, 0, 23)
    day = _int_field(doc, "day", 1, 1, 31)
    weekday = 0
    if frequency == WEEKLY:
        raw = doc.get("weekday")
        if isinstance(raw, str) and raw.lower() in WEEKDAYS:
            weekday = WEEKDAYS.index(raw.lower())
        else:
            raise _bad(
                f"schedule.weekday must be one of {', '.join(WEEKDAYS)}, got {raw!r}", "weekday"
            )
    hours = 1
    if frequency == EVERY_N_HOURS:
        hours = doc.get("hours")  # type: ignore[assignment]
        if hours not in EVERY_N_HOURS_ALLOWED or isinstance(hours, bool):
            raise _bad(
                "schedule.hours must be one of "
                f"{', '.join(map(str, EVERY_N_HOURS_ALLOWED))}, got {hours!r}",
                "hours",
            )
    return Schedule(
        frequency=frequency, minute=minute, hour=hour, weekday=weekday, day=day, hours=hours
    )


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ``validation_error`` when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad(f"unknown IANA time zone {name!r} (e.g. 'Europe/Paris')", "time_zone") from None


# --------------------------------------------------------------------------- local time
def resolve_local(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of naive local ``wall``: first occurrence if repeated, gap end if skipped."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first  # exists; fold=0 is the earlier of two occurrences
    # In a gap fold=0 reads the wall time with the offset before the transition (too late)
    # and fold=1 with the offset after it (too early): the transition lies between.
    lo = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    hi = first
    after = hi.astimezone(zone).utcoffset()
    lo_s, hi_s = int(lo.timestamp()), int(hi.timestamp())
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(zone).utcoffset() == after:
            hi_s = mid
        else:
            lo_s = mid
    return datetime.fromtimestamp(hi_s, UTC)


def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _slots(schedule: Schedule, day: date) -> Iterator[time]:
    """The local wall-clock times this schedule fires on ``day``, in order."""
    f = schedule.frequency
    if f == HOURLY:
        for h in range(24):
            yield time(h, schedule.minute)
    elif f == EVERY_N_HOURS:
        for h in range(0, 24, schedule.hours):
            yield time(h, schedule.minute)
    elif f == DAILY:
        yield time(schedule.hour, schedule.minute)
    elif f == WEEKLY:
        if day.weekday() == schedule.weekday:
            yield time(schedule.hour, schedule.minute)
    elif f == MONTHLY and day.day == min(schedule.day, _last_day(day.year, day.month)):
        yield time(schedule.hour, schedule.minute)


def next_run(schedule: Schedule, after: datetime, zone: ZoneInfo | str) -> datetime | None:
    """The first firing instant strictly after ``after`` (``None`` for manual schedules)."""
    if after.tzinfo is None:
        raise ValueError("after must be an aware datetime")
    if schedule.is_manual:
        return None
    zone = load_zone(zone) if isinstance(zone, str) else zone
    after = after.astimezone(UTC)
    step_min = INTERVAL_MINUTES.get(schedule.frequency)
    if step_min is not None:
        step = step_min * 60
        seconds = (after - _EPOCH) // timedelta(seconds=1)
        return _EPOCH + timedelta(seconds=(seconds // step + 1) * step)
    # A day earlier: the local date of `after` may already hold slots resolving past it.
    day = after.astimezone(zone).date() - timedelta(days=1)
    for _ in range(40):  # a month plus margin covers every frequency
        for slot in _slots(schedule, day):
            instant = resolve_local(datetime.combine(day, slot), zone)
            if instant > after:
                return instant
        day += timedelta(days=1)
    raise AssertionError(f"no occurrence of {schedule} within 40 days")  # pragma: no cover


def next_runs(
    schedule: Schedule, after: datetime, zone: ZoneInfo | str, count: int = 5
) -> list[datetime]:
    """The next ``count`` firing instants after ``after`` (empty for manual)."""
    out: list[datetime] = []
    current: datetime | None = after
    while len(out) < count and current is not None:
        current = next_run(schedule, current, zone)
        if current is not None:
            out.append(current)
    return out


@dataclass(frozen=True, slots=True)
class Firing:
    """What a scheduler tick decided for one schedule."""

    due_at: datetime
    """The occurrence this run stands for (the earliest one it coalesces)."""
    coalesced: int
    """How many occurrences were due (more than 1 only after downtime)."""
    catch_up: bool
    """The run is late: the scheduler was not running when it was due."""
    next_due_at: datetime | None
    """When the schedule fires next (strictly after ``now``)."""


def plan_firing(
    schedule: Schedule,
    zone: ZoneInfo | str,
    next_due_at: datetime,
    now: datetime,
    *,
    late_after_s: float = 60.0,
) -> Firing | None:
    """``None`` if ``next_due_at`` is still ahead; else one firing coalescing every missed occurrence.

    A run started more than ``late_after_s`` after its due time is a catch-up run.
    """
    if next_due_at > now:
        return None
    coalesced = 1
    following = next_run(schedule, next_due_at, zone)
    while following is not None and following <= now:
        coalesced += 1
        following = next_run(schedule, following, zone)
    late = (now - next_due_at).total_seconds() > late_after_s
    return Firing(
        due_at=next_due_at,
        coalesced=coalesced,
        catch_up=late or coalesced > 1,
        next_due_at=following,
    )
