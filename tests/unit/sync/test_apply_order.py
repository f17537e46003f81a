"""Apply order of a sync's rows (pure): rows of one key tied on ``UPDATED_AT`` by content hash,
everything else as read; a tie split between read batches is ordered as one group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from zerocopy.sync.engine import _in_apply_order, _Keyed, _keyed, _ordered_pieces
from zerocopy.sync.types import DataType

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ATTRS = DataType.USER_ATTRIBUTES


def batch(rows: list[tuple[int | None, str]], users: list[str] | None = None) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "UPDATED_AT": pa.array(
                [None if s is None else T0 + timedelta(seconds=s) for s, _ in rows],
                pa.timestamp("us", "UTC"),
            ),
            "EXTERNAL_ID": users or ["u1"] * len(rows),
            "PAYLOAD": [p for _, p in rows],
        }
    )


def payloads(pieces: list[_Keyed]) -> list[str]:
    return [p for piece in pieces for p in piece.batch.column("PAYLOAD").to_pylist()]


def read(*batches: pa.RecordBatch, data_type: DataType = ATTRS) -> list[str]:
    held: _Keyed | None = None
    out: list[_Keyed] = []
    for b in batches:
        pieces, held = _ordered_pieces(held, b, data_type)
        out += pieces
    return payloads([*out, held] if held is not None else out)


def test_tied_rows_of_one_key_are_ordered_by_content_hash_whatever_the_read_order() -> None:
    rows = [(0, '{"a": 1}'), (1, '{"b": 1}'), (1, '{"b": 2}'), (1, '{"b": 3}'), (2, '{"c": 1}')]
    ties_reversed = [rows[0], *rows[3:0:-1], rows[4]]
    forward = _in_apply_order(_keyed(batch(rows)), ATTRS)
    assert payloads([forward]) == payloads([_in_apply_order(_keyed(batch(ties_reversed)), ATTRS)])
    assert payloads([forward])[0] == '{"a": 1}' and payloads([forward])[-1] == '{"c": 1}'
    assert forward.hashes[1:4] == sorted(forward.hashes[1:4])


def test_rows_of_other_keys_and_other_data_types_keep_the_read_order() -> None:
    rows = [(1, "p"), (1, "q"), (1, "r"), (1, "s")]
    users = ["u1", "u2", "u3", "u4"]
    keyed = _keyed(batch(rows, users))
    assert _in_apply_order(keyed, ATTRS) is keyed
    same_user = _keyed(batch(rows))
    assert _in_apply_order(same_user, DataType.CUSTOM_EVENTS) is same_user
    assert read(batch(rows), data_type=DataType.CUSTOM_EVENTS) == ["p", "q", "r", "s"]
    # A row without a usable time stays where it was read.
    odd = _keyed(batch([(0, "x"), (None, "n"), (1, "y")]))
    assert _in_apply_order(odd, ATTRS) is odd


def test_a_tie_split_between_read_batches_is_ordered_as_one_group() -> None:
    rows = [(0, '{"a": 1}'), (1, '{"b": 1}'), (1, '{"b": 2}'), (1, '{"b": 3}'), (1, '{"b": 4}')]
    ties_reversed = [rows[0], *rows[:0:-1]]  # still in UPDATED_AT order, as reads are
    whole = read(batch(rows))
    assert read(batch(ties_reversed)) == whole
    for cut in range(1, len(rows)):
        assert read(batch(rows[:cut]), batch(rows[cut:])) == whole
        assert read(batch(ties_reversed[:cut]), batch(ties_reversed[cut:])) == whole
