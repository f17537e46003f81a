"""``zerocopy sync ...`` as real subprocesses on a SQLite state file and the fixture warehouse."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import anyio

from fixtures.warehouse import build, load_duckdb
from zerocopy.services import credentials, sources, workspaces
from zerocopy.services.context import open_runtime
from zerocopy.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
ZEROCOPY = str(ROOT / ".venv" / "bin" / "zerocopy")


def cli(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [ZEROCOPY, "sync", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def setup_workspace(tmp_path: Path) -> tuple[dict[str, str], str]:
    wh = tmp_path / "wh.duckdb"
    load_duckdb(wh, "marketing", build(users=80))
    env = {
        "ZEROCOPY_DATA_DIR": str(tmp_path / "data"),
        "ZEROCOPY_DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite3'}",
        "ZEROCOPY_LOG_LEVEL": "warning",
    }

    async def go() -> tuple[str, str]:
        settings = load_settings(env)
        async with open_runtime(settings, start_runner=False) as rt, rt.db.session() as s:
            ws, _ = await workspaces.create_workspace(s, name="cli")
            cred = await credentials.create_credential(
                s, rt.secret_box, ws.id, name="dw", kind="duckdb", settings={"path": str(wh)}
            )
            src = await sources.create_source(
                s, ws.id, name="dw", credential_id=cred.id, scope="marketing"
            )
            await sources.test_source(s, rt, ws.id, src.id)
            return ws.id, src.id

    ws_id, src_id = anyio.run(go)
    return {**env, "ZEROCOPY_WORKSPACE": ws_id}, src_id


def test_sync_cli_flow(tmp_path: Path) -> None:
    env, source_id = setup_workspace(tmp_path)
    sync: dict[str, Any] = json.loads(
        cli(
            env, "create", "--name", "attrs", "--data-type", "user_attributes",
            "--source", source_id, "--table", "users_attributes_sync", "--frequency", "1h",
        ).stdout
    )  # fmt: skip
    assert sync["status"] == "draft"
    refused = cli(env, "run", sync["id"], ok=False)
    assert refused.returncode == 1 and '"conflict"' in refused.stderr
    test = json.loads(cli(env, "test", sync["id"]).stdout)
    assert len(test["preview"]) == 10 and all(p["valid"] for p in test["preview"])
    assert json.loads(cli(env, "activate", sync["id"]).stdout)["status"] == "active"
    run = json.loads(cli(env, "run", sync["id"]).stdout)
    assert run["status"] == "partial_success"
    assert (run["rows_read"], run["rows_delivered"], run["rows_errored"]) == (60, 48, 12)
    assert run["watermark_after"] is not None
    runs = json.loads(cli(env, "runs", sync["id"]).stdout)
    assert [r["id"] for r in runs] == [run["id"]]
    errs = json.loads(cli(env, "errors", run["id"]).stdout)
    assert len(errs) == 12 and {e["code"] for e in errs} == {
        "no_identifier", "multiple_identifiers", "invalid_json", "unknown_braze_id",
    }  # fmt: skip
    exported = cli(env, "export", run["id"], "--format", "csv").stdout
    assert [r["code"] for r in csv.DictReader(io.StringIO(exported))] == [e["code"] for e in errs]
    lines = cli(env, "export", run["id"], "--format", "jsonl", "--all").stdout.splitlines()
    assert len(lines) == 60
    assert json.loads(cli(env, "sweep").stdout) == {"row_logs": 0, "runs": 0}


def test_sync_cli_needs_a_workspace(tmp_path: Path) -> None:
    proc = cli(
        {"ZEROCOPY_DATA_DIR": str(tmp_path), "ZEROCOPY_WORKSPACE": ""}, "runs", "x", ok=False
    )
    assert proc.returncode == 2 and "--workspace" in proc.stderr
