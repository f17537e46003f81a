# ruff: noqa: ASYNC220, ASYNC230, SIM115
"""Scheduled syncs on the scale-out path: 2 real ``zerocopy worker`` processes, PostgreSQL state.

Syncs due in the same minute are fired by the workers' sync schedulers (each tick of each
worker competes for them), deferred as ``zerocopy.sync`` jobs and executed under the DuckDB
file's single per-source slot: each sync runs exactly once, completely, every slot is given
back, and every plan moves to its next occurrence.

"Run now" through the API of a ``serve`` on the procrastinate runner is a queue job too:
before any worker runs, the run waits (``sync_in_progress`` for a second request, its job in
the queue, nothing read by the API process); the workers then execute it.
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
from zerocopy.runner_procrastinate import SYNC_TASK, ensure_queue_schema
from zerocopy.scheduling.models import SYNC, ScheduledRun, ScheduleState
from zerocopy.scheduling.sync_frequency import sync_schedule
from zerocopy.secrets import SecretBox
from zerocopy.services import workspaces
from zerocopy.state.db import Database
from zerocopy.state.models import Credential, Source, SourceStatus
from zerocopy.state.sync_models import Sync, SyncRun

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

WORKERS = 2
SYNCS = 6
ROWS = 30


async def _wait(predicate: Any, timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await anyio.sleep(every)


async def test_workers_fire_each_due_sync_once_under_the_source_slot(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from litestar.testing import AsyncTestClient

    from api.app import create_app
    from zerocopy.settings import load_settings

    key = SecretBox.generate_key()
    env = {
        **os.environ,
        "ZEROCOPY_DATABASE_URL": postgres_url,
        "ZEROCOPY_DATA_DIR": str(tmp_path / "data"),
        "ZEROCOPY_SECRET_KEY": key,
        "ZEROCOPY_RUNNER": "procrastinate",
        "ZEROCOPY_LOG_LEVEL": "warning",
        "ZEROCOPY_HEARTBEAT_S": "1",
        "ZEROCOPY_WORKER_LOST_AFTER_S": "6",
        "ZEROCOPY_SCHEDULER_TICK_S": "0.3",
        "ZEROCOPY_WORKER_CONCURRENCY": "3",
        "ZEROCOPY_SHUTDOWN_GRACE_S": "3",
    }
    db = Database(postgres_url)
    await db.upgrade()
    await ensure_queue_schema(db)
    wh = warehouse(tmp_path / "wh.duckdb", rows=ROWS)
    first, ws_id, src_id = await make_sync(db, wh, name="s0")
    async with db.transaction() as s:
        template = await s.get(Sync, first)
        assert template is not None
        others = []
        for i in range(1, SYNCS):
            other = Sync(
                workspace_id=ws_id,
                name=f"s{i}",
                source_id=src_id,
                table_name=template.table_name,
                data_type=template.data_type,
                status="active",
                row_log="errors",
                frequency="15m",
            )
            s.add(other)
            others.append(other)
        await s.flush()
        sync_ids = [first, *(o.id for o in others)]
        await s.execute(sa.update(Sync).where(Sync.id == first).values(frequency="15m"))
        # All due a few seconds from now (the same minute), planned as the scheduler would.
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        schedule = sync_schedule("15m")
        for sync_id in sync_ids:
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

    # "Run now" of a sync in another workspace (its own DuckDB file), through the API of a
    # serve on the procrastinate runner, while no worker runs yet.
    for name in ("ZEROCOPY_RUNNER", "ZEROCOPY_SECRET_KEY", "ZEROCOPY_WORKER_LOST_AFTER_S"):
        monkeypatch.setenv(name, env[name])
    now_wh = warehouse(tmp_path / "now.duckdb", rows=ROWS)
    async with db.session() as s:
        now_ws, api_key = await workspaces.create_workspace(s, name="run-now")
    async with db.transaction() as s:
        cred = Credential(
            workspace_id=now_ws.id, name="now", kind="duckdb", settings={"path": str(now_wh)}
        )
        s.add(cred)
        await s.flush()
        src = Source(
            workspace_id=now_ws.id,
            credential_id=cred.id,
            name="now",
            kind="duckdb",
            scope="marketing",
            status=SourceStatus.ACTIVE,
        )
        s.add(src)
        await s.flush()
        now_sync = Sync(
            workspace_id=now_ws.id,
            name="now",
            source_id=src.id,
            table_name="events_in",
            data_type="custom_events",
            status="active",
            row_log="errors",
        )
        s.add(now_sync)
    auth = {"Authorization": f"Bearer {api_key}"}
    async with AsyncTestClient(create_app(load_settings(env))) as client:
        resp = await client.post(f"/v1/syncs/{now_sync.id}/runs", headers=auth)
        assert resp.status_code == 202, resp.text
        now_run = resp.json()["id"]
        again = await client.post(f"/v1/syncs/{now_sync.id}/runs", headers=auth)
        assert again.status_code == 409, again.text
        assert again.json()["error"]["code"] == "sync_in_progress"
        assert again.json()["error"]["details"]["run_id"] == now_run
        await anyio.sleep(1.0)  # the API process would have read the 30 rows by now
    async with db.session() as s:
        waiting = await s.get(SyncRun, now_run)
        jobs = await s.scalar(
            sa.text(
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name = :task "
                "AND status = 'todo' AND args->>'sync_run_id' = :run"
            ),
            {"task": SYNC_TASK, "run": now_run},
        )
    assert waiting is not None and (waiting.status, waiting.rows_read) == ("running", 0)
    assert jobs == 1

    logs = [open(tmp_path / f"worker{i}.log", "wb") for i in range(WORKERS)]
    procs = [
        subprocess.Popen([ZEROCOPY, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
        for log in logs
    ]
    try:

        async def runs() -> list[SyncRun]:
            async with db.session() as s:
                return list((await s.scalars(sa.select(SyncRun))).all())

        async def fired() -> bool:
            return len(await runs()) >= 1

        await _wait(fired, 60, "the first scheduled sync run")

        async def all_done() -> bool:
            done = [r for r in await runs() if r.status != "running"]
            return len(done) >= SYNCS + 1

        await _wait(all_done, 90, f"{SYNCS} scheduled syncs and the run-now to finish")
        await anyio.sleep(1.5)  # more ticks of both workers: nothing fires twice
        every = [r for r in await runs() if r.id != now_run]
        ran_now = next(r for r in await runs() if r.id == now_run)
        assert (ran_now.status, ran_now.trigger, ran_now.rows_read) == ("success", "api", ROWS)
        assert sorted(r.sync_id for r in every) == sorted(sync_ids)
        assert [
            (r.status, r.error_code, r.error_message) for r in every if r.status != "success"
        ] == []
        assert all(r.trigger == "schedule" and r.rows_read == ROWS for r in every)
        async with db.session() as s:
            scheduled = list(
                await s.scalars(sa.select(ScheduledRun).where(ScheduledRun.owner_kind == SYNC))
            )
            states = list(
                await s.scalars(sa.select(ScheduleState).where(ScheduleState.owner_kind == SYNC))
            )
            slots_left = await s.scalar(sa.text("SELECT count(*) FROM source_slot"))
        assert sorted(x.run_id for x in scheduled) == sorted(r.id for r in every)
        assert {x.due_at for x in scheduled} == {due}
        assert all(st.next_due_at is not None and st.next_due_at > due for st in states)
        assert slots_left == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        for log in logs:
            log.close()
        await db.dispose()
