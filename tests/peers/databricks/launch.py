"""Start the Databricks peer (``server.py``) as its own process and talk to its test hooks.

The peer needs only what the product already installs (the connector's bundled Thrift
definitions, duckdb, sqlglot, the ``fixtures`` package), so it runs from the product's
interpreter, but always as a separate process on a free loopback port, stopped by PID.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import REPO, free_port, wait_for_port

SERVER = Path(__file__).with_name("server.py")
HTTP_PATH = "/sql/1.0/warehouses/zc-peer"


@dataclass
class DatabricksPeer:
    """A running peer: where it listens, which tokens it knows, and its test hooks."""

    port: int
    tokens: dict[str, str]
    """Token → principal; the principal ``admin`` may do anything."""
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}{HTTP_PATH}"

    def token_of(self, principal: str) -> str:
        return next(t for t, p in self.tokens.items() if p == principal)

    def _post(self, path: str, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=json.dumps(payload).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def status(self) -> dict[str, Any]:
        """``{"running": [...], "finished": [...], "starting": bool}`` from ``/_peer/status``."""
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.port}/_peer/status", timeout=10
        ) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result

    def start_warehouse(self, seconds: float) -> None:
        """Answer HTTP 503 TEMPORARILY_UNAVAILABLE for ``seconds``, like a waking warehouse."""
        self._post("/_peer/starting", {"seconds": seconds})

    def admin(self, sql: str) -> list[tuple[Any, ...]]:
        """Run one Databricks SQL statement as the admin principal, through the real driver."""
        from databricks import sql as dbsql

        with (
            dbsql.connect(
                server_hostname="127.0.0.1",
                http_path=HTTP_PATH,
                access_token=self.token_of("admin"),
                _connection_uri=self.uri,
                enable_telemetry=False,
            ) as conn,
            conn.cursor() as cur,
        ):
            cur.execute(sql)
            try:
                return [tuple(r) for r in cur.fetchall()]
            except Exception:
                return []


@contextmanager
def running_peer(
    tmp_dir: Path,
    *,
    tokens: dict[str, str],
    catalogs: tuple[str, ...] = ("zc",),
    fixtures: tuple[str, ...] = (),
    starting_s: float = 0.0,
) -> Iterator[DatabricksPeer]:
    """Start the peer, wait until it listens, yield it, stop it by PID."""
    port = free_port()
    log_path = tmp_dir / f"databricks-peer-{port}.log"
    args = [sys.executable, str(SERVER), "--port", str(port)]
    for token, principal in tokens.items():
        args += ["--token", f"{token}={principal}"]
    for catalog in catalogs:
        args += ["--catalog", catalog]
    for scope in fixtures:
        args += ["--fixture", scope]
    if starting_s:
        args += ["--starting-seconds", str(starting_s)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        until = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"databricks peer exited: {log_path.read_text()[-2000:]}")
            try:
                wait_for_port(port, timeout=0.5)
                break
            except TimeoutError:
                if time.monotonic() > until:
                    raise
        yield DatabricksPeer(port, tokens, process, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
