"""Executing a queued refresh or sync run under its source's concurrency slot (both runners)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import anyio
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from zerocopy.refresh import RunHooks
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
    ) -> RefreshRun:
        """Take a slot of the run's source, then execute it (the engine claims it or not).

        A queue job carries its run's ``source_id``, ``kind`` and ``lane`` (the slot it is
        expected to find free): then nothing is read before the slot is taken, and a run
        that is no longer queued is simply not claimed by the engine.
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
            self.slots, source_id, lane if lane is not None and lane < limit else None
        )
        try:
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


class _SlotTaken(Exception):
    pass


class _SlotHooks(RunHooks):
    """Take the lane's slot in the claim's transaction, give it back in the final one."""

    def __init__(self, slots: SourceSlots, source_id: str, slot: int | None) -> None:
        self.slots = slots
        self.source_id = source_id
        self.slot = slot
        self.final_committed = False

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
        await conn.execute(_GIVE_BACK_SLOT, {"p_run_id": run_id})


_SLOT = cast(sa.Table, SourceSlot.__table__)
_TAKE_SLOT = sa.insert(_SLOT)
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
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.keep_alive, run_id)
            key = slot_key(row.source_id, row.kind, row.settings)
            await self.slots.acquire(key, row.kind, run_id, SYNC)
            tg.cancel_scope.cancel()
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
        """Beat for a waiting ``running`` sync run until cancelled.

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
            await anyio.sleep(self.heartbeat_s)
