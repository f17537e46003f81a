"""Cancelling a sync run whose queue job no worker has fetched yet (procrastinate runner).

On the scale-out runner "run now" only defers a ``zerocopy.sync`` job. While every lane of
its source is busy (or no worker runs at all) the job stays ``todo``; a cancel used to set
``cancel_requested_at`` only, and the run stayed ``running`` -- and "run now" answered
``sync_in_progress`` -- until some worker fetched the job, possibly a whole max runtime later.
Now the cancel takes the job out of the queue (procrastinate's own ``todo → cancelled``
compare-and-set) and ends the run ``cancelled`` at once, reading nothing. A job a worker has
already fetched is left to the run's own cancellation polling.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa

from tests.integration.test_sync_engine import make_sync, warehouse
from tests.integration.worker_procs import ZEROCOPY
from zerocopy.runner_procrastinate import SYNC_TASK, ProcrastinateRunner, ensure_queue_schema
from zerocopy.secrets import SecretBox
from zerocopy.services import workspaces
from zerocopy.state.db import Database
from zerocopy.state.sync_models import Sync, SyncRun

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ROWS = 12


async def _job_status(db: Database, run_id: str) -> list[str]:
    async with db.session() as s:
        rows = await s.scalars(
            sa.text(
                "SELECT status::text FROM procrastinate_jobs WHERE task_name = :task "
                "AND args->>'sync_run_id' = :run ORDER BY id"
            ),
            {"task": SYNC_TASK, "run": run_id},
        )
        return list(rows.all())


async def test_cancel_of_a_queued_sync_job_ends_the_run_at_once(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from litestar.testing import AsyncTestClient

    from api.app import create_app
    from zerocopy.settings import load_settings

    env = {
        **os.environ,
        "ZEROCOPY_DATABASE_URL": postgres_url,
        "ZEROCOPY_DATA_DIR": str(tmp_path / "data"),
        "ZEROCOPY_SECRET_KEY": SecretBox.generate_key(),
        "ZEROCOPY_RUNNER": "procrastinate",
        "ZEROCOPY_LOG_LEVEL": "warning",
    }
    for name in ("ZEROCOPY_RUNNER", "ZEROCOPY_SECRET_KEY"):
        monkeypatch.setenv(name, env[name])
    db = Database(postgres_url)
    await db.upgrade()
    await ensure_queue_schema(db)
    sync_id, _ws, _src = await make_sync(db, warehouse(tmp_path / "wh.duckdb", rows=ROWS))
    async with db.session() as s:
        ws, api_key = await workspaces.create_workspace(s, name="cancel-queued")
    async with db.transaction() as s:  # the sync moves into a workspace with an API key
        sync = await s.get(Sync, sync_id)
        assert sync is not None
        await s.execute(
            sa.text("UPDATE credential SET workspace_id = :ws WHERE workspace_id = :old"),
            {"ws": ws.id, "old": sync.workspace_id},
        )
        await s.execute(
            sa.text("UPDATE source SET workspace_id = :ws WHERE workspace_id = :old"),
            {"ws": ws.id, "old": sync.workspace_id},
        )
        sync.workspace_id = ws.id
    auth = {"Authorization": f"Bearer {api_key}"}

    async with AsyncTestClient(create_app(load_settings(env))) as client:
        resp = await client.post(f"/v1/syncs/{sync_id}/runs", headers=auth)
        assert resp.status_code == 202, resp.text
        run_id = resp.json()["id"]
        assert await _job_status(db, run_id) == ["todo"]  # no worker runs: it waits

        cancel = await client.post(f"/v1/sync-runs/{run_id}/cancel", headers=auth)
        assert cancel.status_code == 202, cancel.text
        body = cancel.json()
        assert body["status"] == "cancelled", body  # at once, not when a worker frees
        assert body["error"]["code"] == "cancelled" and body["rows_read"] == 0, body
        assert await _job_status(db, run_id) == ["cancelled"]  # no worker will fetch it

        again = await client.post(f"/v1/sync-runs/{run_id}/cancel", headers=auth)
        assert again.status_code == 409, again.text  # already ended

        # Run now is free again at once, and its job waits in the queue as before.
        resp = await client.post(f"/v1/syncs/{sync_id}/runs", headers=auth)
        assert resp.status_code == 202, resp.text
        next_id = resp.json()["id"]
        assert await _job_status(db, next_id) == ["todo"]

    async with db.session() as s:
        runs = {r.id: r for r in (await s.scalars(sa.select(SyncRun))).all()}
    assert (runs[run_id].status, runs[run_id].rows_delivered) == ("cancelled", 0)
    assert runs[next_id].status == "running"  # waiting for a worker, not cancelled

    # The CLI's cancel (another process, the same queue) withdraws the waiting job too.
    done = await anyio.run_process(
        [ZEROCOPY, "sync", "cancel", "--workspace", ws.id, next_id], env=env, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["status"] == "cancelled", done.stdout
    assert await _job_status(db, next_id) == ["cancelled"]
    async with db.session() as s:
        watermark = await s.scalar(sa.select(Sync.watermark).where(Sync.id == sync_id))
    assert watermark is None  # the cancelled run moved nothing


async def test_a_job_a_worker_has_fetched_is_not_withdrawn(
    postgres_url: str, tmp_path: Path
) -> None:
    db = Database(postgres_url)
    await db.upgrade()
    await ensure_queue_schema(db)
    sync_id, ws_id, _src = await make_sync(db, warehouse(tmp_path / "wh.duckdb", rows=ROWS))
    async with db.transaction() as s:
        run = SyncRun(sync_id=sync_id, workspace_id=ws_id, status="running", max_runtime_s=60)
        s.add(run)
        await s.flush()
        run_id = run.id
    async with ProcrastinateRunner(db) as runner:
        await runner.submit_sync(run_id)
        # What a worker's fetch does to the job: it is no longer waiting in the queue.
        async with db.transaction() as s:
            await s.execute(
                sa.text(
                    "UPDATE procrastinate_jobs SET status = 'doing' "
                    "WHERE args->>'sync_run_id' = :run"
                ),
                {"run": run_id},
            )
        assert await runner.withdraw_sync(run_id) is False
        assert await _job_status(db, run_id) == ["doing"]
        assert await runner.withdraw_sync("no-such-run") is False
