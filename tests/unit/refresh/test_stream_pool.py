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
    # zerocopy's processes make POOL the default (use_refresh_pool_everywhere), and an app
    # created earlier in this test process may have done so: install a distinct default
    # here, so the check below always means "nothing went to the default pool".
    previous_default = pa.default_memory_pool()
    default = pa.mimalloc_memory_pool()
    assert default.backend_name != POOL.backend_name
    pa.set_memory_pool(default)
    try:
        _merge_and_check(default)
    finally:
        pa.set_memory_pool(previous_default)


def _merge_and_check(default: pa.MemoryPool) -> None:
    previous = encode_chunks(ids(0, 40_000), 4_096)
    batches = [ids(lo, lo + 5_000) for lo in range(1_000, 41_000, 5_000)]
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
    assert default.bytes_allocated() == default_before
    assert (merge.count, merge.added, merge.removed) == (40_000, 1_000, 1_000)
    assert [v for c in out for v in decode_chunk(c.blob).to_pylist()] == whole.to_pylist()


def test_zerocopy_processes_make_the_membership_pool_the_default() -> None:
    from zerocopy.state.membership import use_refresh_pool_everywhere

    previous_default = pa.default_memory_pool()
    pa.set_memory_pool(pa.mimalloc_memory_pool())
    try:
        use_refresh_pool_everywhere()
        assert pa.default_memory_pool().backend_name == POOL.backend_name
        assert pa.array(["x" * 100] * 10).nbytes > 0  # allocates from it
    finally:
        pa.set_memory_pool(previous_default)
