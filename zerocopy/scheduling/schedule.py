"""Schedule arithmetic: pure functions of (schedule, time zone, instant), no clock, no I/O.

Two families of frequencies, both in the workspace's IANA time zone:

* **real-time intervals** (``every_15_minutes``, ``every_30_minutes``, ``hourly`` at minute M
  and ``every_n_hours`` with N = 1): every instant whose local wall-clock time is a whole
  multiple of 15 (30) minutes (local :00/:15/:30/:45, or :00/:30), e.g. :00 and :30 in
  Asia/Kathmandu (+05:45) too, or whose local minute is M (hourly). DST shifts are multiples of
  30 minutes, so these runs are exactly 15 (30) minutes of real time apart across every
  transition, hourly ones an hour apart (where the shift is a whole hour): a fall-back's
  repeated hour runs in both passes (distinct instants, never the same instant twice) and a
  spring-forward's skipped hour simply has no run (what cron does for "every hour").
* **wall-clock slots** (``every_n_hours`` with N >= 2, ``daily``, ``weekly``, ``monthly``):
  local (date, HH:MM) slots. Each slot fires exactly once: a slot inside a
  spring-forward gap fires at the first valid instant after the gap (02:30 on a Paris
  spring-forward day → 03:00 CEST; a slot on a day a zone skipped entirely → the first instant
  after the skip), a slot repeated by a fall-back fires on its first pass only. Slots that
  resolve to the same instant fire once. So every local day has the same number of
  every-N-hours runs (8 every 3 hours on a 23- or 25-hour day). ``every_n_hours`` is anchored at
  local midnight: slots at 00:MM, N:MM, 2N:MM, … of every local day, N a divisor of 24 (1, 2,
  3, 4, 6, 8, 12) so that every day has the same slots. ``monthly`` on day 29/30/31 fires on the
  month's last day when the month is shorter (once per month).

``next_run(after)`` is the first firing instant strictly after ``after``. Every function
takes and returns aware UTC datetimes.

A change of the workspace's time zone re-plans without running a local slot twice or
skipping one (:func:`replan_in_zone`). Every occurrence of a wall-clock schedule stands for a
local calendar slot, its nominal (date, HH:MM). The slots a plan ran are those before the one
it was waiting for; in the new zone the plan goes on at the first slot after those (a daily
09:00 whose 09:00 Paris ran today next runs tomorrow at 09:00 London, not again today at
09:00 London; one waiting for 09:00 London today runs 09:00 Paris today, at once if that
instant has passed, not tomorrow). A new-zone slot whose instant is at or before the plan's
floor (``planned_from``: when the plan last fired, or was made) is not owed: a run after it
covered it, or the schedule did not exist yet. The slot the old plan had already come due on
when the zone changed (the scheduler was down) is owed whatever the new zone says. Real-time
frequencies (15/30 minutes, hourly) have no slots: they go on at the new zone's first aligned
instant after the floor. Anything that comes out due runs once, at once, as a catch-up
coalescing what it stands for (:func:`plan_firing`).
"""

from __future__ import annotations

import calendar
import functools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

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

EVERY_N_HOURS_ALLOWED = (1, 2, 3, 4, 6, 8, 12)
"""Divisors of 24 below 24, so every day has the same slots (24 hours is ``daily``)."""

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_NAMES = {w[:n]: i for i, w in enumerate(WEEKDAYS) for n in range(3, len(w) + 1)}
"""A weekday's name or any start of it from 3 letters (``mon``, ``tues``, ``thurs``): the first
three letters already tell the seven days apart."""


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


_FIELDS: dict[str, tuple[str, ...]] = {
    MANUAL: (),
    EVERY_15_MINUTES: (),
    EVERY_30_MINUTES: (),
    HOURLY: ("minute",),
    EVERY_N_HOURS: ("hours", "minute"),
    DAILY: ("hour", "minute", "time"),
    WEEKLY: ("weekday", "hour", "minute", "time"),
    MONTHLY: ("day", "hour", "minute", "time"),
}
"""The fields each frequency takes (besides ``frequency``); any other field is refused.
``time`` ("HH:MM") is another way to write ``hour`` and ``minute`` (never stored)."""

_ALL_FIELDS = ("frequency", "minute", "hour", "weekday", "day", "hours", "time")
_HH_MM = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")
"""ASCII digits only (``\\d`` also takes Arabic-Indic or full-width ones); ``9:00`` is 09:00."""
_ZONE_FIELDS = frozenset({"time_zone", "timezone", "tz", "zone"})
"""Fields people send to give a schedule its own zone: refused with the workspace-zone hint."""

# Frequencies people try that are outside what zerocopy runs, to say why precisely.
_TOO_RARE = {"yearly", "annually", "annual", "quarterly", "bimonthly", "biannually", "every_year"}
_TOO_OFTEN = {"minutely", "secondly", "every_minute", "every_second", "continuous", "realtime"}
_EVERY = re.compile(r"^every_(\d+)_(second|minute|hour|day|week|month|year)s?$", re.ASCII)
_PERIOD_MINUTES = {EVERY_15_MINUTES: 15, EVERY_30_MINUTES: 30, HOURLY: 60, EVERY_N_HOURS: 60}
"""The shortest period of each sub-daily frequency (``every_n_hours`` goes down to 1 hour)."""
_UNIT_MINUTES = {
    "second": 1 / 60,
    "minute": 1,
    "hour": 60,
    "day": 1440,
    "week": 10080,
    "month": 44640,
    "year": 527040,
}


class Reason:
    """``details.reason`` of a schedule ``validation_error`` (with ``details.field``)."""

    REQUIRED = "required"
    UNKNOWN_FIELD = "unknown_field"
    NOT_APPLICABLE = "not_applicable"
    INVALID_TYPE = "invalid_type"
    OUT_OF_RANGE = "out_of_range"
    INVALID_VALUE = "invalid_value"
    UNKNOWN_FREQUENCY = "unknown_frequency"
    TOO_FREQUENT = "too_frequent"
    TOO_RARE = "too_rare"
    NOT_ALLOWED_HERE = "not_allowed_here"
    UNKNOWN_TIME_ZONE = "unknown_time_zone"


def _bad(message: str, field: str, reason: str = Reason.INVALID_VALUE) -> ZerocopyError:
    return ZerocopyError(
        errors.VALIDATION_ERROR, message, details={"field": field, "reason": reason}
    )


def _int_field(doc: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = doc.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(
            f"schedule.{name} must be an integer from {low} to {high}, got {value!r}",
            name,
            Reason.INVALID_TYPE,
        )
    if not low <= value <= high:
        raise _bad(
            f"schedule.{name} must be an integer from {low} to {high}, got {value!r}",
            name,
            Reason.OUT_OF_RANGE,
        )
    return value


def _time_field(doc: Mapping[str, Any]) -> tuple[int, int]:
    """(hour, minute) of ``doc["time"]``, "HH:MM" on a 24-hour clock (``"02:30"``, ``"2:30"``)."""
    raw = doc["time"]
    if not isinstance(raw, str):
        raise _bad(
            f'schedule.time must be a string "HH:MM" (24-hour clock), got {raw!r}',
            "time",
            Reason.INVALID_TYPE,
        )
    if doc.get("hour") is not None or doc.get("minute") is not None:
        raise _bad(
            "schedule.time and schedule.hour/minute say the same thing: give one of them",
            "time",
            Reason.INVALID_VALUE,
        )
    match = _HH_MM.match(raw.strip())
    if match is None:
        raise _bad(
            f'schedule.time must be "HH:MM" on a 24-hour clock (e.g. "02:30"), got {raw!r}',
            "time",
            Reason.INVALID_VALUE,
        )
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise _bad(
            f"schedule.time must be from 00:00 to 23:59, got {raw!r}", "time", Reason.OUT_OF_RANGE
        )
    return hour, minute


def _frequency_error(frequency: Any, allowed: tuple[str, ...]) -> ZerocopyError:
    """Why ``frequency`` is refused: too frequent, too rare, not for this owner, or unknown."""
    choices = ", ".join(allowed)
    most = next((f for f in allowed if f != MANUAL), MANUAL)
    # The shortest period this owner may use: 15 minutes for syncs, an hour for segments.
    shortest = min((_PERIOD_MINUTES[f] for f in allowed if f in _PERIOD_MINUTES), default=15)
    if frequency in SYNC_FREQUENCIES:  # valid elsewhere (sync-only frequencies on a segment)
        return _bad(
            f"schedule.frequency {frequency!r} is for syncs, not available here: use one of "
            f"{choices} (the most frequent is {most!r})",
            "frequency",
            Reason.NOT_ALLOWED_HERE,
        )
    # "every 5 minutes", "Every-2-Months": blanks and dashes read as underscores.
    text = re.sub(r"[\s-]+", "_", frequency.strip().lower()) if isinstance(frequency, str) else None
    minutes: float | None = None
    if text is not None and (m := _EVERY.match(text)):
        minutes = int(m.group(1)) * _UNIT_MINUTES[m.group(2)]
    if text in _TOO_OFTEN or (minutes is not None and minutes < shortest):
        return _bad(
            f"schedule.frequency {frequency!r} is too frequent: the most frequent schedule is "
            f"{most!r} (one of {choices})",
            "frequency",
            Reason.TOO_FREQUENT,
        )
    if text in _TOO_RARE or (minutes is not None and minutes > _UNIT_MINUTES["month"]):
        return _bad(
            f"schedule.frequency {frequency!r} is too rare: the least frequent schedule is "
            f"'monthly' (one of {choices})",
            "frequency",
            Reason.TOO_RARE,
        )
    if frequency is None:
        return _bad(
            f"schedule.frequency is required (one of {choices})", "frequency", Reason.REQUIRED
        )
    return _bad(
        f"schedule.frequency must be one of {choices}, got {frequency!r}",
        "frequency",
        Reason.UNKNOWN_FREQUENCY,
    )


def parse_schedule(
    doc: Mapping[str, Any] | None, allowed: tuple[str, ...] = SYNC_FREQUENCIES
) -> Schedule:
    """Validate a schedule document (``None`` = manual); ``validation_error`` names the field.

    ``{"frequency": "daily", "hour": 2, "minute": 30}``, ``{"frequency": "weekly",
    "weekday": "monday", ...}``, ``{"frequency": "monthly", "day": 31, ...}``,
    ``{"frequency": "every_n_hours", "hours": 6, "minute": 0}``; daily, weekly and monthly
    schedules may give ``"time": "02:30"`` instead of ``hour`` and ``minute``. ``minute`` and
    ``hour`` default to 0 and ``day`` to 1; ``weekday`` (weekly) and ``hours`` (every_n_hours) are
    required. A field the frequency does not use is refused (``not_applicable``) rather than
    silently ignored; ``null`` counts as absent for such fields. The error's ``details`` hold
    ``field`` (the offending field) and ``reason`` (see :class:`Reason`).
    """
    if doc is None:
        return Schedule()
    if not isinstance(doc, Mapping):
        raise _bad(
            'schedule must be an object like {"frequency": "daily", "hour": 2, "minute": 30} '
            "or null",
            "schedule",
            Reason.INVALID_TYPE,
        )
    unknown = sorted(str(k) for k in doc if k not in _ALL_FIELDS)
    if unknown:
        zone_hint = next((k for k in unknown if k.strip().lower() in _ZONE_FIELDS), None)
        raise _bad(
            f"unknown schedule field(s): {', '.join(unknown)} (known: {', '.join(_ALL_FIELDS)})"
            + (
                f"; {zone_hint}: a schedule runs in its workspace's IANA time zone, changed "
                'with PATCH /v1/workspace {"time_zone": …} (every schedule is re-planned in it)'
                if zone_hint
                else ""
            ),
            zone_hint or unknown[0],
            Reason.UNKNOWN_FIELD,
        )
    frequency = doc.get("frequency")
    if isinstance(frequency, str) and frequency.strip().lower() in allowed:
        frequency = frequency.strip().lower()  # like weekday names: "Daily" is daily
    if not isinstance(frequency, str) or frequency not in allowed:
        raise _frequency_error(frequency, allowed)
    uses = _FIELDS[frequency]
    for name in _ALL_FIELDS[1:]:
        if name not in uses and doc.get(name) is not None:
            raise _bad(
                f"schedule.{name} does not apply to {frequency} schedules"
                + (f" (they take: {', '.join(uses)})" if uses else " (they take no other field)"),
                name,
                Reason.NOT_APPLICABLE,
            )
    if "time" in uses and doc.get("time") is not None:
        hour, minute = _time_field(doc)
    else:
        minute = _int_field(doc, "minute", 0, 0, 59) if "minute" in uses else 0
        hour = _int_field(doc, "hour", 0, 0, 23) if "hour" in uses else 0
    day = _int_field(doc, "day", 1, 1, 31) if "day" in uses else 1
    weekday = 0
    if frequency == WEEKLY:
        raw = doc.get("weekday")
        if raw is None:
            raise _bad(
                f"schedule.weekday is required for weekly schedules (one of {', '.join(WEEKDAYS)})",
                "weekday",
                Reason.REQUIRED,
            )
        given = raw.strip().lower() if isinstance(raw, str) else None
        if given not in _WEEKDAY_NAMES:
            numbered = isinstance(raw, int) and not isinstance(raw, bool)
            raise _bad(
                f"schedule.weekday must be one of {', '.join(WEEKDAYS)} (or the start of one, "
                f"3 letters or more: mon, tues, thurs), got {raw!r}"
                + (
                    ": send the day's name, not a number (0 is Monday in some conventions "
                    "and Sunday in others)"
                    if numbered
                    else ""
                ),
                "weekday",
                Reason.INVALID_VALUE if isinstance(raw, str) else Reason.INVALID_TYPE,
            )
        weekday = _WEEKDAY_NAMES[given]
    hours = 1
    if frequency == EVERY_N_HOURS:
        raw_hours = doc.get("hours")
        allowed_n = ", ".join(map(str, EVERY_N_HOURS_ALLOWED))
        if raw_hours is None:
            raise _bad(
                f"schedule.hours is required for every_n_hours schedules (one of {allowed_n})",
                "hours",
                Reason.REQUIRED,
            )
        if isinstance(raw_hours, bool) or not isinstance(raw_hours, int):
            raise _bad(
                f"schedule.hours must be an integer, one of {allowed_n}, got {raw_hours!r}",
                "hours",
                Reason.INVALID_TYPE,
            )
        if raw_hours not in EVERY_N_HOURS_ALLOWED:
            raise _bad(
                f"schedule.hours must divide a day evenly: one of {allowed_n} (runs at local "
                f"00:MM, N:MM, 2N:MM, … every day; use daily for 24), got {raw_hours!r}",
                "hours",
                Reason.OUT_OF_RANGE,
            )
        hours = raw_hours
    return Schedule(
        frequency=frequency, minute=minute, hour=hour, weekday=weekday, day=day, hours=hours
    )


_NOT_IANA = frozenset({"localtime", "posixrules", "Factory"})


@functools.cache
def _iana_names() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_IANA


@functools.cache
def _by_folded_name() -> dict[str, str]:
    return {_fold(n): n for n in _iana_names()}


def _fold(name: str) -> str:
    return re.sub(r"[\s_]+", "_", name.strip()).lower()


def _spelled(name: str) -> str | None:
    """The IANA name ``name`` was meant to be, if it differs only in case, blanks or ``_``."""
    return _by_folded_name().get(_fold(name)) if name.strip() else None


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (exact spelling, e.g. ``Europe/Paris``); ``validation_error``.

    Names that only resolve through the host's files (``localtime``, ``posixrules``,
    ``Factory``, ``posix/…``, ``right/…`` with leap seconds) are refused.
    """
    if not isinstance(name, str) or name not in _iana_names():
        guess = _spelled(name) if isinstance(name, str) else None
        raise _bad(
            f"unknown IANA time zone {name!r} "
            + (
                f"(did you mean {guess!r}? names are case-sensitive)"
                if guess
                else "(e.g. 'Europe/Paris', 'America/New_York', 'UTC')"
            ),
            "time_zone",
            Reason.UNKNOWN_TIME_ZONE,
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # pragma: no cover - listed but unreadable
        raise _bad(
            f"unknown IANA time zone {name!r} (e.g. 'Europe/Paris')",
            "time_zone",
            Reason.UNKNOWN_TIME_ZONE,
        ) from None


def stored_zone(name: str) -> ZoneInfo:
    """The zone of a stored name: any name ZoneInfo reads (validated ones are IANA names; a
    workspace stored before that check, e.g. ``localtime``, keeps working)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return load_zone(name)  # raises the validation_error


# --------------------------------------------------------------------------- local time
def _offset_s(instant_s: int, zone: ZoneInfo) -> int:
    """The zone's UTC offset in seconds at POSIX second ``instant_s``."""
    offset = datetime.fromtimestamp(instant_s, UTC).astimezone(zone).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


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


def _next_aligned(after: datetime, zone: ZoneInfo, step_s: int, phase_s: int = 0) -> datetime:
    """The first instant > ``after`` whose local wall-clock time is ``phase_s`` past a multiple
    of ``step_s`` (``step_s`` 3600 and ``phase_s`` 900: every local hh:15)."""
    lo = math.floor(after.timestamp())  # candidates are whole seconds: > lo means > after
    for _ in range(16):
        offset = _offset_s(lo + 1, zone)
        # first aligned >= lo+1 under this offset
        candidate = -(-(lo + 1 + offset - phase_s) // step_s) * step_s + phase_s - offset
        if _offset_s(candidate, zone) == offset:
            return datetime.fromtimestamp(candidate, UTC)
        # A transition lies in (lo+1, candidate]: find it, then align with the new offset.
        a, b = lo + 1, candidate
        while b - a > 1:
            mid = (a + b) // 2
            if _offset_s(mid, zone) == offset:
                a = mid
            else:
                b = mid
        lo = b - 1
    raise AssertionError(f"no aligned instant after {after} in {zone}")  # pragma: no cover


def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _slots(schedule: Schedule, day: date) -> Iterator[time]:
    """The local wall-clock times this schedule fires on ``day``, in order."""
    f = schedule.frequency  # (hourly runs by real-time hours: see next_run)
    if f == EVERY_N_HOURS:
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
    zone = stored_zone(zone) if isinstance(zone, str) else zone
    after = after.astimezone(UTC)
    step_min = INTERVAL_MINUTES.get(schedule.frequency)
    if step_min is not None:
        return _next_aligned(after, zone, step_min * 60)
    if schedule.frequency == HOURLY or (
        schedule.frequency == EVERY_N_HOURS and schedule.hours == 1
    ):  # every local hh:MM in real time: both passes of a repeated hour, none in a skipped one
        return _next_aligned(after, zone, 3600, schedule.minute * 60)
    # A slot fires the first time the local clock reaches (or jumps past) it, so a slot at
    # or before the wall time of `after` has fired by then: only later slots are resolved.
    # (A later one may still resolve before `after`: the clock's second pass in a fall-back.)
    wall_after = after.astimezone(zone).replace(tzinfo=None)
    day = wall_after.date()
    for _ in range(40):  # a month plus margin covers every frequency
        for slot in _slots(schedule, day):
            wall = datetime.combine(day, slot)
            if wall <= wall_after:
                continue
            instant = resolve_local(wall, zone)
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


def is_real_time(schedule: Schedule) -> bool:
    """Whether ``schedule`` keeps a real-time cadence (no wall-clock slots): 15 and 30 minutes,
    hourly at minute M and every 1 hour."""
    return schedule.frequency in INTERVAL_MINUTES or (
        schedule.frequency == HOURLY
        or (schedule.frequency == EVERY_N_HOURS and schedule.hours == 1)
    )


def replan_in_zone(
    schedule: Schedule,
    old_zone: ZoneInfo | str | None,
    new_zone: ZoneInfo | str,
    pending: datetime,
    floor: datetime,
    changed_at: datetime,
    *,
    fired: bool = True,
) -> datetime | None:
    """The next due instant of a plan made in ``old_zone`` once the workspace is in ``new_zone``.

    ``pending`` is the occurrence the old plan was waiting for (its ``next_due_at``), ``floor``
    the plan's ``planned_from`` (nothing at or before it is owed), ``fired`` whether the
    floor is the plan's last firing (else it is when the plan was made: nothing ran since)
    and ``changed_at`` when the zone changed (a scheduler noticing it late passes the moment
    it noticed it).

    * Wall-clock slots (daily, weekly, monthly, every N >= 2 hours): when the plan fired, the
      slots it ran are those whose nominal local (date, HH:MM) reads before ``pending`` on
      the old zone's clock. The result is the first slot after those, resolved in the new
      zone (gap and fold rules as in :func:`next_run`), whose instant is after ``floor``: a
      slot already run never runs again, a later one at or before the floor was covered by
      that run (or came before the plan). Except: when ``pending`` was already due at
      ``changed_at`` its slot is owed; if the new zone would pass over it, it runs at its
      old instant (or with the next slot, when that is due earlier: one catch-up run).
    * Real-time frequencies: the new zone's first aligned instant after ``floor`` (or
      ``pending`` when that is earlier and was already due at ``changed_at``).

    The result may lie in the past: the scheduler then fires it at once, one catch-up run
    coalescing what is due. ``None`` for manual schedules.
    """
    if schedule.is_manual:
        return None
    new = stored_zone(new_zone) if isinstance(new_zone, str) else new_zone
    pending, floor = pending.astimezone(UTC), floor.astimezone(UTC)
    was_due = pending <= changed_at
    old: ZoneInfo | None
    try:
        old = stored_zone(old_zone) if isinstance(old_zone, str) else old_zone
    except ZerocopyError:
        old = None  # a zone nobody can read any more: no labels, the real-time rule
    if is_real_time(schedule) or old is None:
        following = next_run(schedule, floor, new)
        assert following is not None
        return pending if was_due and pending < following else following
    before_pending = (pending - timedelta(microseconds=1)).astimezone(old).replace(tzinfo=None)
    owed_label = _first_slot_after(schedule, before_pending)
    done_until = before_pending if fired else None
    day = (done_until or floor.astimezone(new).replace(tzinfo=None)).date() - timedelta(days=1)
    for _ in range(40):  # a month plus margin covers every frequency
        for slot in _slots(schedule, day):
            wall = datetime.combine(day, slot)
            if done_until is not None and wall <= done_until:
                continue
            instant = resolve_local(wall, new)
            if instant <= floor:
                continue
            if was_due and wall > owed_label:
                # The slot owed in the old zone has no run here: it runs now, at its old
                # instant, unless a later slot is due too (one catch-up run covers both).
                return min(pending, instant)
            return instant
        day += timedelta(days=1)
    raise AssertionError(f"no occurrence of {schedule} within 40 days")  # pragma: no cover


def _first_slot_after(schedule: Schedule, wall: datetime) -> datetime:
    """The first local slot (nominal date and time) of ``schedule`` after naive ``wall``."""
    day = wall.date()
    for _ in range(40):
        for slot in _slots(schedule, day):
            candidate = datetime.combine(day, slot)
            if candidate > wall:
                return candidate
        day += timedelta(days=1)
    raise AssertionError(f"no occurrence of {schedule} within 40 days")  # pragma: no cover
