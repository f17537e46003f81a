"""Streamed refresh: ids in byte order → checked, de-duplicated, merge-diffed, chunked as they come.

When an adapter promises byte-wise order (``ID_ORDER``, see :mod:`dialects.base`), the engine
never holds the new membership: each batch is

1. cleaned: cast to ``string``, nulls dropped, its order *verified* (against the previous batch
   too) and neighbours de-duplicated;
2. merged against the previous membership: its sorted chunks are decoded one by one, only as
   far as the batch's last id, so the common-id count (hence added/removed) needs a window of
   about one batch and one chunk;
3. cut into chunks of the store's size, IPC-encoded and written under the run's version, which
   readers cannot see until the engine flips the segment's pointer in its final transaction.

Memory is thus bounded by a batch, a chunk window and a chunk being filled, whatever the
segment's size. If the order promise is broken (a case-insensitive collation, integer ids,
an adapter bug) the stream raises :class:`OrderBroken` internally and the driver falls back to
the in-memory path: it reads back what it wrote, takes the rest of the stream, sorts.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import pyarrow as pa
import pyarrow.compute as pc

from zerocopy.logging import get_logger
from zerocopy.state.membership import (
    CHUNK_ROWS,
    POOL,
    Chunk,
    ChunkMeta,
    MembershipStore,
    combine,
    decode_chunk,
    encode_chunk,
    normalise_ids,
)

log = get_logger("zerocopy.refresh")

T = TypeVar("T")

PREFETCH = 1
"""Batches the warehouse reader may run ahead of the merge."""

WRITE_EVERY = 8
"""Chunks written per state transaction (8 x 16,384 ids)."""

INLINE_ROWS = 16_384
"""A batch of at most this many ids is cleaned and merged on the event loop (well under a
millisecond of Arrow work, less than the hop to a worker thread costs); bigger ones go to a
thread so the loop stays responsive."""


async def _off_loop(fn: Callable[..., T], arg: Any, rows: int) -> T:
    """``fn(arg)`` on the event loop when ``rows`` is small, else in a worker thread."""
    if rows <= INLINE_ROWS:
        return fn(arg)
    return await anyio.to_thread.run_sync(fn, arg)


class OrderBroken(Exception):
    """The ids did not arrive in byte-wise order."""


@dataclass(frozen=True, slots=True)
class StreamResult:
    count: int
    added: int
    removed: int
    tail: tuple[Chunk, ...] = ()
    """Last chunks not written yet (``defer_tail``): the caller inserts them in its final
    transaction, so a small segment's whole version costs no transaction of its own."""


class SortedMerge:
    """The CPU side of a streamed refresh (pure: no I/O, one thread at a time)."""

    def __init__(self, old_count: int, chunk_rows: int = CHUNK_ROWS) -> None:
        self.old_count = old_count
        self.chunk_rows = chunk_rows
        self.count = 0
        self.common = 0
        self.seq = 0
        self.last: str | None = None
        self._pending: list[pa.Array] = []
        self._pending_rows = 0
        self._window: pa.Array = pa.nulls(0, pa.string())  # pa.array would import pandas

    @property
    def added(self) -> int:
        return self.count - self.common

    @property
    def removed(self) -> int:
        return self.old_count - self.common

    def clean(self, batch: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Distinct non-null ``string`` ids of ``batch``; :class:`OrderBroken` if out of order."""
        arr = combine(batch)
        if arr.type != pa.string():
            arr = pc.cast(arr, pa.string(), memory_pool=POOL)
        if arr.null_count:
            arr = pc.drop_null(arr, memory_pool=POOL)
        n = len(arr)
        if n > 1:
            head, tail = arr.slice(0, n - 1), arr.slice(1)
            if pc.any(pc.less(tail, head, memory_pool=POOL), memory_pool=POOL).as_py():
                raise OrderBroken("ids within a batch are not in byte order")
            differs = pc.not_equal(tail, head, memory_pool=POOL)
            if not pc.all(differs, memory_pool=POOL).as_py():
                kept = pc.filter(tail, differs, memory_pool=POOL)
                arr = pa.concat_arrays([arr.slice(0, 1), kept], memory_pool=POOL)
        if n and self.last is not None:
            first = arr[0].as_py()
            if first < self.last:
                raise OrderBroken("a batch starts before the previous one ended")
            if first == self.last:
                arr = arr.slice(1)
        if len(arr):
            self.last = arr[-1].as_py()
        return arr

    def add_previous(self, arr: pa.Array) -> None:
        """Append a decoded chunk of the previous membership (in id order) to the window."""
        if len(self._window):
            self._window = pa.concat_arrays([self._window, arr], memory_pool=POOL)
        else:
            self._window = arr

    def feed(self, arr: pa.Array) -> list[Chunk]:
        """Count ``arr``'s ids already members, then return the chunks it completes.

        ``arr`` comes from :meth:`clean`; the window must hold every previous id up to its
        last id (see :func:`stream_refresh`).
        """
        if not len(arr):
            return []
        self.count += len(arr)
        window = self._window
        if len(window):
            # Previous ids below this batch's first can match nothing later: drop them.
            below = _count(pc.less(window, arr[0], memory_pool=POOL))
            window = window.slice(below)
            upto = _count(pc.less_equal(window, arr[-1], memory_pool=POOL))
            if upto:
                part = window.slice(0, upto)
                self.common += _count(pc.is_in(arr, value_set=part, memory_pool=POOL))
            self._window = window.slice(upto)
        self._pending.append(arr)
        self._pending_rows += len(arr)
        return self._cut(final=False)

    def finish(self) -> list[Chunk]:
        return self._cut(final=True)

    def pending(self) -> list[pa.Array]:
        return list(self._pending)

    @property
    def pending_rows(self) -> int:
        """Ids waiting for their chunk to fill (what :meth:`finish` encodes)."""
        return self._pending_rows

    def _cut(self, *, final: bool) -> list[Chunk]:
        if self._pending_rows < self.chunk_rows and not (final and self._pending_rows):
            return []
        if len(self._pending) > 1:
            whole = pa.concat_arrays(self._pending, memory_pool=POOL)
        else:
            whole = self._pending[0]
        out: list[Chunk] = []
        start = 0
        while len(whole) - start >= self.chunk_rows or (final and start < len(whole)):
            out.append(encode_chunk(whole.slice(start, self.chunk_rows), self.seq))
            self.seq += 1
            start += self.chunk_rows
        rest = whole.slice(start)
        self._pending = [rest] if len(rest) else []
        self._pending_rows = len(rest)
        return out


def _count(mask: pa.Array) -> int:
    """Number of true values of a boolean mask."""
    return int(pc.sum(mask, memory_pool=POOL).as_py() or 0)


async def stream_refresh(
    batches: AsyncIterator[pa.Array],
    *,
    members: MembershipStore,
    segment_id: str,
    version: str,
    timings: dict[str, float],
    previous: Sequence[ChunkMeta] | None = None,
    preloaded: Mapping[int, bytes] | None = None,
    defer_tail: bool = False,
) -> StreamResult | pa.Array:
    """Consume ordered id batches into version ``version`` of the segment's membership.

    Returns the counts once every chunk is written (the caller flips the pointer), or, if the
    order promise broke, the whole id set normalised in memory (the caller swaps it as usual;
    chunks written so far are replaced by that swap or discarded by the caller on failure).

    ``previous``: the current version's chunk list if the caller already read it (else it is
    read here); ``preloaded``: blobs of some of those chunks, by ``seq``, read with it.
    ``defer_tail``: leave the last chunks (fewer than :data:`WRITE_EVERY` + 1) unwritten in
    :attr:`StreamResult.tail` for the caller's final transaction.
    """
    send, receive = anyio.create_memory_object_stream[pa.Array](PREFETCH)

    async def fetch() -> None:
        # The warehouse side (fetch + conversion in the adapter's thread) overlaps our work on
        # the previous batch; at most PREFETCH + 2 batches are alive at once.
        async with send:
            async for batch in batches:
                await send.send(batch)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(fetch)
            async with receive:
                return await _consume(
                    receive,
                    members,
                    segment_id,
                    version,
                    timings,
                    previous=previous,
                    preloaded=preloaded or {},
                    defer_tail=defer_tail,
                )
    except BaseExceptionGroup as group:
        # One failure (the adapter's error, usually) reaches the caller as itself.
        if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
            raise group.exceptions[0] from None
        raise
    raise AssertionError("unreachable: the task group returned or raised")


async def _consume(
    batches: AsyncIterator[pa.Array],
    members: MembershipStore,
    segment_id: str,
    version: str,
    timings: dict[str, float],
    *,
    previous: Sequence[ChunkMeta] | None,
    preloaded: Mapping[int, bytes],
    defer_tail: bool,
) -> StreamResult | pa.Array:
    if previous is None:
        previous = await members.current_chunks(segment_id)
    merge = SortedMerge(sum(c.count for c in previous), members.chunk_rows)
    loaded = 0  # previous chunks already in the merge window
    ready: list[Chunk] = []
    written: list[int] = []
    spent = {"diff": 0.0, "write": 0.0}

    async def write(final: bool) -> None:
        nonlocal ready
        if ready and (final or len(ready) >= WRITE_EVERY):
            t = time.perf_counter()
            with anyio.CancelScope(shield=True):  # a half-done insert helps no one
                await members.write_chunks(segment_id, version, ready)
            written.extend(c.seq for c in ready)
            ready = []
            spent["write"] += time.perf_counter() - t

    raw: pa.Array | None = None
    try:
        async for raw in batches:
            t = time.perf_counter()
            arr = await _off_loop(merge.clean, raw, len(raw))
            if len(arr):
                # Load the previous chunks that may hold ids up to this batch's last one.
                need = _needed(previous, loaded, arr[-1].as_py())
                if need:
                    missing = [q for q in need if q not in preloaded]
                    got: dict[int, bytes] = {}
                    if missing:
                        with anyio.CancelScope(shield=True):
                            blobs = await members.read_chunks(
                                segment_id, previous[0].version, missing
                            )
                        got = dict(zip(missing, blobs, strict=True))
                    for q in need:
                        merge.add_previous(decode_chunk(got[q] if q in got else preloaded[q]))
                    loaded += len(need)
                ready.extend(await _off_loop(merge.feed, arr, len(arr) + merge.pending_rows))
            raw = None
            spent["diff"] += time.perf_counter() - t
            await write(final=False)
        ready.extend(await _off_loop(lambda _: merge.finish(), None, merge.pending_rows))
        if not defer_tail:
            await write(final=True)
    except OrderBroken as exc:
        log.warning("refresh.ids_not_in_byte_order", reason=str(exc), fallback="sort in memory")
        return await _in_memory(
            merge, raw, batches, members, segment_id, version, written, ready, timings
        )
    timings["diff"] = timings.get("diff", 0.0) + spent["diff"]
    timings["write_chunks"] = spent["write"]
    return StreamResult(
        count=merge.count,
        added=merge.added,
        removed=merge.removed,
        tail=tuple(ready) if defer_tail else (),
    )


def _needed(previous: Sequence[ChunkMeta], loaded: int, upto: str) -> list[int]:
    need: list[int] = []
    for meta in previous[loaded:]:
        if meta.first_id > upto:
            break
        need.append(meta.seq)
    return need


async def _in_memory(
    merge: SortedMerge,
    raw: pa.Array | None,
    rest: AsyncIterator[pa.Array],
    members: MembershipStore,
    segment_id: str,
    version: str,
    written: list[int],
    ready: list[Chunk],
    timings: dict[str, float],
) -> pa.Array:
    """Fallback: every id seen so far (written chunks, chunks not yet written, the pending tail,
    the offending batch) plus the rest of the stream, sorted and de-duplicated in memory."""
    arrays: list[pa.Array] = [
        decode_chunk(b) for b in await _read_back(members, segment_id, version, written)
    ]
    arrays.extend(decode_chunk(c.blob) for c in ready)
    arrays.extend(merge.pending())
    if raw is not None:
        arrays.append(raw)
    async for batch in rest:
        arrays.append(batch)
    t = time.perf_counter()
    ids = await anyio.to_thread.run_sync(normalise_ids, arrays)
    timings["normalise"] = time.perf_counter() - t
    return ids


async def _read_back(
    members: MembershipStore, segment_id: str, version: str, seqs: list[int]
) -> list[bytes]:
    with anyio.CancelScope(shield=True):
        blobs = await members.read_chunks(segment_id, version, seqs)
    return blobs
