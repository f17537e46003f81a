"""The scale-out runner: refresh jobs in a procrastinate queue on the PostgreSQL state database.

``zerocopy serve`` (with ``ZEROCOPY_RUNNER=procrastinate``) only *defers* jobs through
:class:`ProcrastinateRunner`, the same :class:`zerocopy.runner.Runner` protocol as the
in-process runner; ``zerocopy worker`` processes (:func:`run_worker`), on any number of
machines sharing the database, execute them. What makes it safe lives in the database, not
in procrastinate:

* one run per segment: the engine's partial unique index (``refresh_in_progress``);
* claiming: the engine's ``queued → running`` compare-and-set (a job delivered twice runs once);
* per-source limit: :class:`~zerocopy.scheduling.slots.SourceSlots` rows; procrastinate
  ``lock`` values ``source:<id>:<k>`` (``k < limit``) additionally keep a worker from
  fetching a job whose source is full, so busy sources do not occupy every worker;
* fairness between workspaces: a job's priority is minus the number of runs its workspace
  already has queued, so workspaces are served round-robin, not first-come-first-served;
* cancellation: the engine polls ``cancel_requested_at`` (any API process sets it);
* worker death: the run's heartbeat stops and any worker's reaper ends it ``worker_lost``;
  the procrastinate job of a dead worker is failed so its lock is released.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
import sqlalchemy as sa

from zerocopy.logging import get_logger
from zerocopy.scheduling.config import SchedulingConfig
from zerocopy.scheduling.slots import slot_key, source_limit
from zerocopy.scheduling.steps import run_step
from zerocopy.state.db import Database
from zerocopy.state.models import RefreshRun, RunStatus, Source, utcnow

log = get_logger("zerocopy.runner.procrastinate")

REFRESH_TASK = "zerocopy.refresh"
SYNC_TASK = "zerocopy.sync"
QUEUE = "zerocopy"
SCHEMA_LOCK_KEY = 0x7A635F71756575  # "zc_queu"
"""Advisory lock held while installing procrastinate's schema (N workers start together)."""


def libpq_url(url: str) -> str:
    """``postgresql+psycopg://…`` (SQLAlchemy) → ``postgresql://…`` (libpq, for procrastinate)."""
    scheme, sep, rest = url.partition("://")
    return "postgresql" + sep + rest if scheme.startswith("postgresql") else url


def build_app(
    database_url: str,
    *,
    executor: Any = None,
    sync_executor: Any = None,
    pool_size: int = 10,
    handoffs: LaneHandOffs | None = None,
) -> Any:
    """A procrastinate App on the state database; with executors, able to run their jobs.

    ``handoffs``: a refresh job is finished in its run's final transaction, which also
    fetches the worker's next job (:class:`LaneHandOffs`; the worker must be a
    :func:`lane_worker_class` worker sharing the same object).
    """
    import procrastinate

    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(database_url), min_size=1, max_size=pool_size
    )
    app = procrastinate.App(connector=connector)
    if executor is not None:

        @app.task(name=REFRESH_TASK, queue=QUEUE, pass_context=True)
        async def refresh(
            context: Any,
            run_id: str,
            source_id: str | None = None,
            kind: str | None = None,
            lane: int | None = None,
        ) -> None:
            # The source and lane ride with the job: the executor need not look them up.
            handoff = handoffs.offer(context.job) if handoffs is not None else None
            if handoff is None:
                await executor.execute(run_id, source_id=source_id, kind=kind, lane=lane)
            else:
                await executor.execute(
                    run_id, source_id=source_id, kind=kind, lane=lane, handoff=handoff
                )

    if sync_executor is not None:

        @app.task(name=SYNC_TASK, queue=QUEUE, pass_context=False)
        async def sync(sync_run_id: str) -> None:
            await sync_executor.execute(sync_run_id)

    return app


ORPHAN_CANDIDATES_SQL = (
    "SELECT id, task_name, args FROM procrastinate_jobs "
    "WHERE worker_id = %(worker_id)s AND status = 'doing'"
)
PUT_BACK_JOB_SQL = (
    "UPDATE procrastinate_jobs SET status = 'todo', worker_id = NULL "
    "WHERE id = %(job_id)s AND status = 'doing' AND worker_id = %(worker_id)s"
)
"""A job this worker holds but will not run back to the queue (the lane-freed trigger tells
the workers): an orphan (:func:`release_orphans`) or a handed job a stopping worker drops."""

FETCH_JOB_SQL = (
    "SELECT id, status, task_name, priority, lock, queueing_lock, args, scheduled_at, "
    "queue_name, attempts, worker_id FROM zerocopy_fetch_job(%(queues)s::varchar[], %(worker_id)s)"
)
HANDOFF_SQL = (
    "SELECT h.handed, (h.next_job).id, (h.next_job).status, (h.next_job).task_name, "
    "(h.next_job).priority, (h.next_job).lock, (h.next_job).queueing_lock, (h.next_job).args, "
    "(h.next_job).scheduled_at, (h.next_job).queue_name, (h.next_job).attempts, "
    "(h.next_job).worker_id "
    "FROM zerocopy_lane_handoff(:job_id, :worker_id, CAST(:queues AS varchar[])) AS h"
)
_HANDOFF_COLUMNS = (
    "id",
    "status",
    "task_name",
    "priority",
    "lock",
    "queueing_lock",
    "args",
    "scheduled_at",
    "queue_name",
    "attempts",
    "worker_id",
)


class JobHandOff:
    """One refresh job's hand-off, done inside its run's final transaction.

    :meth:`in_final` (called by the slot hooks in that transaction) deletes the job, as
    procrastinate deletes a successful job, and fetches this worker's next job, as
    procrastinate's fetch would, in one statement (``zerocopy_lane_handoff``); when that is a
    refresh job, the slot hooks claim its run (with its lane's slot) in the same transaction
    (:meth:`preclaimed`). The lane goes from one run to the next in one transaction: no
    transaction of procrastinate's in between, no claim transaction, and no fetch for nothing.
    :meth:`settle` (once that transaction has committed) tells the worker, which then starts
    the next job in the finished one's place.
    """

    _statement = sa.text(HANDOFF_SQL)

    def __init__(
        self, owner: LaneHandOffs, job_id: int, worker_id: int, claimed: Any = None
    ) -> None:
        self.owner = owner
        self.job_id = job_id
        self.worker_id = worker_id
        self.claimed = claimed
        """This job's run, claimed by the previous run's final transaction (or ``None``)."""
        self.reset()

    def reset(self) -> None:
        """Forget what a final transaction that did not commit handed over."""
        self.handed = False
        self.next_job: dict[str, Any] | None = None
        self.next_claimed: Any = None

    def stopping(self) -> bool:
        return self.owner.stopping()

    async def in_final(self, session: Any) -> dict[str, Any] | None:
        """Hand the job over; the next job's arguments if it is a refresh job."""
        conn = await session.connection()
        row = (
            await conn.execute(
                self._statement,
                {"job_id": self.job_id, "worker_id": self.worker_id, "queues": self.owner.queues},
            )
        ).first()
        self.handed = bool(row is not None and row[0])
        if not self.handed or row is None or row[1] is None:
            return None
        self.next_job = dict(zip(_HANDOFF_COLUMNS, row[1:], strict=True))
        args = self.next_job.get("args")
        if self.next_job.get("task_name") != REFRESH_TASK or not isinstance(args, dict):
            return None
        return args

    def preclaimed(self, claimed: Any) -> None:
        """The next job's run was claimed in the same transaction."""
        self.next_claimed = claimed

    def settle(self) -> None:
        """The final transaction committed: the job is gone, its successor (if any) ours."""
        if self.handed:
            self.owner.record(self.job_id, self.next_job, self.next_claimed)


class LaneHandOffs:
    """Refresh jobs finished in their run's final transaction, and what each handed over.

    Shared by a worker's refresh task (:meth:`offer`, :class:`JobHandOff`) and its
    :func:`lane_worker_class` worker (:meth:`take`): the worker then neither finishes the
    job (it is already deleted) nor fetches for it, and starts the next job it was handed
    (whose run may already be claimed: :meth:`offer` gives it to that job's task).
    """

    def __init__(self, queues: list[str] | None = None) -> None:
        self.queues = list(queues or [QUEUE])
        self._done: dict[int, dict[str, Any] | None] = {}
        self._claimed: dict[int, Any] = {}
        self.stopping: Callable[[], bool] = lambda: False
        """Set by the worker: while it stops, jobs end as usual (nothing more is taken)."""

    def offer(self, job: Any) -> JobHandOff | None:
        if job.id is None or job.worker_id is None:
            return None
        job_id = int(job.id)
        return JobHandOff(self, job_id, int(job.worker_id), self._claimed.pop(job_id, None))

    def record(self, job_id: int, next_job: dict[str, Any] | None, claimed: Any = None) -> None:
        self._done[job_id] = next_job
        if next_job is not None and claimed is not None:
            self._claimed[int(next_job["id"])] = claimed

    def take(self, job_id: int) -> tuple[bool, dict[str, Any] | None]:
        """``(handed, next job's row)``; ``handed`` is false for a job finished as usual."""
        if job_id not in self._done:
            return False, None
        return True, self._done.pop(job_id)

    def pending_ids(self) -> set[int]:
        """Jobs handed over in a committed final transaction, not yet started."""
        return {int(job["id"]) for job in self._done.values() if job is not None}

    def is_claimed(self, job_id: int) -> bool:
        """Whether the run of a handed job was claimed with it (it must run, not go back)."""
        return job_id in self._claimed


def lane_worker_class() -> type:
    """:class:`procrastinate.worker.Worker` that passes lanes on instead of fetching for them.

    A refresh job handed off in its run's final transaction (:class:`LaneHandOffs`) is not
    finished again, and the job it was handed starts in its place, with its concurrency
    permit, as soon as it is done: no fetch, and no second fetch that finds nothing.

    Any other job is finished as procrastinate does. Its lane (procrastinate lock) is free
    once the deletion commits, and nobody announces that (see :data:`LANE_FREED_SQL`): the
    worker that finished it fetches again. procrastinate clears its wake-up event after each
    fetch, so a job finishing while a fetch is in flight would be missed until the next
    poll; a flag set after the finish is committed makes the fetch loop go round once more.
    """
    import asyncio
    import time

    from procrastinate import job_context, jobs, utils, worker

    class LaneWorker(worker.Worker):  # type: ignore[misc]
        _lane_freed = False
        handoffs: LaneHandOffs | None = None

        def __init__(
            self,
            *args: Any,
            handoffs: LaneHandOffs | None = None,
            orphan_check_s: float | None = None,
            on_orphans: Callable[[int, list[dict[str, Any]]], Awaitable[None]] | None = None,
            **kwargs: Any,
        ):
            super().__init__(*args, **kwargs)
            self.handoffs = handoffs
            self._successors: dict[int, jobs.Job] = {}
            self.orphan_check_s = orphan_check_s
            self.on_orphans = on_orphans
            """Called with this worker's id and its orphaned jobs' rows (the watcher runs
            only with both ``orphan_check_s`` and this: see :func:`release_orphans`)."""
            if handoffs is not None:
                handoffs.stopping = self._stop_event.is_set

        def _start_side_tasks(self) -> list[asyncio.Task[Any]]:
            tasks: list[asyncio.Task[Any]] = super()._start_side_tasks()
            if self.orphan_check_s and self.on_orphans is not None:
                tasks.append(asyncio.create_task(self._watch_orphans(), name="orphan_watch"))
            return tasks

        def _known_job_ids(self) -> set[int]:
            """Jobs this worker runs or is about to start (handed over, not yet started)."""
            known = {int(c.job.id) for c in self._running_jobs.values() if c.job.id is not None}
            known.update(int(j.id) for j in self._successors.values() if j.id is not None)
            if self.handoffs is not None:
                known.update(self.handoffs.pending_ids())
            return known

        async def _watch_orphans(self) -> None:
            """Give back jobs the queue says this worker runs but it does not know of.

            A job is ``doing`` for a worker from the moment a fetch (or a run's final
            transaction, :class:`JobHandOff`) commits; should the worker never learn of it
            (a final transaction whose commit raised after the server committed it), the job
            would hold its lane for ever (the worker is alive, so it is never stalled). A job
            seen so twice in a row, a check period apart, is an orphan: see
            :func:`release_orphans`.
            """
            assert self.orphan_check_s and self.on_orphans is not None
            suspects: set[int] = set()
            while True:
                await asyncio.sleep(self.orphan_check_s)
                try:
                    rows = await self.app.connector.execute_query_all_async(
                        query=ORPHAN_CANDIDATES_SQL, worker_id=self.worker_id
                    )
                    unknown = {int(r["id"]) for r in rows} - self._known_job_ids()
                    orphans = [dict(r) for r in rows if int(r["id"]) in unknown & suspects]
                    suspects = unknown - {int(r["id"]) for r in orphans}
                    if orphans and not self._stop_event.is_set() and self.worker_id is not None:
                        log.warning(
                            "queue.orphan_jobs_released",
                            worker_id=self.worker_id,
                            job_ids=[r["id"] for r in orphans],
                        )
                        await self.on_orphans(self.worker_id, orphans)
                except Exception:
                    log.warning("queue.orphan_check_failed", exc_info=True)

        def _log_extra(self, action: str, context: Any, job_result: Any, **kwargs: Any) -> Any:
            # procrastinate builds each log record's extras (the job as a dict) before the
            # logger looks at its level: four times per job, for nothing at warning level.
            if not self.logger.isEnabledFor(logging.INFO):
                return {"action": action}
            return super()._log_extra(action, context, job_result, **kwargs)

        async def _persist_job_status(
            self,
            job: Any,
            status: Any,
            retry_decision: Any,
            context: Any,
            job_result: Any,
        ) -> None:
            handoffs = self.handoffs
            handed, successor = handoffs.take(job.id) if handoffs is not None else (False, None)
            if handoffs is None or not handed:
                await super()._persist_job_status(job, status, retry_decision, context, job_result)
                if job.lock is not None:
                    self._lane_freed = True
                    self._new_job_event.set()
                return
            # Deleted in the run's final transaction, which also fetched its successor.
            self._job_ids_to_abort.pop(job.id, None)
            if successor is None:
                return
            next_job: Any = jobs.Job.from_row(successor)
            if self._stop_event.is_set() and not handoffs.is_claimed(next_job.id):
                await self._put_back(next_job)
            else:
                self._successors[job.id] = next_job

        async def _put_back(self, job: Any) -> None:
            """A handed job this stopping worker will not run: back to the queue (the
            lane-freed trigger announces it to the other workers); it was fetched for this
            worker (``zerocopy_fetch_job``), so it is ``doing`` under this worker's id."""
            try:
                await self.app.connector.execute_query_async(
                    PUT_BACK_JOB_SQL, job_id=job.id, worker_id=self.worker_id
                )
            except Exception:
                log.warning("queue.put_back_failed", job_id=job.id, exc_info=True)

        def _start_job(self, job: Any) -> None:
            job_id: int = job.id

            def abort_reason() -> Any:
                return self._job_ids_to_abort.get(job_id)

            context = job_context.JobContext(
                app=self.app,
                worker_name=self.worker_name,
                worker_queues=self.queues,
                additional_context=self.additional_context.copy()
                if self.additional_context
                else {},
                job=job,
                abort_reason=abort_reason,
                start_timestamp=time.time(),
            )
            task = asyncio.create_task(
                self._process_job(context), name=f"process job {job.task_name}[{job.id}]"
            )
            self._running_jobs[task] = context
            task.add_done_callback(self._job_done)

        def _job_done(self, task: asyncio.Task[Any]) -> None:
            context = self._running_jobs.pop(task)
            job: Any = context.job
            successor = self._successors.pop(job.id, None)
            if successor is not None:
                self._start_job(successor)  # the permit passes to the lane's next job
            else:
                self._job_semaphore.release()

        async def _fetch_and_process_jobs(self) -> None:
            while True:
                self._lane_freed = False
                await self._fetch_jobs()
                if not self._lane_freed or self._stop_event.is_set():
                    return

        async def _fetch_job(self) -> Any:
            """procrastinate's ``fetch_job``, through ``zerocopy_fetch_job`` (which answers
            "nothing" cheaply when every lane with waiting jobs is busy)."""
            row = await self.app.connector.execute_query_one_async(
                query=FETCH_JOB_SQL, queues=self.queues, worker_id=self.worker_id
            )
            if row["id"] is None:
                return None
            return jobs.Job.from_row(row)

        async def _fetch_jobs(self) -> None:
            """procrastinate's fetch loop (3.x), starting jobs through :meth:`_start_job`."""
            while not self._stop_event.is_set():
                acquire_sem_task = asyncio.create_task(self._job_semaphore.acquire())
                job = None
                try:
                    await utils.wait_any(acquire_sem_task, self._stop_event.wait())
                    if self._stop_event.is_set():
                        break
                    assert self.worker_id is not None
                    job = await self._fetch_job()
                finally:
                    if (not job or self._stop_event.is_set()) and acquire_sem_task.done():
                        self._job_semaphore.release()
                    self._new_job_event.clear()
                if not job:
                    break
                self._start_job(job)

    return LaneWorker


async def keep_queued_syncs_alive(db: Database) -> int:
    """Refresh the heartbeat of sync runs whose job still waits in the queue.

    A sync run is ``running`` from its request on; while its job waits (a busy source lane)
    no engine beats for it, and it must not be reaped as ``worker_lost``. Live workers call
    this every tick, so a waiting run stays alive exactly as long as some worker does.
    """
    async with db.transaction() as s:
        result = await s.execute(
            sa.text(
                "UPDATE sync_run SET heartbeat_at = :now WHERE status = 'running' AND id IN ("
                "SELECT args->>'sync_run_id' FROM procrastinate_jobs "
                "WHERE task_name = :task AND status = 'todo')"
            ),
            {"now": utcnow(), "task": SYNC_TASK},
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


QUEUE_SCHEMA_VERSION = "zerocopy queue extras 3"
"""Written as the hand-off function's comment by :data:`LANE_FREED_SQL`; bump it when that
SQL changes, so that workers starting on an older database install the new version."""

LANE_FREED_SQL = (
    """
CREATE OR REPLACE FUNCTION zerocopy_notify_lane_freed() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    -- Same payload as procrastinate's own insert notification: idle workers fetch again.
    PERFORM pg_notify(
        'procrastinate_queue_v1#' || OLD.queue_name,
        json_build_object('type', 'job_inserted', 'job_id', OLD.id)::text
    );
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS zerocopy_lane_freed_update ON procrastinate_jobs;
CREATE TRIGGER zerocopy_lane_freed_update
    AFTER UPDATE OF status ON procrastinate_jobs FOR EACH ROW
    WHEN (OLD.status = 'doing' AND NEW.status <> 'doing' AND OLD.lock IS NOT NULL)
    EXECUTE PROCEDURE zerocopy_notify_lane_freed();
DROP TRIGGER IF EXISTS zerocopy_lane_freed_delete ON procrastinate_jobs;

CREATE OR REPLACE FUNCTION zerocopy_fetch_job(p_queues character varying[], p_worker_id bigint)
    RETURNS procrastinate_jobs
    LANGUAGE plpgsql AS $$
BEGIN
    -- procrastinate's fetch checks every waiting job against the others of its lock, so one
    -- that finds nothing (every lane busy: the usual case while a burst waits) reads all
    -- of them: ~3-6 ms of server CPU with 500 waiting. A job can be fetched only if some
    -- waiting job's lock has no running job (or it has no lock): one probe of the running
    -- jobs' lock index per waiting job rules that out (~0.4 ms), and stops at the first.
    IF NOT EXISTS (
        SELECT 1
            FROM procrastinate_jobs AS jobs
            WHERE jobs.status = 'todo'
                AND (p_queues IS NULL OR jobs.queue_name = ANY(p_queues))
                AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
                AND (jobs.lock IS NULL OR NOT EXISTS (
                    SELECT 1 FROM procrastinate_jobs AS running
                        WHERE running.lock = jobs.lock AND running.status = 'doing'
                ))
    ) THEN
        RETURN NULL;
    END IF;
    RETURN procrastinate_fetch_job_v2(p_queues, p_worker_id);
END;
$$;

CREATE OR REPLACE FUNCTION zerocopy_lane_handoff(
    p_job_id bigint,
    p_worker_id bigint,
    p_queues character varying[],
    OUT handed boolean,
    OUT next_job procrastinate_jobs
)
    LANGUAGE plpgsql AS $$
DECLARE
    done_lock text;
    done_queue text;
BEGIN
    handed := false;
    BEGIN
        -- The finished job goes, as procrastinate_finish_job_v1 deletes a successful job...
        DELETE FROM procrastinate_jobs AS j WHERE j.id = p_job_id AND j.status = 'doing'
            RETURNING j.lock, j.queue_name INTO done_lock, done_queue;
        -- ...and the worker takes the job procrastinate's fetch gives it now: usually the
        -- next one of the lane just freed (it sees the deletion; nobody else does yet).
        next_job := zerocopy_fetch_job(p_queues, p_worker_id);
        handed := true;
    EXCEPTION WHEN OTHERS THEN
        -- Never fails the caller's transaction (a run's final one): the worker finishes
        -- the job and fetches as usual instead.
        next_job := NULL;
        handed := false;
        RETURN;
    END;
    IF done_lock IS NOT NULL AND next_job.id IS NOT NULL
            AND next_job.lock IS DISTINCT FROM done_lock THEN
        -- Another lane's job came first: the freed lane's next job is for another worker.
        PERFORM pg_notify(
            'procrastinate_queue_v1#' || done_queue,
            json_build_object('type', 'job_inserted', 'job_id', p_job_id)::text
        );
    END IF;
END;
$$;

COMMENT ON FUNCTION zerocopy_lane_handoff(bigint, bigint, character varying[])
    IS '"""
    + QUEUE_SCHEMA_VERSION
    + """';
"""
)
"""A job held back by its source's lock becomes fetchable when the lane's running job ends,
which procrastinate does not announce. A refresh job that ends normally is deleted in its
run's final transaction by ``zerocopy_lane_handoff``, which also fetches the worker's next
job (:class:`JobHandOff`); another job that ends normally is deleted by the worker that ran
it, which then fetches again itself (:func:`lane_worker_class`); a job that ends otherwise
(failed, aborted, failed by the stalled-job reaper of another worker, put back by a stopping
worker) is announced by this trigger to every worker. (Announcing deletions too woke every
worker for every finished job, and each then ran procrastinate's fetch for nothing: ~3 ms of
server CPU per empty fetch with 500 jobs waiting, the largest cost a queued refresh had.)"""

QUEUE_SCHEMA_CURRENT_SQL = (
    "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'zerocopy_lane_freed_update') "
    "AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'zerocopy_lane_freed_delete') "
    "AND coalesce(obj_description(to_regprocedure("
    "'zerocopy_lane_handoff(bigint, bigint, character varying[])'), 'pg_proc'), '') "
    f"= '{QUEUE_SCHEMA_VERSION}'"
)


async def ensure_queue_schema(db: Database) -> None:
    """Install procrastinate's tables and functions once (idempotent, safe to race)."""
    if not db.is_postgres:
        from zerocopy import errors
        from zerocopy.errors import ZerocopyError

        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            "ZEROCOPY_RUNNER=procrastinate needs a PostgreSQL state database "
            "(set ZEROCOPY_DATABASE_URL=postgresql://…); SQLite runs the in-process runner",
        )
    from procrastinate.schema import SchemaManager

    async with db.engine.begin() as conn:
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
        present = await conn.scalar(sa.text("SELECT to_regclass('procrastinate_jobs')"))
        if present is None:
            # The driver reads "%" as a placeholder marker: escape it as procrastinate does.
            await conn.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))
            log.info("queue.schema_installed")
        if not await conn.scalar(sa.text(QUEUE_SCHEMA_CURRENT_SQL)):
            await conn.exec_driver_sql(LANE_FREED_SQL)


_SUBMIT_ROWS = sa.text(
    """
WITH batch AS (
    SELECT workspace_id, source_id FROM refresh_run WHERE id IN :ids
), pending AS (
    SELECT q.id, q.workspace_id, q.source_id, q.status, q.created_at FROM refresh_run AS q
    WHERE q.status IN :active
        AND (q.workspace_id IN (SELECT workspace_id FROM batch)
            OR q.source_id IN (SELECT source_id FROM batch))
), syncs AS (
    -- Running sync runs share the source's lanes: they count towards a refresh's lane.
    SELECT q.id, q.workspace_id, y.source_id, q.status, q.created_at FROM sync_run AS q
        JOIN sync AS y ON y.id = q.sync_id
    WHERE q.status = 'running' AND y.source_id IN (SELECT source_id FROM batch)
), ranked AS (
    -- Rows strictly earlier: up to and including the row's peers (same created_at), less
    -- the peers (a frame that excludes them is recomputed row by row: O(N^2) again).
    SELECT id,
        count(*) FILTER (WHERE status = :queued) OVER (
            PARTITION BY workspace_id ORDER BY created_at
        ) - count(*) FILTER (WHERE status = :queued) OVER (
            PARTITION BY workspace_id, created_at
        ) AS ahead,
        rank() OVER (PARTITION BY source_id ORDER BY created_at) - 1 AS active
    FROM (SELECT * FROM pending UNION ALL SELECT * FROM syncs) AS runs
)
SELECT r.id, r.source_id, s.kind, c.settings,
    coalesce(k.ahead, 0) AS ahead, coalesce(k.active, 0) AS active
FROM refresh_run AS r
    JOIN source AS s ON s.id = r.source_id
    JOIN credential AS c ON c.id = s.credential_id
    LEFT JOIN ranked AS k ON k.id = r.id
WHERE r.id IN :ids
ORDER BY r.created_at
"""
).bindparams(sa.bindparam("ids", expanding=True), sa.bindparam("active", expanding=True))
"""Each run to defer, its source, and how many runs are ahead of it: queued in its
workspace (the job's priority) and active on its source (its lane: refresh runs and
running sync runs alike, since both hold the source's lanes), counted by strictly earlier
``created_at``. One pass over the active runs of the batch's workspaces and sources
(window counts): a correlated count per run read every run of the workspace and source,
history included, so a burst of N due runs cost O(N x runs) of the server's CPU (500 of 1,500
fired in 25s: 18-26 ms per batch, the last batches the slowest)."""


_SYNC_SUBMIT_ROW = sa.text(
    """
WITH me AS (
    SELECT r.id, r.workspace_id, r.created_at, y.source_id FROM sync_run AS r
        JOIN sync AS y ON y.id = r.sync_id
    WHERE r.id = :id
), ahead AS (
    SELECT q.id, q.workspace_id, y.source_id FROM sync_run AS q
        JOIN sync AS y ON y.id = q.sync_id
    WHERE q.status = 'running' AND q.created_at < (SELECT created_at FROM me)
        AND (q.workspace_id = (SELECT workspace_id FROM me)
            OR y.source_id = (SELECT source_id FROM me))
)
SELECT me.source_id, s.kind, c.settings,
    (SELECT count(*) FROM ahead AS a JOIN procrastinate_jobs AS j
        ON j.queueing_lock = 'sync_run:' || a.id AND j.status = 'todo'
     WHERE a.workspace_id = me.workspace_id) AS waiting,
    (SELECT count(*) FROM ahead AS a WHERE a.source_id = me.source_id)
    + (SELECT count(*) FROM refresh_run AS f
       WHERE f.source_id = me.source_id AND f.status IN ('queued', 'running')
           AND f.created_at < me.created_at) AS active
FROM me
    LEFT JOIN source AS s ON s.id = me.source_id
    LEFT JOIN credential AS c ON c.id = s.credential_id
"""
)
"""A sync run to defer, its source, and the sync runs strictly earlier than it that are
``running``: those of its workspace whose job still waits (the priority) and those on its
source, plus its source's earlier active refresh runs (the lane: both kinds hold the source's
lanes, so a sync counted only syncs and landed on the lane of a running refresh, waiting
behind it with other lanes free). As :data:`_SUBMIT_ROWS` for refreshes, the counts start from the active
runs (``status = 'running'``, the partial index of one running run per sync) and find a
waiting job by its queueing lock (a unique index over waiting jobs), instead of reading the
workspace's whole run history and matching every job ever queued by its JSON arguments."""


class ProcrastinateRunner:
    """:class:`zerocopy.runner.Runner` that defers refresh jobs for ``zerocopy worker`` processes."""

    def __init__(self, db: Database, *, default_limit: int = 4, app: Any = None) -> None:
        self.db = db
        self.default_limit = default_limit
        self.app = app
        self._owns_app = app is None

    async def __aenter__(self) -> ProcrastinateRunner:
        await ensure_queue_schema(self.db)
        if self.app is None:
            self.app = build_app(self.db.url, pool_size=4)
            await self.app.open_async()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._owns_app and self.app is not None:
            await self.app.close_async()
            self.app = None

    async def ping(self) -> None:
        """Raise when the job queue is unreachable (readiness)."""
        if self.app is None:
            raise RuntimeError("the job queue is not open")
        await self.app.connector.execute_query_one_async("SELECT count(*) FROM procrastinate_jobs")

    async def submit(self, run_id: str) -> None:
        await self.submit_many([run_id])

    async def submit_many(self, run_ids: list[str]) -> None:
        """Defer the jobs of queued refresh runs in one statement (the scheduler's bulk path).

        One query reads, for every run, its source and how many runs are ahead of it (queued
        in its workspace: the priority; active on its source: the lane), then one ``INSERT``
        defers them all, so N due refreshes cost two round trips and one burst of
        notifications instead of N of each. A run whose job already waits is skipped.
        """
        from procrastinate import exceptions
        from procrastinate.jobs import Job

        if self.app is None:
            raise RuntimeError("ProcrastinateRunner is not started: use `async with runner:`")
        if not run_ids:
            return
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    _SUBMIT_ROWS,
                    {
                        "ids": list(run_ids),
                        "active": list(RunStatus.ACTIVE),
                        "queued": RunStatus.QUEUED,
                    },
                )
            ).all()
        jobs = []
        for row in rows:
            limit = source_limit(row.kind, self.default_limit)
            lane = int(row.active or 0) % limit
            key = slot_key(row.source_id, row.kind, row.settings)
            jobs.append(
                Job(
                    queue=QUEUE,
                    task_name=REFRESH_TASK,
                    lock=f"source:{key}:{lane}",
                    queueing_lock=f"run:{row.id}",
                    priority=-int(row.ahead or 0),
                    task_kwargs={
                        "run_id": row.id,
                        "source_id": key,
                        "kind": row.kind,
                        "lane": lane,
                    },
                )
            )
        try:
            await self.app.job_manager.batch_defer_jobs_async(jobs)
        except exceptions.AlreadyEnqueued:
            # Some run already has its job (a re-submit): defer the others one by one.
            for job in jobs:
                with contextlib.suppress(exceptions.AlreadyEnqueued):
                    await self.app.job_manager.defer_job_async(job)

    async def withdraw_sync(self, run_id: str) -> bool:
        """Take a sync run's job out of the queue if no worker has fetched it yet.

        ``True``: the job was still ``todo`` and is now ``cancelled`` (procrastinate's own
        compare-and-set), so no worker will run it and the caller ends the run. ``False``: a
        worker has it (fetched, waiting for its slot, or running) and the run's own
        cancellation polling ends it -- or it was never deferred.
        """
        if self.app is None:
            return False
        manager = self.app.job_manager
        waiting = await manager.list_jobs_async(queueing_lock=f"sync_run:{run_id}", status="todo")
        for job in waiting:
            if job.id is not None and await manager.cancel_job_by_id_async(job.id):
                log.info("queue.sync_withdrawn", run_id=run_id, job_id=job.id)
                return True
        return False

    async def submit_sync(self, run_id: str) -> None:
        """Defer the job of a ``running`` sync run (one per run; under its source's lanes).

        Its priority is minus the sync runs of its workspace already waiting in the queue,
        so workspaces take turns (as refresh jobs do) instead of first-come-first-served.
        """
        from procrastinate import exceptions

        if self.app is None:
            raise RuntimeError("ProcrastinateRunner is not started: use `async with runner:`")
        async with self.db.session() as s:
            row = (await s.execute(_SYNC_SUBMIT_ROW, {"id": run_id})).first()
        if row is None:
            return
        waiting = row.waiting
        lock: str | None = None
        if row.source_id is not None:
            lane = int(row.active or 0) % source_limit(row.kind, self.default_limit)
            lock = f"source:{slot_key(row.source_id, row.kind, row.settings)}:{lane}"
        with contextlib.suppress(exceptions.AlreadyEnqueued):
            await self.app.configure_task(
                SYNC_TASK,
                queue=QUEUE,
                lock=lock,
                queueing_lock=f"sync_run:{run_id}",
                priority=-int(waiting or 0),
            ).defer_async(sync_run_id=run_id)


async def fail_stalled_jobs(app: Any, db: Database, seconds: float) -> list[int]:
    """Fail jobs of dead workers (releasing their locks); re-defer runs they never started."""
    from procrastinate.jobs import Status

    jobs = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds))
    failed: list[int] = []
    for job in jobs:
        try:
            await app.job_manager.finish_job(job, Status.FAILED, delete_job=False)
        except Exception:
            continue  # finished meanwhile
        failed.append(job.id)
        run_id = job.task_kwargs.get("run_id")
        log.warning("queue.stalled_job_failed", job_id=job.id, run_id=run_id)
        if run_id:
            async with db.session() as s:
                status = await s.scalar(sa.select(RefreshRun.status).where(RefreshRun.id == run_id))
            if status == RunStatus.QUEUED:
                await ProcrastinateRunner(db, app=app).submit(run_id)
    return failed


_UNCLAIM_RUN = sa.text(
    "UPDATE refresh_run SET status = :queued, started_at = NULL, heartbeat_at = NULL, "
    "worker = NULL WHERE id = :run_id AND status = :running AND worker = :worker RETURNING id"
)
_FREE_RUN_SLOT = sa.text("DELETE FROM source_slot WHERE run_id = :run_id")


async def release_orphans(
    db: Database, engine: Any, worker_id: int, orphans: list[dict[str, Any]]
) -> None:
    """Put orphaned jobs back in the queue (see ``LaneWorker._watch_orphans``).

    A refresh job's run may have been claimed for it by the final transaction that handed
    it over (``running`` with this process as its worker, a slot passed on to it) and never
    started: it goes back to ``queued`` and its slot is freed, in the same transaction that
    puts the job back, so the next worker to fetch the job runs it as usual. A run this
    process is executing is left alone.
    """
    for row in orphans:
        args = row.get("args") or {}
        run_id = args.get("run_id") if row.get("task_name") == REFRESH_TASK else None
        async with db.transaction() as s:
            if run_id and not engine.is_executing(run_id):
                unclaimed = (
                    await s.execute(
                        _UNCLAIM_RUN,
                        {
                            "queued": RunStatus.QUEUED,
                            "running": RunStatus.RUNNING,
                            "run_id": run_id,
                            "worker": engine.worker,
                        },
                    )
                ).first()
                if unclaimed is not None:
                    await s.execute(_FREE_RUN_SLOT, {"run_id": run_id})
            conn = await s.connection()
            await conn.exec_driver_sql(
                PUT_BACK_JOB_SQL, {"job_id": row["id"], "worker_id": worker_id}
            )


async def requeue_orphans(runner: ProcrastinateRunner, db: Database, seconds: float) -> list[str]:
    """Defer again queued refresh runs that have no job (their enqueuer died in between).

    A run is requested, then its job deferred; a process that dies between the two would
    leave the run ``queued`` for ever, and its segment refusing new refreshes.
    """
    async with db.session() as s:
        rows = await s.execute(
            sa.text(
                "SELECT r.id FROM refresh_run AS r WHERE r.status = :queued "
                "AND r.created_at < :before AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs AS j "
                "WHERE j.task_name = :task AND j.status IN ('todo', 'doing') "
                "AND j.args->>'run_id' = r.id)"
            ),
            {
                "queued": RunStatus.QUEUED,
                "before": utcnow() - timedelta(seconds=seconds),
                "task": REFRESH_TASK,
            },
        )
        ids = [row[0] for row in rows.all()]
    if ids:
        log.warning("queue.orphans_requeued", run_ids=ids)
        await runner.submit_many(ids)
    return ids


async def warm_up(db: Database) -> list[str]:
    """Load, before taking jobs, what the first job of each source kind would load lazily.

    The SQL check, the adapters of the kinds in use (and their drivers) and their SQL
    dialects take seconds of CPU to import; paid by the first jobs, that shows as lag right after a worker starts,
    on the cores the other workers are using.
    """
    async with db.session() as s:
        kinds = sorted(
            set((await s.scalars(sa.select(Source.kind).where(Source.kind.is_not(None)))).all())
        )

    def load() -> None:
        import sqlglot

        import zerocopy.sql  # noqa: F401  (the segment SQL check every refresh runs)
        from dialects.registry import adapter_class

        for kind in kinds:
            try:
                cls = adapter_class(kind)
                sqlglot.Dialect.get_or_raise(getattr(cls, "SQLGLOT_DIALECT", None) or kind)
            except Exception:  # an unknown or broken kind fails its own jobs, not the worker
                log.warning("worker.warm_up_failed", kind=kind)

    await anyio.to_thread.run_sync(load)
    return kinds


async def _reap_queue(runner: ProcrastinateRunner, app: Any, db: Database, seconds: float) -> None:
    await fail_stalled_jobs(app, db, seconds)
    await requeue_orphans(runner, db, seconds)


async def run_worker(settings: Any, config: SchedulingConfig, *, scheduler: bool = True) -> None:
    """``zerocopy worker``: execute refresh and sync jobs, tick the schedulers, do housekeeping.

    SIGTERM/SIGINT: stop fetching jobs, let running ones finish for ``shutdown_grace_s``, then
    cancel them (the engine cancels the warehouse query, drops the temp table, records
    ``cancelled``).
    """
    from zerocopy.refresh import RefreshEngine
    from zerocopy.scheduling.execution import SlottedEngine, SlottedSyncExecutor
    from zerocopy.scheduling.housekeeping import Housekeeper, Janitor
    from zerocopy.scheduling.scheduler import Scheduler
    from zerocopy.scheduling.slots import SourceSlots
    from zerocopy.scheduling.sync_scheduler import SyncScheduler
    from zerocopy.secrets import SecretBox
    from zerocopy.services import syncs
    from zerocopy.services.context import Runtime, open_database

    async with open_database(settings) as db:
        await ensure_queue_schema(db)
        box = SecretBox(settings.secret_keys)
        engine = RefreshEngine(
            db,
            box,
            settings,
            heartbeat_s=config.heartbeat_s,
            stale_after_s=config.worker_lost_after_s,
        )
        slots = SourceSlots(db, default_limit=config.source_limit)
        executor = SlottedEngine(engine, slots)
        sync_runtime = Runtime(settings, db, box)
        sync_engine = syncs.sync_engine(sync_runtime)
        sync_engine.heartbeat_s = config.heartbeat_s
        sync_engine.stale_after_s = config.worker_lost_after_s
        sync_executor = SlottedSyncExecutor(
            db,
            lambda run_id: syncs.execute_run(sync_runtime, run_id),
            slots,
            heartbeat_s=config.heartbeat_s,
        )
        handoffs = LaneHandOffs([QUEUE])
        app = build_app(
            db.url,
            executor=executor,
            sync_executor=sync_executor,
            pool_size=config.concurrency + 4,
            handoffs=handoffs,
        )
        await warm_up(db)
        async with app.open_async():
            runner = ProcrastinateRunner(db, default_limit=config.source_limit, app=app)
            sched = Scheduler(
                db, engine, runner.submit, config=config, submit_many=runner.submit_many
            )
            sync_sched = SyncScheduler(db, sync_engine, runner.submit_sync, config=config)
            janitor = Janitor(db, engine.adapter_factory, slots, grace_s=config.janitor_grace_s)
            keeper = Housekeeper(
                db,
                engine,
                janitor,
                config=config,
                holder=engine.worker,
                extra_reaper=lambda: _reap_queue(runner, app, db, config.worker_lost_after_s),
            )

            async def background() -> None:
                while True:
                    if scheduler:
                        await run_step("scheduler.tick", sched.tick)
                        await run_step("sync_scheduler.tick", sync_sched.tick)
                    await anyio.sleep(config.tick_s)

            async def sync_reaper() -> None:
                # Its own loop: a long scheduler tick (hundreds of owners due at once) must
                # not starve the heartbeats of sync runs waiting in the queue.
                every = max(0.2, min(config.reaper_every_s, config.worker_lost_after_s / 3))

                async def step() -> None:
                    await keep_queued_syncs_alive(db)
                    await sync_engine.reap_lost()

                while True:
                    await run_step("sync_reaper", step)
                    await anyio.sleep(every)

            log.info(
                "worker.started",
                worker=engine.worker,
                concurrency=config.concurrency,
                source_limit=config.source_limit,
            )
            async with anyio.create_task_group() as tg:
                tg.start_soon(background)
                tg.start_soon(sync_reaper)
                tg.start_soon(keeper.run)
                app.perform_import_paths()
                options: dict[str, Any] = {
                    **app.worker_defaults,
                    "queues": [QUEUE],
                    "concurrency": config.concurrency,
                    "shutdown_graceful_timeout": config.shutdown_grace_s,
                    # A finished job's worker fetches its lane's next job itself, other
                    # freed lanes are announced by a trigger (LANE_FREED_SQL); polling is
                    # only the fallback for a lost notification.
                    "fetch_job_polling_interval": config.fetch_poll_s,
                    "update_heartbeat_interval": max(1.0, config.worker_lost_after_s / 5),
                    "stalled_worker_timeout": config.worker_lost_after_s,
                    "install_signal_handlers": True,
                    "delete_jobs": "successful",
                }
                worker = lane_worker_class()(
                    app=app,
                    handoffs=handoffs,
                    # Twice per heartbeat timeout: an orphaned job's pre-claimed run goes
                    # back to the queue before the reaper would end it worker_lost.
                    orphan_check_s=min(5.0, max(0.25, config.worker_lost_after_s / 5)),
                    on_orphans=functools.partial(release_orphans, db, engine),
                    **options,
                )
                await worker.run()
                tg.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                await engine.aclose()  # warehouse sessions kept between runs
            log.info("worker.stopped", worker=engine.worker)


__all__ = [
    "QUEUE",
    "REFRESH_TASK",
    "SYNC_TASK",
    "JobHandOff",
    "LaneHandOffs",
    "ProcrastinateRunner",
    "build_app",
    "ensure_queue_schema",
    "fail_stalled_jobs",
    "keep_queued_syncs_alive",
    "lane_worker_class",
    "requeue_orphans",
    "run_worker",
    "warm_up",
]
