"""A job the queue says a live worker runs, but that worker does not know of, is given back.

A refresh's final transaction deletes its job, fetches the worker's next job and claims that
job's run with the lane's slot (the hand-off). Should the worker never learn that the
transaction committed (its commit raised after the server had committed it), the next job
would stay ``doing`` for that worker, which is alive and so never "stalled": its lane would
be blocked for ever. Each worker checks the queue's ``doing`` jobs against the jobs it runs;
one unknown to it twice in a row is put back to ``todo`` and its run, claimed for it and
never started, back to ``queued`` with its slot freed, so the lane goes on.

The test leaves exactly that state behind, by SQL, for a real ``zerocopy worker`` process
(with an hour's polling interval and a 60 s heartbeat timeout, so neither polling nor the
reaper can be what moves the lane on), plus a second orphan whose run had already finished.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import anyio
import psycopg
import pytest
import sqlalchemy as sa

from tests.integration.worker_procs import (
    kill_if_running,
    pg_segments,
    pg_users,
    start_worker,
    stop_worker,
    wait_for_workers,
    worker_env,
)
from tests.support import scratch_database
from zerocopy.refresh import RefreshEngine
from zerocopy.runner_procrastinate import QUEUE, REFRESH_TASK, ensure_queue_schema
from zerocopy.secrets import SecretBox
from zerocopy.state.db import Database
from zerocopy.state.models import RefreshRun, RunStatus, Source

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ORPHAN_SQL = """
INSERT INTO procrastinate_jobs
    (queue_name, task_name, lock, queueing_lock, args, priority, status, worker_id)
VALUES (%(queue)s, %(task)s, %(lock)s, %(qlock)s, %(args)s::jsonb, 0, 'doing', %(worker_id)s)
RETURNING id
"""


async def test_an_orphaned_job_and_its_preclaimed_run_go_back_and_run(
    postgres_url: str, postgres_server: str, tmp_path: Path
) -> None:
    db = Database(postgres_url)
    await db.upgrade()
    await ensure_queue_schema(db)
    proc: subprocess.Popen[bytes] | None = None
    log_path = tmp_path / "worker.log"
    try:
        key = SecretBox.generate_key()
        box = SecretBox([key])
        with scratch_database(postgres_server) as warehouse_url:
            pg_users(warehouse_url)
            segment_ids = await pg_segments(db, box, warehouse_url, "orphans", 2)
            env = worker_env(
                postgres_url,
                tmp_path,
                key,
                SOURCE_CONCURRENCY="1",
                WORKER_POLL_S="3600",
                JANITOR_EVERY_S="3600",
                WORKER_LOST_AFTER_S="60",
            )
            proc = start_worker(env, log_path, "--no-scheduler")
            worker_id = await wait_for_workers(db)

            engine = RefreshEngine(db, box)
            lost = await engine.request(segment_ids[0], "schedule")
            done = await engine.request(segment_ids[1], "schedule")
            async with db.session() as s:
                src = await s.get(Source, lost.source_id)
            assert src is not None
            lock = f"source:{src.id}:0"
            worker_name = f"{socket.gethostname()}:{proc.pid}"
            with psycopg.connect(postgres_url.replace("+psycopg", "")) as con:
                # What a lost hand-off leaves: the job doing for the worker, its run claimed
                # by that worker with the lane's slot passed on to it, never started.
                con.execute(
                    "UPDATE refresh_run SET status = 'running', started_at = now(), "
                    "heartbeat_at = now(), worker = %(w)s WHERE id = %(id)s",
                    {"w": worker_name, "id": lost.id},
                )
                con.execute(
                    "INSERT INTO source_slot (source_id, slot, run_kind, run_id, acquired_at) "
                    "VALUES (%(src)s, 0, 'refresh', %(id)s, now())",
                    {"src": src.id, "id": lost.id},
                )
                args = {"run_id": lost.id, "source_id": src.id, "kind": "postgres", "lane": 0}
                row = con.execute(
                    ORPHAN_SQL,
                    {
                        "queue": QUEUE,
                        "task": REFRESH_TASK,
                        "lock": lock,
                        "qlock": f"run:{lost.id}",
                        "args": json.dumps(args),
                        "worker_id": worker_id,
                    },
                ).fetchone()
                assert row is not None
                # And one whose run had finished: its job was never finished (the worker
                # lost it after the run's record committed).
                con.execute(
                    "UPDATE refresh_run SET status = 'succeeded', started_at = now(), "
                    "finished_at = now(), worker = %(w)s WHERE id = %(id)s",
                    {"w": worker_name, "id": done.id},
                )
                con.execute(
                    ORPHAN_SQL,
                    {
                        "queue": QUEUE,
                        "task": REFRESH_TASK,
                        "lock": "source:elsewhere:0",
                        "qlock": f"run:{done.id}",
                        "args": json.dumps({**args, "run_id": done.id}),
                        "worker_id": worker_id,
                    },
                )
                con.commit()

            # A hang guard, not a timing check: without the orphan check, nothing but a
            # 60 s reaper (which would end the run worker_lost) could move the lane on.
            with anyio.fail_after(45):
                while True:
                    async with db.session() as s:
                        run = await s.get(RefreshRun, lost.id)
                        left = (
                            await s.execute(
                                sa.text(
                                    "SELECT (SELECT count(*) FROM procrastinate_jobs), "
                                    "(SELECT count(*) FROM source_slot)"
                                )
                            )
                        ).one()
                    assert run is not None
                    if run.status in RunStatus.FINAL and tuple(left) == (0, 0):
                        break
                    await anyio.sleep(0.2)
            assert (run.status, run.error_code) == (RunStatus.SUCCEEDED, None)
            assert run.worker == worker_name
            assert run.member_count == 100
            async with db.session() as s:
                again = await s.get(RefreshRun, done.id)
            assert again is not None and again.status == RunStatus.SUCCEEDED
            assert again.member_count is None  # given back, not run a second time

            assert stop_worker(proc) == 0
            proc = None
            text = log_path.read_text(errors="replace")
            assert "queue.orphan_jobs_released" in text
    finally:
        kill_if_running(proc)
        await db.dispose()
