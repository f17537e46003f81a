"""Columnar membership store: a segment's ids as sorted Arrow chunks, swapped atomically.

Shape. A membership *version* (the id of the run that produced it) is the sorted, distinct
list of the segment's ids cut into chunks of :data:`CHUNK_ROWS`; each chunk is one
``segment_member_chunk`` row holding its ids as an Arrow IPC blob plus its first and last id.
``segment.membership_version`` points at the current version. Nothing on the hot path builds
one Python object per member: ids arrive as Arrow arrays, are de-duplicated, sorted and
diffed by Arrow kernels, and a 1M-member version is ~60 rows to write.

Atomic swap. :meth:`MembershipStore.swap` inserts the new version's chunks, moves the
segment's pointer and deletes the older chunks in the caller's transaction; readers read
through the pointer in one statement, so they see the old membership until the commit and
the new one after, never a mix, and a failed run writes nothing. A *streamed* refresh (see
:mod:`zerocopy.refresh.stream`) writes its version's chunks as they fill
(:meth:`MembershipStore.write_chunks`; invisible: no pointer names them), then
:meth:`MembershipStore.flip` moves the pointer and deletes older versions in the final
transaction; a failed run's chunks are deleted (:meth:`MembershipStore.discard`), and any
orphan left by a killed process goes with the segment's next successful swap or flip.

Reads. ``count`` is a column; ``contains`` and ``page`` (keyset by id, byte-wise order) find
the one chunk whose ``[first_id, last_id]`` covers the id through an index, then search the
decoded chunk (decoded chunks are immutable, so they are cached by version).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from zerocopy.state.db import Database
from zerocopy.state.models import Segment, SegmentMemberChunk, utcnow

CHUNK_ROWS = 16_384
"""Ids per stored chunk: small enough that a membership check decodes little, large enough
that a million members are ~60 rows."""

MAX_PAGE = 10_000


def _refresh_pool() -> pa.MemoryPool:
    """The Arrow memory pool of membership work: jemalloc, else the system allocator.

    Not pyarrow's default (mimalloc): measured on the merge-diff of 1M ids (50k-id batches,
    16k-id chunks), mimalloc kept ~40 MB resident after the run where jemalloc and malloc
    kept ~11 MB, at the same speed, and through the Redshift adapter it was most of a
    refresh's RSS growth. Passed explicitly (``memory_pool=``) rather than set process-wide
    with ``pa.set_memory_pool``, so that other Arrow users in the process are unaffected.
    """
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # pyarrow built without jemalloc (e.g. Windows wheels)
        return pa.system_memory_pool()


POOL = _refresh_pool()
"""Pass as ``memory_pool=`` to every Arrow call that allocates on the refresh path."""


def use_refresh_pool_everywhere() -> None:
    """Make :data:`POOL` the process's default Arrow pool (zerocopy's own processes: the CLI,
    ``serve``, ``worker``; see :func:`zerocopy.cli.main` and :func:`api.app.create_app`).

    The sync path allocates through pyarrow's default pool in many places (reads, column
    checks, the store's batches). With mimalloc there, a 1M-row DuckDB → SQLite sync peaked
    at 468-478 MB RSS; with jemalloc at 440-449 MB, at the same CPU (session 12, back to
    back). Library users who call the engines in their own process keep their own default.
    """
    pa.set_memory_pool(POOL)


def combine(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One array from a chunked one, allocated from :data:`POOL` (``ChunkedArray.combine_chunks``
    ignores its ``memory_pool`` argument in pyarrow 26 and copies a single chunk anyway)."""
    if not isinstance(arr, pa.ChunkedArray):
        return arr
    if arr.num_chunks == 1:
        return arr.chunk(0)
    if arr.num_chunks == 0:
        return pa.nulls(0, arr.type)  # not pa.array: that imports pandas
    return pa.concat_arrays(arr.chunks, memory_pool=POOL)


_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")
_IPC_RAW = pa.ipc.IpcWriteOptions()

RAW_CHUNK_ROWS = 1_024
"""Chunks of fewer ids are stored uncompressed: a zstd round trip costs ~0.2 ms to encode and
as much to decode whatever the size (measured: 500 ids, 180 µs each way against ~15 µs
uncompressed), which is most of a small segment's membership work, for ~10 KB saved at
most. Readers do not care: an IPC stream says whether its buffers are compressed."""
_SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False)])


# --------------------------------------------------------------------------- pure helpers
def normalise_ids(batches: Iterable[pa.Array | pa.ChunkedArray]) -> pa.Array:
    """Distinct, non-null ids as a sorted ``large_string`` array (byte-wise order)."""
    chunks: list[pa.Array] = []
    for batch in batches:
        parts = batch.chunks if isinstance(batch, pa.ChunkedArray) else [batch]
        for part in parts:
            if len(part):
                chunks.append(pc.cast(part, pa.large_string(), memory_pool=POOL))
    if not chunks:
        return pa.nulls(0, pa.large_string())  # not pa.array: that imports pandas
    ids = pa.concat_arrays(chunks, memory_pool=POOL) if len(chunks) > 1 else chunks[0]
    del chunks
    ids = pc.drop_null(ids, memory_pool=POOL)
    ids = pc.take(ids, pc.array_sort_indices(ids, memory_pool=POOL), memory_pool=POOL)
    # The warehouse already returns DISTINCT ids: dedupe by comparing neighbours (cheaper
    # than a hash pass), as a guard rather than the main path.
    if len(ids) > 1:
        same = pc.equal(ids.slice(1), ids.slice(0, len(ids) - 1), memory_pool=POOL)
        if pc.any(same, memory_pool=POOL).as_py():
            keep = pc.filter(ids.slice(1), pc.invert(same, memory_pool=POOL), memory_pool=POOL)
            ids = pa.concat_arrays([ids.slice(0, 1), keep], memory_pool=POOL)
    return ids


def diff_counts(old: pa.Array, new: pa.Array) -> tuple[int, int]:
    """``(added, removed)`` between two distinct id arrays, with one hash-set probe."""
    if len(old) == 0 or len(new) == 0:
        return len(new), len(old)
    common = pc.sum(pc.is_in(new, value_set=old, memory_pool=POOL)).as_py() or 0
    return len(new) - common, len(old) - common


@dataclass(frozen=True, slots=True)
class Chunk:
    seq: int
    first_id: str
    last_id: str
    count: int
    blob: bytes


def encode_chunks(ids: pa.Array, chunk_rows: int = CHUNK_ROWS) -> list[Chunk]:
    """Cut sorted ``ids`` into IPC-encoded chunks."""
    return [
        encode_chunk(ids.slice(start, chunk_rows), seq)
        for seq, start in enumerate(range(0, len(ids), chunk_rows))
    ]


def encode_chunk(part: pa.Array, seq: int) -> Chunk:
    """One non-empty, sorted slice of a version as an IPC-encoded chunk."""
    if part.type != pa.string():
        part = pc.cast(part, pa.string(), memory_pool=POOL)
    sink = pa.BufferOutputStream(memory_pool=POOL)
    options = _IPC_RAW if len(part) < RAW_CHUNK_ROWS else _IPC_OPTIONS
    with pa.ipc.new_stream(sink, _SCHEMA, options=options) as writer:
        writer.write_batch(pa.record_batch([part], schema=_SCHEMA))
    return Chunk(
        seq=seq,
        first_id=part[0].as_py(),
        last_id=part[-1].as_py(),
        count=len(part),
        blob=sink.getvalue().to_pybytes(),
    )


@dataclass(frozen=True, slots=True)
class ChunkMeta:
    version: str
    seq: int
    first_id: str
    last_id: str
    count: int


def decode_chunk(blob: bytes) -> pa.Array:
    table = pa.ipc.open_stream(pa.py_buffer(blob), memory_pool=POOL).read_all()
    return combine(table.column(0))


def position_after(sorted_ids: pa.Array, after: str) -> int:
    """Index of the first id strictly greater than ``after`` in a sorted array."""
    return int(pc.sum(pc.less_equal(sorted_ids, pa.scalar(after, sorted_ids.type))).as_py() or 0)


# --------------------------------------------------------------------------- cache
class _ChunkCache:
    """Bounded LRU of decoded chunks keyed by (segment, version, seq): versions never change."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str, int], pa.Array] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, int]) -> pa.Array | None:
        with self._lock:
            arr = self._items.get(key)
            if arr is not None:
                self._items.move_to_end(key)
            return arr

    def put(self, key: tuple[str, str, int], arr: pa.Array) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = arr
            self._bytes += arr.nbytes
            while self._bytes > self.max_bytes and self._items:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes


@dataclass(frozen=True, slots=True)
class MemberPage:
    ids: list[str]
    next_after: str | None
    """Pass as ``after`` to get the next page; ``None`` when this page is the last."""


# --------------------------------------------------------------------------- store
class MembershipStore:
    """Reads and swaps segment memberships in the state database."""

    def __init__(self, db: Database, *, chunk_rows: int = CHUNK_ROWS) -> None:
        self.db = db
        self.chunk_rows = chunk_rows
        self._cache = _ChunkCache()

    # ---------------------------------------------------------------- reads
    async def count(self, segment_id: str) -> int:
        async with self.db.session() as s:
            value = await s.scalar(sa.select(Segment.member_count).where(Segment.id == segment_id))
        return int(value or 0)

    async def contains(self, segment_id: str, external_id: str) -> bool:
        """Is ``external_id`` a member of the segment's current membership?"""
        for _ in range(3):
            meta = await self._chunks_from(segment_id, after=external_id, inclusive=True, limit=1)
            if not meta:
                return False
            version, seq, first_id, _last = meta[0]
            if external_id < first_id:
                return False
            arr = await self._chunk(segment_id, version, seq)
            if arr is None:
                continue  # swapped between our two statements: read the new version
            return bool(pc.index(arr, pa.scalar(external_id, arr.type)).as_py() >= 0)
        return await self.contains_uncached(segment_id, external_id)

    async def contains_uncached(self, segment_id: str, external_id: str) -> bool:
        """One-statement membership check (fallback under heavy swapping)."""
        stmt = (
            _current_chunks(segment_id)
            .where(SegmentMemberChunk.last_id >= external_id)
            .with_only_columns(SegmentMemberChunk.ids, SegmentMemberChunk.first_id)
            .order_by(SegmentMemberChunk.last_id)
            .limit(1)
        )
        async with self.db.session() as s:
            row = (await s.execute(stmt)).first()
        if row is None or external_id < row.first_id:
            return False
        arr = decode_chunk(row.ids)
        return bool(pc.index(arr, pa.scalar(external_id, arr.type)).as_py() >= 0)

    async def page(
        self, segment_id: str, *, after: str | None = None, limit: int = 100
    ) -> MemberPage:
        """Up to ``limit`` ids greater than ``after``, in byte-wise id order (keyset pagination)."""
        limit = max(1, min(limit, MAX_PAGE))
        for _ in range(3):
            metas = await self._chunks_from(
                segment_id, after=after, inclusive=False, limit=limit // self.chunk_rows + 2
            )
            ids: list[str] = []
            complete = True
            for version, seq, _first, _last in metas:
                arr = await self._chunk(segment_id, version, seq)
                if arr is None:
                    complete = False
                    break
                start = position_after(arr, after) if after is not None else 0
                ids.extend(arr.slice(start, limit - len(ids)).to_pylist())
                if len(ids) >= limit:
                    break
            if not complete:
                continue
            more = len(ids) >= limit and await self._has_after(segment_id, ids[-1])
            return MemberPage(ids=ids, next_after=ids[-1] if more else None)
        raise RuntimeError("membership kept changing while paging; retry")

    async def load(self, segment_id: str, session: AsyncSession | None = None) -> pa.Array:
        """The whole current membership (sorted ``large_string``), e.g. to diff against."""
        stmt = _current_chunks(segment_id).with_only_columns(SegmentMemberChunk.ids)
        stmt = stmt.order_by(SegmentMemberChunk.seq)
        if session is not None:
            blobs = (await session.scalars(stmt)).all()
        else:
            async with self.db.session() as s:
                blobs = (await s.scalars(stmt)).all()
        return normalise_sorted([decode_chunk(b) for b in blobs])

    # ---------------------------------------------------------------- streamed versions
    async def current_chunks(self, segment_id: str) -> list[ChunkMeta]:
        """The current version's chunk list (no ids), in id order: what a streamed diff walks."""
        stmt = _current_chunks(segment_id).with_only_columns(
            SegmentMemberChunk.version,
            SegmentMemberChunk.seq,
            SegmentMemberChunk.first_id,
            SegmentMemberChunk.last_id,
            SegmentMemberChunk.count,
        )
        async with self.db.session() as s:
            rows = (await s.execute(stmt.order_by(SegmentMemberChunk.seq))).all()
        return [ChunkMeta(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def current_chunks_with_head(
        self, session: AsyncSession, segment_id: str, head: int = 1
    ) -> tuple[list[ChunkMeta], dict[int, bytes]]:
        """:meth:`current_chunks` in the caller's session, plus the blobs of the first ``head``
        chunks (what a streamed diff reads first), in one statement."""
        conn = await session.connection()
        rows = (
            await conn.execute(_CHUNKS_WITH_HEAD, {"p_segment_id": segment_id, "p_head": head})
        ).all()
        metas = [ChunkMeta(r[0], r[1], r[2], r[3], r[4]) for r in rows]
        return metas, {r[1]: bytes(r[5]) for r in rows if r[5] is not None}

    async def read_chunks(self, segment_id: str, version: str, seqs: Sequence[int]) -> list[bytes]:
        """IPC blobs of some chunks of one version, in ``seqs`` order (bypasses the cache)."""
        if not seqs:
            return []
        stmt = sa.select(SegmentMemberChunk.seq, SegmentMemberChunk.ids).where(
            SegmentMemberChunk.segment_id == segment_id,
            SegmentMemberChunk.version == version,
            SegmentMemberChunk.seq.in_(list(seqs)),
        )
        async with self.db.session() as s:
            found = {r[0]: bytes(r[1]) for r in (await s.execute(stmt)).all()}
        return [found[q] for q in seqs]

    async def write_chunks(self, segment_id: str, version: str, chunks: Sequence[Chunk]) -> None:
        """Store chunks of a version that is not current yet (invisible until :meth:`flip`)."""
        if not chunks:
            return
        async with self.db.transaction() as s:
            await s.execute(sa.insert(SegmentMemberChunk), _rows(segment_id, version, chunks))

    async def flip(
        self,
        session: AsyncSession,
        segment_id: str,
        version: str,
        count: int,
        *,
        tail: Sequence[Chunk] = (),
        segment_values: dict[str, Any] | None = None,
    ) -> int:
        """Make an already written version current and delete the others, in the caller's
        transaction (the streamed counterpart of :meth:`swap`).

        ``tail``: the version's last chunks, not written yet (inserted here);
        ``segment_values``: more columns of the segment row to set in the same ``UPDATE``.
        """
        conn = await session.connection()
        point = (
            sa.update(_SEGMENT)
            .where(_SEGMENT.c.id == segment_id)
            .values(membership_version=version, member_count=count, **(segment_values or {}))
        )
        if self.db.is_postgres:
            # One statement: PostgreSQL runs data-modifying CTEs whether or not the statement
            # reads them, all on one snapshot (the delete cannot see the inserted tail, and
            # spares its version anyway). With CTEs SQLAlchemy leaves the column's onupdate
            # default out (it binds NULL): updated_at is given here.
            point = point.values(updated_at=utcnow()).add_cte(
                sa.delete(_CHUNK)
                .where(_CHUNK.c.segment_id == segment_id, _CHUNK.c.version != version)
                .cte("zc_older_versions")
            )
            # One single-row insert per tail chunk (usually one): SQLAlchemy caches the
            # compiled statement by shape, which a multi-row VALUES never is.
            for i, row in enumerate(_rows(segment_id, version, tail)):
                point = point.add_cte(sa.insert(_CHUNK).values(**row).cte(f"zc_tail_{i}"))
            await conn.execute(point)
            return count
        if tail:
            await conn.execute(_INSERT_CHUNK, _rows(segment_id, version, tail))
        await conn.execute(point)
        await conn.execute(
            _DELETE_OTHER_VERSIONS, {"p_segment_id": segment_id, "p_version": version}
        )
        return count

    async def discard(self, segment_id: str, version: str) -> None:
        """Delete a version's chunks unless it is the current one (a failed streamed run)."""
        current = (
            sa.select(Segment.membership_version).where(Segment.id == segment_id).scalar_subquery()
        )
        async with self.db.transaction() as s:
            await s.execute(
                sa.delete(SegmentMemberChunk).where(
                    SegmentMemberChunk.segment_id == segment_id,
                    SegmentMemberChunk.version == version,
                    sa.func.coalesce(current, "") != version,
                )
            )

    # ---------------------------------------------------------------- swap
    def encode(self, ids: pa.Array) -> list[Chunk]:
        """Chunks for :meth:`swap`, computed outside the transaction (CPU-bound: run in a thread)."""
        return encode_chunks(ids, self.chunk_rows)

    async def swap(
        self,
        session: AsyncSession,
        segment_id: str,
        version: str,
        ids: pa.Array,
        *,
        chunks: list[Chunk] | None = None,
        segment_values: dict[str, Any] | None = None,
    ) -> int:
        """Make ``ids`` (distinct, sorted: see :func:`normalise_ids`) the segment's membership.

        Runs in the caller's transaction, which should also record the run's outcome, so the
        new membership and the run's success commit together or not at all. Returns the count.
        """
        if chunks is None:
            chunks = encode_chunks(ids, self.chunk_rows)
        await session.execute(
            sa.delete(SegmentMemberChunk).where(
                SegmentMemberChunk.segment_id == segment_id, SegmentMemberChunk.version == version
            )
        )
        if chunks:
            await session.execute(sa.insert(SegmentMemberChunk), _rows(segment_id, version, chunks))
        await session.execute(
            sa.update(Segment)
            .where(Segment.id == segment_id)
            .values(membership_version=version, member_count=len(ids), **(segment_values or {}))
        )
        await session.execute(
            sa.delete(SegmentMemberChunk).where(
                SegmentMemberChunk.segment_id == segment_id, SegmentMemberChunk.version != version
            )
        )
        return len(ids)

    # ---------------------------------------------------------------- internals
    async def _chunks_from(
        self, segment_id: str, *, after: str | None, inclusive: bool, limit: int
    ) -> Sequence[tuple[str, int, str, str]]:
        stmt = _current_chunks(segment_id).with_only_columns(
            SegmentMemberChunk.version,
            SegmentMemberChunk.seq,
            SegmentMemberChunk.first_id,
            SegmentMemberChunk.last_id,
        )
        if after is not None:
            last = SegmentMemberChunk.last_id
            stmt = stmt.where(last >= after if inclusive else last > after)
        stmt = stmt.order_by(SegmentMemberChunk.last_id).limit(limit)
        async with self.db.session() as s:
            rows = (await s.execute(stmt)).all()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def _chunk(self, segment_id: str, version: str, seq: int) -> pa.Array | None:
        key = (segment_id, version, seq)
        arr = self._cache.get(key)
        if arr is not None:
            return arr
        async with self.db.session() as s:
            blob = await s.scalar(
                sa.select(SegmentMemberChunk.ids).where(
                    SegmentMemberChunk.segment_id == segment_id,
                    SegmentMemberChunk.version == version,
                    SegmentMemberChunk.seq == seq,
                )
            )
        if blob is None:
            return None
        arr = decode_chunk(bytes(blob))
        self._cache.put(key, arr)
        return arr

    async def _has_after(self, segment_id: str, last: str) -> bool:
        return bool(await self._chunks_from(segment_id, after=last, inclusive=False, limit=1))


_CHUNK = cast(sa.Table, SegmentMemberChunk.__table__)
_SEGMENT = cast(sa.Table, Segment.__table__)
_INSERT_CHUNK = sa.insert(_CHUNK)
_DELETE_OTHER_VERSIONS = sa.delete(_CHUNK).where(
    _CHUNK.c.segment_id == sa.bindparam("p_segment_id"),
    _CHUNK.c.version != sa.bindparam("p_version"),
)
_CHUNKS_WITH_HEAD = (
    sa.select(
        _CHUNK.c.version,
        _CHUNK.c.seq,
        _CHUNK.c.first_id,
        _CHUNK.c.last_id,
        _CHUNK.c.count,
        sa.case((_CHUNK.c.seq < sa.bindparam("p_head"), _CHUNK.c.ids), else_=None),
    )
    .join(
        _SEGMENT,
        sa.and_(
            _SEGMENT.c.id == _CHUNK.c.segment_id,
            _SEGMENT.c.membership_version == _CHUNK.c.version,
        ),
    )
    .where(_CHUNK.c.segment_id == sa.bindparam("p_segment_id"))
    .order_by(_CHUNK.c.seq)
)
"""The statements of a refresh's claim and final transactions, built once (Core, no ORM)."""


def _rows(segment_id: str, version: str, chunks: Iterable[Chunk]) -> list[dict[str, Any]]:
    return [
        {
            "segment_id": segment_id,
            "version": version,
            "seq": c.seq,
            "first_id": c.first_id,
            "last_id": c.last_id,
            "count": c.count,
            "ids": c.blob,
        }
        for c in chunks
    ]


def _current_chunks(segment_id: str) -> sa.Select[Any]:
    """Chunks of the segment's current version, resolved in the same statement (one snapshot)."""
    return (
        sa.select(SegmentMemberChunk)
        .join(
            Segment,
            sa.and_(
                Segment.id == SegmentMemberChunk.segment_id,
                Segment.membership_version == SegmentMemberChunk.version,
            ),
        )
        .where(SegmentMemberChunk.segment_id == segment_id)
    )


def normalise_sorted(arrays: list[pa.Array]) -> pa.Array:
    """Concatenate already-sorted, non-overlapping chunks as one ``large_string`` array."""
    if not arrays:
        return pa.nulls(0, pa.large_string())  # not pa.array: that imports pandas
    return pa.concat_arrays(
        [pc.cast(a, pa.large_string(), memory_pool=POOL) for a in arrays], memory_pool=POOL
    )
