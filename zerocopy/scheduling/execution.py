"""Executing a queued refresh under its source's concurrency slot (both runners use this)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from zerocopy.scheduling.slots import REFRESH, SourceSlots
from zerocopy.state.models import RefreshRun, RunStatus, Source


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

    async def execute(self, run_id: str) -> RefreshRun:
        async with self.engine.db.session() as s:
            row = (
                await s.execute(
                    sa.select(RefreshRun.status, RefreshRun.source_id, Source.kind)
                    .join(Source, Source.id == RefreshRun.source_id)
                    .where(RefreshRun.id == run_id)
                )
            ).first()
        if row is None or row.status != RunStatus.QUEUED:
            return await self.engine.get(run_id)  # type: ignore[no-any-return]
        async with self.slots.hold(row.source_id, row.kind, run_id, REFRESH):
            return await self.engine.execute(run_id)  # type: ignore[no-any-return]
