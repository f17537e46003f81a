"""Property tests of the schedule arithmetic against a brute-force wall-clock simulation.

The oracle knows nothing of zoneinfo folds or gap arithmetic: it walks real time minute by
minute, reads the local wall clock and fires a slot the first time the clock reaches or
passes it (a high-water mark of the wall clock, so a repeated hour never fires a slot twice
and a skipped one fires at the first instant after the gap). Sub-hourly schedules fire at
every instant whose local minute is a multiple of 15 (30), hourly ones (and every 1 hour) at
every instant whose local minute is M (both passes of a repeated hour, none in a skipped one). The clock is frozen: every
instant is given explicitly.
"""

from __future__ import annotations

import calendar
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zerocopy.scheduling.schedule import WEEKDAYS, next_run, next_runs, parse_schedule, plan_firing

ZONES = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "America/Santiago",
    "America/Havana",
    "Australia/Sydney",
    "Antarctica/Troll",
    "Pacific/Chatham",
    "Pacific/Apia",
]


def _transitions(zone: ZoneInfo) -> list[datetime]:
    out = []
    t = datetime(2024, 1, 1, tzinfo=UTC)
    previous = t.astimezone(zone).utcoffset()
    while t.year < 2031:
        t += timedelta(hours=3)
        offset = t.astimezone(zone).utcoffset()
        if offset != previous:
            out.append(t)
        previous = offset
    return out


TRANSITIONS = {name: _transitions(ZoneInfo(name)) for name in ZONES}
TRANSITIONS["Pacific/Apia"] += [datetime(2011, 12, 30, 10, tzinfo=UTC)]  # the skipped day


def _wall(t: datetime, zone: ZoneInfo) -> datetime:
    return t.astimezone(zone).replace(tzinfo=None)


def _is_hourly(doc: dict[str, Any]) -> bool:
    return doc["frequency"] == "hourly" or (
        doc["frequency"] == "every_n_hours" and doc["hours"] == 1
    )


def _is_slot(doc: dict[str, Any], w: datetime) -> bool:
    f = doc["frequency"]
    if w.minute != doc.get("minute", 0):
        return False
    if f == "hourly":
        return True
    if f == "every_n_hours":
        return w.hour % doc["hours"] == 0
    if w.hour != doc.get("hour", 0):
        return False
    if f == "weekly":
        return w.weekday() == WEEKDAYS.index(doc["weekday"])
    if f == "monthly":
        return w.day == min(doc["day"], calendar.monthrange(w.year, w.month)[1])
    return f == "daily"


def oracle(doc: dict[str, Any], after: datetime, zone: ZoneInfo, count: int) -> list[datetime]:
    start = after.replace(second=0, microsecond=0)
    out: list[datetime] = []
    t = start
    if doc["frequency"] in ("every_15_minutes", "every_30_minutes"):
        step = 15 if doc["frequency"] == "every_15_minutes" else 30
        while len(out) < count:
            t += timedelta(minutes=1)
            if t > after and _wall(t, zone).minute % step == 0:
                out.append(t)
        return out
    if _is_hourly(doc):  # every instant the local clock shows hh:MM (real-time hours)
        while len(out) < count:
            t += timedelta(minutes=1)
            if t > after and _wall(t, zone).minute == doc.get("minute", 0):
                out.append(t)
        return out
    high = max(_wall(start - timedelta(minutes=k), zone) for k in range(0, 2 * 1440 + 1, 5))
    high = max(high, _wall(start, zone))
    while len(out) < count:
        t += timedelta(minutes=1)
        w = _wall(t, zone)
        if w <= high:
            continue
        s, fired = high + timedelta(minutes=1), False
        while s <= w and not fired:
            fired = _is_slot(doc, s)
            s += timedelta(minutes=1)
        high = w
        if fired and t > after:
            out.append(t)
    return out


MINUTES = st.sampled_from([0, 15, 30, 45]) | st.integers(0, 59)
HOURS = st.sampled_from([0, 1, 2, 3, 23]) | st.integers(0, 23)
FREQUENT = st.one_of(
    st.just({"frequency": "every_15_minutes"}),
    st.just({"frequency": "every_30_minutes"}),
    st.builds(lambda m: {"frequency": "hourly", "minute": m}, MINUTES),
    st.builds(
        lambda n, m: {"frequency": "every_n_hours", "hours": n, "minute": m},
        st.sampled_from([1, 2, 3, 4, 6, 8, 12]),
        MINUTES,
    ),
    st.builds(lambda h, m: {"frequency": "daily", "hour": h, "minute": m}, HOURS, MINUTES),
)
RARE = st.one_of(
    st.builds(
        lambda w, h, m: {"frequency": "weekly", "weekday": w, "hour": h, "minute": m},
        st.sampled_from(WEEKDAYS),
        HOURS,
        MINUTES,
    ),
    st.builds(
        lambda d, h, m: {"frequency": "monthly", "day": d, "hour": h, "minute": m},
        st.sampled_from([1, 28, 29, 30, 31]) | st.integers(1, 31),
        HOURS,
        MINUTES,
    ),
)


@st.composite
def near_a_transition(draw: st.DrawFn, span_hours: float) -> tuple[str, datetime]:
    zone = draw(st.sampled_from(ZONES))
    moments = TRANSITIONS[zone] or [datetime(2026, 6, 1, tzinfo=UTC)]
    base = draw(st.sampled_from(moments))
    back = draw(st.floats(0, span_hours, allow_nan=False))
    micro = draw(st.integers(0, 59_999_999))
    return zone, base - timedelta(hours=back, microseconds=micro)


def _check(doc: dict[str, Any], zone_name: str, after: datetime, count: int) -> None:
    zone = ZoneInfo(zone_name)
    schedule = parse_schedule(doc)
    got = next_runs(schedule, after, zone, count)
    assert got == oracle(doc, after, zone, count), (doc, zone_name, after)
    # Strictly increasing, never the same instant twice, all after `after`.
    assert got[0] > after
    assert all(a < b for a, b in itertools.pairwise(got))
    # Planning from any instant t gives the first occurrence > t (no slot skipped).
    for a, b in itertools.pairwise([after, *got]):
        for t in (a, a + (b - a) / 2, b - timedelta(microseconds=1)):
            assert next_run(schedule, t, zone) == b
    # Each run is at a wall time matching the rule, or the first instant after a gap.
    for t in got:
        w = _wall(t, zone)
        just_before = _wall(t - timedelta(seconds=1), zone)
        jumped = w - just_before > timedelta(seconds=1)
        assert w.second == 0 and w.microsecond == 0
        if doc["frequency"] in ("every_15_minutes", "every_30_minutes"):
            assert w.minute % (15 if doc["frequency"] == "every_15_minutes" else 30) == 0
        elif _is_hourly(doc):
            assert w.minute == doc.get("minute", 0), (doc, zone_name, t)
        else:
            assert _is_slot(doc, w) or jumped, (doc, zone_name, t)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=FREQUENT, where=near_a_transition(30))
def test_frequent_schedules_match_the_wall_clock_oracle(
    doc: dict[str, Any], where: tuple[str, datetime]
) -> None:
    _check(doc, where[0], where[1], 5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=RARE, where=near_a_transition(24 * 33))
def test_weekly_and_monthly_match_the_wall_clock_oracle(
    doc: dict[str, Any], where: tuple[str, datetime]
) -> None:
    _check(doc, where[0], where[1], 1)


ANY_SCHEDULE = FREQUENT | RARE


@settings(max_examples=150, deadline=None)
@given(
    doc=ANY_SCHEDULE,
    zone=st.sampled_from(ZONES),
    start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)),
)
def test_long_sequences_strictly_increase_and_never_repeat(
    doc: dict[str, Any], zone: str, start: datetime
) -> None:
    after = start.replace(tzinfo=UTC)
    got = next_runs(parse_schedule(doc), after, zone, 40)
    assert len(got) == 40 and got[0] > after
    assert all(a < b for a, b in itertools.pairwise(got))
    # Re-planning from a run finds the following one (a scheduler that fired t plans > t).
    assert all(next_run(parse_schedule(doc), a, zone) == b for a, b in itertools.pairwise(got))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc=FREQUENT,
    where=near_a_transition(30),
    down=st.integers(0, 8),
    extra=st.floats(0, 1, allow_nan=False),
)
def test_a_firing_coalesces_exactly_the_missed_occurrences(
    doc: dict[str, Any], where: tuple[str, datetime], down: int, extra: float
) -> None:
    """Due at an occurrence, ticking after ``down`` more occurrences have passed: one firing
    standing for all of them, planned next at the first occurrence after now."""
    zone = ZoneInfo(where[0])
    schedule = parse_schedule(doc)
    occurrences = oracle(doc, where[1], zone, down + 2)
    due, last_missed, following = occurrences[0], occurrences[down], occurrences[down + 1]
    now = last_missed + (following - last_missed) * extra
    if now >= following:
        now = last_missed
    firing = plan_firing(schedule, zone, due, now, late_after_s=60)
    assert firing is not None
    assert firing.due_at == due and firing.coalesced == down + 1
    assert firing.next_due_at == following == next_run(schedule, now, zone)
    assert firing.catch_up == (down > 0 or (now - due).total_seconds() > 60)
    assert plan_firing(schedule, zone, due, due - timedelta(microseconds=1)) is None
