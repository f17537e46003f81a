"""Executing a queued refresh or sync run under its source's concurrency slot (both runners)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import anyio
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from zerocopy.refresh import ClaimedRun, RunHooks
from zerocopy.scheduling.models import SourceSlot
from zerocopy.scheduling.slots import REFRESH, SYNC, SourceSlots, slot_key
from zerocopy.state.models import Credential, RefreshRun, RunStatus, Source, utcnow


class SlottedEngine:
    """A :class:`~zerocopy.refresh.RefreshEngine` whose ``execute`` first takes a source slot.

    Everything else is the engine's own (``request``, ``request_cancel``, ``reap_lost``, …),
    so it can stand in for the engine wherever a runner expects one.
    """

    def __init__(self, engine: Any, slots: SourceSlots) -> None:
        self.engine = engine
        self.slots = slots

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    async def execute(
        self,
        run_id: str,
        *,
        source_id: str | None = None,
        kind: str | None = None,
        lane: int | None = None,
        handoff: Any = None,
    ) -> RefreshRun:
        """Take a slot of the run's source, then execute it (the engine claims it or not).

        A queue job carries its run's ``source_id``, ``kind`` and ``lane`` (the slot it is
        expected to find free): then nothing is read before the slot is taken, and a run
        that is no longer queued is simply not claimed by the engine.

        ``handoff`` (a queue job's, see :class:`zerocopy.runner_procrastinate.JobHandOff`):
        ``await handoff.in_final(session)`` joins the run's final transaction and returns the
        worker's next refresh job (its task arguments) or ``None``; when that is the next run
        of the same lane, it is claimed there and the lane's slot passed on to it
        (:meth:`_preclaim`, ``handoff.preclaimed(claimed)``), and ``handoff.settle()`` is
        called once that transaction committed. ``handoff.claimed``: this run, claimed so by the previous run's final
        transaction (executed at once: no claim, no slot to take).
        """
        if source_id is None or kind is None:
            async with self.engine.db.session() as s:
                row = (
                    await s.execute(
                        sa.select(
                            RefreshRun.status,
                            RefreshRun.source_id,
                            Source.kind,
                            Credential.settings,
                        )
                        .join(Source, Source.id == RefreshRun.source_id)
                        .join(Credential, Credential.id == Source.credential_id)
                        .where(RefreshRun.id == run_id)
                    )
                ).first()
            if row is None or row.status != RunStatus.QUEUED:
                return await self.engine.get(run_id)  # type: ignore[no-any-return]
            source_id, kind = slot_key(row.source_id, row.kind, row.settings), row.kind
        limit = self.slots.limit_for(kind)
        hooks = _SlotHooks(
            self.slots,
            source_id,
            lane if lane is not None and lane < limit else None,
            handoff,
            self._preclaim if handoff is not None else None,
        )
        claimed = getattr(handoff, "claimed", None)
        try:
            if claimed is not None:
                return await self.engine.execute(run_id, hooks=hooks, claimed=claimed)  # type: ignore[no-any-return]
            if hooks.slot is not None:
                # The expected lane: taken in the claim's transaction (no transaction of its
                # own); taken meanwhile, or the run not claimable, and nothing is held.
                try:
                    return await self.engine.execute(run_id, hooks=hooks)  # type: ignore[no-any-return]
                except _SlotTaken:
                    hooks.slot = None  # another run holds it: wait for a slot as usual
            await self.slots.acquire(source_id, kind, run_id, REFRESH)
            return await self.engine.execute(run_id, hooks=hooks)  # type: ignore[no-any-return]
        finally:
            if not hooks.final_committed:
                with anyio.CancelScope(shield=True):
                    await self.slots.release(run_id)
            elif handoff is not None:
                handoff.settle()

    async def _preclaim(
        self,
        session: Any,
        job: dict[str, Any],
        finished: str,
        held: tuple[str, int] | None,
    ) -> ClaimedRun | None:
        """In the final transaction of run ``finished``: give its slot back (``held``: the
        slot it holds, if known) or, when the next job is the next run of the same lane (the
        usual case), pass the slot on to it in one ``UPDATE`` and claim that run.

        Only the finished run's own slot row is touched: a final transaction never waits
        for a slot another one holds (two of them swapping lanes would deadlock). A job of
        another lane, or a run that is not claimable, runs the usual way (``None``).
        """
        conn = await session.connection()
        run_id, source_id, kind, lane = (
            job.get("run_id"),
            job.get("source_id"),
            job.get("kind"),
            job.get("lane"),
        )
        if (
            not run_id
            or not kind
            or held is None
            or held != (source_id, lane)
            or not 0 <= held[1] < self.slots.limit_for(kind)
        ):
            await conn.execute(_GIVE_BACK_SLOT, {"p_run_id": finished})
            return None
        passed = (
            await conn.execute(
                _PASS_SLOT,
                {
                    "p_finished": finished,
                    "p_run_id": run_id,
                    "p_now": utcnow(),
                    "p_kind": REFRESH,
                },
            )
        ).first()
        if passed is None:
            return None  # the finished run held no slot row (reclaimed meanwhile)
        claimed: ClaimedRun | None = await self.engine.claim_in(session, run_id)
        if claimed is None:
            await conn.execute(_GIVE_BACK_SLOT, {"p_run_id": run_id})
        return claimed


class _SlotTaken(Exception):
    pass


class _SlotHooks(RunHooks):
    """Take the lane's slot in the claim's transaction, give it back in the final one (and
    there hand the queue job's lane over, when it has a ``handoff``)."""

    def __init__(
        self,
        slots: SourceSlots,
        source_id: str,
        slot: int | None,
        handoff: Any = None,
        preclaim: Callable[
            [Any, dict[str, Any], str, tuple[str, int] | None], Awaitable[ClaimedRun | None]
        ]
        | None = None,
    ) -> None:
        self.slots = slots
        self.source_id = source_id
        self.slot = slot
        self.handoff = handoff
        self.preclaim = preclaim
        self.final_committed = False
        self._handoff_tried = False

    async def on_claim(self, session: Any, run_id: str) -> None:
        if self.slot is None:
            return
        conn = await session.connection()
        try:
            await conn.execute(
                _TAKE_SLOT,
                {
                    "source_id": self.source_id,
                    "slot": self.slot,
                    "run_kind": REFRESH,
                    "run_id": run_id,
                    "acquired_at": utcnow(),
                },
            )
        except IntegrityError as exc:
            raise _SlotTaken from exc

    async def on_final(self, session: Any, run_id: str) -> None:
        conn = await session.connection()
        handing = self.handoff is not None
        if self.handoff is not None:
            # What an earlier final transaction (rolled back) handed over is void; and the
            # hand-off is tried in one final transaction only, so that it cannot fail the
            # run's record twice.
            self.handoff.reset()
            handing = not self._handoff_tried and not self.handoff.stopping()
        if not handing or self.handoff is None:
            await conn.execute(_GIVE_BACK_SLOT, {"p_run_id": run_id})
            return
        self._handoff_tried = True
        job = await self.handoff.in_final(session)
        if job is None or self.preclaim is None:
            await conn.execute(_GIVE_BACK_SLOT, {"p_run_id": run_id})
            return
        held = (self.source_id, self.slot) if self.slot is not None else None
        claimed = await self.preclaim(session, job, run_id, held)
        if claimed is not None:
            self.handoff.preclaimed(claimed)


_SLOT = cast(sa.Table, SourceSlot.__table__)
_TAKE_SLOT = sa.insert(_SLOT)
_PASS_SLOT = (
    sa.update(_SLOT)
    .where(_SLOT.c.run_id == sa.bindparam("p_finished"))
    .values(
        run_id=sa.bindparam("p_run_id"),
        run_kind=sa.bindparam("p_kind"),
        acquired_at=sa.bindparam("p_now"),
    )
    .returning(_SLOT.c.slot)
)
"""A finished run's slot, passed on to the next run of its lane (the queue's hand-off)."""
_GIVE_BACK_SLOT = sa.delete(_SLOT).where(_SLOT.c.run_id == sa.bindparam("p_run_id"))
"""Built once: the slot statements ride in every queue job's claim and final transactions."""


class SlottedSyncExecutor:
    """Executes a scheduled or requested sync run under its source's slot (both runners).

    ``execute`` is the sync layer's (``services.syncs.execute_run`` bound to a runtime), which
    picks the warehouse or file engine. A sync run is ``running`` from the moment it is
    requested, so while it waits for a slot this keeps its heartbeat fresh: a full source
    must not get a waiting run reaped as ``worker_lost``. File-storage syncs have no source
    and no slot.
    """

    def __init__(
        self,
        db: Any,
        execute: Callable[[str], Awaitable[Any]],
        slots: SourceSlots,
        *,
        heartbeat_s: float = 2.0,
    ) -> None:
        self.db = db
        self._execute = execute
        self.slots = slots
        self.heartbeat_s = heartbeat_s

    async def execute(self, run_id: str) -> Any:
        from zerocopy.state.sync_models import Sync, SyncRun

        async with self.db.session() as s:
            row = (
                await s.execute(
                    sa.select(
                        SyncRun.status,
                        SyncRun.finished_at,
                        Sync.source_id,
                        Source.kind,
                        Credential.settings,
                    )
                    .join(Sync, Sync.id == SyncRun.sync_id)
                    .outerjoin(Source, Source.id == Sync.source_id)
                    .outerjoin(Credential, Credential.id == Source.credential_id)
                    .where(SyncRun.id == run_id)
                )
            ).first()
        if row is None or row.status != "running" or row.finished_at is not None:
            return None
        if row.source_id is None:
            return await self._execute(run_id)
        cancelled = False
        try:
            async with anyio.create_task_group() as tg:

                async def beat() -> None:
                    nonlocal cancelled
                    await self.keep_alive(run_id)  # returns once the run was cancelled
                    cancelled = True
                    tg.cancel_scope.cancel()  # stop waiting for the slot

                tg.start_soon(beat)
                key = slot_key(row.source_id, row.kind, row.settings)
                await self.slots.acquire(key, row.kind, run_id, SYNC)
                tg.cancel_scope.cancel()
        finally:
            if cancelled:
                with anyio.CancelScope(shield=True):
                    await self.slots.release(run_id)  # in case the slot came at that moment
        if cancelled:
            return None
        try:
            # The run starts now, holding its slot: its record shows when it really ran
            # (created_at keeps the request), and its max runtime excludes the wait.
            now = utcnow()
            async with self.db.transaction() as s:
                await s.execute(
                    sa.update(SyncRun)
                    .where(SyncRun.id == run_id, SyncRun.status == "running")
                    .values(started_at=now, heartbeat_at=now)
                )
            return await self._execute(run_id)
        finally:
            with anyio.CancelScope(shield=True):
                await self.slots.release(run_id)

    async def keep_alive(self, run_id: str, *, first_after_s: float = 0.0) -> None:
        """Beat for a waiting ``running`` sync run until cancelled, or until the run's cancel
        is requested: then the run ends ``cancelled`` at once, without waiting any longer
        for a place or a slot (the engine sees the request before touching the warehouse),
        and this returns.

        A cancel used to wait for the source's slot: behind a long refresh the run stayed
        ``running`` (and run now answered ``sync_in_progress``) for as long as that took.

        By default the first beat is at once: the run was kept alive by the queue while its
        job waited, and a reaper must not find it stale between the job's fetch and the first
        beat. The in-process runner, which just created the run, waits ``first_after_s``.
        """
        from zerocopy.state.sync_models import SyncRun

        await anyio.sleep(first_after_s)
        while True:
            async with self.db.transaction() as s:
                await s.execute(
                    sa.update(SyncRun)
                    .where(SyncRun.id == run_id, SyncRun.status == "running")
                    .values(heartbeat_at=utcnow())
                )
                cancel = await s.scalar(
                    sa.select(SyncRun.cancel_requested_at).where(
                        SyncRun.id == run_id, SyncRun.status == "running"
                    )
                )
            if cancel is not None:
                with anyio.CancelScope(shield=True):
                    await self._execute(run_id)  # records ``cancelled`` (nothing is read)
                return
            await anyio.sleep(self.heartbeat_s)
