"""Start the fakesnow peer from the product's test venv and load the fixture warehouse into it.

The peer runs as its own process from ``.peers/fakesnow`` (see ``install.sh``, ``launch.py``);
this module only writes the load manifest, starts the process on a free 127.0.0.1 port,
waits for it and stops it by PID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from fixtures.render import create_table_sql, view_sql
from fixtures.warehouse import Warehouse
from tests.support import REPO, free_port, wait_for_port

VENV = REPO / ".peers" / "fakesnow"
LAUNCHER = Path(__file__).with_name("launch.py")


@dataclass(frozen=True)
class FakesnowPeer:
    host: str
    port: int
    admin: Callable[[str], list[tuple[Any, ...]]]


def peer_python() -> Path | None:
    """The peer venv's interpreter, or ``None`` when ``install.sh`` has not been run."""
    python = VENV / "bin" / "python"
    return python if python.exists() else None


def write_manifest(base: Path, warehouse: Warehouse, database: str, schema: str) -> Path:
    """Parquet per table plus the DDL (inline comments) and views, in Snowflake's dialect."""
    statements = [
        create_table_sql(t, "snowflake", schema, database, inline_comments=True)
        for t in warehouse.tables
    ]
    statements += [view_sql(v, "snowflake", schema, database) for v in warehouse.views]
    parquet = {}
    for table in warehouse.tables:
        path = base / f"{table.name}.parquet"
        pq.write_table(table.data, path)
        parquet[table.name] = str(path)
    manifest = base / "manifest.json"
    column_comments = [[t.name, c.name, c.description] for t in warehouse.tables for c in t.columns]
    manifest.write_text(
        json.dumps(
            {
                "database": database,
                "schema": schema,
                "statements": statements,
                "column_comments": column_comments,
                "parquet": parquet,
            }
        )
    )
    return manifest


@contextmanager
def running_peer(
    base: Path,
    warehouse: Warehouse | None = None,
    *,
    database: str = "ZC",
    schema: str = "ANALYTICS",
) -> Iterator[FakesnowPeer]:
    """A fakesnow server on a free port (fixture warehouse loaded in ``database.schema``)."""
    python = peer_python()
    if python is None:
        raise FileNotFoundError(f"{VENV} missing: run tests/peers/fakesnow/install.sh")
    port = free_port()
    cmd = [str(python), str(LAUNCHER), "--port", str(port), "--host", "127.0.0.1"]
    if warehouse is not None:
        cmd += ["--load", str(write_manifest(base, warehouse, database, schema))]
    log = (base / "fakesnow.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=base)
    try:
        _wait_started(proc, port, base / "fakesnow.log")
        yield FakesnowPeer("127.0.0.1", port, _admin(port))
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            # The peer finishes in-flight requests first (a slow query the tests gave up on
            # ends within its SYSTEM$WAIT), so no driver thread retries against a dead port.
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_started(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    until = time.monotonic() + 60
    while time.monotonic() < until:
        if proc.poll() is not None:
            raise RuntimeError(f"fakesnow exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            wait_for_port(port, timeout=0.2)
            return
        except TimeoutError:
            continue
    raise RuntimeError(f"fakesnow did not open port {port} in 60 s: {log.read_text()[-2000:]}")


def peer_connect_kwargs(port: int) -> dict[str, Any]:
    """Password login as an admin (fakesnow accepts any credentials); no telemetry, no retries."""
    return {
        "protocol": "http",
        "host": "127.0.0.1",
        "port": port,
        "account": "zerocopy-peer",
        "user": "admin",
        "password": "peer",
        "login_timeout": 10,
        "network_timeout": 30,
        "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
    }


def _admin(port: int) -> Callable[[str], list[tuple[Any, ...]]]:
    def run(sql: str) -> list[tuple[Any, ...]]:
        import snowflake.connector

        with snowflake.connector.connect(**peer_connect_kwargs(port)) as conn:
            cur = conn.cursor()
            cur.execute(sql)
            return list(cur.fetchall()) if cur.description else []

    return run
