"""Job runners: who executes queued refreshes, behind one small protocol.

:class:`InProcessRunner` (the embedded default, used by ``zerocopy serve``) executes runs as
tasks of the serving process with bounded concurrency. A scale-out runner (procrastinate on
PostgreSQL, issue 9) implements the same :class:`Runner` protocol by deferring a job that
calls :meth:`RefreshEngine.execute` in a worker; the engine itself does not change, because
claiming, the one-run-per-segment rule and cancellation all go through the database.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import anyio
from anyio.abc import TaskGroup

from zerocopy.logging import get_logger
from zerocopy.refresh import RefreshEngine

log = get_logger("zerocopy.runner")


@runtime_checkable
class Runner(Protocol):
    """Executes queued refresh runs somewhere, some time soon."""

    async def submit(self, run_id: str) -> None:
        """Hand a queued run over for execution; returns without waiting for it."""
        ...

    async def __aenter__(self) -> Runner: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class InProcessRunner:
    """Runs refreshes as background tasks of this process, at most ``max_concurrent`` at once.

    ``async with InProcessRunner(engine) as runner: await runner.submit(run.id)``. On start it
    marks runs with a stale heartbeat ``worker_lost`` and re-submits runs left ``queued`` (a
    run is claimed atomically, so a run submitted twice still executes once). On exit it lets
    running refreshes finish for ``shutdown_grace_s``, then cancels them (the engine cancels
    the warehouse query, drops the temporary table and records ``cancelled``).

    ``while_waiting(run_id)``, if given, runs while a submitted run waits for a free place
    and is cancelled when the run starts: a sync run is ``running`` from its request on, so
    its heartbeat must go on while it waits here, or a reaper would end it ``worker_lost``.
    """

    def __init__(
        self,
        engine: RefreshEngine,
        *,
        max_concurrent: int = 4,
        shutdown_grace_s: float = 10.0,
        recover_on_start: bool = True,
        while_waiting: Callable[[str], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self.engine = engine
        self.while_waiting = while_waiting
        self.max_concurrent = max_concurrent
        self.shutdown_grace_s = shutdown_grace_s
        self.recover_on_start = recover_on_start
        self._limiter = anyio.CapacityLimiter(max_concurrent)
        self._tg: TaskGroup | None = None
        self._pending: set[str] = set()
        self._idle = anyio.Event()
        self._idle.set()

    @property
    def active(self) -> int:
        """Runs submitted and not yet finished."""
        return len(self._pending)

    async def __aenter__(self) -> InProcessRunner:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        if self.recover_on_start:
            try:
                await self.engine.reap_lost()
                for run_id in await self.engine.queued_run_ids():
                    await self.submit(run_id)
            except Exception:
                log.exception("runner.recover_failed")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tg, self._tg = self._tg, None
        if tg is None:
            return
        with anyio.move_on_after(self.shutdown_grace_s, shield=True):
            await self._idle.wait()
        tg.cancel_scope.cancel()
        await tg.__aexit__(exc_type, exc, tb)

    async def submit(self, run_id: str) -> None:
        if self._tg is None:
            raise RuntimeError("InProcessRunner is not started: use `async with runner:`")
        if run_id in self._pending:
            return
        self._pending.add(run_id)
        self._idle = anyio.Event() if self._idle.is_set() else self._idle
        self._tg.start_soon(self._execute, run_id, name=f"refresh {run_id}")

    async def wait_idle(self) -> None:
        """Until every submitted run has finished (tests, the demo)."""
        await self._idle.wait()

    async def _execute(self, run_id: str) -> None:
        acquired = False
        try:
            if self.while_waiting is None:
                await self._limiter.acquire()
                acquired = True
            else:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self.while_waiting, run_id)
                    await self._limiter.acquire()
                    acquired = True
                    tg.cancel_scope.cancel()
            await self.engine.execute(run_id)
        except Exception:
            # A broken state database must not take the whole runner (and server) down.
            log.exception("runner.execute_failed", run_id=run_id)
        finally:
            if acquired:
                self._limiter.release()
            self._pending.discard(run_id)
            if not self._pending:
                self._idle.set()
