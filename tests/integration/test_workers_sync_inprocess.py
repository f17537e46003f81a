# ruff: noqa: SIM115
"""Process death on the in-process runner: ``zerocopy serve`` (SQLite state) killed mid-sync.

A sync reads a DuckDB view that is slow while ``marketing.slow.n`` is large (a count over a
huge ``range``). Its "run now" executes inside ``serve``; ``serve`` is SIGKILLed mid-read
and started again. The run must end ``error``/``worker_lost`` within a bounded time of the
restart — not stay ``running`` until that sync happens to be requested again — with the
watermark untouched; the view fast again, the next run delivers every row once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import duckdb
import httpx
import pytest
import sqlalchemy as sa

from tests.integration.test_sync_engine import warehouse
from tests.integration.worker_procs import ZEROCOPY
from tests.support import free_port, wait_for_port
from zerocopy.secrets import SecretBox
from zerocopy.services import workspaces
from zerocopy.state.db import Database
from zerocopy.state.models import Credential, Source, SourceStatus
from zerocopy.state.sync_models import StoreEvent, Sync, SyncRun

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("sync_workers")]

ROWS = 30
LOST_AFTER_S = 3


def _set_slow(path: Path, n: int) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("UPDATE marketing.slow SET n = ?", [n])
    finally:
        con.close()


async def test_serve_killed_mid_sync_ends_its_run_worker_lost_after_restart(
    tmp_path: Path,
) -> None:
    wh = warehouse(tmp_path / "wh.duckdb", rows=ROWS)
    con = duckdb.connect(str(wh))
    try:
        con.execute("ALTER TABLE marketing.events_in RENAME TO events_base")
        con.execute("CREATE TABLE marketing.slow AS SELECT 0::BIGINT AS n")
        con.execute(
            "CREATE VIEW marketing.events_in AS SELECT * FROM marketing.events_base WHERE "
            "(SELECT count(*) FROM range((SELECT n FROM marketing.slow)) AS r(x) "
            "WHERE x % 7 = 3) >= 0"
        )
    finally:
        con.close()
    _set_slow(wh, 10**12)

    url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZEROCOPY_")}
    env.update(
        {
            "ZEROCOPY_DATA_DIR": str(tmp_path / "data"),
            "ZEROCOPY_DATABASE_URL": url,
            "ZEROCOPY_SECRET_KEY": SecretBox.generate_key(),
            "ZEROCOPY_LOG_LEVEL": "warning",
            "ZEROCOPY_HEARTBEAT_S": "0.5",
            "ZEROCOPY_WORKER_LOST_AFTER_S": str(LOST_AFTER_S),
            "ZEROCOPY_REAPER_EVERY_S": "1",
            "ZEROCOPY_SCHEDULER_TICK_S": "0.3",
        }
    )
    db = Database(url)
    await db.upgrade()
    async with db.session() as s:
        ws, api_key = await workspaces.create_workspace(s, name="acme")
    async with db.transaction() as s:
        cred = Credential(workspace_id=ws.id, name="wh", kind="duckdb", settings={"path": str(wh)})
        s.add(cred)
        await s.flush()
        src = Source(
            workspace_id=ws.id,
            credential_id=cred.id,
            name="wh",
            kind="duckdb",
            scope="marketing",
            max_runtime_s=600,
            status=SourceStatus.ACTIVE,
        )
        s.add(src)
        await s.flush()
        sync = Sync(
            workspace_id=ws.id,
            name="ev",
            source_id=src.id,
            table_name="events_in",
            data_type="custom_events",
            status="active",
            row_log="errors",
        )
        s.add(sync)
    auth = {"Authorization": f"Bearer {api_key}"}

    async def run_of(run_id: str) -> SyncRun:
        async with db.session() as s:
            run = await s.get(SyncRun, run_id)
        assert run is not None
        return run

    procs: list[subprocess.Popen[bytes]] = []

    def serve(name: str) -> str:
        port = free_port()
        log = open(tmp_path / f"{name}.log", "wb")
        procs.append(
            subprocess.Popen(
                [ZEROCOPY, "serve", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        log.close()
        wait_for_port(port, timeout=60)
        return f"http://127.0.0.1:{port}"

    try:
        base = serve("serve1")
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as http:
            resp = await http.post(f"/v1/syncs/{sync.id}/runs")
            assert resp.status_code == 202, resp.text
            doomed = resp.json()["id"]
        await anyio.sleep(2.0)  # inside the slow read (it would take minutes)
        running = await run_of(doomed)
        assert (running.status, running.rows_read) == ("running", 0)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(timeout=10)

        restarted = time.monotonic()
        base = serve("serve2")
        deadline = restarted + 30
        while (await run_of(doomed)).status == "running":
            assert time.monotonic() < deadline, "the killed run is still running after 30 s"
            await anyio.sleep(0.2)
        lost_s = time.monotonic() - restarted
        lost = await run_of(doomed)
        assert (lost.status, lost.error_code) == ("error", "worker_lost")
        assert lost_s < 20, lost_s  # serve's start + 3 s without heartbeat + a reaper period
        async with db.session() as s:
            assert (await s.get(Sync, sync.id)).watermark is None  # type: ignore[union-attr]
            assert await s.scalar(sa.select(sa.func.count()).select_from(StoreEvent)) == 0

        _set_slow(wh, 0)  # serve no longer holds the file: its run is over
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as http:
            resp = await http.post(f"/v1/syncs/{sync.id}/runs", params={"wait": "true"})
            assert resp.status_code == 200, resp.text
            body: dict[str, Any] = resp.json()
        assert (body["status"], body["rows_read"], body["rows_delivered"]) == (
            "success",
            ROWS,
            ROWS,
        )
        async with db.session() as s:
            hashes = list((await s.scalars(sa.select(StoreEvent.row_hash))).all())
        assert len(hashes) == len(set(hashes)) == ROWS
        print(f"in-process worker_lost {lost_s:.1f} s after the restart")
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
        await db.dispose()
