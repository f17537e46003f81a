"""Membership store on SQLite and PostgreSQL: swap, diff, count, contains, keyset pages."""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlalchemy as sa

from tests.integration.state_fixtures import db_fixture, make_segment  # noqa: F401
from zerocopy.state.db import Database
from zerocopy.state.membership import MembershipStore, diff_counts, normalise_ids
from zerocopy.state.models import Segment, SegmentMemberChunk

pytestmark = pytest.mark.anyio


def ids(values: list[str]) -> pa.Array:
    return normalise_ids([pa.array(values)])


async def swap(
    db: Database, store: MembershipStore, seg_id: str, version: str, arr: pa.Array
) -> None:
    async with db.transaction() as s:
        await store.swap(s, seg_id, version, arr)


async def test_swap_count_contains_and_pages(db: Database) -> None:
    seg = await make_segment(db)
    store = MembershipStore(db, chunk_rows=7)  # tiny chunks: pages and lookups cross chunks
    members = [f"u{i:03d}" for i in range(50)] + ["é-ünïcode", "Zed", "a b"]
    await swap(db, store, seg.id, "v1", ids(members))

    assert await store.count(seg.id) == len(members)
    expected = sorted(members, key=lambda s: s.encode())
    for m in members:
        assert await store.contains(seg.id, m)
        assert await store.contains_uncached(seg.id, m)
    for absent in ["u050", "u0", "", "zzz", "A", "u001 "]:
        assert not await store.contains(seg.id, absent)

    seen: list[str] = []
    after = None
    while True:
        page = await store.page(seg.id, after=after, limit=10)
        seen.extend(page.ids)
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == expected
    assert (await store.page(seg.id, after=expected[-1])).ids == []
    assert (await store.page(seg.id, after="u010", limit=3)).ids == ["u011", "u012", "u013"]

    chunks = await _chunk_rows(db, seg.id)
    assert {c[0] for c in chunks} == {"v1"} and sum(c[1] for c in chunks) == len(members)


async def test_second_swap_replaces_and_drops_old_chunks(db: Database) -> None:
    seg = await make_segment(db)
    store = MembershipStore(db, chunk_rows=4)
    await swap(db, store, seg.id, "v1", ids(["a", "b", "c", "d", "e"]))
    old = await store.load(seg.id)
    new = ids(["b", "c", "d", "e", "f", "g"])
    assert diff_counts(old, new) == (2, 1)
    await swap(db, store, seg.id, "v2", new)

    assert (await store.load(seg.id)).to_pylist() == ["b", "c", "d", "e", "f", "g"]
    assert not await store.contains(seg.id, "a")  # cached v1 chunk must not answer for v2
    assert await store.contains(seg.id, "g")
    assert {c[0] for c in await _chunk_rows(db, seg.id)} == {"v2"}
    async with db.session() as s:
        row = await s.get(Segment, seg.id)
    assert row is not None and row.membership_version == "v2" and row.member_count == 6


async def test_failed_swap_leaves_previous_membership(db: Database) -> None:
    seg = await make_segment(db)
    store = MembershipStore(db, chunk_rows=3)
    await swap(db, store, seg.id, "v1", ids(["a", "b", "c", "d"]))
    with pytest.raises(RuntimeError, match="boom"):
        async with db.transaction() as s:
            await store.swap(s, seg.id, "v2", ids(["x", "y"]))
            raise RuntimeError("boom")
    assert (await store.load(seg.id)).to_pylist() == ["a", "b", "c", "d"]
    assert await store.count(seg.id) == 4
    assert {c[0] for c in await _chunk_rows(db, seg.id)} == {"v1"}


async def test_readers_see_old_membership_until_commit(db: Database) -> None:
    seg = await make_segment(db)
    store = MembershipStore(db, chunk_rows=3)
    await swap(db, store, seg.id, "v1", ids(["a", "b", "c"]))
    async with db.session() as s, s.begin():
        await store.swap(s, seg.id, "v2", ids(["x", "y", "z", "w"]))
        # Another connection, mid-swap: still the old membership, whole.
        assert (await store.load(seg.id)).to_pylist() == ["a", "b", "c"]
        assert await store.count(seg.id) == 3
        assert await store.contains(seg.id, "a")
        assert not await store.contains(seg.id, "x")
    assert (await store.load(seg.id)).to_pylist() == ["w", "x", "y", "z"]


async def test_empty_and_never_refreshed(db: Database) -> None:
    seg = await make_segment(db)
    store = MembershipStore(db)
    assert await store.count(seg.id) == 0
    assert not await store.contains(seg.id, "a")
    assert (await store.page(seg.id)).ids == []
    assert len(await store.load(seg.id)) == 0
    await swap(db, store, seg.id, "v1", ids(["a"]))
    await swap(db, store, seg.id, "v2", ids([]))
    assert await store.count(seg.id) == 0
    assert (await store.page(seg.id)).ids == []


async def _chunk_rows(db: Database, segment_id: str) -> list[tuple[str, int]]:
    async with db.session() as s:
        rows = await s.execute(
            sa.select(SegmentMemberChunk.version, SegmentMemberChunk.count).where(
                SegmentMemberChunk.segment_id == segment_id
            )
        )
    return [(r[0], r[1]) for r in rows]
