"""Prometheus metrics, computed from the state database at scrape time.

Runs are executed by many processes (the API's in-process runner or N workers), so the truth
is the database, not one process's memory: each scrape reads run records, the queue and the
shared counters, and renders them with ``prometheus_client``. Scrapes are cheap (a few
aggregate queries; duration histograms look at the last ``WINDOW``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from zerocopy.scheduling.counters import read_all
from zerocopy.scheduling.models import ScheduledRun, SourceSlot
from zerocopy.state.db import Database
from zerocopy.state.models import RefreshRun, RunStatus, utcnow

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

WINDOW = timedelta(hours=24)
"""Duration and lag histograms cover runs finished/started within this window."""

DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)


def _buckets(values: Iterable[float], buckets: tuple[float, ...]) -> tuple[list[Any], float]:
    """Cumulative ``(bound, count)`` pairs and the sum, as ``add_metric`` takes them."""
    values = sorted(values)
    counts: list[Any] = []
    i = 0
    for bound in buckets:
        while i < len(values) and values[i] <= bound:
            i += 1
        counts.append((str(bound), float(i)))
    counts.append(("+Inf", float(len(values))))
    return counts, float(sum(values))


def _histogram(
    name: str, doc: str, values: Iterable[float], buckets: tuple[float, ...], labels: dict[str, str]
) -> HistogramMetricFamily:
    values = sorted(values)
    counts, total = [], 0.0
    i = 0
    for bound in buckets:
        while i < len(values) and values[i] <= bound:
            total += values[i]
            i += 1
        counts.append((str(bound), float(i)))
    total += sum(values[i:])
    counts.append(("+Inf", float(len(values))))
    family = HistogramMetricFamily(name, doc, labels=list(labels))
    family.add_metric(list(labels.values()), counts, total)
    return family


async def _runs(
    s: Any, model: Any, kind: str, since: datetime
) -> tuple[list[tuple[str, str, str, str, int]], list[tuple[str, str, float]]]:
    """Runs of one kind (``RefreshRun`` or ``SyncRun``): counts by trigger/status/code, and
    the durations of those finished since ``since``."""
    counts = await s.execute(
        sa.select(model.trigger, model.status, model.error_code, sa.func.count()).group_by(
            model.trigger, model.status, model.error_code
        )
    )
    finished = await s.execute(
        sa.select(model.status, model.started_at, model.finished_at).where(
            model.finished_at >= since, model.started_at.is_not(None)
        )
    )
    return (
        [(kind, t, st, code or "", int(n)) for t, st, code, n in counts.all()],
        [
            (kind, st, (f - b).total_seconds())
            for st, b, f in finished.all()
            if b is not None and f is not None
        ],
    )


async def snapshot(db: Database) -> dict[str, Any]:
    """Everything a scrape renders, read from the database."""
    since = utcnow() - WINDOW
    async with db.session() as s:
        by_status, durations = await _runs(s, RefreshRun, "refresh", since)
        timings = (
            await s.scalars(
                sa.select(RefreshRun.timings).where(
                    RefreshRun.finished_at >= since, RefreshRun.timings.is_not(None)
                )
            )
        ).all()
        moved = (
            await s.execute(
                sa.select(
                    sa.func.coalesce(sa.func.sum(RefreshRun.member_count), 0),
                    sa.func.coalesce(sa.func.sum(RefreshRun.added), 0),
                    sa.func.coalesce(sa.func.sum(RefreshRun.removed), 0),
                ).where(RefreshRun.status == RunStatus.SUCCEEDED)
            )
        ).one()
        lags = (
            await s.execute(
                sa.select(ScheduledRun.due_at, RefreshRun.started_at)
                .join(RefreshRun, RefreshRun.id == ScheduledRun.run_id)
                .where(RefreshRun.started_at >= since)
            )
        ).all()
        queued = await s.scalar(
            sa.select(sa.func.count()).where(RefreshRun.status == RunStatus.QUEUED)
        )
        running = await s.scalar(
            sa.select(sa.func.count()).where(RefreshRun.status == RunStatus.RUNNING)
        )
        slots = await s.scalar(sa.select(sa.func.count()).select_from(SourceSlot))
    syncs = await _sync_snapshot(db, since)
    queue_jobs: dict[str, int] = {}
    if db.is_postgres:
        async with db.session() as s:
            present = await s.scalar(sa.text("SELECT to_regclass('procrastinate_jobs')"))
            if present is not None:
                rows = await s.execute(
                    sa.text("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1")
                )
                queue_jobs = {status: int(n) for status, n in rows.all()}
    return {
        "by_status": by_status + syncs["by_status"],
        "durations": durations + syncs["durations"],
        "sync_lags": syncs["lags"],
        "rows": syncs["rows"],
        "sync_running": syncs["running"],
        "warehouse_s": [
            float((t or {}).get("materialize", 0)) + float((t or {}).get("read", 0))
            for t in timings
        ],
        "moved": tuple(int(x) for x in moved),
        "lags": [max(0.0, (b - d).total_seconds()) for d, b in lags if b is not None],
        "queued": int(queued or 0),
        "running": int(running or 0),
        "slots": int(slots or 0),
        "queue_jobs": queue_jobs,
        "counters": await read_all(db),
    }


async def _sync_snapshot(db: Database, since: datetime) -> dict[str, Any]:
    """Sync runs: by trigger/status/code, durations and lags (last 24 h), rows moved."""
    from zerocopy.state.sync_models import SyncRun

    async with db.session() as s:
        by_status, durations = await _runs(s, SyncRun, "sync", since)
        lags = (
            await s.execute(
                sa.select(ScheduledRun.due_at, SyncRun.started_at)
                .join(SyncRun, SyncRun.id == ScheduledRun.run_id)
                .where(SyncRun.started_at >= since)
            )
        ).all()
        rows = (
            await s.execute(
                sa.select(
                    sa.func.coalesce(sa.func.sum(SyncRun.rows_read), 0),
                    sa.func.coalesce(sa.func.sum(SyncRun.rows_delivered), 0),
                    sa.func.coalesce(sa.func.sum(SyncRun.rows_skipped), 0),
                    sa.func.coalesce(sa.func.sum(SyncRun.rows_errored), 0),
                )
            )
        ).one()
        running = await s.scalar(
            sa.select(sa.func.count()).select_from(SyncRun).where(SyncRun.status == "running")
        )
    return {
        "by_status": by_status,
        "durations": durations,
        "lags": [max(0.0, (b - d).total_seconds()) for d, b in lags if b is not None],
        "rows": tuple(int(x) for x in rows),
        "running": int(running or 0),
    }


class _Snapshot(Collector):
    def __init__(self, snap: dict[str, Any]) -> None:
        self.snap = snap

    def collect(self) -> Iterable[Metric]:
        snap = self.snap
        runs = CounterMetricFamily(
            "zerocopy_runs",
            "Runs by kind, trigger, status and error code.",
            labels=["kind", "trigger", "status", "error_code"],
        )
        for kind, trigger, status, code, n in snap["by_status"]:
            runs.add_metric([kind, trigger, status, code], n)
        yield runs
        # One family, one sample set per (kind, status): the exposition format wants a
        # metric family once.
        durations = HistogramMetricFamily(
            "zerocopy_run_duration_seconds",
            "Run durations (last 24 h) by kind and status.",
            labels=["kind", "status"],
        )
        for kind, status in sorted({(k, st) for k, st, _ in snap["durations"]}):
            values = [d for k, st, d in snap["durations"] if (k, st) == (kind, status)]
            durations.add_metric([kind, status], *_buckets(values, DURATION_BUCKETS))
        yield durations
        yield _histogram(
            "zerocopy_warehouse_query_seconds",
            "Warehouse time per run (materialize + read, last 24 h).",
            snap["warehouse_s"],
            DURATION_BUCKETS,
            {"kind": "refresh"},
        )
        lags = HistogramMetricFamily(
            "zerocopy_schedule_lag_seconds",
            "Scheduled runs: due time to start (last 24 h).",
            labels=["kind"],
        )
        lags.add_metric(["refresh"], *_buckets(snap["lags"], LAG_BUCKETS))
        lags.add_metric(["sync"], *_buckets(snap["sync_lags"], LAG_BUCKETS))
        yield lags
        members, added, removed = snap["moved"]
        ids = CounterMetricFamily(
            "zerocopy_ids_moved", "Ids read back and changed.", labels=["what"]
        )
        ids.add_metric(["read"], members)
        ids.add_metric(["added"], added)
        ids.add_metric(["removed"], removed)
        yield ids
        read, delivered, skipped, errored = snap["rows"]
        rows = CounterMetricFamily(
            "zerocopy_rows_moved",
            "Sync rows read, delivered, skipped and refused.",
            labels=["what"],
        )
        rows.add_metric(["read"], read)
        rows.add_metric(["delivered"], delivered)
        rows.add_metric(["skipped"], skipped)
        rows.add_metric(["errored"], errored)
        yield rows
        depth = GaugeMetricFamily(
            "zerocopy_queue_depth", "Runs waiting or running.", labels=["kind", "state"]
        )
        depth.add_metric(["refresh", "queued"], snap["queued"])
        depth.add_metric(["refresh", "running"], snap["running"])
        # A sync run is "running" from its request on, waiting for its slot included.
        depth.add_metric(["sync", "running"], snap["sync_running"])
        yield depth
        jobs = GaugeMetricFamily(
            "zerocopy_queue_jobs", "procrastinate jobs by status.", labels=["status"]
        )
        for status, n in sorted(snap["queue_jobs"].items()):
            jobs.add_metric([status], n)
        yield jobs
        yield GaugeMetricFamily(
            "zerocopy_source_slots_in_use", "Source slots held.", value=snap["slots"]
        )
        counters = snap["counters"]
        yield CounterMetricFamily(
            "zerocopy_janitor_drops",
            "Orphan temp tables dropped by the janitor.",
            value=counters.get("janitor_drops", 0),
        )
        yield CounterMetricFamily(
            "zerocopy_schedule_misses",
            "Schedule occurrences without their own run (coalesced or still running).",
            value=counters.get("schedule_misses", 0),
        )


async def render(db: Database) -> bytes:
    """The Prometheus text exposition of the current state."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(await snapshot(db)))
    return generate_latest(registry)
