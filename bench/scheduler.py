# ruff: noqa: ASYNC220, ASYNC230
"""Queue throughput and lag: 500 due refreshes through 1 and 3 ``zerocopy worker`` processes.

    .venv/bin/python bench/scheduler.py [--jobs 500] [--workers 1,3] [--concurrency 4] [--server URL]

Uses the local PostgreSQL server (``ZEROCOPY_TEST_POSTGRES_URL`` or 127.0.0.1:5432) for both
the state database and the warehouse (a scratch database with a 1,000-row ``users`` table),
with 500 small segments on one PostgreSQL source (per-source limit 4). In the same run:

* **baseline**: the same 500 refreshes called directly on the engine in this process, 3 at a
  time (``request`` + ``execute``), no queue;
* **workers = N**: this process enqueues 500 due refreshes (``request`` + procrastinate
  ``defer``, as ``zerocopy serve`` does) while N worker processes execute them. Each run is
  due when it is enqueued; lag = ``started_at - created_at`` from the run records; started
  per second = jobs / (last start - first start). Enqueuing runs in this process at the same
  time, on the same cores, as it would in ``zerocopy serve``.

Prints one JSON line per worker count:
``{"workers": …, "jobs_per_s": …, "lag_p50_s": …, "lag_p99_s": …, "baseline_jobs_per_s": …}``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
import sqlalchemy as sa
from psycopg.conninfo import conninfo_to_dict

from tests.support import postgres_server_url, scratch_database
from zerocopy.connections import AdapterFactory, build_adapter
from zerocopy.logging import configure_logging
from zerocopy.refresh import RefreshEngine
from zerocopy.runner_procrastinate import ProcrastinateRunner, ensure_queue_schema
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
)

ZEROCOPY = str(Path(sys.executable).with_name("zerocopy"))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


async def setup(db: Database, box: SecretBox, warehouse_url: str, jobs: int) -> list[str]:
    pg = conninfo_to_dict(warehouse_url)
    async with db.transaction() as s:
        ws = Workspace(name="bench")
        s.add(ws)
        await s.flush()
        cred = Credential(
            workspace_id=ws.id,
            name="pg",
            kind="postgres",
            settings={
                "host": pg.get("host") or "127.0.0.1",
                "port": int(pg.get("port") or 5432),
                "database": pg["dbname"],
                "user": pg.get("user") or "postgres",
                "sslmode": "disable",
            },
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
        for i in range(jobs):
            seg = Segment(
                workspace_id=ws.id,
                source_id=src.id,
                name=f"s{i}",
                sql=f"SELECT external_user_id FROM users WHERE external_user_id % {2 + i % 11} = 0",
                dialect="postgres",
            )
            s.add(seg)
            await s.flush()
            ids.append(seg.id)
    return ids


async def baseline(db: Database, box: SecretBox, segments: list[str]) -> float:
    engine = RefreshEngine(db, AdapterFactory(box))
    limiter = anyio.CapacityLimiter(3)

    async def one(segment_id: str) -> None:
        async with limiter:
            run = await engine.refresh(segment_id, "cli")
            assert run.status == RunStatus.SUCCEEDED, run.error_message

    t = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for segment_id in segments:
            tg.start_soon(one, segment_id)
    return len(segments) / (time.perf_counter() - t)


async def with_workers(
    db: Database, env: dict[str, str], segments: list[str], workers: int, logdir: Path
) -> dict[str, float]:
    procs = [
        subprocess.Popen(
            [ZEROCOPY, "worker", "--no-scheduler"],
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
        run_ids: list[str] = []
        async with ProcrastinateRunner(db) as runner:
            for segment_id in segments:
                run = await engine.request(segment_id, "schedule")
                await runner.submit(run.id)
                run_ids.append(run.id)
            while True:
                async with db.session() as s:
                    done = await s.scalar(
                        sa.select(sa.func.count())
                        .select_from(RefreshRun)
                        .where(RefreshRun.id.in_(run_ids), RefreshRun.status.in_(RunStatus.FINAL))
                    )
                if int(done or 0) == len(run_ids):
                    break
                await anyio.sleep(0.2)
        async with db.session() as s:
            runs = (await s.scalars(sa.select(RefreshRun).where(RefreshRun.id.in_(run_ids)))).all()
        bad = [r.error_message for r in runs if r.status != RunStatus.SUCCEEDED]
        assert not bad, bad[:3]
        lags = [(r.started_at - r.created_at).total_seconds() for r in runs if r.started_at]
        first = min(r.started_at for r in runs if r.started_at)
        last = max(r.started_at for r in runs if r.started_at)
        return {
            "jobs_per_s": round(len(runs) / (last - first).total_seconds(), 2),
            "lag_p50_s": round(pct(lags, 0.5), 3),
            "lag_p99_s": round(pct(lags, 0.99), 3),
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
            "ZEROCOPY_JANITOR_EVERY_S": "3600",
        }
        db = Database(state_url)
        await db.upgrade()
        await ensure_queue_schema(db)
        segments = await setup(db, box, warehouse_url, args.jobs)
        base = await baseline(db, box, segments)
        for n in [int(x) for x in args.workers.split(",")]:
            result = await with_workers(db, env, segments, n, Path(tmp))
            line = {"workers": n, **result, "baseline_jobs_per_s": round(base, 2)}
            print(json.dumps(line), flush=True)
        await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--workers", default="1,3")
    parser.add_argument("--server", default=None)
    parser.add_argument("--concurrency", type=int, default=4, help="jobs at once per worker")
    anyio.run(main, parser.parse_args())
