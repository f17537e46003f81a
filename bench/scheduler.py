# ruff: noqa: ASYNC220, ASYNC230, ASYNC240
"""Queue throughput and lag: 500 due refreshes through 1 and 3 ``zerocopy worker`` processes.

    .venv/bin/python bench/scheduler.py [--jobs 500] [--workers 1,3] [--concurrency 4]
        [--source-limit 4] [--server URL] [--profile DIR] [--count-calls] [--trace]
        [--count-statements /var/log/postgresql/postgresql-15-main.log]

Uses the local PostgreSQL server (``ZEROCOPY_TEST_POSTGRES_URL`` or 127.0.0.1:5432) for both
the state database and the warehouse (a scratch database with a 1,000-row ``users`` table),
with 500 small scheduled segments on one PostgreSQL source (per-source limit 4). In the same
run:

* **baseline**: the same 500 refreshes called directly on the engine in this process, 3 at a
  time (``request`` + ``execute``), no queue;
* **workers = N**: all 500 segments fall due at the same instant; this process's scheduler
  (the production ``Scheduler.tick``: claim each occurrence, request the run, record it,
  bulk-defer the jobs) fires them while N ``zerocopy worker --no-scheduler`` processes
  execute them. Lag = ``started_at`` - the occurrence's due time (``scheduled_run.due_at``),
  so it includes firing and enqueuing; started per second = jobs / (last start - first
  start).

Prints one JSON line per worker count:
``{"workers": …, "jobs_per_s": …, "lag_p50_s": …, "lag_p99_s": …, "baseline_jobs_per_s": …}``,
plus ``cpu_ms_per_job`` and ``baseline_cpu_ms_per_job``: CPU milliseconds per job of everything
involved (workers, this process's scheduler, and the PostgreSQL server's backends when their
``/proc`` is readable), a comparison that holds on a busy machine.

Settings (printed on stderr first): jobs at once per worker (``--concurrency``, default 4) and
the per-source limit (``--source-limit``, default 4: the product default, not raised for the
bench). All 500 segments are on one source, so however many workers run, at most
``source_limit`` refreshes run at once (queue lanes and slots), and the queue's throughput is
bounded by ``source_limit / run duration``; the baseline runs 3 at a time.

On stderr: the baseline's own lag when the same 500 are due at once (its start), the firing
time, CPU milliseconds per job (workers, this process, and the PostgreSQL server's backends
of the two databases: figures that hold on a busy machine, unlike jobs/s and lag), state
and warehouse transactions per job, the share of time with n runs running, the lane bound
(``source_limit / run p50``) and how busy the lanes were (run time over ``source_limit`` x the
span from the first start to the last end); with ``--count-calls``, the calls per job of each procrastinate
function (``track_functions = all`` on the state database: a diagnostic that costs the server a
little, so leave it off when comparing throughput). With every job due at one instant the last one cannot start
before ``jobs / throughput`` seconds, so the p99 lag of a burst is bounded below by about
``0.99 * jobs / jobs_per_s`` for any executor, the bare engine included.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
import sqlalchemy as sa

from tests.support import postgres_credential_settings, postgres_server_url, scratch_database
from zerocopy.connections import AdapterFactory, build_adapter
from zerocopy.logging import configure_logging
from zerocopy.refresh import RefreshEngine
from zerocopy.runner_procrastinate import ProcrastinateRunner, ensure_queue_schema
from zerocopy.scheduling.config import SchedulingConfig
from zerocopy.scheduling.models import SEGMENT, ScheduledRun, ScheduleState
from zerocopy.scheduling.schedule import parse_schedule
from zerocopy.scheduling.scheduler import Scheduler, segment_digest
from zerocopy.secrets import SecretBox
from zerocopy.state.db import Database
from zerocopy.state.models import (
    CatalogTable,
    Credential,
    RefreshRun,
    RunStatus,
    Segment,
    Source,
    SourceStatus,
    Workspace,
    utcnow,
)

ZEROCOPY = str(Path(sys.executable).with_name("zerocopy"))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


async def setup(db: Database, box: SecretBox, warehouse_url: str, jobs: int) -> list[str]:
    async with db.transaction() as s:
        ws = Workspace(name="bench")
        s.add(ws)
        await s.flush()
        cred = Credential(
            workspace_id=ws.id,
            name="pg",
            kind="postgres",
            settings=postgres_credential_settings(warehouse_url),
        )
        s.add(cred)
        await s.flush()
        src = Source(
            workspace_id=ws.id,
            credential_id=cred.id,
            name="pg",
            kind="postgres",
            scope="public",
            max_runtime_s=300,
            status=SourceStatus.ACTIVE,
        )
        s.add(src)
    adapter = build_adapter(src, cred, box)
    try:
        tables = await adapter.list_tables()
    finally:
        await adapter.aclose()
    ids = []
    async with db.transaction() as s:
        for t in tables:
            s.add(
                CatalogTable(
                    source_id=src.id,
                    schema=t.schema or "public",
                    name=t.name,
                    kind=t.kind,
                    columns=[{"name": c.name, "data_type": c.data_type} for c in t.columns],
                )
            )
        schedule = {"frequency": "hourly", "minute": 0}
        for i in range(jobs):
            seg = Segment(
                workspace_id=ws.id,
                source_id=src.id,
                name=f"s{i}",
                sql=f"SELECT external_user_id FROM users WHERE external_user_id % {2 + i % 11} = 0",
                dialect="postgres",
                schedule=schedule,
            )
            s.add(seg)
            await s.flush()
            ids.append(seg.id)
            s.add(
                ScheduleState(
                    owner_kind=SEGMENT,
                    owner_id=seg.id,
                    workspace_id=ws.id,
                    next_due_at=None,
                    planned_time_zone="UTC",
                    planned_key=parse_schedule(schedule).key(),
                    definition_hash=segment_digest(seg, schedule),
                    created_at=utcnow(),
                )
            )
    return ids


def self_cpu_s() -> float:
    """CPU seconds of this process and its reaped children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def pids_cpu_s(pids: list[int]) -> dict[int, float]:
    """CPU seconds so far of each live process in ``pids`` (from ``/proc``)."""
    hz = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / hz
    return out


def cpu_s(pids: list[int]) -> float:
    """CPU seconds of this process, its reaped children and the live ``pids``."""
    return self_cpu_s() + sum(pids_cpu_s(pids).values())


class ServerCpu:
    """CPU seconds the PostgreSQL server spent in the backends of some databases.

    Backends are read from ``pg_stat_activity`` at :meth:`start` and :meth:`stop` (pooled
    sessions live through a measurement; a backend that starts and ends in between is
    missed: the ``new sessions per job`` figure says how many there were). Needs to read
    ``/proc`` of the server's processes (same machine, same or privileged user); ``None``
    otherwise. ``by_db``: the last measurement per database label (``names`` maps each
    database to its label).
    """

    def __init__(self, server: str, names: dict[str, str]) -> None:
        self.server = server
        self.names = dict(names)
        self._start: dict[int, float] | None = None
        self._db: dict[int, str] = {}
        self.by_db: dict[str, float] = {}

    def _backends(self) -> list[int]:
        with psycopg.connect(self.server, autocommit=True) as con:
            rows = con.execute(
                "SELECT pid, datname FROM pg_stat_activity "
                "WHERE datname = ANY(%s) AND pid <> pg_backend_pid()",
                (list(self.names),),
            ).fetchall()
        self._db.update({int(pid): self.names[name] for pid, name in rows})
        return [int(pid) for pid, _name in rows]

    def start(self) -> None:
        self._start = pids_cpu_s(self._backends())

    def stop(self) -> float | None:
        if self._start is None:
            return None
        now = pids_cpu_s(self._backends())
        if not now and not self._start:
            return None
        self.by_db = dict.fromkeys(self.names.values(), 0.0)
        for pid, v in now.items():
            self.by_db[self._db[pid]] += v - self._start.get(pid, 0.0)
        return sum(self.by_db.values())

    def split(self, jobs: int) -> str:
        """``state x, warehouse y``: the last measurement's ms per job by database."""
        return ", ".join(f"{label} {1000 * v / jobs:.1f}" for label, v in self.by_db.items())


async def baseline(
    db: Database,
    box: SecretBox,
    segments: list[str],
    stats: Callable[[], dict[str, tuple[int, int]]] | None = None,
    server_cpu: ServerCpu | None = None,
) -> tuple[float, float]:
    """Jobs per second and CPU milliseconds per job (this process and, when readable, the
    PostgreSQL server's backends)."""
    engine = RefreshEngine(db, AdapterFactory(box))
    limiter = anyio.CapacityLimiter(3)
    started: list[float] = []
    took: list[float] = []

    async def one(segment_id: str) -> None:
        async with limiter:
            run = await engine.refresh(segment_id, "cli")
            assert run.status == RunStatus.SUCCEEDED, run.error_message
            assert run.started_at is not None and run.finished_at is not None
            started.append(run.started_at.timestamp())
            took.append((run.finished_at - run.started_at).total_seconds())

    before = stats() if stats else {}
    if server_cpu:
        server_cpu.start()
    t0, wall, cpu = time.time(), time.perf_counter(), cpu_s([])
    async with anyio.create_task_group() as tg:
        for segment_id in segments:
            tg.start_soon(one, segment_id)
    elapsed = time.perf_counter() - wall
    cpu = cpu_s([]) - cpu
    server = server_cpu.stop() if server_cpu else None
    after = stats() if stats else {}
    lags = [t - t0 for t in started]
    print(
        f"baseline: {len(segments) / elapsed:.1f} jobs/s; if all were due at its start, lag "
        f"p50 {pct(lags, 0.5):.2f} s p99 {pct(lags, 0.99):.2f} s; run p50 "
        f"{pct(took, 0.5) * 1000:.0f} ms; cpu {1000 * cpu / len(segments):.1f} ms/job (this process)"
        + (
            ""
            if server is None or server_cpu is None
            else f", {1000 * server / len(segments):.1f} ms/job (PostgreSQL: "
            + server_cpu.split(len(segments))
            + ")"
        )
        + "".join(
            f"; {name}: {(after[name][0] - before[name][0]) / len(segments):.1f} transactions "
            f"and {(after[name][1] - before[name][1]) / len(segments):.2f} new sessions per job"
            for name in ("state", "warehouse")
            if name in after and name in before
        ),
        file=sys.stderr,
    )
    return len(segments) / elapsed, 1000 * (cpu + (server or 0.0)) / len(segments)


def concurrency_profile(spans: list[tuple[datetime, datetime]]) -> list[tuple[int, float]]:
    """Share of the time from the first start to the last end with n runs running, by n."""
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    if not events:
        return []
    shares: dict[int, float] = {}
    level, at = 0, events[0][0]
    for t, step in events:
        shares[level] = shares.get(level, 0.0) + (t - at).total_seconds()
        level, at = level + step, t
    total = sum(shares.values()) or 1.0
    return [(n, shares[n] / total) for n in sorted(shares, reverse=True) if shares[n] > 0]


TRACE_SQL = """
CREATE TABLE IF NOT EXISTS bench_run_status_log (
    run_id text NOT NULL, status text NOT NULL, txid bigint NOT NULL, at timestamptz NOT NULL
);
CREATE OR REPLACE FUNCTION bench_log_run_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_run_status_log VALUES (NEW.id, NEW.status, txid_current(), clock_timestamp());
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS bench_log_run_status ON refresh_run;
CREATE TRIGGER bench_log_run_status AFTER UPDATE OF status ON refresh_run
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE PROCEDURE bench_log_run_status();
"""
"""``--trace``: the transaction of each run's status changes (which runs were handed on)."""


def running_by_second(spans: list[tuple[datetime, datetime]]) -> list[float]:
    """Mean number of runs running in each second from the first start."""
    if not spans:
        return []
    t0 = min(a for a, _ in spans)
    seconds = int(max((b - t0).total_seconds() for _, b in spans)) + 1
    busy = [0.0] * seconds
    for a, b in spans:
        x, y = (a - t0).total_seconds(), (b - t0).total_seconds()
        for i in range(int(x), int(y) + 1):
            busy[i] += max(0.0, min(y, i + 1) - max(x, i))
    return busy


def function_calls(url: str) -> dict[str, int]:
    """Calls so far of each procrastinate function (needs ``track_functions``)."""
    with psycopg.connect(url, autocommit=True) as con:
        time.sleep(0.6)  # backends report their counters at most every 0.5 s
        rows = con.execute(
            "SELECT funcname, sum(calls) FROM pg_stat_user_functions "
            "WHERE funcname LIKE 'procrastinate%' GROUP BY funcname"
        ).fetchall()
    return {name: int(n) for name, n in rows}


class StatementLog:
    """Statements the server ran for one database, counted in its log.

    ``ALTER DATABASE … SET log_min_duration_statement = 0`` applies to sessions opened
    afterwards (the workers'); each statement executed is one round trip of the client that
    sent it (its duration is in the log too).
    """

    def __init__(self, server: str, dbname: str, path: Path) -> None:
        self.path = path
        self.marker = f"@{dbname} LOG:  "
        with psycopg.connect(server, autocommit=True) as con:
            con.execute(f'ALTER DATABASE "{dbname}" SET log_min_duration_statement = 0')

    def __call__(self) -> int:
        time.sleep(0.2)
        n = 0
        with self.path.open("rb") as f:
            for line in f:
                if self.marker.encode() in line and (
                    b" ms  statement: " in line or b" ms  execute " in line
                ):
                    n += 1
        return n


def db_stats(server: str, *names: str) -> dict[str, tuple[int, int]]:
    """``{database: (transactions, sessions)}`` so far, from ``pg_stat_database``."""
    with psycopg.connect(server, autocommit=True) as con:
        time.sleep(0.6)  # backends report their counters at most every 0.5 s
        rows = con.execute(
            "SELECT datname, xact_commit + xact_rollback, sessions FROM pg_stat_database "
            "WHERE datname = ANY(%s)",
            (list(names),),
        ).fetchall()
    return {name: (int(x), int(n)) for name, x, n in rows}


QUEUE_BUSY_SQL = (
    "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE status IN ('todo', 'doing'))"
)


async def with_workers(
    db: Database,
    env: dict[str, str],
    segments: list[str],
    workers: int,
    logdir: Path,
    profile: Path | None = None,
    stats: Callable[[], dict[str, tuple[int, int]]] | None = None,
    source_limit: int = 4,
    calls: Callable[[], dict[str, int]] | None = None,
    server_cpu: ServerCpu | None = None,
    statements: Callable[[], int] | None = None,
    trace: bool = False,
) -> dict[str, float]:
    def command(i: int) -> list[str]:
        if profile is None:
            return [ZEROCOPY, "worker", "--no-scheduler"]
        out = str(profile / f"worker{workers}_{i}.prof")
        # CPU time, not wall time: on a busy machine the wall clock charges a function for
        # the time the process waited for a core.
        script = (
            "import cProfile, runpy, sys, time\n"
            "sys.argv = [sys.argv[1], 'worker', '--no-scheduler']\n"
            "p = cProfile.Profile(time.process_time)\n"
            "try:\n"
            "    p.runcall(runpy.run_path, sys.argv[0], run_name='__main__')\n"
            "except SystemExit:\n"
            "    pass\n"
            "finally:\n"
            f"    p.dump_stats({out!r})\n"
        )
        return [sys.executable, "-c", script, ZEROCOPY]

    procs = [
        subprocess.Popen(
            command(i),
            env=env,
            stdout=open(logdir / f"w{workers}_{i}.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        for i in range(workers)
    ]
    try:
        deadline = time.monotonic() + 60
        while True:
            async with db.session() as s:
                n = await s.scalar(sa.text("SELECT count(*) FROM procrastinate_workers"))
            if int(n or 0) >= workers:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not register")
            await anyio.sleep(0.2)
        engine = RefreshEngine(db, AdapterFactory(SecretBox([SecretBox.generate_key()])))
        pids = [p.pid for p in procs]
        before = stats() if stats else {}
        calls_before = calls() if calls else {}
        statements_before = statements() if statements else 0
        if server_cpu:
            server_cpu.start()
        cpu_workers, cpu_self = sum(pids_cpu_s(pids).values()), self_cpu_s()
        async with ProcrastinateRunner(db, default_limit=source_limit) as runner:
            due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
            async with db.transaction() as s:
                await s.execute(
                    sa.update(ScheduleState)
                    .where(ScheduleState.owner_id.in_(segments))
                    .values(next_due_at=due)
                )
            scheduler = Scheduler(
                db,
                engine,
                runner.submit,
                submit_many=runner.submit_many,
                config=SchedulingConfig(runner="procrastinate", source_limit=source_limit),
            )
            await anyio.sleep((due - datetime.now(UTC)).total_seconds())
            fire_t = time.perf_counter()
            report = await scheduler.tick()
            fire_s = time.perf_counter() - fire_t
            run_ids = report.fired
            async with db.session() as s:
                lanes = (
                    await s.execute(
                        sa.text(
                            "SELECT lock, count(*) FROM procrastinate_jobs "
                            "GROUP BY lock ORDER BY lock"
                        )
                    )
                ).all()
            print(
                f"workers={workers}: jobs per lane left after firing: "
                + ", ".join(f"{lock.rsplit(':', 1)[-1]}: {n}" for lock, n in lanes),
                file=sys.stderr,
            )
            assert len(run_ids) == len(segments), (len(run_ids), report)
            while True:
                # A job waiting or running means a run not over yet (a refresh job is deleted
                # in its run's final transaction, or after it): one index probe per poll; the
                # 500-id count (a few ms of the server's CPU, counted in the workers' figure)
                # only once the queue is empty.
                async with db.session() as s:
                    busy = await s.scalar(sa.text(QUEUE_BUSY_SQL))
                    done = (
                        0
                        if busy
                        else await s.scalar(
                            sa.select(sa.func.count())
                            .select_from(RefreshRun)
                            .where(
                                RefreshRun.id.in_(run_ids), RefreshRun.status.in_(RunStatus.FINAL)
                            )
                        )
                    )
                if int(done or 0) == len(run_ids):
                    break
                await anyio.sleep(0.2)
        cpu_workers = sum(pids_cpu_s(pids).values()) - cpu_workers
        cpu_self = self_cpu_s() - cpu_self
        server = server_cpu.stop() if server_cpu else None
        after = stats() if stats else {}
        if statements:
            print(
                f"workers={workers}: {(statements() - statements_before) / len(segments):.1f} "
                "state statements (round trips) per job, workers and deferrals",
                file=sys.stderr,
            )
        if calls:
            calls_after = calls()
            print(
                f"workers={workers}: procrastinate calls per job: "
                + ", ".join(
                    f"{name} {(n - calls_before.get(name, 0)) / len(segments):.2f}"
                    for name, n in sorted(calls_after.items())
                    if n != calls_before.get(name, 0)
                ),
                file=sys.stderr,
            )
        async with db.session() as s:
            runs = (await s.scalars(sa.select(RefreshRun).where(RefreshRun.id.in_(run_ids)))).all()
            due_at = dict(
                (
                    await s.execute(
                        sa.select(ScheduledRun.run_id, ScheduledRun.due_at).where(
                            ScheduledRun.run_id.in_(run_ids)
                        )
                    )
                ).all()
            )
        if trace:
            async with db.session() as s:
                log_rows = (
                    await s.execute(
                        sa.text("SELECT run_id, status, txid FROM bench_run_status_log")
                    )
                ).all()
            ours = set(run_ids)
            claims = {r: t for r, st, t in log_rows if st == RunStatus.RUNNING and r in ours}
            ends = {t for r, st, t in log_rows if st != RunStatus.RUNNING and r in ours}
            handed = sum(1 for t in claims.values() if t in ends)
            ended_in = {t: r for r, st, t in log_rows if st != RunStatus.RUNNING and r in ours}
            by_id = {r.id: r for r in runs}
            gaps = [
                (by_id[r].started_at - by_id[ended_in[t]].finished_at).total_seconds()  # type: ignore[operator]
                for r, t in claims.items()
                if t in ended_in
            ]
            print(
                f"workers={workers}: {handed} of {len(claims)} runs claimed in the final "
                "transaction of the run before them (handed on); their start after the end "
                f"of the run before: p50 {1000 * pct(gaps, 0.5):.1f} ms, p99 "
                f"{1000 * pct(gaps, 0.99):.1f} ms, sum {sum(gaps):.2f} s",
                file=sys.stderr,
            )
        bad = [r.error_message for r in runs if r.status != RunStatus.SUCCEEDED]
        assert not bad, bad[:3]
        lags = [(r.started_at - due_at[r.id]).total_seconds() for r in runs if r.started_at]
        first = min(r.started_at for r in runs if r.started_at)
        last = max(r.started_at for r in runs if r.started_at)
        took = [
            (r.finished_at - r.started_at).total_seconds()
            for r in runs
            if r.finished_at and r.started_at
        ]
        end = max(r.finished_at for r in runs if r.finished_at)
        busy = sum(took) / max(source_limit * (end - first).total_seconds(), 1e-6)
        spans = [(r.started_at, r.finished_at) for r in runs if r.started_at and r.finished_at]
        running = concurrency_profile(spans)
        print(
            f"workers={workers}: fired and deferred {len(runs)} in {fire_s:.2f} s; run p50 "
            f"{pct(took, 0.5) * 1000:.0f} ms (lane bound {source_limit / max(pct(took, 0.5), 1e-6):.0f}"
            f" jobs/s; lanes busy {100 * busy:.0f}% of the time from first start to last end: "
            + ", ".join(f"{n} running {100 * share:.0f}%" for n, share in running)
            + "; by second: "
            + " ".join(f"{n:.1f}" for n in running_by_second(spans))
            + "); "
            f"cpu ms/job: workers {1000 * cpu_workers / len(runs):.1f}, scheduler and bench "
            f"{1000 * cpu_self / len(runs):.1f}"
            + (
                ""
                if server is None or server_cpu is None
                else f", PostgreSQL {1000 * server / len(runs):.1f} ({server_cpu.split(len(runs))})"
            )
            + "".join(
                f"; {label}: {(after[name][0] - before[name][0]) / len(runs):.1f} transactions "
                f"and {(after[name][1] - before[name][1]) / len(runs):.2f} new sessions per job"
                for label, name in (("state db", "state"), ("warehouse", "warehouse"))
                if name in after and name in before
            ),
            file=sys.stderr,
        )
        return {
            "jobs_per_s": round(len(runs) / (last - first).total_seconds(), 2),
            "lag_p50_s": round(pct(lags, 0.5), 3),
            "lag_p99_s": round(pct(lags, 0.99), 3),
            "cpu_ms_per_job": round(
                1000 * (cpu_workers + cpu_self + (server or 0.0)) / len(runs), 1
            ),
        }
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


async def main(args: argparse.Namespace) -> None:
    configure_logging("warning", "console")
    server = args.server or postgres_server_url()
    if not server:
        raise SystemExit("no PostgreSQL server (set ZEROCOPY_TEST_POSTGRES_URL)")
    with (
        scratch_database(server) as state_url,
        scratch_database(server) as warehouse_url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        with psycopg.connect(warehouse_url, autocommit=True) as con:
            con.execute(
                "CREATE TABLE users AS SELECT i::bigint AS external_user_id "
                "FROM generate_series(1, 1000) AS i"
            )
        key = SecretBox.generate_key()
        box = SecretBox([key])
        env = {
            **os.environ,
            "ZEROCOPY_DATABASE_URL": state_url,
            "ZEROCOPY_DATA_DIR": tmp,
            "ZEROCOPY_SECRET_KEY": key,
            "ZEROCOPY_RUNNER": "procrastinate",
            "ZEROCOPY_LOG_LEVEL": "warning",
            "ZEROCOPY_WORKER_CONCURRENCY": str(args.concurrency),
            "ZEROCOPY_SOURCE_CONCURRENCY": str(args.source_limit),
            "ZEROCOPY_JANITOR_EVERY_S": "3600",
        }
        if args.count_calls:
            with psycopg.connect(server, autocommit=True) as con:
                dbname = state_url.rsplit("/", 1)[1]
                con.execute(f"ALTER DATABASE \"{dbname}\" SET track_functions = 'all'")
        db = Database(state_url)
        await db.upgrade()
        await ensure_queue_schema(db)
        segments = await setup(db, box, warehouse_url, args.jobs)
        names = {"state": state_url.rsplit("/", 1)[1], "warehouse": warehouse_url.rsplit("/", 1)[1]}

        def stats() -> dict[str, tuple[int, int]]:
            got = db_stats(server, *names.values())
            return {label: got[name] for label, name in names.items() if name in got}

        print(
            f"settings: {args.jobs} jobs on one PostgreSQL source; per-source limit "
            f"{args.source_limit} (at most {args.source_limit} refreshes at once, any number "
            f"of workers); {args.concurrency} jobs at once per worker; baseline 3 at a time",
            file=sys.stderr,
        )
        server_cpu = ServerCpu(server, {name: label for label, name in names.items()})
        base, base_cpu = await baseline(db, box, segments, stats, server_cpu)
        if args.trace:
            async with db.engine.begin() as conn:
                await conn.exec_driver_sql(TRACE_SQL)
        # After the baseline: its sessions (this process's pool) are not logged.
        statements = (
            StatementLog(server, state_url.rsplit("/", 1)[1], Path(args.count_statements))
            if args.count_statements
            else None
        )
        profile = Path(args.profile).resolve() if args.profile else None
        if profile:
            profile.mkdir(parents=True, exist_ok=True)
        for n in [int(x) for x in args.workers.split(",")]:
            result = await with_workers(
                db,
                env,
                segments,
                n,
                Path(tmp),
                profile,
                stats,
                args.source_limit,
                (lambda: function_calls(state_url)) if args.count_calls else None,
                server_cpu,
                statements,
                args.trace,
            )
            line = {
                "workers": n,
                **result,
                "baseline_jobs_per_s": round(base, 2),
                "baseline_cpu_ms_per_job": round(base_cpu, 1),
            }
            print(json.dumps(line), flush=True)
        await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--workers", default="1,3")
    parser.add_argument("--server", default=None)
    parser.add_argument("--concurrency", type=int, default=4, help="jobs at once per worker")
    parser.add_argument(
        "--source-limit",
        type=int,
        default=4,
        help="queries at once on the source (product default 4)",
    )
    parser.add_argument(
        "--profile",
        default=None,
        help="cProfile each worker (CPU time) into DIR/worker<N>_<i>.prof",
    )
    parser.add_argument(
        "--count-calls",
        action="store_true",
        help="print procrastinate function calls per job (track_functions on the state db)",
    )
    parser.add_argument(
        "--count-statements",
        metavar="SERVER_LOG",
        default=None,
        help="count the state database's statements per job in the server's log "
        "(sets log_min_duration_statement = 0 on the scratch state database; e.g. "
        "/var/log/postgresql/postgresql-15-main.log)",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="record in which transaction each run changed status (a trigger on the state "
        "database) and print how many runs were handed on from the run before them",
    )
    anyio.run(main, parser.parse_args())
