"""Small batches are merged on the event loop; big ones in a worker thread.

A thread hop costs more CPU than cleaning and merging a batch of a thousand ids, and most
segments are that small; a big batch still leaves the loop free for other runs.
"""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from zerocopy.refresh.stream import INLINE_ROWS, SortedMerge, _off_loop

pytestmark = pytest.mark.anyio


def ids(n: int) -> pa.Array:
    return pa.array([f"u{i:07d}" for i in range(n)], pa.string())


@pytest.mark.parametrize("rows", [1, 1_000, INLINE_ROWS])
async def test_a_small_batch_is_cleaned_on_the_event_loop(rows: int) -> None:
    seen: list[int] = []
    merge = SortedMerge(0)

    def clean(batch: pa.Array) -> pa.Array:
        seen.append(threading.get_ident())
        return merge.clean(batch)

    got = await _off_loop(clean, ids(rows), rows)
    assert seen == [threading.get_ident()]
    assert len(got) == rows


async def test_a_big_batch_goes_to_a_worker_thread() -> None:
    rows = INLINE_ROWS + 1
    seen: list[int] = []
    merge = SortedMerge(0)

    def clean(batch: pa.Array) -> pa.Array:
        seen.append(threading.get_ident())
        return merge.clean(batch)

    got = await _off_loop(clean, ids(rows), rows)
    assert len(seen) == 1 and seen[0] != threading.get_ident()
    assert len(got) == rows
