"""How few state-database transactions a refresh costs, and that the shortcuts stay correct.

A refresh is claimed (with everything it reads) in one transaction and recorded (membership,
run, and the source slot given back) in one more; through the source-slot layer with a queue
lane, the slot is taken in the claim's transaction. These tests count transactions with
SQLAlchemy events and check the slot rows and memberships around the shortcuts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from tests.integration.refresh_fixtures import Wired, wire
from tests.integration.state_fixtures import db_fixture, make_segment  # noqa: F401
from tests.integration.test_refresh_streamed import all_members, batches
from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.refresh.stream import StreamResult, stream_refresh
from zerocopy.scheduling.execution import SlottedEngine
from zerocopy.scheduling.models import SourceSlot
from zerocopy.scheduling.slots import REFRESH, SourceSlots
from zerocopy.state.db import Database
from zerocopy.state.membership import MembershipStore, normalise_ids
from zerocopy.state.models import RunStatus, Segment, SegmentMemberChunk

pytestmark = pytest.mark.anyio

SQL = "SELECT external_user_id FROM users WHERE external_user_id <= 100"


@contextmanager
def counting(db: Database) -> Iterator[dict[str, int]]:
    """Commits and pool checkouts of ``db`` while the block runs."""
    counts = {"commit": 0, "checkout": 0}

    def on_commit(_conn: object) -> None:
        counts["commit"] += 1

    def on_checkout(*_args: object) -> None:
        counts["checkout"] += 1

    event.listen(db.engine.sync_engine, "commit", on_commit)
    event.listen(db.engine.sync_engine.pool, "checkout", on_checkout)
    try:
        yield counts
    finally:
        event.remove(db.engine.sync_engine, "commit", on_commit)
        event.remove(db.engine.sync_engine.pool, "checkout", on_checkout)


async def slot_rows(db: Database) -> list[tuple[str, int, str]]:
    async with db.session() as s:
        rows = await s.execute(sa.select(SourceSlot.source_id, SourceSlot.slot, SourceSlot.run_id))
        return [(r[0], r[1], r[2]) for r in rows.all()]


async def versions(db: Database, segment_id: str) -> set[str]:
    async with db.session() as s:
        got = await s.scalars(
            sa.select(SegmentMemberChunk.version).where(SegmentMemberChunk.segment_id == segment_id)
        )
        return set(got.all())


async def test_a_refresh_commits_two_state_transactions(db: Database, tmp_path: Path) -> None:
    w = await wire(db, tmp_path, SQL)
    w.engine.cancel_poll_s = 600.0  # no cancel poll or heartbeat during these short runs
    for expected_added in (100, 0):  # first run (no previous), then a repeat (a diff)
        run = await w.engine.request(w.segment_id, "api")
        with counting(db) as counts:
            done = await w.engine.execute(run.id)
        assert done.status == RunStatus.SUCCEEDED, done.error_message
        assert (done.member_count, done.added) == (100, expected_added)
        # The claim (with the previous chunks and the first one's ids), the final record:
        # no session of their own for reading or writing chunks.
        assert counts == {"commit": 2, "checkout": 2}, counts
        assert await versions(db, w.segment_id) == {run.id}
    assert await w.members.count(w.segment_id) == 100


async def test_a_deferred_tail_is_written_by_the_flip_and_preloaded_chunks_are_used(
    db: Database,
) -> None:
    seg = await make_segment(db)
    members = MembershipStore(db, chunk_rows=4)
    old = [f"k{i:03d}" for i in range(0, 60, 2)]  # 30 ids: 8 chunks
    async with db.transaction() as s:
        await members.swap(s, seg.id, "v1", normalise_ids([pa.array(old)]))
    async with db.session() as s:
        previous, head = await members.current_chunks_with_head(s, seg.id, head=2)
    assert [c.seq for c in previous] == list(range(8)) and sorted(head) == [0, 1]
    new = [f"k{i:03d}" for i in range(0, 50)]  # 50 ids: 13 chunks; 25 kept, 25 added
    got = await stream_refresh(
        batches([new[j : j + 10] for j in range(0, 50, 10)]),
        members=members,
        segment_id=seg.id,
        version="v2",
        timings={},
        previous=previous,
        preloaded=head,
        defer_tail=True,
    )
    assert isinstance(got, StreamResult)
    assert (got.count, got.added, got.removed) == (50, 25, 5)
    async with db.session() as s:
        stored = await s.scalar(
            sa.select(sa.func.count())
            .select_from(SegmentMemberChunk)
            .where(SegmentMemberChunk.version == "v2")
        )
    assert stored == 10  # written while streaming (once 8 or more were ready) ...
    assert [c.seq for c in got.tail] == [10, 11, 12]  # ... the rest left to the flip
    assert await all_members(members, seg.id) == old
    async with db.transaction() as s:
        await members.flip(s, seg.id, "v2", got.count, tail=got.tail)
    assert await all_members(members, seg.id) == new
    assert await versions(db, seg.id) == {"v2"}


async def through_lane(w: Wired, slots: SourceSlots, lane: int) -> tuple[str, str]:
    # kind="postgres" only sets the slot limit (4 lanes; the DuckDB file itself allows 1).
    executor = SlottedEngine(w.engine, slots)
    run = await w.engine.request(w.segment_id, "api")
    done = await executor.execute(run.id, source_id=w.source.id, kind="postgres", lane=lane)
    return run.id, done.status


async def test_a_lane_slot_is_taken_at_claim_and_given_back_at_the_end(
    db: Database, tmp_path: Path
) -> None:
    w = await wire(db, tmp_path, SQL)
    slots = SourceSlots(db)
    executor = SlottedEngine(w.engine, slots)
    run = await w.engine.request(w.segment_id, "api")
    with counting(db) as counts:
        done = await executor.execute(run.id, source_id=w.source.id, kind="postgres", lane=2)
    assert done.status == RunStatus.SUCCEEDED, done.error_message
    assert counts["commit"] == 2, counts  # slot + claim, then record + slot given back
    assert await slot_rows(db) == []
    assert done.timings is not None


async def test_a_held_lane_makes_the_run_wait_for_another_slot(
    db: Database, tmp_path: Path
) -> None:
    w = await wire(db, tmp_path, SQL)
    slots = SourceSlots(db, poll_s=0.01)
    # Lanes 0 and 1 are held by other runs (postgres kind: limit 4): lane 1 is asked for.
    assert await slots.try_acquire(w.source.id, 2, "other-0", REFRESH) == 0
    assert await slots.try_acquire(w.source.id, 2, "other-1", REFRESH) == 1
    run_id, status = await through_lane(w, slots, lane=1)
    assert status == RunStatus.SUCCEEDED
    # It ran in a free slot (2), gave it back, and left the others' slots alone.
    assert sorted(await slot_rows(db)) == [(w.source.id, 0, "other-0"), (w.source.id, 1, "other-1")]
    assert await versions(db, w.segment_id) == {run_id}


async def test_a_run_no_longer_queued_takes_no_slot(db: Database, tmp_path: Path) -> None:
    w = await wire(db, tmp_path, SQL)
    slots = SourceSlots(db)
    run = await w.engine.request(w.segment_id, "api")
    await w.engine.request_cancel(run.id)
    done = await SlottedEngine(w.engine, slots).execute(
        run.id, source_id=w.source.id, kind="postgres", lane=0
    )
    assert done.status == RunStatus.CANCELLED
    assert await slot_rows(db) == []
    assert await versions(db, w.segment_id) == set()


async def test_a_failed_run_gives_its_slot_back_and_keeps_the_membership(
    db: Database, tmp_path: Path
) -> None:
    w = await wire(db, tmp_path, SQL)
    slots = SourceSlots(db)
    first, status = await through_lane(w, slots, lane=0)
    assert status == RunStatus.SUCCEEDED
    await w.set_sql("SELECT external_user_id FROM no_such_table")
    _, status = await through_lane(w, slots, lane=0)
    assert status == RunStatus.FAILED
    assert await slot_rows(db) == []
    assert await versions(db, w.segment_id) == {first}
    assert await w.members.count(w.segment_id) == 100


@pytest.mark.postgres
async def test_idle_connections_are_pinged_and_busy_ones_reconnect_after_one_error(
    postgres_url: str, postgres_server: str
) -> None:
    """Killed server sessions: an idle-pinged pool hides it; an unpinged one fails once."""
    name = postgres_url.rsplit("/", 1)[1]

    def kill_sessions() -> int:
        with psycopg.connect(postgres_server, autocommit=True) as con:
            row = con.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchone()
        assert row is not None
        return int(row[0])

    async def backend_pid(db: Database) -> int:
        async with db.session() as s:
            return int(await s.scalar(sa.text("SELECT pg_backend_pid()")) or 0)

    pinged = Database(postgres_url, ping_idle_s=0.0)  # every reused connection is idle
    try:
        before = await backend_pid(pinged)
        assert kill_sessions() >= 1
        assert await backend_pid(pinged) != before  # replaced before use, no error
    finally:
        await pinged.dispose()

    trusting = Database(postgres_url, ping_idle_s=3600.0)
    try:
        before = await backend_pid(trusting)
        assert kill_sessions() >= 1
        with pytest.raises(sa.exc.OperationalError):
            await backend_pid(trusting)
        assert await backend_pid(trusting) not in (0, before)  # the pool was reset
    finally:
        await trusting.dispose()


async def test_the_flip_is_one_statement_on_postgresql(db: Database) -> None:
    """Tail, pointer and deletion of the older versions: one statement with CTEs on
    PostgreSQL (three on SQLite), and the segment's updated_at still moves."""
    seg = await make_segment(db)
    members = MembershipStore(db, chunk_rows=4)
    async with db.transaction() as s:
        await members.swap(s, seg.id, "v1", normalise_ids([pa.array(["a", "b", "c", "d", "e"])]))
    async with db.session() as s:
        before = await s.scalar(sa.select(Segment.updated_at).where(Segment.id == seg.id))
    new = ["b", "c", "x", "y", "z", "zz"]
    got = await stream_refresh(
        batches([new[:3], new[3:]]),
        members=members,
        segment_id=seg.id,
        version="v2",
        timings={},
        defer_tail=True,
    )
    assert isinstance(got, StreamResult) and got.tail
    statements: list[str] = []

    def on_execute(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        async with db.transaction() as s:
            await members.flip(s, seg.id, "v2", got.count, tail=got.tail)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", on_execute)
    assert len(statements) == (1 if db.is_postgres else 3), statements
    assert await all_members(members, seg.id) == new
    assert await versions(db, seg.id) == {"v2"}
    async with db.session() as s:
        row = (
            await s.execute(
                sa.select(
                    Segment.updated_at, Segment.member_count, Segment.membership_version
                ).where(Segment.id == seg.id)
            )
        ).one()
    assert row.updated_at is not None and row.updated_at >= before
    assert (row.member_count, row.membership_version) == (6, "v2")


async def test_the_claim_reads_the_catalog_with_the_segment(db: Database, tmp_path: Path) -> None:
    """Claim: the compare-and-set, then the segment, source, credential and catalog in one
    statement (on PostgreSQL one statement for all of it: the compare-and-set in a ``WITH``),
    then the previous chunk list; the check sees the catalog (a table missing from it would
    fail the run)."""
    w = await wire(db, tmp_path, SQL)
    run = await w.engine.request(w.segment_id, "api")
    statements: list[str] = []

    def on_execute(*args: object) -> None:
        text = str(args[2])
        polls = ("SELECT refresh_run.cancel_requested_at", "UPDATE refresh_run SET heartbeat_at")
        if not text.startswith(polls):
            statements.append(text)  # not the cancel polls and heartbeats of a slow run

    with counting(db) as counts:
        event.listen(db.engine.sync_engine, "before_cursor_execute", on_execute)
        try:
            done = await w.engine.execute(run.id)
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", on_execute)
    assert done.status == RunStatus.SUCCEEDED, done.error_message
    assert done.member_count == 100
    assert counts["commit"] == 2, counts
    if db.is_postgres:
        claim = statements[:2]
        assert claim[0].startswith("WITH zc_claimed AS \n(UPDATE refresh_run"), statements
        assert "catalog_table" in claim[0] and "JOIN segment" in claim[0], statements
    else:
        claim = statements[:3]
        assert claim[0].startswith("UPDATE refresh_run"), statements
        assert "catalog_table" in claim[1] and "FROM segment" in claim[1], statements
    assert "segment_member_chunk" in claim[-1], statements
    assert not any(s.lstrip().startswith("SELECT catalog_table") for s in statements)


async def test_a_request_is_one_insert_select(db: Database, tmp_path: Path) -> None:
    """The run's workspace, source and max runtime are read by its INSERT itself."""
    w = await wire(db, tmp_path, SQL)
    statements: list[str] = []

    def on_execute(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        with counting(db) as counts:
            run = await w.engine.request(w.segment_id, "api")
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", on_execute)
    assert counts["commit"] == 1 and len(statements) == 1, statements
    assert statements[0].startswith("INSERT INTO refresh_run")
    assert (run.status, run.trigger, run.max_runtime_s) == (RunStatus.QUEUED, "api", 300.0)
    assert (run.source_id, run.workspace_id) == (w.source.id, w.source.workspace_id)
    assert run.temp_table and run.created_at is not None
    with pytest.raises(ZerocopyError) as busy:
        await w.engine.request(w.segment_id, "api")
    assert busy.value.code == errors.REFRESH_IN_PROGRESS and busy.value.details["run_id"] == run.id
    await w.engine.request_cancel(run.id)
    again = await w.engine.request(w.segment_id, "schedule", max_runtime_s=7)
    assert (again.trigger, again.max_runtime_s) == ("schedule", 7.0)
    with pytest.raises(ZerocopyError) as missing:
        await w.engine.request("no-such-segment")
    assert missing.value.code == errors.NOT_FOUND
