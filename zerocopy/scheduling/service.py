"""Wiring for ``zerocopy serve``: which runner, and whether this process runs the scheduler.

* ``ZEROCOPY_RUNNER=inprocess`` (default): in-process runners execute refreshes and scheduled
  syncs (under per-source slots) and this process ticks both schedulers and does housekeeping.
* ``ZEROCOPY_RUNNER=procrastinate``: this process only defers jobs; ``zerocopy worker``
  processes execute them and tick the scheduler.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from zerocopy.logging import get_logger
from zerocopy.scheduling.config import SchedulingConfig, load_config
from zerocopy.scheduling.steps import run_step

log = get_logger("zerocopy.scheduling.service")


class _LazySyncEngine:
    """The runtime's sync engine, looked up when a run is requested, not when serving starts.

    The sync layer builds its engine (and its notifier's SMTP settings) on first use; building
    it at start-up would freeze settings that are read lazily everywhere else.
    """

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    async def request(self, sync_id: str, trigger: str) -> Any:
        from zerocopy.services import syncs

        return await syncs.sync_engine(self.runtime).request(sync_id, trigger)


@asynccontextmanager
async def open_scheduling(
    runtime: Any, config: SchedulingConfig | None = None
) -> AsyncIterator[Any]:
    """Start the configured runner (set as ``runtime.runner``) and, in-process, the scheduler."""
    from zerocopy.runner import InProcessRunner
    from zerocopy.scheduling.execution import SlottedEngine, SlottedSyncExecutor
    from zerocopy.scheduling.housekeeping import Housekeeper, Janitor
    from zerocopy.scheduling.scheduler import Scheduler
    from zerocopy.scheduling.slots import SourceSlots
    from zerocopy.scheduling.sync_scheduler import SyncScheduler
    from zerocopy.services import syncs

    config = config or load_config()
    runtime.scheduling = config
    if config.runner == "procrastinate":
        from zerocopy.runner_procrastinate import ProcrastinateRunner

        async with ProcrastinateRunner(runtime.db, default_limit=config.source_limit) as queue:
            runtime.runner = queue
            yield runtime
        return
    slots = SourceSlots(runtime.db, default_limit=config.source_limit)
    engine = runtime.engine
    engine.heartbeat_s = config.heartbeat_s
    engine.stale_after_s = config.worker_lost_after_s
    runner = InProcessRunner(
        SlottedEngine(engine, slots),  # type: ignore[arg-type]
        max_concurrent=max(runtime.settings.max_concurrent_refreshes, 1),
        shutdown_grace_s=config.shutdown_grace_s,
    )
    scheduler = Scheduler(runtime.db, engine, runner.submit, config=config)
    # Scheduled syncs: their own bounded pool (a sync run is created running, nothing to
    # recover on start: a dead process's run is reaped as worker_lost by the sync engine).
    sync_executor = SlottedSyncExecutor(
        runtime.db,
        lambda run_id: syncs.execute_run(runtime, run_id),
        slots,
        heartbeat_s=config.heartbeat_s,
    )
    sync_runner = InProcessRunner(
        sync_executor,  # type: ignore[arg-type]
        max_concurrent=max(runtime.settings.max_concurrent_refreshes, 1),
        shutdown_grace_s=config.shutdown_grace_s,
        recover_on_start=False,
        # Runs waiting for a place in this pool keep beating (they are ``running``).
        while_waiting=lambda run_id: sync_executor.keep_alive(
            run_id, first_after_s=config.heartbeat_s
        ),
    )
    sync_scheduler = SyncScheduler(
        runtime.db, _LazySyncEngine(runtime), sync_runner.submit, config=config
    )
    keeper = Housekeeper(
        runtime.db,
        engine,
        Janitor(runtime.db, engine.adapter_factory, slots, grace_s=config.janitor_grace_s),
        config=config,
        holder=engine.worker,
    )

    async def loop() -> None:
        while True:
            await run_step("scheduler.tick", scheduler.tick)
            await run_step("sync_scheduler.tick", sync_scheduler.tick)
            await anyio.sleep(config.tick_s)

    async with runner, sync_runner:
        runtime.runner = runner
        runtime.sync_runner = sync_runner
        async with anyio.create_task_group() as tg:
            tg.start_soon(loop)
            tg.start_soon(keeper.run)
            try:
                yield runtime
            finally:
                tg.cancel_scope.cancel()
