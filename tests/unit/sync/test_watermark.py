"""Watermark state and tracker (pure): ties, lookback window pruning, JSON round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from zerocopy.sync.watermark import WatermarkState, WatermarkTracker, from_micros, to_micros

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def us(seconds: int) -> int:
    return to_micros(T0 + timedelta(seconds=seconds))


def test_micros_round_trip_and_naive_is_utc() -> None:
    assert from_micros(to_micros(T0)) == T0
    assert to_micros(datetime(2026, 1, 1)) == to_micros(T0)


def test_ties_at_the_boundary_are_remembered() -> None:
    tracker = WatermarkTracker(WatermarkState())
    for h, s in (("a", 0), ("b", 1), ("c", 1)):
        tracker.record(h, us(s))
    state = tracker.snapshot()
    assert state.value == T0 + timedelta(seconds=1)
    assert state.seen == {"b": us(1), "c": us(1)}  # only rows at the value are kept
    again = WatermarkTracker(WatermarkState.from_json(state.to_json()))
    assert again.is_seen("b", us(1)) and again.is_seen("c", us(1))
    assert not again.is_seen("d", us(1))  # a late row tied with the watermark is new
    assert not again.is_seen("b", us(2))  # same content, later UPDATED_AT: an update


def test_lookback_keeps_hashes_inside_the_window() -> None:
    tracker = WatermarkTracker(WatermarkState(), timedelta(seconds=10))
    for i, s in enumerate((0, 5, 12, 20)):
        tracker.record(f"h{i}", us(s))
    state = tracker.snapshot()
    assert set(state.seen) == {"h2", "h3"}  # 12 and 20 are within [10, 20]
    assert state.read_from(timedelta(seconds=10)) == T0 + timedelta(seconds=10)
    assert WatermarkState().read_from(timedelta(seconds=10)) is None
