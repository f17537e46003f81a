"""``zerocopy workspace create`` and ``db upgrade`` as subprocesses against a fresh data dir."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from pathlib import Path

from tests.support import REPO
from zerocopy.secrets import hash_api_key

ZEROCOPY = str(REPO / ".venv" / "bin" / "zerocopy")


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ZEROCOPY_")},
        "ZEROCOPY_DATA_DIR": str(data_dir),
    }
    return subprocess.run([ZEROCOPY, *args], capture_output=True, text=True, timeout=120, env=env)


def test_workspace_create_prints_a_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    proc = run(tmp_path, "workspace", "create", "Acme Marketing")
    assert proc.returncode == 0, proc.stderr
    keys = re.findall(r"\bzc_[0-9a-f]{12}_[A-Za-z0-9_-]+", proc.stdout)
    assert len(keys) == 1, proc.stdout
    key = keys[0]
    state = tmp_path / "zerocopy.sqlite3"
    with sqlite3.connect(state) as con:
        (name,) = con.execute("SELECT name FROM workspace").fetchone()
        rows = con.execute("SELECT key_hash FROM api_key").fetchall()
        dump = "\n".join(con.iterdump())
    assert name == "Acme Marketing"
    assert rows == [(hash_api_key(key),)]
    assert key not in dump  # never stored in clear


def test_workspace_create_refuses_a_blank_name(tmp_path: Path) -> None:
    proc = run(tmp_path, "workspace", "create", "   ")
    assert proc.returncode == 2
    assert "validation_error" in proc.stderr


def test_db_upgrade_is_idempotent(tmp_path: Path) -> None:
    for _ in range(2):
        proc = run(tmp_path, "db", "upgrade")
        assert proc.returncode == 0, proc.stderr
        assert "up to date" in proc.stdout
    with sqlite3.connect(tmp_path / "zerocopy.sqlite3") as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"workspace", "api_key", "source", "segment", "refresh_run"} <= tables


def test_fixture_warehouse_writes_a_duckdb_file_once(tmp_path: Path) -> None:
    import duckdb

    target = tmp_path / "wh.duckdb"
    proc = run(tmp_path, "fixture-warehouse", str(target), "--users", "30")
    assert proc.returncode == 0, proc.stderr
    con = duckdb.connect(str(target), read_only=True)
    try:
        (count,) = con.execute("SELECT count(*) FROM marketing.users").fetchone()  # type: ignore[misc]
    finally:
        con.close()
    assert count == 30
    again = run(tmp_path, "fixture-warehouse", str(target))
    assert again.returncode == 2 and "already exists" in again.stderr
