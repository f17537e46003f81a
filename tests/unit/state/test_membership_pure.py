"""Pure parts of the membership store: normalisation, diff counts, chunk coding, positions."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from zerocopy.state.membership import (
    decode_chunk,
    diff_counts,
    encode_chunks,
    normalise_ids,
    position_after,
)

ids_strategy = st.lists(st.text(max_size=8), max_size=60)


def test_normalise_dedupes_drops_nulls_casts_and_sorts_bytewise() -> None:
    out = normalise_ids(
        [pa.array(["b", None, "a", "b"]), pa.array([3, 1]), pa.array([], pa.string())]
    )
    assert out.type == pa.large_string()
    assert out.to_pylist() == ["1", "3", "a", "b"]
    assert normalise_ids([]).to_pylist() == []
    # Byte order, not locale order: upper case before lower case, "é" after "z".
    assert normalise_ids([pa.array(["é", "z", "Z", "a"])]).to_pylist() == ["Z", "a", "z", "é"]


@given(ids_strategy, ids_strategy)
def test_diff_counts_matches_set_arithmetic(old: list[str], new: list[str]) -> None:
    a, b = normalise_ids([pa.array(old, pa.string())]), normalise_ids([pa.array(new, pa.string())])
    assert diff_counts(a, b) == (len(set(new) - set(old)), len(set(old) - set(new)))


@given(ids_strategy, st.integers(min_value=1, max_value=7))
def test_chunks_round_trip_in_order(values: list[str], size: int) -> None:
    ids = normalise_ids([pa.array(values, pa.string())])
    chunks = encode_chunks(ids, size)
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    decoded = [decode_chunk(c.blob).to_pylist() for c in chunks]
    assert [x for part in decoded for x in part] == ids.to_pylist()
    for c, part in zip(chunks, decoded, strict=True):
        assert (c.first_id, c.last_id, c.count) == (part[0], part[-1], len(part))


@given(ids_strategy, st.text(max_size=8))
def test_position_after_is_the_first_greater(values: list[str], after: str) -> None:
    ids = normalise_ids([pa.array(values, pa.string())])
    pos = position_after(ids, after)
    as_list = ids.to_pylist()
    assert all(x.encode() <= after.encode() for x in as_list[:pos])
    assert all(x.encode() > after.encode() for x in as_list[pos:])
