"""Per-source concurrency slots, enforced by the state database across every process.

A run holds one of its source's ``limit`` slots (rows ``source_slot(source_id, slot)``, primary
key on both) while it talks to the warehouse. Taking a slot is one ``INSERT``: two processes
racing for the same slot cannot both win. A slot whose run has ended (or whose process died
and whose run was then reaped as ``worker_lost``) is taken back by the next acquirer, so a
crash never leaks capacity for longer than the heartbeat timeout.

The limit comes from the adapter's flags: ``SINGLE_WRITER_PROCESS`` (a DuckDB file) means 1,
so workers queue for the file instead of failing on its lock, and the slots are the file's
(:func:`slot_key`), shared by every source on it; ``MAX_CONCURRENT_QUERIES`` caps the default
(4).
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from zerocopy.logging import get_logger
from zerocopy.scheduling.models import SourceSlot
from zerocopy.state.db import Database
from zerocopy.state.models import RefreshRun, RunStatus, utcnow

log = get_logger("zerocopy.scheduling.slots")

DEFAULT_SOURCE_LIMIT = 4
"""Queries at once per source unless its adapter asks for fewer (issue 9)."""

REFRESH = "refresh"
SYNC = "sync"
HOUSEKEEPING = "housekeeping"

HOUSEKEEPING_SLOT_TTL = timedelta(minutes=10)
"""A janitor slot older than this belongs to a dead process (a pass takes seconds)."""


def source_limit(kind: str, default: int = DEFAULT_SOURCE_LIMIT) -> int:
    """Queries at once for a source of ``kind``: the default capped by the adapter's flags."""
    from dialects.registry import adapter_class

    try:
        cls = adapter_class(kind)
    except Exception:
        return default
    if getattr(cls, "SINGLE_WRITER_PROCESS", False):
        return 1
    cap = getattr(cls, "MAX_CONCURRENT_QUERIES", None)
    return min(default, cap) if cap else default


def slot_key(source_id: str, kind: str, settings: Mapping[str, Any] | None) -> str:
    """The slot set (and queue lanes) a source's runs share.

    Usually the source's own. A warehouse that admits one writing process at a time (a DuckDB
    file) is limited per file, not per source: every source on the file shares one key, so
    two sources on one file never run in two processes at once.
    """
    from dialects.registry import adapter_class

    path = (settings or {}).get("path")
    try:
        single = bool(getattr(adapter_class(kind), "SINGLE_WRITER_PROCESS", False))
    except Exception:
        single = False
    if not single or not path:
        return source_id
    digest = hashlib.sha256(os.path.realpath(str(path)).encode()).hexdigest()
    return "file:" + digest[:31]  # as long as a source id (the slot table's column)


class SourceSlots:
    """``async with slots.hold(source_id, kind, run_id, run_kind="refresh"): ...``."""

    def __init__(
        self, db: Database, *, default_limit: int = DEFAULT_SOURCE_LIMIT, poll_s: float = 0.1
    ) -> None:
        self.db = db
        self.default_limit = default_limit
        self.poll_s = poll_s

    def limit_for(self, kind: str) -> int:
        return source_limit(kind, self.default_limit)

    @asynccontextmanager
    async def hold(
        self,
        source_id: str,
        kind: str,
        run_id: str,
        run_kind: str = REFRESH,
        *,
        prefer: int | None = None,
    ) -> AsyncIterator[int]:
        """Wait for a free slot of ``source_id``, hold it for the block, then give it back."""
        slot = await self.acquire(source_id, kind, run_id, run_kind, prefer=prefer)
        try:
            yield slot
        finally:
            with anyio.CancelScope(shield=True):
                await self.release(run_id)

    async def acquire(
        self,
        source_id: str,
        kind: str,
        run_id: str,
        run_kind: str = REFRESH,
        *,
        prefer: int | None = None,
    ) -> int:
        """A slot of ``source_id`` for ``run_id``, waiting while all are held.

        ``prefer``: the slot the caller expects free (a queue lane): tried first, with one
        ``INSERT`` and no read.
        """
        limit = self.limit_for(kind)
        if (
            prefer is not None
            and 0 <= prefer < limit
            and await self._insert(source_id, prefer, run_id, run_kind)
        ):
            return prefer
        delay = self.poll_s
        while True:
            slot = await self.try_acquire(source_id, limit, run_id, run_kind)
            if slot is not None:
                return slot
            await anyio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 1.5, 1.0)

    async def try_acquire(
        self, source_id: str, limit: int, run_id: str, run_kind: str = REFRESH
    ) -> int | None:
        """A free slot number now, or ``None`` when all ``limit`` are held by live runs."""
        held = await self._held(source_id)
        if len(held) >= limit:
            await self._reclaim(source_id)
            held = await self._held(source_id)
        for slot in range(limit):
            if slot not in held and await self._insert(source_id, slot, run_id, run_kind):
                return slot
        return None

    async def _insert(self, source_id: str, slot: int, run_id: str, run_kind: str) -> bool:
        try:
            async with self.db.transaction() as s:
                s.add(SourceSlot(source_id=source_id, slot=slot, run_kind=run_kind, run_id=run_id))
        except IntegrityError:
            return False  # another process took it (or this run already holds one)
        return True

    async def release(self, run_id: str) -> None:
        async with self.db.transaction() as s:
            await s.execute(sa.delete(SourceSlot).where(SourceSlot.run_id == run_id))

    async def _held(self, source_id: str) -> set[int]:
        async with self.db.session() as s:
            rows = await s.scalars(
                sa.select(SourceSlot.slot).where(SourceSlot.source_id == source_id)
            )
            return set(rows.all())

    async def _reclaim(self, source_id: str) -> None:
        """Free slots whose refresh has ended (its process died after taking it) or expired."""
        sync_finished = await self._finished_sync_slots(source_id)
        async with self.db.transaction() as s:
            ended = (
                sa.select(SourceSlot.run_id)
                .outerjoin(RefreshRun, RefreshRun.id == SourceSlot.run_id)
                .where(
                    SourceSlot.source_id == source_id,
                    SourceSlot.run_kind == REFRESH,
                    sa.or_(RefreshRun.id.is_(None), RefreshRun.status.not_in(RunStatus.ACTIVE)),
                )
            )
            stale = list((await s.scalars(ended)).all()) + sync_finished
            expired = (
                await s.scalars(
                    sa.select(SourceSlot.run_id).where(
                        SourceSlot.source_id == source_id,
                        SourceSlot.run_kind == HOUSEKEEPING,
                        SourceSlot.acquired_at < utcnow() - HOUSEKEEPING_SLOT_TTL,
                    )
                )
            ).all()
            stale += list(expired)
            if stale:
                await s.execute(sa.delete(SourceSlot).where(SourceSlot.run_id.in_(stale)))
        if stale:
            log.warning("slots.reclaimed", source_id=source_id, runs=stale)

    async def _finished_sync_slots(self, source_id: str) -> list[str]:
        try:
            from zerocopy.state.sync_models import SyncRun
        except ImportError:
            return []
        async with self.db.session() as s:
            rows = await s.scalars(
                sa.select(SourceSlot.run_id)
                .outerjoin(SyncRun, SyncRun.id == SourceSlot.run_id)
                .where(
                    SourceSlot.source_id == source_id,
                    SourceSlot.run_kind == SYNC,
                    sa.or_(SyncRun.id.is_(None), SyncRun.status != "running"),
                )
            )
            return list(rows.all())

    async def in_use(self) -> dict[str, int]:
        """Slots held per source (metrics)."""
        async with self.db.session() as s:
            rows = await s.execute(
                sa.select(SourceSlot.source_id, sa.func.count()).group_by(SourceSlot.source_id)
            )
            return {source: int(n) for source, n in rows.all()}
