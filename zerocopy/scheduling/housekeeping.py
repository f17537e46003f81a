"""Periodic duties: worker-lost reaping, the temp-table janitor, retention sweeps.

Each duty is guarded by a lease row (``scheduling_lease``): a process performs it only when it
moves the lease's ``next_at`` forward with a compare-and-set, so with N workers a duty still
runs once per period.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from dialects.base import TEMP_TABLE_PREFIX
from zerocopy.logging import get_logger, redact_text
from zerocopy.scheduling.config import SchedulingConfig
from zerocopy.scheduling.counters import bump
from zerocopy.scheduling.models import Lease
from zerocopy.scheduling.slots import HOUSEKEEPING, SourceSlots, slot_key
from zerocopy.scheduling.steps import run_step
from zerocopy.state.db import Database
from zerocopy.state.models import (
    Credential,
    RefreshRun,
    RunStatus,
    Source,
    SourceStatus,
    new_id,
    utcnow,
)

log = get_logger("zerocopy.scheduling.housekeeping")


async def take_lease(
    db: Database,
    name: str,
    every_s: float,
    holder: str,
    now: datetime | None = None,
    *,
    run_on_create: bool = True,
) -> bool:
    """True if this process should perform duty ``name`` now (at most once per ``every_s``).

    ``run_on_create=False``: a duty never performed before first runs one period from now.
    """
    taken, _next_at = await _take_lease(db, name, every_s, holder, now, run_on_create=run_on_create)
    return taken


async def _take_lease(
    db: Database,
    name: str,
    every_s: float,
    holder: str,
    now: datetime | None = None,
    *,
    run_on_create: bool = True,
) -> tuple[bool, datetime | None]:
    """:func:`take_lease`, plus when the lease falls due next if another process holds it."""
    now = now or utcnow()
    following = now + timedelta(seconds=every_s)
    async with db.transaction() as s:
        result = await s.execute(
            sa.update(Lease)
            .where(Lease.name == name, Lease.next_at <= now)
            .values(next_at=following, holder=holder)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return True, following
        next_at = await s.scalar(sa.select(Lease.next_at).where(Lease.name == name))
    if next_at is not None:
        return False, next_at
    try:
        async with db.transaction() as s:
            s.add(Lease(name=name, holder=holder, next_at=following))
    except IntegrityError:
        return False, None
    return run_on_create, following


@dataclass(slots=True)
class JanitorReport:
    """One janitor pass: tables dropped and kept per source."""

    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Sources busy with as many runs as their limit: swept on a later pass."""
    errors: dict[str, str] = field(default_factory=dict)


class Janitor:
    """Drops ``zc_tmp_*`` tables whose run is not running and is older than max runtime + grace."""

    def __init__(
        self,
        db: Database,
        adapter_factory: Callable[..., Any],
        slots: SourceSlots,
        *,
        grace_s: float = 300.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.adapter_factory = adapter_factory
        self.slots = slots
        self.grace_s = grace_s
        self.clock = clock

    async def sweep(self) -> JanitorReport:
        report = JanitorReport()
        async with self.db.session() as s:
            sources = (
                await s.execute(
                    sa.select(Source, Credential)
                    .join(Credential, Credential.id == Source.credential_id)
                    .where(Source.status == SourceStatus.ACTIVE)
                )
            ).all()
        for source, credential in sources:
            try:
                await self._sweep_source(source, credential, report)
            except Exception as exc:
                report.errors[source.id] = redact_text(str(exc))
                log.warning(
                    "janitor.source_failed", source_id=source.id, error=redact_text(str(exc))
                )
        if report.dropped:
            await bump(self.db, "janitor_drops", len(report.dropped))
        log.info(
            "janitor.pass",
            dropped=len(report.dropped),
            kept=len(report.kept),
            failed_sources=len(report.errors),
        )
        return report

    async def _sweep_source(
        self, source: Source, credential: Credential, report: JanitorReport
    ) -> None:
        # The janitor talks to the warehouse like a run: it needs a free slot (a DuckDB file
        # admits one process at a time). A busy source is skipped until the next pass rather
        # than waited for, so the janitor never queues behind refreshes.
        holder = new_id()  # fits the run id column; run_kind tells it apart
        limit = self.slots.limit_for(source.kind)
        key = slot_key(source.id, source.kind, credential.settings)
        if await self.slots.try_acquire(key, limit, holder, HOUSEKEEPING) is None:
            report.skipped.append(source.id)
            return
        try:
            adapter = self.adapter_factory(source, credential, max_runtime_s=60.0)
            try:
                names = await adapter.list_temp_tables(TEMP_TABLE_PREFIX)
                victims = await self._orphans(source.id, names, report) if names else []
                for name in victims:
                    await adapter.drop_table(name)
                    report.dropped.append(name)
                    log.info("janitor.dropped", source_id=source.id, table=name)
            finally:
                await adapter.aclose()
        finally:
            await self.slots.release(holder)

    async def _orphans(self, source_id: str, names: list[str], report: JanitorReport) -> list[str]:
        now = self.clock()
        bare = {n.rsplit(".", 1)[-1].strip('"`[]').lower(): n for n in names}
        async with self.db.session() as s:
            runs = (
                await s.scalars(
                    sa.select(RefreshRun).where(
                        RefreshRun.source_id == source_id,
                        sa.func.lower(RefreshRun.temp_table).in_(list(bare)),
                    )
                )
            ).all()
        by_table = {(r.temp_table or "").lower(): r for r in runs}
        victims: list[str] = []
        for key, name in bare.items():
            run = by_table.get(key)
            if run is None:
                # No run record: its segment was deleted (runs cascade) or another deployment
                # shares the scope. Only a table of a run of ours is ever dropped.
                report.kept.append(name)
                continue
            if run.status in RunStatus.ACTIVE:
                report.kept.append(name)
                continue
            born = run.started_at or run.created_at
            if (now - born).total_seconds() < run.max_runtime_s + self.grace_s:
                report.kept.append(name)  # its query may still be dying server-side
                continue
            victims.append(name)
        return victims


async def sweep_retention(db: Database) -> dict[str, Any] | None:
    """Run the sync layer's retention (row logs 30 days, runs 12 months) if it is installed."""
    for module_name in ("zerocopy.services.syncs", "zerocopy.sync.retention", "zerocopy.sync"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        sweep: Callable[..., Awaitable[Any]] | None = getattr(module, "sweep_retention", None)
        if sweep is not None:
            result = await sweep(db)
            log.info("retention.swept", result=result if isinstance(result, dict) else str(result))
            return result if isinstance(result, dict) else {"result": str(result)}
    log.info("retention.unavailable", reason="the sync layer has no sweep_retention(db) yet")
    return None


class Housekeeper:
    """Runs each duty when its lease says so; call :meth:`pass_once` periodically."""

    def __init__(
        self,
        db: Database,
        engine: Any,
        janitor: Janitor,
        *,
        config: SchedulingConfig,
        holder: str,
        extra_reaper: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.db = db
        self.engine = engine
        self.janitor = janitor
        self.config = config
        self.holder = holder
        self.extra_reaper = extra_reaper

    async def reap(self) -> list[str]:
        lost: list[str] = await self.engine.reap_lost(self.config.worker_lost_after_s)
        if self.extra_reaper is not None:
            await self.extra_reaper()
        return lost

    async def pass_once(self) -> dict[str, Any]:
        """Every duty whose lease is due, one after the other (tests)."""
        done: dict[str, Any] = {}
        for name, every, duty in self._duties():
            if await take_lease(self.db, name, every, self.holder):
                done[name] = await duty()
        return done

    def _duties(self) -> list[tuple[str, float, Callable[[], Awaitable[Any]]]]:
        return [
            ("reaper", self.config.reaper_every_s, self.reap),
            ("janitor", self.config.janitor_every_s, self.janitor.sweep),
            ("retention", self.config.retention_every_s, lambda: sweep_retention(self.db)),
        ]

    async def run(self) -> None:
        """Each duty in its own loop, so a slow janitor pass never delays worker-lost reaping."""
        async with anyio.create_task_group() as tg:
            for name, every, duty in self._duties():
                tg.start_soon(self._loop, name, every, duty)

    async def _loop(self, name: str, every: float, duty: Callable[[], Awaitable[Any]]) -> None:
        tick = max(0.2, min(every, self.config.tick_s))
        # The janitor's first pass waits a period: a starting `serve` must not open every
        # warehouse (a DuckDB file another process is using) right away.
        first = name != "janitor"

        wait = tick

        async def step() -> None:
            nonlocal wait
            taken, next_at = await _take_lease(
                self.db, name, every, self.holder, run_on_create=first
            )
            # Sleep until the lease falls due (checking at least every period), not every
            # tick: N idle workers polling 3 leases each is load on the state database.
            wait = tick
            if next_at is not None:
                ahead = (_aware(next_at) - utcnow()).total_seconds()
                wait = min(max(tick, ahead), max(tick, every))
            if taken:
                await duty()

        while True:
            await run_step(f"housekeeping.{name}", step)
            await anyio.sleep(wait)


def _aware(value: datetime) -> datetime:
    """SQLite gives naive datetimes back: they are UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
