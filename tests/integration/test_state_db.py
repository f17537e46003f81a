"""State database on SQLite and PostgreSQL: migrations, model parity, the active-run rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from tests.integration.state_fixtures import db_fixture, make_segment  # noqa: F401
from zerocopy.state.db import SQLITE_CACHE_KIB, Database, alembic_config
from zerocopy.state.models import (
    ApiKey,
    Base,
    CatalogTable,
    Credential,
    RefreshRun,
    RunStatus,
    Segment,
    SegmentMemberChunk,
    Source,
    Workspace,
)

pytestmark = pytest.mark.anyio


MY_TABLES = {
    m.__tablename__
    for m in (
        Workspace,
        ApiKey,
        Credential,
        Source,
        CatalogTable,
        Segment,
        SegmentMemberChunk,
        RefreshRun,
    )
}


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _table_of(diff: object) -> str | None:
    """Table name an autogenerate diff entry is about (entries may be nested lists)."""
    if isinstance(diff, list):
        return _table_of(diff[0]) if diff else None
    assert isinstance(diff, tuple)
    for part in diff[1:]:
        if isinstance(part, sa.Table):
            return part.name
        if isinstance(part, (sa.Index, sa.UniqueConstraint, sa.Column)) and part.table is not None:
            return part.table.name
    # ("add_column", schema, table_name, column) / ("modify_*", schema, table_name, ...)
    return diff[2] if len(diff) > 2 and isinstance(diff[2], str) else None


async def test_migrations_match_models(db: Database) -> None:
    assert await db.current_revision() == head_revision()
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
            )
        )
    # Other packages add tables to the same metadata; these are the state layer's own.
    assert [d for d in diff if _table_of(d) in MY_TABLES] == []


async def test_upgrade_is_idempotent_and_downgrades(db: Database) -> None:
    await db.upgrade()
    await db.downgrade("base")
    assert await db.current_revision() is None
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    assert not MY_TABLES & set(tables)
    await db.upgrade()
    assert await db.current_revision() == head_revision()


async def test_timestamps_are_aware_utc(db: Database) -> None:
    paris = timezone(timedelta(hours=1))
    async with db.transaction() as s:
        ws = Workspace(name="tz", created_at=datetime(2026, 3, 29, 3, 30, tzinfo=paris))
        s.add(ws)
    async with db.session() as s:
        back = await s.get(Workspace, ws.id)
    assert back is not None
    assert back.created_at == datetime(2026, 3, 29, 2, 30, tzinfo=UTC)
    assert back.created_at.tzinfo is not None and back.created_at.utcoffset() == timedelta(0)
    with pytest.raises(Exception, match="naive"):
        async with db.transaction() as s:
            s.add(Workspace(name="naive", created_at=datetime(2026, 1, 1)))


async def test_one_active_run_per_segment_is_enforced_by_the_database(db: Database) -> None:
    seg = await make_segment(db)

    def run(status: str) -> RefreshRun:
        return RefreshRun(
            segment_id=seg.id,
            workspace_id=seg.workspace_id,
            source_id=seg.source_id,
            status=status,
            max_runtime_s=60,
        )

    async with db.transaction() as s:
        s.add(run(RunStatus.RUNNING))
    for status in (RunStatus.QUEUED, RunStatus.RUNNING):
        with pytest.raises(IntegrityError):
            async with db.transaction() as s:
                s.add(run(status))
    # Finished runs do not count: any number of them may exist.
    async with db.transaction() as s:
        s.add_all([run(RunStatus.SUCCEEDED), run(RunStatus.FAILED), run(RunStatus.CANCELLED)])


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.sqlite3'}")  # plain URL: normalised to aiosqlite
    try:
        assert db.url.startswith("sqlite+aiosqlite://")
        async with db.engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            fks = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
            busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
        assert (mode, fks) == ("wal", 1) and busy >= 1000
    finally:
        await db.dispose()


async def test_sqlite_connections_keep_a_large_cache_and_are_reused_most_recent_first(
    tmp_path: Path,
) -> None:
    """In WAL mode a connection drops its page cache when another one committed since its
    last read: the pool hands out the most recently used connection, whose cache is big."""
    db = Database(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        async with db.engine.connect() as first, db.engine.connect() as second:
            cache = (await first.exec_driver_sql("PRAGMA cache_size")).scalar()
            first_raw = (await first.get_raw_connection()).driver_connection
            second_raw = (await second.get_raw_connection()).driver_connection
            await second.close()
            await first.close()  # returned last: the next checkouts get it (FIFO: second)
        assert cache == -SQLITE_CACHE_KIB and SQLITE_CACHE_KIB >= 16 * 1024
        used = []
        for _ in range(3):
            async with db.engine.connect() as conn:
                used.append((await conn.get_raw_connection()).driver_connection)
        assert first_raw is not second_raw
        assert used == [first_raw, first_raw, first_raw]
    finally:
        await db.dispose()


async def test_concurrent_upgrades_from_many_processes_agree(db: Database) -> None:
    """serve + N workers starting at once: one migrates, the others find the schema current."""
    import anyio

    await db.downgrade("base")
    others = [Database(db.url) for _ in range(3)]
    try:
        async with anyio.create_task_group() as tg:
            for other in others:
                tg.start_soon(other.upgrade)
        assert await db.current_revision() == head_revision()
    finally:
        for other in others:
            await other.dispose()
