"""A worker passes a source lane on from one run to the next itself: no broadcast, no poll.

All jobs of a source with a limit of 1 share one procrastinate lock (one lane): each becomes
fetchable only when the previous one is deleted. Nothing announces that deletion (doing so
woke every worker for every finished job, each then fetching for nothing). Instead the run's
final transaction deletes its job, fetches the worker's next job as procrastinate's fetch
would, and claims that job's run with the lane's slot (``zerocopy_lane_handoff``,
:class:`~zerocopy.runner_procrastinate.JobHandOff`). With an hour's polling interval, a chain
of refreshes through one lane completes at all only if that hand-off works; a trigger on the
state database records in which transaction each run changed status, so the tests see that
each run was claimed in the transaction that ended the one before it.
"""

from __future__ import annotations

import itertools
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
from zerocopy.runner_procrastinate import ProcrastinateRunner, ensure_queue_schema
from zerocopy.secrets import SecretBox
from zerocopy.state.db import Database
from zerocopy.state.models import (
    RefreshRun,
    RunStatus,
)

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

JOBS = 6

STATUS_LOG_SQL = """
CREATE TABLE test_run_status_log (
    run_id text NOT NULL, status text NOT NULL, txid bigint NOT NULL
);
CREATE FUNCTION test_log_run_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test_run_status_log VALUES (NEW.id, NEW.status, txid_current());
    RETURN NULL;
END;
$$;
CREATE TRIGGER test_log_run_status AFTER UPDATE OF status ON refresh_run
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE PROCEDURE test_log_run_status();
"""
"""Test instrumentation: the transaction in which each run became running, then final."""


async def _run_chain(
    postgres_url: str,
    postgres_server: str,
    tmp_path: Path,
    workspaces: dict[str, int],
    concurrency: int,
) -> tuple[dict[str, list[str]], list[RefreshRun], dict[tuple[str, str], int]]:
    """Defer each workspace's refreshes (one source each, limit 1) in turn to one worker
    with an hour's poll; the runs by workspace, all final runs, and ``(run, status) → txid``."""
    db = Database(postgres_url)
    await db.upgrade()
    await ensure_queue_schema(db)
    proc: subprocess.Popen[bytes] | None = None
    try:
        async with db.session() as s:
            triggers = set(
                (
                    await s.scalars(
                        sa.text("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'zerocopy_%'")
                    )
                ).all()
            )
        # Failed or reaped jobs are still announced; finished (deleted) ones are not.
        assert triggers == {"zerocopy_lane_freed_update"}
        with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as con:
            con.execute(STATUS_LOG_SQL)

        key = SecretBox.generate_key()
        box = SecretBox([key])
        with scratch_database(postgres_server) as warehouse_url:
            pg_users(warehouse_url)
            segments = {
                name: await pg_segments(db, box, warehouse_url, name, n)
                for name, n in workspaces.items()
            }
            env = worker_env(
                postgres_url,
                tmp_path,
                key,
                SOURCE_CONCURRENCY="1",
                WORKER_CONCURRENCY=str(concurrency),
                WORKER_POLL_S="3600",
                JANITOR_EVERY_S="3600",
            )
            proc = start_worker(env, tmp_path / "worker.log", "--no-scheduler")
            await wait_for_workers(db)

            engine = RefreshEngine(db, box)
            runs: dict[str, list[str]] = {}
            async with ProcrastinateRunner(db, default_limit=1) as runner:
                for name, ids in segments.items():
                    requested = [await engine.request(segment_id, "schedule") for segment_id in ids]
                    runs[name] = [r.id for r in requested]
                # One deferral for all: the worker sees the whole queue at once.
                await runner.submit_many(list(itertools.chain(*runs.values())))
            ids = list(itertools.chain(*runs.values()))
            # A hang guard, not a timing check: with one lane and an hour's poll, only the
            # hand-off gets past the first job.
            with anyio.fail_after(180):
                while True:
                    async with db.session() as s:
                        done = await s.scalar(
                            sa.select(sa.func.count())
                            .select_from(RefreshRun)
                            .where(RefreshRun.id.in_(ids), RefreshRun.status.in_(RunStatus.FINAL))
                        )
                    if int(done or 0) == len(ids):
                        break
                    await anyio.sleep(0.1)
            async with db.session() as s:
                final = list(
                    (await s.scalars(sa.select(RefreshRun).where(RefreshRun.id.in_(ids)))).all()
                )
                txids = {
                    (run_id, status): int(txid)
                    for run_id, status, txid in (
                        await s.execute(
                            sa.text("SELECT run_id, status, txid FROM test_run_status_log")
                        )
                    ).all()
                }
                left = (
                    await s.execute(
                        sa.text(
                            "SELECT (SELECT count(*) FROM procrastinate_jobs), "
                            "(SELECT count(*) FROM source_slot)"
                        )
                    )
                ).one()
            # Every job was deleted and every slot given back.
            assert tuple(left) == (0, 0)
            assert stop_worker(proc) == 0
            proc = None
            return runs, final, txids
    finally:
        kill_if_running(proc)
        await db.dispose()


def _chain(
    final: list[RefreshRun], txids: dict[tuple[str, str], int], lane: dict[str, str]
) -> list[RefreshRun]:
    """The runs in start order, checked: all succeeded, never overlapping, and each run that
    follows one of the same lane (``lane``: run → its lane) claimed in the transaction that
    ended that one (the slot passed on)."""
    assert {r.status for r in final} == {RunStatus.SUCCEEDED}, [r.error_message for r in final]
    chain = sorted(final, key=lambda r: (r.started_at, r.id))
    spans = [(r.started_at, r.finished_at) for r in chain]
    assert all(start and end for start, end in spans), spans
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # type: ignore[operator]
    for before, after in itertools.pairwise(chain):
        if lane[before.id] != lane[after.id]:
            continue  # another lane's job: handed over, its run claimed by its own task
        assert txids[(after.id, RunStatus.RUNNING)] == txids[(before.id, RunStatus.SUCCEEDED)], (
            before.id,
            after.id,
        )
    return chain


async def test_a_lane_chain_is_handed_on_without_broadcast_or_polling(
    postgres_url: str, postgres_server: str, tmp_path: Path
) -> None:
    runs, final, txids = await _run_chain(
        postgres_url, postgres_server, tmp_path, {"lanes": JOBS}, concurrency=4
    )
    lane = {run_id: "lanes" for run_id in runs["lanes"]}
    assert len(_chain(final, txids, lane)) == JOBS


async def test_the_hand_off_serves_workspaces_in_turn(
    postgres_url: str, postgres_server: str, tmp_path: Path
) -> None:
    # One worker taking one job at a time; workspace a's 4 runs are deferred before b's 2.
    # Each run's final transaction takes the queue's best job, whichever lane it is on: the
    # workspaces alternate (a, b, a, b, a, a); the last run follows one of its own lane and
    # was claimed in that one's final transaction.
    runs, final, txids = await _run_chain(
        postgres_url, postgres_server, tmp_path, {"a": 4, "b": 2}, concurrency=1
    )
    owner = {run_id: name for name, ids in runs.items() for run_id in ids}
    chain = _chain(final, txids, owner)
    assert [owner[r.id] for r in chain] == ["a", "b", "a", "b", "a", "a"]
    assert [r.id for r in chain if owner[r.id] == "a"] == runs["a"]
    assert [r.id for r in chain if owner[r.id] == "b"] == runs["b"]
