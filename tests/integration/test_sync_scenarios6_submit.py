"""Round 6: how a sync run's queue job is placed (``ProcrastinateRunner.submit_sync``).

The job's priority is minus the sync runs of its workspace already waiting in the queue and
its lane the running sync runs ahead of it on its source, as refresh jobs are placed
(``submit_many``). Both counts look at the *active* runs only, in one statement: a workspace
with a long history (thousands of finished runs, their finished jobs kept by procrastinate) is
placed exactly as a new one, and the statement reads no finished run to do it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from zerocopy.runner_procrastinate import ProcrastinateRunner, ensure_queue_schema
from zerocopy.state.db import Database
from zerocopy.state.models import Credential, Source, SourceStatus, Workspace
from zerocopy.state.sync_models import Sync, SyncRun

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

HISTORY = 2_000
T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def _workspace(db: Database, name: str, syncs: int) -> tuple[str, str, list[str]]:
    """A workspace with a PostgreSQL source (4 lanes) and ``syncs`` active syncs on it."""
    async with db.transaction() as s:
        ws = Workspace(name=name)
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
        made = [
            Sync(
                workspace_id=ws.id,
                name=f"{name}-{i}",
                source_id=src.id,
                table_name="events_in",
                data_type="custom_events",
                status="active",
            )
            for i in range(syncs)
        ]
        s.add_all(made)
        await s.flush()
        return ws.id, src.id, [m.id for m in made]


async def _run(db: Database, sync_id: str, ws_id: str, at: datetime, status: str) -> str:
    async with db.transaction() as s:
        run = SyncRun(
            sync_id=sync_id,
            workspace_id=ws_id,
            status=status,
            max_runtime_s=600.0,
            created_at=at,
        )
        s.add(run)
        await s.flush()
        return run.id


async def _history(db: Database, sync_id: str, ws_id: str) -> None:
    """``HISTORY`` finished runs of one sync, each with its finished job kept in the queue."""
    async with db.transaction() as s:
        rows = [
            {
                "id": f"00000000-0000-4000-8000-{i:012d}",
                "sync_id": sync_id,
                "workspace_id": ws_id,
                "trigger": "schedule",
                "status": "success" if i % 3 else "error",
                "max_runtime_s": 600.0,
                "rows_read": 0,
                "rows_skipped": 0,
                "rows_delivered": 0,
                "rows_errored": 0,
                "created_at": T0 - timedelta(minutes=15 * (HISTORY - i)),
            }
            for i in range(HISTORY)
        ]
        await s.execute(sa.insert(SyncRun), rows)
        await s.execute(
            sa.text(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, "
                "queueing_lock) SELECT 'zerocopy', 'zerocopy.sync', "
                "jsonb_build_object('sync_run_id', id), 'succeeded', NULL "
                "FROM sync_run WHERE workspace_id = :ws"
            ),
            {"ws": ws_id},
        )
        await s.execute(sa.text("ANALYZE sync_run"))
        await s.execute(sa.text("ANALYZE procrastinate_jobs"))


async def _jobs(db: Database) -> dict[str, tuple[int, str | None]]:
    """Waiting sync jobs: run id → (priority, lock)."""
    async with db.session() as s:
        rows = (
            await s.execute(
                sa.text(
                    "SELECT args->>'sync_run_id', priority, lock FROM procrastinate_jobs "
                    "WHERE status = 'todo' AND task_name = 'zerocopy.sync'"
                )
            )
        ).all()
    return {r[0]: (int(r[1]), r[2]) for r in rows}


def _sync_run_reads(plan: Any) -> int:
    """Rows the plan read from ``sync_run`` (returned or filtered out, over all loops)."""
    total = 0
    stack = [plan]
    while stack:
        node = stack.pop()
        if node.get("Relation Name") == "sync_run":
            loops = int(node.get("Actual Loops", 1))
            kept = int(node.get("Actual Rows", 0))
            removed = int(node.get("Rows Removed by Filter", 0))
            total += (kept + removed) * loops
        stack.extend(node.get("Plans", []))
    return total


async def test_sync_jobs_are_placed_by_active_runs_only(postgres_url: str) -> None:
    db = Database(postgres_url)
    await db.upgrade()
    await ensure_queue_schema(db)
    ws_a, src_a, syncs_a = await _workspace(db, "a", 6)
    ws_b, _, syncs_b = await _workspace(db, "b", 1)
    await _history(db, syncs_a[0], ws_a)
    async with ProcrastinateRunner(db) as runner:
        # Four runs on A's source: lanes 0-3 of its 4, priorities 0, -1, -2, -3.
        runs = [
            await _run(db, syncs_a[i], ws_a, T0 + timedelta(seconds=i), "running") for i in range(4)
        ]
        for run_id in runs:
            await runner.submit_sync(run_id)
        jobs = await _jobs(db)
        assert [jobs[r][0] for r in runs] == [0, -1, -2, -3]
        lanes = [jobs[r][1] for r in runs]
        assert [str(lock).rsplit(":", 1)[1] for lock in lanes] == ["0", "1", "2", "3"]
        assert all(str(lock).startswith(f"source:{src_a}") for lock in lanes), lanes
        # Another workspace's first run goes first whatever A has waiting.
        other = await _run(db, syncs_b[0], ws_b, T0 + timedelta(seconds=9), "running")
        await runner.submit_sync(other)
        assert (await _jobs(db))[other][0] == 0
        # A run that finished no longer counts, nor does one whose job has started: the next
        # run of A is behind 2 waiting runs and on the lane after 3 running ones.
        async with db.transaction() as s:
            await s.execute(
                sa.update(SyncRun).where(SyncRun.id == runs[0]).values(status="success")
            )
            await s.execute(
                sa.text(
                    "UPDATE procrastinate_jobs SET status = CASE WHEN args->>'sync_run_id' = "
                    ":done THEN 'succeeded' ELSE 'doing' END::procrastinate_job_status "
                    "WHERE args->>'sync_run_id' IN (:done, :started)"
                ),
                {"done": runs[0], "started": runs[1]},
            )
        late = await _run(db, syncs_a[4], ws_a, T0 + timedelta(seconds=20), "running")
        await runner.submit_sync(late)
        priority, lock = (await _jobs(db))[late]
        assert priority == -2 and str(lock).endswith(":3"), (priority, lock)
        # A file sync (no source) has no lane.
        async with db.transaction() as s:
            files = Sync(
                workspace_id=ws_a, name="files", data_type="custom_events", status="active"
            )
            s.add(files)
            await s.flush()
            files_id = files.id
        file_run = await _run(db, files_id, ws_a, T0 + timedelta(seconds=30), "running")
        await runner.submit_sync(file_run)
        priority, lock = (await _jobs(db))[file_run]
        assert (priority, lock) == (-3, None)

    # The placement reads the running runs, not the history: with index scans preferred (as
    # on a big table), the statement touches at most the few running sync_run rows per loop.
    from zerocopy.runner_procrastinate import _SYNC_SUBMIT_ROW

    async with db.session() as s:
        await s.execute(sa.text("SET LOCAL enable_seqscan = off"))
        explained = await s.scalar(
            sa.text(f"EXPLAIN (ANALYZE, FORMAT JSON) {_SYNC_SUBMIT_ROW.text}"), {"id": late}
        )
    plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
    reads = _sync_run_reads(plan)
    assert reads < 100, (reads, json.dumps(plan)[:3000])
    await db.dispose()
