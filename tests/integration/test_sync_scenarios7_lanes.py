"""Round 7: refresh and sync jobs of one source share its lanes (procrastinate locks).

A job's lane is the number of runs active on its source before it, modulo the source's
limit. Both kinds hold the source's lanes, so both kinds count: a sync run started while a
segment refresh of the same source runs goes to the next lane (not behind the refresh), and a
refresh queued while a sync runs does likewise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from zerocopy.runner_procrastinate import ProcrastinateRunner, ensure_queue_schema
from zerocopy.state.db import Database
from zerocopy.state.models import (
    Credential,
    RefreshRun,
    RunStatus,
    Segment,
    Source,
    SourceStatus,
    Workspace,
)
from zerocopy.state.sync_models import Sync, SyncRun

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def _setup(db: Database) -> tuple[str, str, list[str], list[str]]:
    """A workspace, a PostgreSQL source (4 lanes), two segments and two syncs on it."""
    async with db.transaction() as s:
        ws = Workspace(name="lanes")
        s.add(ws)
        await s.flush()
        cred = Credential(
            workspace_id=ws.id, name="pg", kind="postgres", settings={"host": "127.0.0.1"}
        )
        s.add(cred)
        await s.flush()
        src = Source(
            workspace_id=ws.id,
            credential_id=cred.id,
            name="pg",
            kind="postgres",
            scope="db.public",
            status=SourceStatus.ACTIVE,
        )
        s.add(src)
        await s.flush()
        segs = [
            Segment(
                workspace_id=ws.id,
                source_id=src.id,
                name=f"seg{i}",
                sql="SELECT external_user_id FROM users",
                dialect="postgres",
            )
            for i in range(2)
        ]
        syncs = [
            Sync(
                workspace_id=ws.id,
                name=f"sync{i}",
                source_id=src.id,
                table_name="events_in",
                data_type="custom_events",
                status="active",
            )
            for i in range(2)
        ]
        s.add_all([*segs, *syncs])
        await s.flush()
        return ws.id, src.id, [g.id for g in segs], [y.id for y in syncs]


async def _lock(db: Database, column: str, run_id: str) -> str | None:
    async with db.session() as s:
        return await s.scalar(
            sa.text(
                f"SELECT lock FROM procrastinate_jobs WHERE status = 'todo' "
                f"AND args->>'{column}' = :id"
            ),
            {"id": run_id},
        )


async def test_sync_and_refresh_jobs_take_distinct_lanes(postgres_url: str) -> None:
    db = Database(postgres_url)
    await db.upgrade()
    await ensure_queue_schema(db)
    ws, src, segs, syncs = await _setup(db)
    async with ProcrastinateRunner(db) as runner:
        # A refresh of segment 0 is running on the source (lane 0).
        async with db.transaction() as s:
            refresh = RefreshRun(
                segment_id=segs[0],
                workspace_id=ws,
                source_id=src,
                status=RunStatus.QUEUED,
                max_runtime_s=600.0,
                created_at=T0,
            )
            s.add(refresh)
            await s.flush()
            refresh_id = refresh.id
        await runner.submit(refresh_id)
        assert await _lock(db, "run_id", refresh_id) == f"source:{src}:0"
        async with db.transaction() as s:
            await s.execute(
                sa.update(RefreshRun)
                .where(RefreshRun.id == refresh_id)
                .values(status=RunStatus.RUNNING)
            )

        # A sync run started now goes to lane 1, not behind the refresh on lane 0.
        async with db.transaction() as s:
            run = SyncRun(
                sync_id=syncs[0],
                workspace_id=ws,
                status="running",
                max_runtime_s=600.0,
                created_at=T0 + timedelta(seconds=1),
            )
            s.add(run)
            await s.flush()
            sync_run_id = run.id
        await runner.submit_sync(sync_run_id)
        assert await _lock(db, "sync_run_id", sync_run_id) == f"source:{src}:1"

        # A refresh queued after both goes to lane 2 (one refresh and one sync ahead of it).
        async with db.transaction() as s:
            later = RefreshRun(
                segment_id=segs[1],
                workspace_id=ws,
                source_id=src,
                status=RunStatus.QUEUED,
                max_runtime_s=600.0,
                created_at=T0 + timedelta(seconds=2),
            )
            s.add(later)
            await s.flush()
            later_id = later.id
        await runner.submit(later_id)
        assert await _lock(db, "run_id", later_id) == f"source:{src}:2"

        # Finished runs of either kind no longer count: with both done, the next sync run
        # takes the lane after the one refresh still active.
        async with db.transaction() as s:
            await s.execute(
                sa.update(RefreshRun)
                .where(RefreshRun.id == refresh_id)
                .values(status=RunStatus.SUCCEEDED)
            )
            await s.execute(
                sa.update(SyncRun).where(SyncRun.id == sync_run_id).values(status="success")
            )
            run = SyncRun(
                sync_id=syncs[1],
                workspace_id=ws,
                status="running",
                max_runtime_s=600.0,
                created_at=T0 + timedelta(seconds=3),
            )
            s.add(run)
            await s.flush()
            last_id = run.id
        await runner.submit_sync(last_id)
        assert await _lock(db, "sync_run_id", last_id) == f"source:{src}:1"
    await db.dispose()
