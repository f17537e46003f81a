"""Start the TDS peer (and its token endpoint) for a test session; stop it by PID."""

from __future__ import annotations

import contextlib
import json
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import free_port, unavailable, wait_for_port

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CERTS = REPO / ".peers" / "tds"
DATABASE, TENANT = "zc_warehouse", "peer-tenant"
CLIENTS = {
    # client id: (secret, principal, expired)
    "app-zerocopy": ("zc-secret-canary-7f3a", "zerocopy", False),
    "app-reader": ("reader-secret-1b2c", "reader", False),
    "app-expired": ("expired-secret-9d8e", "zerocopy", True),
}


@dataclass
class TdsPeer:
    port: int
    sts_port: int
    process: subprocess.Popen[bytes]
    log: Path

    def admin(self, sql: str) -> list[tuple[Any, ...]]:
        """Run one statement as the peer's admin through the real driver."""
        import mssql_python

        raw = b"tok-admin".decode().encode("utf-16-le")
        conn = mssql_python.connect(
            f"Server=tcp:localhost,{self.port};Database={{{DATABASE}}};Encrypt=yes",
            attrs_before={1256: struct.pack("<I", len(raw)) + raw},
            autocommit=True,
            timeout=10,
        )
        try:
            cur = conn.cursor()
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []
        finally:
            conn.close()

    def statements(self) -> list[dict[str, Any]]:
        """The peer's statement log: sql, spid, state (ok/error/interrupted), start and end."""
        entries: list[dict[str, Any]] = json.loads(self.admin("SELECT peer_log()")[0][0])
        return entries


def setup_machine() -> None:
    """libltdl7 and the throwaway CA in the system store (tests/peers/tds/install.sh)."""
    done = subprocess.run(
        ["bash", str(HERE / "install.sh")], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        unavailable(f"tests/peers/tds/install.sh failed: {done.stderr[-500:]}")


@contextlib.contextmanager
def running_peer(tmp_dir: Path, fixtures: tuple[str, ...] = ("marketing",)) -> Iterator[TdsPeer]:
    setup_machine()
    port, sts_port = free_port(), free_port()
    log_path = tmp_dir / f"tds-peer-{port}.log"
    args = [
        sys.executable,
        str(HERE / "server.py"),
        "--port",
        str(port),
        "--sts-port",
        str(sts_port),
        "--tenant",
        TENANT,
        "--database",
        DATABASE,
        "--cert",
        str(CERTS / "server.pem"),
        "--key",
        str(CERTS / "server.key"),
        "--token",
        "tok-admin=admin",
    ]
    for client_id, (secret, principal, expired) in CLIENTS.items():
        args += ["--client", f"{client_id}={secret}={principal}" + ("=expired" if expired else "")]
    for schema in fixtures:
        args += ["--fixture", schema]
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        until = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"tds peer exited: {log_path.read_text()[-2000:]}")
            try:
                wait_for_port(port, timeout=0.5)
                wait_for_port(sts_port, timeout=0.5)
                break
            except TimeoutError:
                if time.monotonic() > until:
                    raise
        yield TdsPeer(port, sts_port, process, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
