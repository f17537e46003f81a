"""Scheduling settings, read from the environment (``ZEROCOPY_*``), with safe defaults."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta

from zerocopy import errors
from zerocopy.errors import ZerocopyError

RUNNERS = ("inprocess", "procrastinate")


@dataclass(frozen=True, slots=True)
class SchedulingConfig:
    """Knobs of the scheduler, the workers and housekeeping."""

    runner: str = "inprocess"
    """``inprocess`` (one process, SQLite or PostgreSQL) or ``procrastinate`` (PostgreSQL workers)."""
    tick_s: float = 1.0
    """How often due schedules are looked for."""
    late_after_s: float = 60.0
    """A scheduled run starting later than this after its due time is a catch-up run."""
    stale_after: timedelta = timedelta(days=7)
    """Pause a schedule nobody read through the API or edited for this long (0: never)."""
    source_limit: int = 4
    """Queries at once per source (adapters may lower it: DuckDB files take 1)."""
    heartbeat_s: float = 2.0
    """How often a running refresh proves its process is alive."""
    worker_lost_after_s: float = 30.0
    """A running refresh without heartbeat for this long is ended ``worker_lost``."""
    reaper_every_s: float = 5.0
    janitor_every_s: float = 300.0
    janitor_grace_s: float = 300.0
    """Temp tables are dropped when older than their run's max runtime plus this."""
    retention_every_s: float = 3600.0
    shutdown_grace_s: float = 10.0
    """On SIGTERM running jobs get this long to finish before they are cancelled."""
    concurrency: int = 4
    """Jobs at once per worker process."""
    fetch_poll_s: float = 1.0
    """How often an idle worker looks for jobs besides being notified of new ones."""

    def with_(self, **changes: object) -> SchedulingConfig:
        return replace(self, **changes)  # type: ignore[arg-type]


def _bad(name: str, message: str, reason: str) -> ZerocopyError:
    return ZerocopyError(
        errors.VALIDATION_ERROR, message, details={"field": name, "reason": reason}
    )


def _num(env: Mapping[str, str], name: str, default: float, high: float = 1e9) -> float:
    """A finite number from 0 to ``high``; ``validation_error`` naming the variable."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise _bad(name, f"{name} must be a number, got {raw!r}", "invalid_type") from None
    if not math.isfinite(value):
        raise _bad(name, f"{name} must be a finite number, got {raw!r}", "invalid_value")
    if not 0 <= value <= high:
        raise _bad(name, f"{name} must be from 0 to {high:g}, got {raw!r}", "out_of_range")
    return value


MAX_STALE_AFTER_DAYS = 36500.0
"""A century: beyond what ``timedelta`` and any schedule need (use 0 to turn the pause off)."""


def load_config(env: Mapping[str, str] | None = None) -> SchedulingConfig:
    """:class:`SchedulingConfig` from ``env`` (default ``os.environ``)."""
    env = os.environ if env is None else env
    runner = (env.get("ZEROCOPY_RUNNER") or "inprocess").lower()
    if runner not in RUNNERS:
        raise _bad(
            "ZEROCOPY_RUNNER",
            f"ZEROCOPY_RUNNER must be one of {', '.join(RUNNERS)}, got {env.get('ZEROCOPY_RUNNER')!r}",
            "invalid_value",
        )
    d = SchedulingConfig()
    return SchedulingConfig(
        runner=runner,
        tick_s=_num(env, "ZEROCOPY_SCHEDULER_TICK_S", d.tick_s),
        late_after_s=_num(env, "ZEROCOPY_SCHEDULE_LATE_AFTER_S", d.late_after_s),
        stale_after=timedelta(
            days=_num(env, "ZEROCOPY_STALE_AFTER_DAYS", 7, high=MAX_STALE_AFTER_DAYS)
        ),
        source_limit=max(1, int(_num(env, "ZEROCOPY_SOURCE_CONCURRENCY", d.source_limit))),
        heartbeat_s=_num(env, "ZEROCOPY_HEARTBEAT_S", d.heartbeat_s),
        worker_lost_after_s=_num(env, "ZEROCOPY_WORKER_LOST_AFTER_S", d.worker_lost_after_s),
        reaper_every_s=_num(env, "ZEROCOPY_REAPER_EVERY_S", d.reaper_every_s),
        janitor_every_s=_num(env, "ZEROCOPY_JANITOR_EVERY_S", d.janitor_every_s),
        janitor_grace_s=_num(env, "ZEROCOPY_JANITOR_GRACE_S", d.janitor_grace_s),
        retention_every_s=_num(env, "ZEROCOPY_RETENTION_EVERY_S", d.retention_every_s),
        shutdown_grace_s=_num(env, "ZEROCOPY_SHUTDOWN_GRACE_S", d.shutdown_grace_s),
        concurrency=max(1, int(_num(env, "ZEROCOPY_WORKER_CONCURRENCY", d.concurrency))),
        fetch_poll_s=max(0.05, _num(env, "ZEROCOPY_WORKER_POLL_S", d.fetch_poll_s)),
    )
