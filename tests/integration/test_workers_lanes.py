# ruff: noqa: ASYNC220, ASYNC230, SIM115
"""A worker fetches its lane's next job itself when a job ends: no broadcast, no poll.

All jobs of a source with a limit of 1 share one procrastinate lock (one lane): each becomes
fetchable only when the previous one is deleted. Nothing announces that deletion (doing so
woke every worker for every finished job, each then fetching for nothing): the worker that
finished the job fetches again. With an hour's polling interval, a chain of refreshes
through one lane completes at all only if that self-wake works.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import psycopg
import pytest
import sqlalchemy as sa

from tests.support import postgres_credential_settings, scratch_database
from zerocopy.connections import build_adapter
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

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ZEROCOPY = str(Path(sys.executable).with_name("zerocopy"))
JOBS = 6


async def _segments(db: Database, box: SecretBox, warehouse_url: str) -> list[str]:
    async with db.transaction() as s:
        ws = Workspace(name="lanes")
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
            max_runtime_s=60,
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
        for i in range(JOBS):
            seg = Segment(
                workspace_id=ws.id,
                source_id=src.id,
                name=f"s{i}",
                sql=f"SELECT external_user_id FROM users WHERE external_user_id % {2 + i} = 0",
                dialect="postgres",
            )
            s.add(seg)
            await s.flush()
            ids.append(seg.id)
    return ids


async def test_a_lane_chain_runs_without_broadcast_or_polling(
    postgres_url: str, postgres_server: str, tmp_path: Path
) -> None:
    db = Database(postgres_url)
    await db.upgrade()
    await ensure_queue_schema(db)
    proc: subprocess.Popen[bytes] | None = None
    try:
        async with db.session() as s:
            triggers = set(
                (
                    await s.scalars(
                        sa.text("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'zerocopy_%'")
                    )
                ).all()
            )
        # Failed or reaped jobs are still announced; finished (deleted) ones are not.
        assert triggers == {"zerocopy_lane_freed_update"}

        key = SecretBox.generate_key()
        box = SecretBox([key])
        with scratch_database(postgres_server) as warehouse_url:
            with psycopg.connect(warehouse_url, autocommit=True) as con:
                con.execute(
                    "CREATE TABLE users AS SELECT i::bigint AS external_user_id "
                    "FROM generate_series(1, 200) AS i"
                )
            segments = await _segments(db, box, warehouse_url)
            env = {
                **os.environ,
                "ZEROCOPY_DATABASE_URL": postgres_url,
                "ZEROCOPY_DATA_DIR": str(tmp_path),
                "ZEROCOPY_SECRET_KEY": key,
                "ZEROCOPY_RUNNER": "procrastinate",
                "ZEROCOPY_LOG_LEVEL": "warning",
                "ZEROCOPY_SOURCE_CONCURRENCY": "1",
                "ZEROCOPY_WORKER_POLL_S": "3600",
                "ZEROCOPY_JANITOR_EVERY_S": "3600",
            }
            log = open(tmp_path / "worker.log", "wb")
            proc = subprocess.Popen(
                [ZEROCOPY, "worker", "--no-scheduler"], env=env, stdout=log, stderr=log
            )
            with anyio.fail_after(60):
                while True:
                    async with db.session() as s:
                        n = await s.scalar(sa.text("SELECT count(*) FROM procrastinate_workers"))
                    if int(n or 0) >= 1:
                        break
                    await anyio.sleep(0.2)

            engine = RefreshEngine(db, box)
            async with ProcrastinateRunner(db, default_limit=1) as runner:
                runs = [await engine.request(segment_id, "schedule") for segment_id in segments]
                await runner.submit_many([r.id for r in runs])
            ids = [r.id for r in runs]
            # A hang guard, not a timing check: with one lane and an hour's poll, only the
            # self-wake gets past the first job.
            with anyio.fail_after(180):
                while True:
                    async with db.session() as s:
                        done = await s.scalar(
                            sa.select(sa.func.count())
                            .select_from(RefreshRun)
                            .where(RefreshRun.id.in_(ids), RefreshRun.status.in_(RunStatus.FINAL))
                        )
                    if int(done or 0) == len(ids):
                        break
                    await anyio.sleep(0.1)
            async with db.session() as s:
                final = (await s.scalars(sa.select(RefreshRun).where(RefreshRun.id.in_(ids)))).all()
            assert {r.status for r in final} == {RunStatus.SUCCEEDED}, [
                r.error_message for r in final
            ]
            # One lane: the runs never overlapped.
            spans = sorted((r.started_at, r.finished_at) for r in final)
            assert all(start and end for start, end in spans), spans
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # type: ignore[operator]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            proc = None
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        await db.dispose()
