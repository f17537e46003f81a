"""The CPU side of a streamed refresh: order check, de-duplication, merge diff, chunk cutting."""

from __future__ import annotations

import itertools

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerocopy.refresh.stream import OrderBroken, SortedMerge
from zerocopy.state.membership import decode_chunk, encode_chunks, normalise_ids


def _bytewise(values: set[str]) -> list[str]:
    return sorted(values, key=lambda v: v.encode())


def _run(old: list[str], batches: list[list[str | None]], chunk_rows: int) -> SortedMerge:
    previous = encode_chunks(normalise_ids([pa.array(old, pa.string())]), chunk_rows)
    merge = SortedMerge(len(set(old)), chunk_rows)
    loaded = 0
    chunks = []
    for batch in batches:
        arr = merge.clean(pa.array(batch, pa.string()))
        if len(arr):
            while loaded < len(previous) and previous[loaded].first_id <= arr[-1].as_py():
                merge.add_previous(decode_chunk(previous[loaded].blob))
                loaded += 1
        chunks.extend(merge.feed(arr))
    chunks.extend(merge.finish())
    merge.out = chunks  # type: ignore[attr-defined]
    return merge


@settings(max_examples=200, deadline=None)
@given(
    old=st.lists(st.text(max_size=4), max_size=60),
    new=st.lists(st.text(max_size=4), max_size=60),
    cuts=st.lists(st.integers(0, 80), max_size=6),
    chunk_rows=st.integers(1, 9),
    nulls=st.booleans(),
)
def test_streamed_merge_equals_set_arithmetic(
    old: list[str], new: list[str], cuts: list[int], chunk_rows: int, nulls: bool
) -> None:
    # The warehouse's order (with repeats across batch boundaries, as DISTINCT is a guard).
    stream: list[str | None] = []
    for v in _bytewise(set(new)):
        stream.extend([v, v] if len(v) % 2 else [v])
    if nulls:
        stream = [None, *stream, None]
    bounds = sorted({0, len(stream), *(c for c in cuts if c <= len(stream))})
    batches = [stream[a:b] for a, b in itertools.pairwise(bounds)]

    merge = _run(old, batches, chunk_rows)

    chunks = merge.out  # type: ignore[attr-defined]
    got = [v for c in chunks for v in decode_chunk(c.blob).to_pylist()]
    assert got == _bytewise(set(new))
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert all(c.count == chunk_rows for c in chunks[:-1])
    assert all(c.first_id == decode_chunk(c.blob)[0].as_py() for c in chunks)
    assert merge.count == len(set(new))
    assert (merge.added, merge.removed) == (len(set(new) - set(old)), len(set(old) - set(new)))


def test_out_of_order_within_a_batch_is_refused() -> None:
    merge = SortedMerge(0, 4)
    with pytest.raises(OrderBroken):
        merge.clean(pa.array(["a", "B"]))  # a locale order, not byte order


def test_out_of_order_across_batches_is_refused_without_losing_state() -> None:
    merge = SortedMerge(0, 4)
    merge.feed(merge.clean(pa.array(["a", "b"])))
    with pytest.raises(OrderBroken):
        merge.clean(pa.array(["B", "c"]))
    assert merge.last == "b"
    assert [a.to_pylist() for a in merge.pending()] == [["a", "b"]]


def test_integer_ids_are_compared_as_their_text() -> None:
    merge = SortedMerge(0, 4)
    assert merge.clean(pa.array([1, 10, 2], pa.int64())).to_pylist() == ["1", "10", "2"]
    with pytest.raises(OrderBroken):
        merge.clean(pa.array([9, 10], pa.int64()))  # numeric order is not byte order
