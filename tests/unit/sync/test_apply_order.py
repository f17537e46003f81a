"""Apply order of a sync's rows (pure): ``UPDATED_AT``, then content hash, across read batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from zerocopy.sync.engine import _in_apply_order, _Keyed, _keyed, _ordered_pieces

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def batch(rows: list[tuple[int | None, str]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "UPDATED_AT": pa.array(
                [None if s is None else T0 + timedelta(seconds=s) for s, _ in rows],
                pa.timestamp("us", "UTC"),
            ),
            "EXTERNAL_ID": ["u1"] * len(rows),
            "PAYLOAD": [p for _, p in rows],
        }
    )


def payloads(pieces: list[_Keyed]) -> list[str]:
    return [p for piece in pieces for p in piece.batch.column("PAYLOAD").to_pylist()]


def read(*batches: pa.RecordBatch) -> list[str]:
    held: _Keyed | None = None
    out: list[_Keyed] = []
    for b in batches:
        pieces, held = _ordered_pieces(held, b)
        out += pieces
    assert held is not None
    return payloads([*out, held])


def test_ties_are_ordered_by_content_hash_whatever_the_read_order() -> None:
    rows = [(0, '{"a": 1}'), (1, '{"b": 1}'), (1, '{"b": 2}'), (1, '{"b": 3}'), (2, '{"c": 1}')]
    forward = payloads([_in_apply_order(_keyed(batch(rows)))])
    backward = payloads([_in_apply_order(_keyed(batch(rows[::-1])))])
    assert forward == backward
    assert forward[0] == '{"a": 1}' and forward[-1] == '{"c": 1}'
    keyed = _in_apply_order(_keyed(batch(rows)))
    tied = [h for h, u in zip(keyed.hashes, keyed.updated, strict=True) if u == keyed.updated[1]]
    assert tied == sorted(tied)


def test_a_tie_split_between_read_batches_is_ordered_as_one_group() -> None:
    rows = [(0, '{"a": 1}'), (1, '{"b": 1}'), (1, '{"b": 2}'), (1, '{"b": 3}'), (1, '{"b": 4}')]
    ties_reversed = [rows[0], *rows[:0:-1]]  # still in UPDATED_AT order, as reads are
    whole = read(batch(rows))
    assert read(batch(ties_reversed)) == whole
    for cut in range(1, len(rows)):
        assert read(batch(rows[:cut]), batch(rows[cut:])) == whole
        assert read(batch(ties_reversed[:cut]), batch(ties_reversed[cut:])) == whole


def test_rows_without_a_usable_time_come_last_and_strict_order_is_left_alone() -> None:
    keyed = _keyed(batch([(0, "x"), (None, "n"), (1, "y")]))
    assert payloads([_in_apply_order(keyed)]) == ["x", "y", "n"]
    plain = _keyed(batch([(0, "x"), (1, "y"), (2, "z")]))
    assert _in_apply_order(plain) is plain
