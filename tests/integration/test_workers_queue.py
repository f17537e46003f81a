"""The procrastinate runner's deferral: fairness between workspaces and per-source lock lanes."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.refresh_fixtures import wire
from zerocopy.runner_procrastinate import ProcrastinateRunner, ensure_queue_schema
from zerocopy.scheduling.slots import HOUSEKEEPING, SourceSlots, slot_key
from zerocopy.state.db import Database
from zerocopy.state.models import Segment, Source

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


async def test_workspaces_are_served_round_robin_and_sources_get_lanes(
    postgres_url: str, tmp_path: Path
) -> None:
    db = Database(postgres_url)
    await db.upgrade()
    await ensure_queue_schema(db)
    try:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        a = await wire(db, tmp_path / "a", "SELECT external_user_id FROM users")
        b = await wire(db, tmp_path / "b", "SELECT external_user_id FROM users")
        # More segments on each source (same workspace, same source as the wired one).
        extra: dict[str, list[str]] = {"a": [a.segment_id], "b": [b.segment_id]}
        async with db.transaction() as s:
            for name, w, n in (("a", a, 4), ("b", b, 1)):
                base = await s.get(Segment, w.segment_id)
                assert base is not None
                for i in range(n):
                    seg = Segment(
                        workspace_id=base.workspace_id,
                        source_id=base.source_id,
                        name=f"{name}{i}",
                        sql=base.sql,
                        dialect=base.dialect,
                    )
                    s.add(seg)
                    await s.flush()
                    extra[name].append(seg.id)
        workspace_of: dict[str, str] = {}
        async with ProcrastinateRunner(db, default_limit=4) as runner:
            # Workspace A floods the queue first, then B asks for two refreshes.
            for name in ("a", "b"):
                w = a if name == "a" else b
                for segment_id in extra[name]:
                    run = await w.engine.request(segment_id, "schedule")
                    workspace_of[run.id] = name
                    await runner.submit(run.id)
                    await runner.submit(run.id)  # a second submit is absorbed (queueing lock)
        async with db.session() as s:
            rows = (
                await s.execute(
                    sa.text(
                        "SELECT args->>'run_id', priority, lock FROM procrastinate_jobs "
                        "WHERE status = 'todo' ORDER BY priority DESC, id ASC"
                    )
                )
            ).all()
        assert len(rows) == 7
        order = [workspace_of[r[0]] for r in rows]
        # Fetch order alternates while both workspaces have work, instead of A's 5 first.
        assert order == ["a", "b", "a", "b", "a", "a", "a"]
        # DuckDB files take one process at a time: every job of a file shares one lock.
        key = slot_key(a.source.id, "duckdb", a.credential.settings)
        assert key != a.source.id
        assert {r[2] for r in rows if workspace_of[r[0]] == "a"} == {f"source:{key}:0"}
    finally:
        await db.dispose()


async def test_two_sources_on_one_duckdb_file_share_its_single_slot_and_lane(
    postgres_url: str, tmp_path: Path
) -> None:
    db = Database(postgres_url)
    await db.upgrade()
    await ensure_queue_schema(db)
    try:
        a = await wire(db, tmp_path, "SELECT external_user_id FROM users")
        # A second source (another scope name, same credential: the same file) and a segment.
        async with db.transaction() as s:
            other = Source(
                workspace_id=a.source.workspace_id,
                credential_id=a.credential.id,
                name="same file",
                kind="duckdb",
                scope=a.source.scope,
                max_runtime_s=60,
                status=a.source.status,
            )
            s.add(other)
            await s.flush()
            base = await s.get(Segment, a.segment_id)
            assert base is not None
            seg = Segment(
                workspace_id=base.workspace_id,
                source_id=other.id,
                name="on the same file",
                sql=base.sql,
                dialect=base.dialect,
            )
            s.add(seg)
        one = slot_key(a.source.id, "duckdb", a.credential.settings)
        two = slot_key(other.id, "duckdb", a.credential.settings)
        assert one == two != a.source.id
        assert slot_key("pg-source", "postgres", {"host": "x"}) == "pg-source"

        # The file's single slot: held for one source, refused for the other (holders that
        # the reclaimer leaves alone, as a janitor pass).
        slots = SourceSlots(db)
        assert await slots.try_acquire(one, 1, "run-1", HOUSEKEEPING) == 0
        assert await slots.try_acquire(two, 1, "run-2", HOUSEKEEPING) is None
        await slots.release("run-1")
        assert await slots.try_acquire(two, 1, "run-2", HOUSEKEEPING) == 0
        await slots.release("run-2")

        # And one queue lane for both sources' jobs.
        async with ProcrastinateRunner(db) as runner:
            r1 = await a.engine.request(a.segment_id, "api")
            r2 = await a.engine.request(seg.id, "api")
            await runner.submit_many([r1.id, r2.id])
        async with db.session() as s:
            locks = (
                await s.scalars(
                    sa.text("SELECT lock FROM procrastinate_jobs WHERE status = 'todo'")
                )
            ).all()
        assert sorted(locks) == [f"source:{one}:0"] * 2
    finally:
        await db.dispose()
