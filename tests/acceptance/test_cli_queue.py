"""``zerocopy segment refresh`` with a job queue: PostgreSQL state, ``ZEROCOPY_RUNNER=procrastinate``.

Without a worker a queued run just waits: ``--wait`` is stopped by Ctrl-C (exit 130, the run
still queued) and a queued run is cancelled at once by ``segment cancel``; with a
``zerocopy worker`` running, ``refresh --wait`` prints the run the worker finished.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from fixtures.warehouse import build, load_duckdb
from tests.acceptance.test_cli_resources import ROOT, ZEROCOPY, error, out, zc

pytestmark = pytest.mark.postgres


def test_refresh_through_the_queue(tmp_path: Path, postgres_url: str) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    load_duckdb(warehouse, "marketing", build(users=60))
    env = {
        "ZEROCOPY_DATA_DIR": str(tmp_path / "data"),
        "ZEROCOPY_DATABASE_URL": postgres_url,
        "ZEROCOPY_LOG_LEVEL": "warning",
        "ZEROCOPY_RUNNER": "procrastinate",
        "ZEROCOPY_WORKER_POLL_S": "0.2",
        "ZEROCOPY_SHUTDOWN_GRACE_S": "2",
    }
    created = zc(env, "workspace", "create", "Queue Co").stdout
    env["ZEROCOPY_WORKSPACE"] = created.split("workspace:")[1].split()[0]
    cred = out(
        zc(env, "credential", "create", "--kind", "duckdb", "--name", "dw",
           "--setting", f"path={warehouse}")
    )  # fmt: skip
    source = out(
        zc(env, "source", "create", "--name", "dw", "--credential", cred["id"],
           "--scope", "marketing")
    )  # fmt: skip
    zc(env, "source", "test", source["id"])
    segment = out(
        zc(env, "segment", "create", "--source", source["id"], "--name", "all",
           "--sql", "SELECT external_user_id FROM users")
    )  # fmt: skip

    # No worker yet: --wait waits until Ctrl-C, which stops the wait, not the run (exit 130).
    waiting = subprocess.Popen(
        [ZEROCOPY, "segment", "refresh", segment["id"], "--wait"],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert waiting.stderr is not None
    told = waiting.stderr.readline()
    assert "waiting for a worker" in told, told
    waiting.send_signal(signal.SIGINT)
    stdout, stderr = waiting.communicate(timeout=60)
    assert waiting.returncode == 130, stderr
    queued = json.loads(stdout)
    assert (queued["status"], queued["trigger"]) == ("queued", "cli")
    busy = zc(env, "segment", "refresh", segment["id"], code=1)  # without --wait: only queues
    assert error(busy)["details"]["run_id"] == queued["id"]  # refresh_in_progress
    cancelled = out(zc(env, "segment", "cancel", queued["id"]))
    assert (cancelled["status"], cancelled["error"]["code"]) == ("cancelled", "cancelled")

    worker = subprocess.Popen(
        [ZEROCOPY, "worker", "--concurrency", "1", "--no-scheduler"],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        done = out(zc(env, "segment", "refresh", segment["id"], "--wait"))
    finally:
        worker.send_signal(signal.SIGTERM)
        _, logs = worker.communicate(timeout=60)
    assert worker.returncode == 0, logs
    assert (done["status"], done["member_count"], done["error"]) == ("succeeded", 60, None)
    runs = out(zc(env, "segment", "runs", segment["id"]))
    assert [r["status"] for r in runs] == ["succeeded", "cancelled"]
    assert [r["scheduled"] for r in runs] == [None, None]  # started from the CLI, not a schedule
