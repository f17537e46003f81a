"""``zerocopy credential|source|catalog|segment|workspace`` as real subprocesses, end to end.

One DuckDB fixture warehouse and one SQLite state file for the module; every command is a
separate ``zerocopy`` process, as a user would run it. What is checked against the API is the
shape (the API's own DTOs), against the warehouse the members (computed here with DuckDB).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from litestar.testing import TestClient

from api.app import create_app
from fixtures.warehouse import build, load_duckdb
from zerocopy.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
ZEROCOPY = str(ROOT / ".venv" / "bin" / "zerocopy")
SCHEMA = "marketing"
SEGMENT_SQL = "SELECT external_user_id FROM users WHERE country = 'US' AND plan <> 'free'"
SLOW_SQL = (
    "SELECT u.external_user_id FROM users AS u, events AS a, events AS b, events AS c "
    "WHERE a.name || b.name || c.name = 'x' OR u.country = 'US'"
)
"""Minutes on the fixture (users x events^3): only a cancel ends it."""


@dataclass
class Env:
    vars: dict[str, str]
    warehouse: Path
    state: Path
    workspace_id: str
    api_key: str


def zc(
    env: Env | dict[str, str], *args: str, stdin: str | None = None, code: int = 0
) -> subprocess.CompletedProcess[str]:
    """Run ``zerocopy ARGS`` and check its exit code."""
    extra = env.vars if isinstance(env, Env) else env
    proc = subprocess.run(
        [ZEROCOPY, *args],
        env={**os.environ, **extra},
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def out(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(proc.stdout)


def error(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The ``{"error": {...}}`` document on stderr (after any log lines)."""
    last = proc.stderr.strip().splitlines()[-1]
    doc: dict[str, Any] = json.loads(last)["error"]
    return doc


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    """A fixture warehouse, a state file and a workspace made by ``zerocopy workspace create``."""
    tmp = tmp_path_factory.mktemp("cli")
    warehouse = tmp / "warehouse.duckdb"
    load_duckdb(warehouse, SCHEMA, build(users=120))
    state = tmp / "state.sqlite3"
    base = {
        "ZEROCOPY_DATA_DIR": str(tmp / "data"),
        "ZEROCOPY_DATABASE_URL": f"sqlite:///{state}",
        "ZEROCOPY_LOG_LEVEL": "warning",
        "ZEROCOPY_WORKSPACE": "",
    }
    created = zc(base, "workspace", "create", "CLI Co")
    found = re.search(r"workspace: (\S+).*api key: +(\S+)", created.stdout, re.S)
    assert found, created.stdout
    ws_id, key = found.groups()
    return Env({**base, "ZEROCOPY_WORKSPACE": ws_id}, warehouse, state, ws_id, key)


def expected_members(warehouse: Path) -> list[str]:
    """The segment's ids straight from DuckDB (closed before any CLI process opens the file)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(SEGMENT_SQL.replace("FROM users", f"FROM {SCHEMA}.users")).fetchall()
    return sorted({str(r[0]) for r in rows if r[0] is not None}, key=lambda s: s.encode())


def wait_until_running(state: Path, run_id: str, timeout: float = 60.0) -> None:
    """Until the state database shows the run claimed by its process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with closing(sqlite3.connect(state, timeout=10)) as con:
            row = con.execute("SELECT status FROM refresh_run WHERE id = ?", (run_id,)).fetchone()
        if row is not None and row[0] == "running":
            return
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never started")


def test_credential_to_members(env: Env) -> None:
    wanted = expected_members(env.warehouse)
    assert len(wanted) > 5

    shown = out(zc(env, "workspace", "show"))
    assert (shown["id"], shown["name"], shown["time_zone"]) == (env.workspace_id, "CLI Co", "UTC")
    moved = out(zc(env, "workspace", "update", "--time-zone", "Europe/Paris"))
    assert moved == {**shown, "time_zone": "Europe/Paris"}

    cred = out(
        zc(env, "credential", "create", "--kind", "duckdb", "--name", "Local DuckDB",
           "--setting", f"path={env.warehouse}")
    )  # fmt: skip
    assert (cred["kind"], cred["settings"], cred["secret_fields"]) == (
        "duckdb", {"path": str(env.warehouse)}, [],
    )  # fmt: skip

    source = out(
        zc(env, "source", "create", "--name", "Marketing", "--credential", cred["id"],
           "--scope", SCHEMA, "--max-runtime-minutes", "5")
    )  # fmt: skip
    assert (source["status"], source["max_runtime_minutes"]) == ("draft", 5)

    tested = out(zc(env, "source", "test", source["id"]))
    assert tested["source"]["status"] == "active"
    tables = {t["name"]: t for t in tested["tables"]}
    assert {"users", "purchases", "events"} <= set(tables)

    table = out(zc(env, "catalog", "table", "--source", source["id"], "USERS"))
    assert table["name"] == "users"
    assert {"external_user_id", "country", "plan"} <= {c["name"] for c in table["columns"]}
    assert len(table["columns"]) == tables["users"]["column_count"]

    # Invalid SQL: the check result on stdout, exit 1, the code named.
    invalid = out(
        zc(env, "segment", "validate", "--source", source["id"], "SELECT email FROM users", code=1)
    )
    assert invalid["valid"] is False
    assert [e["code"] for e in invalid["errors"]] == ["missing_id_column"]

    segment = out(
        zc(env, "segment", "create", "--source", source["id"], "--name", "Paid US",
           "--sql-file", "-", "--schedule", '{"frequency": "daily", "hour": 2, "minute": 30}',
           stdin=SEGMENT_SQL)
    )  # fmt: skip
    assert (segment["sql"], segment["member_count"], segment["dialect"]) == (
        SEGMENT_SQL, 0, "duckdb",
    )  # fmt: skip

    run = out(zc(env, "segment", "refresh", segment["id"]))
    assert (run["status"], run["trigger"], run["error"]) == ("succeeded", "cli", None)
    assert (run["member_count"], run["added"], run["removed"]) == (len(wanted), len(wanted), 0)

    page = out(zc(env, "segment", "members", segment["id"], "--limit", "5", "--after", wanted[1]))
    assert page == {
        "segment_id": segment["id"],
        "items": wanted[2:7],
        "next_cursor": wanted[6],
        "total": len(wanted),
    }

    # Invalid SQL on create: nothing saved, the check's code on stderr, exit 1.
    refused = zc(
        env, "segment", "create", "--source", source["id"], "--name", "Broken",
        "--sql", "SELECT external_user_id FROM userz", code=1,
    )  # fmt: skip
    assert refused.stdout == ""
    assert error(refused)["code"] == "unknown_table"

    # A source with segments is not deleted; the segment list shows what exists.
    in_use = zc(env, "source", "delete", source["id"], code=1)
    assert error(in_use)["details"]["segment_ids"] == [segment["id"]]
    done = zc(env, "segment", "cancel", run["id"], code=1)
    assert (error(done)["code"], error(done)["details"]["status"]) == ("conflict", "succeeded")

    # Ctrl-C during an in-process refresh cancels it properly: run cancelled, temp table gone.
    slow = out(
        zc(env, "segment", "create", "--source", source["id"], "--name", "Slow", "--sql", SLOW_SQL)
    )
    proc = subprocess.Popen(
        [ZEROCOPY, "segment", "refresh", slow["id"]],
        env={**os.environ, **env.vars},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    told = proc.stderr.readline()  # printed once the run is queued and Ctrl-C is handled
    assert "Ctrl-C cancels" in told, told
    run_id = told.split("(run ")[1].split(")")[0]
    wait_until_running(env.state, run_id)  # the warehouse query is under way
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    stopped = json.loads(stdout)
    assert (stopped["id"], stopped["status"]) == (run_id, "cancelled")
    assert stopped["error"]["code"] == "cancelled" and stopped["started_at"] is not None
    with duckdb.connect(str(env.warehouse), read_only=True) as con:
        left = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'zc_tmp_%'"
        ).fetchall()
    assert left == []

    # What each command printed is the API's response body for the same object.
    with TestClient(create_app(load_settings(env.vars))) as api:
        api.headers["Authorization"] = f"Bearer {env.api_key}"
        assert api.get("/v1/workspace").json() == moved
        assert api.get(f"/v1/credentials/{cred['id']}").json() == cred
        assert api.get(f"/v1/sources/{source['id']}").json() == tested["source"]
        assert api.get(f"/v1/sources/{source['id']}/tables/USERS").json() == table
        body = {"source_id": source["id"], "sql": "SELECT email FROM users"}
        assert api.post("/v1/segments/validate", json=body).json() == invalid
        assert api.get(f"/v1/runs/{run['id']}").json() == run
        members = api.get(
            f"/v1/segments/{segment['id']}/members", params={"limit": 5, "cursor": wanted[1]}
        )
        assert members.json() == page
        now = api.get(f"/v1/segments/{segment['id']}").json()
        assert set(now) == set(segment) and now["last_run_id"] == run["id"]


def test_secrets_never_come_back(env: Env) -> None:
    secret = "zc-cli-canary-5f1e0b7a9c"  # a password that must never be printed or logged
    token = "zc-cli-canary-env-81d2c4"
    debug = {**env.vars, "ZEROCOPY_LOG_LEVEL": "debug", "PG_TOKEN": token}
    outputs: list[subprocess.CompletedProcess[str]] = []

    pg = ("credential", "create", "--kind", "postgres", "--name", "pg",
          "--setting", "host=127.0.0.1", "--setting", "port=1", "--setting", "database=db",
          "--setting", "user=zc")  # fmt: skip
    cred = zc(debug, *pg, "--secret-file", "password=-", stdin=secret + "\n")
    outputs.append(cred)
    created = out(cred)
    assert (created["secret_fields"], created["settings"]["port"]) == (["password"], 1)
    again = zc(debug, *pg, "--secret-env", "password=PG_TOKEN", code=1)  # the name is taken
    outputs.append(again)
    assert error(again)["code"] == "conflict"

    source = zc(debug, "source", "create", "--name", "pg", "--credential", created["id"],
                "--scope", "public")  # fmt: skip
    outputs.append(source)
    failed = zc(debug, "source", "test", out(source)["id"], code=1)  # nothing listens on port 1
    outputs.append(failed)
    assert error(failed)["code"] == "unreachable"
    outputs.append(zc(debug, "credential", "list"))
    assert {c["name"]: c["secret_fields"] for c in out(outputs[-1])}["pg"] == ["password"]

    # Snowflake: zerocopy generates the key pair and shows only the public half.
    sf = zc(
        debug, "credential", "create", "--kind", "snowflake", "--name", "sf",
        "--setting", "account=xy12345", "--setting", "user=ZC_SVC", "--setting", "role=ZC",
        "--setting", "warehouse=WH",
    )  # fmt: skip
    outputs.append(sf)
    key = out(sf)["key"]
    assert key["public_key"] and out(sf)["secret_fields"] == ["private_key"]
    assert key["statements"] == [f"ALTER USER ZC_SVC SET RSA_PUBLIC_KEY = '{key['public_key']}';"]
    assert key["statements"][0] in sf.stderr  # told to the human too
    rotating = zc(debug, "credential", "key", "rotate", out(sf)["id"])
    outputs.append(rotating)
    pending = out(rotating)["rotation"]["pending"]
    assert out(rotating)["statements"] == [
        f"ALTER USER ZC_SVC SET RSA_PUBLIC_KEY_2 = '{pending['public_key']}';"
    ]
    aborted = zc(debug, "credential", "key", "abort", out(sf)["id"])
    outputs.append(aborted)
    assert out(aborted)["rotation"]["pending"] is None
    assert out(aborted)["statements"] == ["ALTER USER ZC_SVC UNSET RSA_PUBLIC_KEY_2;"]

    for proc in outputs:
        for text in (proc.stdout, proc.stderr):
            assert secret not in text and token not in text
            assert "PRIVATE KEY" not in text
    assert secret.encode() not in env.state.read_bytes()  # encrypted at rest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("segment", "list"), "--workspace"),
        (("credential", "create", "--workspace", "w", "--kind", "duckdb", "--name", "x",
          "--setting", "path"), "KEY=VALUE"),
        (("credential", "create", "--workspace", "w", "--kind", "postgres", "--name", "x",
          "--secret-file", "password=/nonexistent/zc-secret"), "cannot read"),
        (("segment", "create", "--workspace", "w", "--source", "s", "--name", "x",
          "--sql", "SELECT 1", "--sql-file", "q.sql"), "not both"),
        (("segment", "members", "--workspace", "w", "seg", "--limit", "0"), "--limit"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    proc = zc({"ZEROCOPY_DATA_DIR": str(tmp_path), "ZEROCOPY_WORKSPACE": ""}, *args, code=2)
    assert message in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "zerocopy.sqlite3").exists()  # refused before touching the state
