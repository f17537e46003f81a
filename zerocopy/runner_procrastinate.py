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
from datetime import timedelta
from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.orm import aliased

from zerocopy.logging import get_logger
from zerocopy.scheduling.config import SchedulingConfig
from zerocopy.scheduling.slots import slot_key, source_limit
from zerocopy.scheduling.steps import run_step
from zerocopy.state.db import Database
from zerocopy.state.models import Credential, RefreshRun, RunStatus, Source, utcnow

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
    database_url: str, *, executor: Any = None, sync_executor: Any = None, pool_size: int = 10
) -> Any:
    """A procrastinate App on the state database; with executors, able to run their jobs."""
    import procrastinate

    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(database_url), min_size=1, max_size=pool_size
    )
    app = procrastinate.App(connector=connector)
    if executor is not None:

        @app.task(name=REFRESH_TASK, queue=QUEUE, pass_context=False)
        async def refresh(
            run_id: str,
            source_id: str | None = None,
            kind: str | None = None,
            lane: int | None = None,
        ) -> None:
            # The source and lane ride with the job: the executor need not look them up.
            await executor.execute(run_id, source_id=source_id, kind=kind, lane=lane)

    if sync_executor is not None:

        @app.task(name=SYNC_TASK, queue=QUEUE, pass_context=False)
        async def sync(sync_run_id: str) -> None:
            await sync_executor.execute(sync_run_id)

    return app


def lane_worker_class() -> type:
    """:class:`procrastinate.worker.Worker` that fetches again after each job it finished.

    The lane (procrastinate lock) of a finished job is free once its deletion commits, and
    nobody announces that (see :data:`LANE_FREED_SQL`): the worker that finished the job
    looks for the lane's next job itself. procrastinate clears its wake-up event after each
    fetch, so a job finishing while a fetch is in flight would be missed until the next
    poll; a flag set after the finish is committed makes the fetch loop go round once more.
    """
    from procrastinate import worker

    class LaneWorker(worker.Worker):  # type: ignore[misc]
        _lane_freed = False

        async def _persist_job_status(self, job: Any, *args: Any, **kwargs: Any) -> None:
            await super()._persist_job_status(job, *args, **kwargs)
            if job.lock is not None:
                self._lane_freed = True
                self._new_job_event.set()

        async def _fetch_and_process_jobs(self) -> None:
            while True:
                self._lane_freed = False
                await super()._fetch_and_process_jobs()
                if not self._lane_freed or self._stop_event.is_set():
                    return

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


LANE_FREED_SQL = """
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
"""
"""A job held back by its source's lock becomes fetchable when the lane's running job ends,
which procrastinate does not announce. A job that ends normally is deleted by the worker that
ran it, which then fetches again itself (:class:`LaneWorker`); a job that ends otherwise
(failed, aborted, failed by the stalled-job reaper of another worker) is announced by this
trigger to every worker. (Announcing deletions too woke every worker for every finished job,
and each then ran procrastinate's fetch for nothing: ~3 ms of server CPU per empty fetch with
500 jobs waiting, the largest cost a queued refresh had.)"""

QUEUE_SCHEMA_CURRENT_SQL = (
    "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'zerocopy_lane_freed_update') "
    "AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'zerocopy_lane_freed_delete')"
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
        q = aliased(RefreshRun)
        ahead = (
            sa.select(sa.func.count())
            .where(
                q.workspace_id == RefreshRun.workspace_id,
                q.status == RunStatus.QUEUED,
                q.created_at < RefreshRun.created_at,
            )
            .scalar_subquery()
        )
        active = (
            sa.select(sa.func.count())
            .where(
                q.source_id == RefreshRun.source_id,
                q.status.in_(RunStatus.ACTIVE),
                q.created_at < RefreshRun.created_at,
            )
            .scalar_subquery()
        )
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    sa.select(
                        RefreshRun.id,
                        RefreshRun.source_id,
                        Source.kind,
                        Credential.settings,
                        ahead.label("ahead"),
                        active.label("active"),
                    )
                    .join(Source, Source.id == RefreshRun.source_id)
                    .join(Credential, Credential.id == Source.credential_id)
                    .where(RefreshRun.id.in_(run_ids))
                    .order_by(RefreshRun.created_at)
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

    async def submit_sync(self, run_id: str) -> None:
        """Defer the job of a ``running`` sync run (one per run; under its source's lanes).

        Its priority is minus the sync runs of its workspace already waiting in the queue,
        so workspaces take turns (as refresh jobs do) instead of first-come-first-served.
        """
        from procrastinate import exceptions

        from zerocopy.state.sync_models import Sync, SyncRun

        if self.app is None:
            raise RuntimeError("ProcrastinateRunner is not started: use `async with runner:`")
        async with self.db.session() as s:
            row = (
                await s.execute(
                    sa.select(
                        Sync.source_id,
                        SyncRun.workspace_id,
                        SyncRun.created_at,
                        Source.kind,
                        Credential.settings,
                    )
                    .join(Sync, Sync.id == SyncRun.sync_id)
                    .outerjoin(Source, Source.id == Sync.source_id)
                    .outerjoin(Credential, Credential.id == Source.credential_id)
                    .where(SyncRun.id == run_id)
                )
            ).first()
            if row is None:
                return
            waiting = await s.scalar(
                sa.text(
                    "SELECT count(*) FROM sync_run AS r JOIN procrastinate_jobs AS j "
                    "ON j.args->>'sync_run_id' = r.id AND j.task_name = :task "
                    "AND j.status = 'todo' WHERE r.workspace_id = :ws "
                    "AND r.status = 'running' AND r.created_at < :created"
                ),
                {"task": SYNC_TASK, "ws": row.workspace_id, "created": row.created_at},
            )
            lock: str | None = None
            if row.source_id is not None:
                ahead = await s.scalar(
                    sa.select(sa.func.count())
                    .select_from(SyncRun)
                    .join(Sync, Sync.id == SyncRun.sync_id)
                    .where(
                        Sync.source_id == row.source_id,
                        SyncRun.status == "running",
                        SyncRun.created_at < row.created_at,
                    )
                )
                lane = int(ahead or 0) % source_limit(row.kind, self.default_limit)
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
        app = build_app(
            db.url,
            executor=executor,
            sync_executor=sync_executor,
            pool_size=config.concurrency + 4,
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
                worker = lane_worker_class()(app=app, **options)
                await worker.run()
                tg.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                await engine.aclose()  # warehouse sessions kept between runs
            log.info("worker.stopped", worker=engine.worker)


__all__ = [
    "QUEUE",
    "REFRESH_TASK",
    "SYNC_TASK",
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
