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


def test_a_reset_to_null_reads_everything_and_remembers_what_may_come_again() -> None:
    before = WatermarkState(value=T0, seen={"a": us(0)}, invalid=("x",), counts={"a": 2})
    after = before.reset(None)
    assert (after.value, after.seen, after.invalid, after.counts) == (None, {}, (), {})
    assert after.replay_until == T0
    assert WatermarkState.from_json(after.to_json()) == after
    # A second reset keeps the furthest point rows may have been delivered up to.
    assert after.reset(T0 - timedelta(days=1)).replay_until == T0


def test_a_reset_forward_skips_rows_and_replays_nothing() -> None:
    later = T0 + timedelta(hours=1)
    after = WatermarkState(value=T0).reset(later.replace(tzinfo=None))  # naive = UTC
    assert (after.value, after.replay_until) == (later, None)
    assert "replay_until" not in after.to_json()


def test_the_tracker_keeps_the_replay_point_until_the_value_passes_it() -> None:
    tracker = WatermarkTracker(WatermarkState(value=None, replay_until=T0))
    assert tracker.replay_until_us == us(0)
    tracker.record("a", us(-5))
    assert tracker.snapshot().replay_until == T0
    tracker.record("b", us(0))
    assert tracker.snapshot().replay_until == T0  # rows at the point itself may come again
    tracker.record("c", us(1))
    assert tracker.snapshot().replay_until is None


def test_a_row_applied_again_is_not_counted_as_another_identical_row() -> None:
    tracker = WatermarkTracker(WatermarkState(value=T0, seen={"a": us(0)}))
    assert tracker.unseen(["a"], [us(0)]) == [False]
    tracker.reapply("a")
    tracker.record("a", us(0))
    assert tracker.snapshot().counts == {}
    tracker.record("a", us(0))  # a genuinely new identical copy still counts
    assert tracker.snapshot().counts == {"a": 2}
