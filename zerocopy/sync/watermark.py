"""Watermark logic (pure): inclusive boundary + content hashes of rows at it, as dlt does.

The state is ``(value, seen)``: ``value`` is the highest ``UPDATED_AT`` durably delivered and
``seen`` maps the content hash of every delivered row with ``UPDATED_AT`` in
``[value - lookback, value]`` to that row's ``UPDATED_AT``. A run reads
``UPDATED_AT >= value - lookback`` (inclusive), drops rows whose hash is in ``seen`` and
delivers the rest, so ties at the boundary (including rows committed after the previous run
read it) are never lost and never applied twice; with a lookback, late-committed rows inside
the window are picked up exactly once. A row whose content changed gets a new hash and is
delivered again, which is the point of an update.

All timestamps are UTC-aware; naive source timestamps are taken as UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

FIRST_INSTANT = datetime.min.replace(tzinfo=UTC)
"""0001-01-01T00:00:00Z, the earliest ``UPDATED_AT`` a sync reads (years 1-9999)."""


def to_utc(value: datetime) -> datetime:
    """Naive → UTC (as the seeds recommend); aware → converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch of a UTC-aware datetime (exact, no float)."""
    delta = to_utc(value) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """Inverse of :func:`to_micros`."""
    return EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True, slots=True)
class WatermarkState:
    """Resumable cursor of one sync: last delivered ``UPDATED_AT`` + hashes of rows near it."""

    value: datetime | None = None
    seen: dict[str, int] = field(default_factory=dict)
    """Row content hash → its ``UPDATED_AT`` in epoch microseconds."""
    invalid: tuple[str, ...] = ()
    """Content hashes of rows already reported for a null or unparseable ``UPDATED_AT``.

    Every run reads such rows again (they have no place in the order); one whose hash is here
    is skipped, not reported again. A run that read them all keeps only the ones it saw, so a
    fixed or deleted row leaves the set and a changed one (new hash) is reported again."""
    counts: dict[str, int] = field(default_factory=dict)
    """How many identical rows (same hash) were delivered, where more than one: the next run
    skips that many occurrences and delivers any further identical row."""
    replay_until: datetime | None = None
    """Set by a watermark reset to an earlier point: the value before it. Rows up to it may
    have been delivered already; destinations apply the appending kinds among them (events,
    purchases, deletes) only once (see ``DeliveryBatch.replay_until_us``). Dropped once the
    value passes it."""

    def read_from(self, lookback: timedelta | None = None) -> datetime | None:
        """Lower bound (inclusive) of the next read."""
        if self.value is None:
            return None
        if not lookback:
            return self.value
        # A window reaching back past year 1 starts at year 1: nothing is earlier, and
        # ``datetime`` cannot go there (the subtraction raised and every later run failed).
        if self.value - FIRST_INSTANT <= lookback:
            return FIRST_INSTANT
        return self.value - lookback

    def to_json(self) -> dict[str, Any]:
        """JSON shape stored in the state database."""
        out: dict[str, Any] = {
            "value": self.value.isoformat() if self.value else None,
            "seen": self.seen,
        }
        if self.invalid:
            out["invalid"] = list(self.invalid)
        if self.counts:
            out["counts"] = self.counts
        if self.replay_until is not None:
            out["replay_until"] = self.replay_until.isoformat()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> WatermarkState:
        """Parse :meth:`to_json` output (``None`` → empty state)."""
        if not data:
            return cls()
        raw = data.get("value")
        value = to_utc(datetime.fromisoformat(raw)) if raw else None
        return cls(
            value=value,
            seen={str(k): int(v) for k, v in (data.get("seen") or {}).items()},
            invalid=tuple(str(h) for h in data.get("invalid") or ()),
            counts={str(k): int(v) for k, v in (data.get("counts") or {}).items()},
            replay_until=(
                to_utc(datetime.fromisoformat(data["replay_until"]))
                if data.get("replay_until")
                else None
            ),
        )

    def reset(self, to: datetime | None) -> WatermarkState:
        """The state after a watermark reset: the next run reads from ``to`` (``None``: the
        whole table) as if it were new, except that rows up to the current value (or an
        earlier reset's) are marked for de-duplication by the destination (``replay_until``)."""
        to = to_utc(to) if to is not None else None
        behind = [v for v in (self.value, self.replay_until) if v is not None]
        replay = max(behind) if behind else None
        if replay is not None and to is not None and to > replay:
            replay = None  # moved forward: nothing before it is read again
        return WatermarkState(value=to, replay_until=replay)


class WatermarkTracker:
    """Per-run mutable cursor: filters already-seen rows, records delivered ones, snapshots.

    Rows arrive in ``UPDATED_AT`` order. ``is_seen`` is asked for every read row;
    ``record`` is called for every row whose fate is final (delivered *or* refused as a row
    error: a refused row is accounted for and must not come back either) in order.
    ``snapshot`` gives the state to commit with the batch just delivered.
    """

    __slots__ = (
        "_again",
        "_carried",
        "_counts",
        "_held_us",
        "_holding",
        "_invalid",
        "_invalid_now",
        "_lookback_us",
        "_occurrences",
        "_prune",
        "_replay_us",
        "_reseen",
        "_seen",
        "_value_us",
    )

    def __init__(self, state: WatermarkState, lookback: timedelta | None = None) -> None:
        self._value_us: int | None = to_micros(state.value) if state.value else None
        self._seen = dict(state.seen)
        self._carried = frozenset(state.seen)
        """Hashes known when the run started (rows delivered by earlier runs)."""
        self._reseen: set[str] = set()
        """Those of them this run read again, unchanged (skipped)."""
        self._counts = dict(state.counts)
        """Hash → identical rows delivered, where more than one (absent: one)."""
        self._occurrences: dict[str, int] = {}
        """Hash known at the start → identical rows this run has read so far."""
        self._lookback_us = int(lookback.total_seconds() * 1_000_000) if lookback else 0
        self._invalid = set(state.invalid)
        self._invalid_now: set[str] = set()
        """Hashes of rows without a usable ``UPDATED_AT`` read by this run."""
        self._replay_us: int | None = (
            to_micros(state.replay_until) if state.replay_until is not None else None
        )
        self._prune = False
        self._again: dict[str, int] = {}
        """Hash → delivered rows read again that the run applies again (:meth:`reapply`)."""
        self._held_us = self._value_us
        self._holding = False

    @property
    def replay_until_us(self) -> int | None:
        """Rows up to this ``UPDATED_AT`` (epoch µs) may have been delivered before a reset."""
        return self._replay_us

    def _replay_state(self, value_us: int | None) -> datetime | None:
        if self._replay_us is None or (value_us is not None and value_us > self._replay_us):
            return None
        return from_micros(self._replay_us)

    @property
    def value_us(self) -> int | None:
        """Current watermark value in epoch microseconds."""
        return self._value_us

    def is_seen(self, row_hash: str, updated_us: int) -> bool:
        """True when this exact row content at this ``UPDATED_AT`` was already delivered."""
        return self._seen.get(row_hash) == updated_us

    def unseen(self, hashes: list[str], updated: list[int | None]) -> list[bool]:
        """Per row: not already delivered (``is_seen`` false, or no ``UPDATED_AT``), in one pass."""
        seen = self._seen
        if not seen and not self._invalid:
            if None in updated:
                self._invalid_now.update(
                    h for h, u in zip(hashes, updated, strict=True) if u is None
                )
            return [True] * len(hashes)
        get = seen.get
        invalid = self._invalid
        reseen = self._reseen
        occurrences = self._occurrences
        counts = self._counts
        out: list[bool] = []
        for h, u in zip(hashes, updated, strict=True):
            if u is None:
                self._invalid_now.add(h)
                out.append(h not in invalid)
            elif get(h) == u:
                reseen.add(h)
                n = occurrences.get(h, 0) + 1
                occurrences[h] = n
                out.append(n > counts.get(h, 1))  # one more identical row than delivered
            else:
                out.append(True)
        return out

    def reapply(self, row_hash: str) -> None:
        """A row :meth:`unseen` found already delivered is applied again (after a late row of
        its key): its coming :meth:`record` is not another identical row."""
        self._again[row_hash] = self._again.get(row_hash, 0) + 1

    def unreapply(self, row_hash: str) -> None:
        """Undo :meth:`reapply` (the row is skipped after all)."""
        n = self._again.get(row_hash, 0) - 1
        if n > 0:
            self._again[row_hash] = n
        else:
            self._again.pop(row_hash, None)

    def _recorded_again(self, row_hash: str) -> bool:
        n = self._again.get(row_hash)
        if not n:
            return False
        self.unreapply(row_hash)
        return True

    def record_invalid(self, row_hash: str) -> None:
        """Account for a row refused for its null or unparseable ``UPDATED_AT``."""
        self._invalid.add(row_hash)
        self._invalid_now.add(row_hash)

    def read_all_invalid(self) -> None:
        """This run has read every row without a usable ``UPDATED_AT``: forget the others."""
        self._prune = True

    @property
    def complete(self) -> bool:
        """Whether the run has read everything it was going to read."""
        return self._prune

    def hold_value(self) -> None:
        """Rows may come out of time order: snapshots keep the value the run started from
        (and every hash recorded since) until :meth:`release_value`."""
        self._holding = True

    def release_value(self) -> None:
        """Every row has been read and recorded: snapshots may move the value again."""
        self._holding = False

    def record(self, row_hash: str, updated_us: int) -> None:
        """Account for a row (delivered or refused); rows come in ``UPDATED_AT`` order."""
        if self._value_us is None or updated_us > self._value_us:
            self._value_us = updated_us
        if self._again and self._recorded_again(row_hash):
            return
        if self._seen.get(row_hash) == updated_us:  # another identical row
            self._counts[row_hash] = self._counts.get(row_hash, 1) + 1
        else:
            self._seen[row_hash] = updated_us

    def record_many(self, hashes: list[str], updated_us: Any) -> None:
        """:meth:`record` for many rows at once (``updated_us``: an int64 numpy array).

        Only hashes that :meth:`snapshot` would keep (inside the lookback window of the new
        value) are stored, so a long run does not grow the map.
        """
        if not hashes:
            return
        top = int(updated_us.max())
        if self._value_us is None or top > self._value_us:
            self._value_us = top
        floor = self._value_us - self._lookback_us
        if self._holding:  # every hash from the held window on is kept
            floor = (
                self._held_us - self._lookback_us
                if self._held_us is not None
                else int(updated_us.min())
            )
        seen = self._seen
        counts = self._counts
        again = self._again
        for i in np.flatnonzero(updated_us >= floor).tolist():
            h, u = hashes[i], int(updated_us[i])
            if again and self._recorded_again(h):
                continue
            if seen.get(h) == u:  # another identical row
                counts[h] = counts.get(h, 1) + 1
            else:
                seen[h] = u

    def snapshot(self) -> WatermarkState:
        """State to commit now: only hashes still inside ``[value - lookback, value]`` kept.

        Once the run has read everything, a hash from an earlier run that this run did not
        read again is forgotten: that content is no longer in the source (the row changed or
        went away), so if it comes back (a row changed back at the same ``UPDATED_AT``) it is
        delivered again instead of being skipped as already applied; likewise the count of
        identical rows drops to how many this run read (extra ones it delivers add to it).
        """
        if self._prune:
            self._invalid &= self._invalid_now
            gone = self._carried - self._reseen
            if gone:
                for h in gone:
                    self._seen.pop(h, None)
                    self._counts.pop(h, None)
            for h in self._reseen:  # fewer identical rows than delivered: some went away
                n = min(self._counts.get(h, 1), self._occurrences.get(h, 1))
                if n > 1:
                    self._counts[h] = n
                else:
                    self._counts.pop(h, None)
            self._carried = frozenset()
            self._reseen = set()
        invalid = tuple(sorted(self._invalid))
        if self._holding:
            held = self._held_us
            floor = held - self._lookback_us if held is not None else None
            seen = {h: t for h, t in self._seen.items() if floor is None or t >= floor}
            value = from_micros(held) if held is not None else None
            counts = {h: n for h, n in self._counts.items() if h in seen}
            return WatermarkState(
                value=value,
                seen=seen,
                invalid=invalid,
                counts=counts,
                replay_until=self._replay_state(held),
            )
        if self._value_us is None:
            return WatermarkState(invalid=invalid, replay_until=self._replay_state(None))
        floor = self._value_us - self._lookback_us
        self._seen = {h: t for h, t in self._seen.items() if t >= floor}
        if self._counts:
            self._counts = {h: n for h, n in self._counts.items() if h in self._seen}
        return WatermarkState(
            value=from_micros(self._value_us),
            seen=dict(self._seen),
            invalid=invalid,
            counts=dict(self._counts),
            replay_until=self._replay_state(self._value_us),
        )
