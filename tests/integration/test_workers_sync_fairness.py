# ruff: noqa: ASYNC220, ASYNC230, SIM115
"""Fairness between workspaces for syncs: one workspace's many due syncs do not starve others.

Workspace A has 8 active syncs, B and C have 2 each, every workspace on its own DuckDB file
(one queue lane each). The real :class:`SyncScheduler` (with a clock it is given) fires A's 8
in a first tick and B's and C's, due a little later, in a second one; its ``submit`` is the
procrastinate runner's, so the jobs wait in the PostgreSQL queue. Then one real
``zerocopy worker --no-scheduler`` with concurrency 1 executes them one at a time.

* Within a tick, due syncs are fired round-robin across workspaces (one of B and one of C
  per round — not B, B, C, C): that is the order the in-process runner executes them in.
* Across ticks, a sync job's priority is minus the sync runs its workspace already has
  waiting in the queue: B's and C's first and second syncs start before A's third, although
  A's were queued first (first-come-first-served would run all 8 of A's before them).
"""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from tests.integration.test_sync_engine import make_sync, warehouse
from tests.integration.worker_procs import ZEROCOPY
from zerocopy.connections import AdapterFactory
from zerocopy.runner_procrastinate import ProcrastinateRunner, ensure_queue_schema
from zerocopy.scheduling.models import SYNC, ScheduleState
from zerocopy.scheduling.sync_frequency import sync_schedule
from zerocopy.scheduling.sync_scheduler import SyncScheduler
from zerocopy.secrets import SecretBox
from zerocopy.state.db import Database
from zerocopy.state.sync_models import Sync, SyncRun
from zerocopy.sync.engine import SyncEngine

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.xdist_group("sync_workers")]

ROWS = 20
PER_WORKSPACE = {"a": 8, "b": 2, "c": 2}


async def _workspace(db: Database, tmp_path: Path, name: str, count: int) -> tuple[str, list[str]]:
    wh = warehouse(tmp_path / f"{name}.duckdb", rows=ROWS)
    first, ws_id, src_id = await make_sync(db, wh, name=f"{name}0")
    async with db.transaction() as s:
        await s.execute(sa.update(Sync).where(Sync.id == first).values(frequency="15m"))
        more = [
            Sync(
                workspace_id=ws_id,
                name=f"{name}{i}",
                source_id=src_id,
                table_name="events_in",
                data_type="custom_events",
                status="active",
                row_log="errors",
                frequency="15m",
            )
            for i in range(1, count)
        ]
        s.add_all(more)
        await s.flush()
        return ws_id, [first, *(m.id for m in more)]


async def _plan(db: Database, owners: dict[str, str], due: datetime) -> None:
    schedule = sync_schedule("15m")
    async with db.transaction() as s:
        for sync_id, ws_id in owners.items():
            s.add(
                ScheduleState(
                    owner_kind=SYNC,
                    owner_id=sync_id,
                    workspace_id=ws_id,
                    next_due_at=due,
                    planned_time_zone="UTC",
                    planned_key=schedule.key(),
                    created_at=datetime.now(UTC),
                )
            )


async def test_due_syncs_are_served_round_robin_across_workspaces(
    postgres_url: str, tmp_path: Path
) -> None:
    key = SecretBox.generate_key()
    env = {
        **os.environ,
        "ZEROCOPY_DATABASE_URL": postgres_url,
        "ZEROCOPY_DATA_DIR": str(tmp_path / "data"),
        "ZEROCOPY_SECRET_KEY": key,
        "ZEROCOPY_RUNNER": "procrastinate",
        "ZEROCOPY_LOG_LEVEL": "warning",
        "ZEROCOPY_HEARTBEAT_S": "1",
        "ZEROCOPY_WORKER_LOST_AFTER_S": "30",
        "ZEROCOPY_WORKER_CONCURRENCY": "1",
        "ZEROCOPY_SHUTDOWN_GRACE_S": "2",
    }
    db = Database(postgres_url)
    await db.upgrade()
    await ensure_queue_schema(db)
    workspace_of: dict[str, str] = {}  # sync id → workspace letter
    owners: dict[str, dict[str, str]] = {}  # letter → {sync id: workspace id}
    for letter, count in PER_WORKSPACE.items():
        ws_id, ids = await _workspace(db, tmp_path, letter, count)
        owners[letter] = dict.fromkeys(ids, ws_id)
        workspace_of.update(dict.fromkeys(ids, letter))
    now = datetime.now(UTC).replace(microsecond=0)
    await _plan(db, owners["a"], now - timedelta(seconds=5))
    await _plan(db, {**owners["b"], **owners["c"]}, now + timedelta(seconds=30))

    clock = [now]
    submitted: list[str] = []
    engine = SyncEngine(db, AdapterFactory(SecretBox([key])))
    try:
        async with ProcrastinateRunner(db) as runner:

            async def submit(run_id: str) -> None:
                submitted.append(run_id)
                await runner.submit_sync(run_id)

            sched = SyncScheduler(db, engine, submit, clock=lambda: clock[0])
            first = await sched.tick()
            assert len(first.fired) == PER_WORKSPACE["a"]
            clock[0] = now + timedelta(seconds=31)
            second = await sched.tick()
            assert len(second.fired) == PER_WORKSPACE["b"] + PER_WORKSPACE["c"]
        async with db.session() as s:
            runs = {r.id: r for r in (await s.scalars(sa.select(SyncRun))).all()}
        letters = [workspace_of[runs[run_id].sync_id] for run_id in submitted]
        # Within the second tick: B and C take turns (the in-process runner's order), one
        # of each per round, not B, B, C, C.
        assert sorted(letters[-4:-2]) == sorted(letters[-2:]) == ["b", "c"], letters

        log = open(tmp_path / "worker.log", "wb")
        proc = subprocess.Popen(
            [ZEROCOPY, "worker", "--no-scheduler"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                async with db.session() as s:
                    done = list(
                        (
                            await s.scalars(sa.select(SyncRun).where(SyncRun.status != "running"))
                        ).all()
                    )
                if len(done) == len(runs):
                    break
                assert time.monotonic() < deadline, f"{len(done)} of {len(runs)} syncs finished"
                await anyio.sleep(0.3)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            log.close()
        assert [(r.status, r.rows_read) for r in done] == [("success", ROWS)] * len(runs)
        started: list[Any] = sorted(done, key=lambda r: r.started_at)
        order = [workspace_of[r.sync_id] for r in started]
        # Round robin: A, B, C, A, B, C, then A's remaining six (one worker, one at a time).
        assert sorted(order[:6]) == ["a", "a", "b", "b", "c", "c"], order
        assert order[6:] == ["a"] * 6, order
    finally:
        await db.dispose()
