"""Where a sync run started through the API ("run now") executes: with the configured runner.

With ``ZEROCOPY_RUNNER=procrastinate`` the API process only defers the run's job and a
``zerocopy worker`` executes it, exactly like a scheduled sync: under its source's lanes and
slots, kept alive while it waits, cancelled from any process through the database, reaped as
``worker_lost`` if its worker dies. With the in-process runner it runs on the process's sync
pool, under the same per-source slots as refreshes and scheduled syncs.
"""

from __future__ import annotations

from typing import Any

import anyio
import sqlalchemy as sa

WAIT_POLL_S = 0.2


async def dispatch_sync_run(runtime: Any, run_id: str) -> bool:
    """Hand a started sync run to this process's runner; ``False`` if there is none."""
    submit_sync = getattr(getattr(runtime, "runner", None), "submit_sync", None)
    if submit_sync is not None:
        await submit_sync(run_id)
        return True
    sync_runner = getattr(runtime, "sync_runner", None)
    if sync_runner is not None:
        await sync_runner.submit(run_id)
        return True
    return False


async def wait_sync_run(runtime: Any, run_id: str, *, poll_s: float = WAIT_POLL_S) -> Any:
    """The run once it has finished, wherever it executes (``?wait=true``)."""
    from zerocopy.state.sync_models import SyncRun

    while True:
        async with runtime.db.session() as s:
            run = await s.scalar(sa.select(SyncRun).where(SyncRun.id == run_id))
        if run is None or run.status != "running":
            return run
        await anyio.sleep(poll_s)
