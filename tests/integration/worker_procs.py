"""Real ``zerocopy worker`` processes for the integration tests: start, wait until registered,
stop; and a PostgreSQL source with segments for them to refresh."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import psycopg
import sqlalchemy as sa

from tests.integration.refresh_fixtures import store_catalog
from tests.support import postgres_credential_settings
from zerocopy.secrets import SecretBox
from zerocopy.state.db import Database
from zerocopy.state.models import Credential, Segment, Source, SourceStatus, Workspace

ZEROCOPY = str(Path(sys.executable).with_name("zerocopy"))


def worker_env(state_url: str, data_dir: Path, key: str, **settings: str) -> dict[str, str]:
    """The environment of a procrastinate worker on ``state_url``; ``settings`` are more
    ``ZEROCOPY_*`` variables, named without the prefix (``WORKER_POLL_S="3600"``)."""
    return {
        **os.environ,
        "ZEROCOPY_DATABASE_URL": state_url,
        "ZEROCOPY_DATA_DIR": str(data_dir),
        "ZEROCOPY_SECRET_KEY": key,
        "ZEROCOPY_RUNNER": "procrastinate",
        "ZEROCOPY_LOG_LEVEL": "warning",
        **{f"ZEROCOPY_{name}": value for name, value in settings.items()},
    }


def start_worker(env: dict[str, str], log_path: Path, *args: str) -> subprocess.Popen[bytes]:
    """``zerocopy worker *args``, its output (stdout and stderr) in ``log_path``."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [ZEROCOPY, "worker", *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )


async def wait_for_workers(db: Database, count: int = 1, timeout: float = 60) -> int:
    """Wait (a hang guard, not a timing check) until ``count`` workers have registered in the
    queue; the highest worker id."""
    with anyio.fail_after(timeout):
        while True:
            async with db.session() as s:
                n, last = (
                    await s.execute(sa.text("SELECT count(*), max(id) FROM procrastinate_workers"))
                ).one()
            if int(n or 0) >= count:
                return int(last)
            await anyio.sleep(0.2)


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM, then its exit status."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


def kill_if_running(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()


async def active_source(
    db: Database,
    workspace_id: str,
    *,
    kind: str,
    settings: dict[str, Any],
    scope: str = "public",
    name: str | None = None,
    max_runtime_s: int = 60,
    box: SecretBox | None = None,
) -> Source:
    """An active source on a new credential; with ``box``, its catalog listed through the
    real adapter (segments need it, syncs do not)."""
    async with db.transaction() as s:
        cred = Credential(
            workspace_id=workspace_id, name=name or kind, kind=kind, settings=settings
        )
        s.add(cred)
        await s.flush()
        src = Source(
            workspace_id=workspace_id,
            credential_id=cred.id,
            name=name or kind,
            kind=kind,
            scope=scope,
            max_runtime_s=max_runtime_s,
            status=SourceStatus.ACTIVE,
        )
        s.add(src)
    if box is None:
        return src
    await store_catalog(db, src, cred, box)
    return src


async def pg_segments(
    db: Database, box: SecretBox, warehouse_url: str, name: str, n: int
) -> list[str]:
    """A workspace ``name`` with a PostgreSQL source on ``warehouse_url`` (scope public,
    source limit from the settings, catalog listed) and ``n`` segments over its ``users``."""
    async with db.transaction() as s:
        ws = Workspace(name=name)
        s.add(ws)
    src = await active_source(
        db,
        ws.id,
        kind="postgres",
        settings=postgres_credential_settings(warehouse_url),
        name="pg",
        box=box,
    )
    ids = []
    async with db.transaction() as s:
        for i in range(n):
            seg = Segment(
                workspace_id=ws.id,
                source_id=src.id,
                name=f"{name}{i}",
                sql=f"SELECT external_user_id FROM users WHERE external_user_id % {2 + i} = 0",
                dialect="postgres",
            )
            s.add(seg)
            await s.flush()
            ids.append(seg.id)
    return ids


def pg_users(warehouse_url: str, n: int = 200) -> None:
    """A ``users`` table of ids 1..n in the warehouse database."""
    with psycopg.connect(warehouse_url, autocommit=True) as con:
        con.execute(
            "CREATE TABLE users AS SELECT i::bigint AS external_user_id "
            "FROM generate_series(1, %(n)s) AS i",
            {"n": n},
        )
