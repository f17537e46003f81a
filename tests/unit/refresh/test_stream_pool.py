"""The streamed merge-diff allocates from the membership pool, not pyarrow's default one.

pyarrow's default pool (mimalloc) kept ~30-40 MB of a 1M-id refresh resident; the refresh
path passes ``memory_pool=POOL`` (jemalloc, else the system allocator) to every Arrow call.
"""

from __future__ import annotations

import pyarrow as pa

from zerocopy.refresh.stream import SortedMerge
from zerocopy.state.membership import POOL, decode_chunk, encode_chunks, normalise_ids


def ids(lo: int, hi: int) -> pa.Array:
    return pa.array([f"u{i:07d}" for i in range(lo, hi)], pa.string())


def test_pool_is_not_mimalloc() -> None:
    assert POOL.backend_name in {"jemalloc", "system"}


def test_merge_diff_and_chunks_allocate_from_the_membership_pool() -> None:
    previous = encode_chunks(ids(0, 40_000), 4_096)
    batches = [ids(lo, lo + 5_000) for lo in range(1_000, 41_000, 5_000)]
    default = pa.default_memory_pool()
    separate = default.backend_name != POOL.backend_name
    default_before, pool_before = default.bytes_allocated(), POOL.bytes_allocated()

    merge = SortedMerge(40_000, 4_096)
    loaded, out, windows = 0, [], []
    for raw in batches:
        arr = merge.clean(raw)
        while loaded < len(previous) and previous[loaded].first_id <= arr[-1].as_py():
            window = decode_chunk(previous[loaded].blob)
            windows.append(window)  # kept alive so their bytes still count below
            merge.add_previous(window)
            loaded += 1
        out.extend(merge.feed(arr))
    out.extend(merge.finish())
    whole = normalise_ids(batches)

    assert POOL.bytes_allocated() > pool_before  # the windows and the normalised ids live there
    if separate:
        assert default.bytes_allocated() == default_before
    assert (merge.count, merge.added, merge.removed) == (40_000, 1_000, 1_000)
    assert [v for c in out for v in decode_chunk(c.blob).to_pylist()] == whole.to_pylist()
