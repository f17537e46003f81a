"""``zerocopy sync list|show|update|delete|pause`` (+ ``activate`` to resume) as subprocesses.

One DuckDB fixture warehouse and one SQLite state file for the module. The setup (workspace,
source, one tested and run sync) is done in-process with the services; every command under
test is a separate ``zerocopy`` process. What the commands print is checked against the API's
response bodies for the same objects at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from litestar.testing import TestClient

from api.app import create_app
from fixtures.warehouse import build, load_duckdb
from zerocopy.services import credentials, sources, syncs, workspaces
from zerocopy.services.context import open_runtime
from zerocopy.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
ZEROCOPY = str(ROOT / ".venv" / "bin" / "zerocopy")
TABLE = "users_attributes_sync"


@dataclass
class Env:
    vars: dict[str, str]
    api_key: str
    source_id: str
    ran_sync_id: str
    """An active sync (tested, activated) with one finished run."""
    run_id: str


def cli(env: Env | dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """Run ``zerocopy sync ARGS`` and check its exit code."""
    extra = env.vars if isinstance(env, Env) else env
    proc = subprocess.run(
        [ZEROCOPY, "sync", *args],
        env={**os.environ, **extra},
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
    doc: dict[str, Any] = json.loads(proc.stderr.strip().splitlines()[-1])["error"]
    return doc


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    tmp = tmp_path_factory.mktemp("sync-cli")
    warehouse = tmp / "wh.duckdb"
    load_duckdb(warehouse, "marketing", build(users=80))
    base = {
        "ZEROCOPY_DATA_DIR": str(tmp / "data"),
        "ZEROCOPY_DATABASE_URL": f"sqlite:///{tmp / 'state.sqlite3'}",
        "ZEROCOPY_LOG_LEVEL": "warning",
    }

    async def go() -> tuple[str, str, str, str, str]:
        async with open_runtime(load_settings(base), start_runner=False) as rt:
            async with rt.db.session() as s:
                ws, key = await workspaces.create_workspace(s, name="sync cli")
                cred = await credentials.create_credential(
                    s,
                    rt.secret_box,
                    ws.id,
                    name="dw",
                    kind="duckdb",
                    settings={"path": str(warehouse)},
                )
                src = await sources.create_source(
                    s, ws.id, name="dw", credential_id=cred.id, scope="marketing"
                )
                await sources.test_source(s, rt, ws.id, src.id)
                ran = await syncs.create_sync(
                    s, ws.id, name="ran", data_type="user_attributes", source_id=src.id, table=TABLE
                )
                await syncs.test_sync(s, rt, ws.id, ran.id)
                await syncs.activate_sync(s, ws.id, ran.id)
                run = await syncs.start_run(s, rt, ws.id, ran.id, trigger="api")
            done = await syncs.execute_run(rt, run.id)
            assert done.rows_delivered > 0
            return ws.id, key, src.id, ran.id, run.id

    ws_id, key, src_id, ran_id, run_id = anyio.run(go)
    return Env({**base, "ZEROCOPY_WORKSPACE": ws_id}, key, src_id, ran_id, run_id)


def test_sync_manage(env: Env) -> None:
    created = out(
        cli(env, "create", "--name", "attrs", "--data-type", "user_attributes",
            "--source", env.source_id, "--table", TABLE, "--contact", "ops@example.com",
            "--notifications", '{"notify_on_error": true}', "--row-log", "errors")
    )  # fmt: skip
    assert (created["status"], created["row_log"], created["contacts"]) == (
        "draft", "errors", ["ops@example.com"],
    )  # fmt: skip
    assert created["notifications"] == {"notify_on_error": True}

    # Only what is given changes; the same data type is accepted.
    updated = out(
        cli(env, "update", created["id"], "--name", "attrs hourly", "--frequency", "1h",
            "--lookback-minutes", "30", "--row-limit", "25", "--no-contacts",
            "--notifications", '{"row_error_threshold_pct": 5}', "--data-type", "user_attributes")
    )  # fmt: skip
    assert updated == {
        **created,
        "name": "attrs hourly",
        "frequency": "1h",
        "lookback_minutes": 30,
        "row_limit": 25,
        "contacts": [],
        "notifications": {"row_error_threshold_pct": 5},
    }

    # Another data type is refused, and nothing else of the request is applied.
    refused = cli(env, "update", created["id"], "--data-type", "purchases", "--name", "x", code=1)
    assert refused.stdout == ""
    assert error(refused)["code"] == "data_type_immutable"
    assert error(refused)["details"] == {"field": "data_type", "data_type": "user_attributes"}

    # Pause an active sync; activate resumes it.
    paused = out(cli(env, "pause", env.ran_sync_id))
    assert (paused["status"], paused["last_run_id"]) == ("paused", env.run_id)
    resumed = out(cli(env, "activate", env.ran_sync_id))
    assert resumed == {**paused, "status": "active"}

    listed = out(cli(env, "list"))
    assert listed == [resumed, updated]  # oldest first; the refused update changed nothing

    deleted = cli(env, "delete", env.ran_sync_id)
    assert deleted.stdout == "" and f"deleted sync {env.ran_sync_id}" in deleted.stderr
    shown = out(cli(env, "show", created["id"]))
    assert shown == updated

    # What each command printed is the API's response body for the same object.
    with TestClient(create_app(load_settings(env.vars))) as api:
        api.headers["Authorization"] = f"Bearer {env.api_key}"
        assert api.get("/v1/syncs").json() == [shown]
        assert api.get(f"/v1/syncs/{created['id']}").json() == shown
        answer = api.patch(f"/v1/syncs/{created['id']}", json={"data_type": "purchases"})
        assert answer.status_code == 409
        assert {k: answer.json()["error"][k] for k in error(refused)} == error(refused)
        # The deleted sync is gone with its runs.
        assert api.get(f"/v1/syncs/{env.ran_sync_id}").status_code == 404
        assert api.get(f"/v1/sync-runs/{env.run_id}").status_code == 404


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("update", "s", "--notifications", "[1]"), "--notifications must be a JSON object"),
        (("update", "s", "--contact", "a@example.com", "--no-contacts"), "not both"),
    ],
)
def test_sync_update_usage_errors(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    proc = cli({"ZEROCOPY_DATA_DIR": str(tmp_path), "ZEROCOPY_WORKSPACE": "w"}, *args, code=2)
    assert message in proc.stderr and proc.stdout == ""
    assert not list(tmp_path.iterdir())  # refused before touching the state
