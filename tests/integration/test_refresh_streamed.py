"""Streamed refreshes: ids read in byte order go straight into chunks of the run's version.

Against real adapters and real state databases: the streamed path's results equal set
arithmetic, only the current version's chunks survive, a failing stream leaves the previous
membership untouched and its own chunks gone, and an adapter whose order promise does not hold
(the Redshift adapter on a database with a locale collation) falls back to sorting in memory
with the same results.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest
import sqlalchemy as sa

from tests.integration.refresh_fixtures import store_catalog, wire
from tests.integration.state_fixtures import db_fixture, make_segment  # noqa: F401
from tests.peers.redshift_proxy.peer import REDSHIFT_CATALOG_SQL, redshift_proxy
from tests.support import unavailable
from zerocopy.connections import AdapterFactory
from zerocopy.refresh import RefreshEngine
from zerocopy.refresh.stream import StreamResult, stream_refresh
from zerocopy.secrets import SecretBox
from zerocopy.state.db import Database
from zerocopy.state.membership import MembershipStore, encode_chunks, normalise_ids
from zerocopy.state.models import (
    Credential,
    RefreshRun,
    RunStatus,
    SegmentMemberChunk,
    Source,
    utcnow,
)

pytestmark = pytest.mark.anyio


async def all_members(members: MembershipStore, segment_id: str) -> list[str]:
    out: list[str] = []
    after = None
    while True:
        page = await members.page(segment_id, after=after, limit=37)
        out.extend(page.ids)
        if page.next_after is None:
            return out
        after = page.next_after


async def versions(db: Database, segment_id: str) -> set[str]:
    async with db.session() as s:
        rows = await s.scalars(
            sa.select(SegmentMemberChunk.version).where(SegmentMemberChunk.segment_id == segment_id)
        )
        return set(rows.all())


def expected(ids: range) -> list[str]:
    return sorted((str(i) for i in ids), key=lambda v: v.encode())


# ------------------------------------------------------------------ engine, DuckDB warehouse
async def test_streamed_refreshes_diff_and_keep_only_the_current_version(
    db: Database, tmp_path: Path
) -> None:
    w = await wire(db, tmp_path, "SELECT external_user_id FROM users WHERE external_user_id <= 700")
    w.engine.batch_rows = 64  # many batches, batch boundaries inside chunks
    w.engine.members.chunk_rows = 50

    first = await w.engine.refresh(w.segment_id)
    assert first.status == RunStatus.SUCCEEDED, first.error_message
    assert "write_chunks" in (first.timings or {})  # the streamed path ran
    assert (first.member_count, first.added, first.removed) == (700, 700, 0)
    assert await all_members(w.members, w.segment_id) == expected(range(1, 701))

    await w.set_sql(
        "SELECT external_user_id FROM users WHERE external_user_id > 300 AND external_user_id <= 900"
    )
    second = await w.engine.refresh(w.segment_id)
    assert second.status == RunStatus.SUCCEEDED, second.error_message
    assert (second.member_count, second.added, second.removed) == (600, 200, 300)
    assert await all_members(w.members, w.segment_id) == expected(range(301, 901))
    assert await versions(db, w.segment_id) == {second.id}
    assert await w.members.contains(w.segment_id, "900")
    assert not await w.members.contains(w.segment_id, "300")


async def test_streamed_and_in_memory_paths_agree(db: Database, tmp_path: Path) -> None:
    w = await wire(
        db, tmp_path, "SELECT external_user_id FROM users WHERE external_user_id % 3 = 0"
    )
    in_memory = RefreshEngine(db, w.factory, members=w.members, stream=False)
    runs = []
    for engine, sql in [
        (w.engine, "SELECT external_user_id FROM users WHERE external_user_id % 3 = 0"),
        (in_memory, "SELECT external_user_id FROM users WHERE external_user_id % 5 = 0"),
        (w.engine, "SELECT external_user_id FROM users WHERE external_user_id % 2 = 0"),
    ]:
        await w.set_sql(sql)
        run = await engine.refresh(w.segment_id)
        assert run.status == RunStatus.SUCCEEDED, run.error_message
        runs.append((run.member_count, run.added, run.removed))
    threes, fives, twos = (set(range(k, 1001, k)) for k in (3, 5, 2))
    assert runs == [
        (len(threes), len(threes), 0),
        (len(fives), len(fives - threes), len(threes - fives)),
        (len(twos), len(twos - fives), len(fives - twos)),
    ]
    assert await all_members(w.members, w.segment_id) == expected(range(2, 1001, 2))


async def test_a_lost_worker_s_streamed_chunks_are_discarded_by_the_reaper(
    db: Database, tmp_path: Path
) -> None:
    w = await wire(db, tmp_path, "SELECT external_user_id FROM users WHERE external_user_id <= 50")
    done = await w.engine.refresh(w.segment_id)
    assert done.status == RunStatus.SUCCEEDED, done.error_message
    lost = await w.engine.request(w.segment_id)
    async with db.transaction() as s:  # as if a worker claimed it, streamed, then died
        await s.execute(
            sa.update(RefreshRun)
            .where(RefreshRun.id == lost.id)
            .values(status=RunStatus.RUNNING, heartbeat_at=utcnow() - timedelta(hours=1))
        )
    chunks = encode_chunks(normalise_ids([pa.array(["x", "y"])]), 1)
    await w.members.write_chunks(w.segment_id, lost.id, chunks)
    assert await versions(db, w.segment_id) == {done.id, lost.id}

    assert await w.engine.reap_lost() == [lost.id]
    assert (await w.engine.get(lost.id)).error_code == "worker_lost"
    assert await versions(db, w.segment_id) == {done.id}
    assert await w.members.count(w.segment_id) == 50


# ------------------------------------------------------------------ stream_refresh, state DBs
async def batches(
    values: list[list[str]], fail_after: int | None = None
) -> AsyncIterator[pa.Array]:
    for i, v in enumerate(values):
        if fail_after is not None and i == fail_after:
            raise RuntimeError("the warehouse went away")
        yield pa.array(v, pa.string())


async def test_a_failing_stream_leaves_the_previous_membership_and_no_chunks(db: Database) -> None:
    seg = await make_segment(db)
    members = MembershipStore(db, chunk_rows=4)
    async with db.transaction() as s:
        await members.swap(s, seg.id, "v1", normalise_ids([pa.array(["a", "b", "c"])]))
    stream = [[f"k{i:03d}" for i in range(j, j + 10)] for j in range(0, 100, 10)]
    with pytest.raises(RuntimeError):
        await stream_refresh(
            batches(stream, fail_after=6), members=members, segment_id=seg.id, version="v2",
            timings={},
        )  # fmt: skip
    assert "v2" in await versions(db, seg.id)  # chunks were written as they filled ...
    assert await all_members(members, seg.id) == ["a", "b", "c"]  # ... and are invisible
    await members.discard(seg.id, "v2")
    assert await versions(db, seg.id) == {"v1"}
    await members.discard(seg.id, "v1")  # never the current version
    assert await all_members(members, seg.id) == ["a", "b", "c"]


async def test_broken_order_falls_back_to_the_whole_set_in_memory(db: Database) -> None:
    seg = await make_segment(db)
    members = MembershipStore(db, chunk_rows=3)
    stream = [["a", "b", "c", "d"], ["e", "f", "g"], ["B", "h"], ["A", "z", "z"]]
    timings: dict[str, float] = {}
    got = await stream_refresh(
        batches(stream), members=members, segment_id=seg.id, version="v1", timings=timings
    )
    assert not isinstance(got, StreamResult)
    assert got.to_pylist() == ["A", "B", "a", "b", "c", "d", "e", "f", "g", "h", "z"]
    assert "normalise" in timings
    async with db.transaction() as s:  # what the engine then does: the usual swap
        await members.swap(s, seg.id, "v1", got)
    assert await all_members(members, seg.id) == got.to_pylist()
    async with db.session() as s:
        seqs = (await s.scalars(sa.select(SegmentMemberChunk.seq))).all()
    assert sorted(seqs) == [0, 1, 2, 3]  # the streamed chunks were replaced, not added to


# ------------------------------------------------------------------ engine, Redshift fallback
@pytest.fixture
def icu_database(postgres_server: str) -> Iterator[str]:
    """A scratch database whose default collation is ICU en-US (not byte order)."""
    from tests.support import _with_db

    name = f"zc_test_icu_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(
                f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu '  # type: ignore[arg-type]
                "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            )
    except psycopg.Error as exc:
        unavailable(f"PostgreSQL server cannot create an ICU database: {exc}")
    try:
        yield _with_db(postgres_server, name)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


MIXED = ["a", "B", "b", "A", "_x", "Zed", "zed", "0", "é", "E"]


@pytest.mark.postgres
async def test_redshift_on_a_locale_collation_falls_back_and_stays_correct(
    icu_database: str, db: Database
) -> None:
    with psycopg.connect(icu_database, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA marketing")
        conn.execute("CREATE TABLE marketing.users (external_user_id text, n int)")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO marketing.users VALUES (%s, %s)",
                [(f"{v}{i}", i) for i in range(60) for v in MIXED],
            )
        conn.execute(REDSHIFT_CATALOG_SQL.read_text())  # type: ignore[arg-type]
        # The promise does not hold here: plain ORDER BY follows the locale.
        rows = conn.execute(
            "SELECT external_user_id FROM marketing.users ORDER BY external_user_id"
        ).fetchall()
        assert [r[0] for r in rows] != sorted((r[0] for r in rows), key=lambda v: v.encode())
    info = psycopg.conninfo.conninfo_to_dict(icu_database)
    with redshift_proxy(
        int(info.get("port") or 5432), str(info.get("host") or "127.0.0.1")
    ) as port:
        seg = await make_segment(
            db, sql="SELECT external_user_id FROM users WHERE n < 40", kind="redshift",
            settings={"host": "127.0.0.1", "port": port, "database": info["dbname"],
                      "user": info.get("user") or "postgres", "ssl": False},
            scope="marketing",
        )  # fmt: skip
        box = SecretBox([SecretBox.generate_key()])
        async with db.transaction() as s:
            source = await s.get(Source, seg.source_id)
            credential = await s.get(Credential, source.credential_id if source else "")
            assert source is not None and credential is not None
            credential.secret_ciphertext = box.encrypt({"password": "unused"})
        await store_catalog(db, source, credential, box)
        members = MembershipStore(db, chunk_rows=16)
        engine = RefreshEngine(db, AdapterFactory(box), members=members, batch_rows=25)
        run = await engine.refresh(seg.id)
        assert run.status == RunStatus.SUCCEEDED, run.error_message
        assert "normalise" in (run.timings or {})  # the in-memory fallback ran
        want = {f"{v}{i}" for i in range(40) for v in MIXED}
        assert (run.member_count, run.added, run.removed) == (len(want), len(want), 0)
        assert await all_members(members, seg.id) == sorted(want, key=lambda v: v.encode())
        assert await versions(db, seg.id) == {run.id}
