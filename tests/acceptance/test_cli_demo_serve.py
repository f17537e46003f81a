"""The two things a newcomer runs first, as real processes: ``zerocopy demo`` and
``zerocopy serve`` driven over HTTP (the README's curl walkthrough, with httpx)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fixtures.warehouse import build, load_duckdb
from tests.support import REPO, free_port, wait_for_port

ZEROCOPY = str(REPO / ".venv" / "bin" / "zerocopy")

RESULT_LINE = re.compile(
    r"^\s+(?P<name>.+?)\s+members\s+(?P<members>\d+)\s+\+(?P<added>\d+)\s+-(?P<removed>\d+)\s+"
    r"(?P<secs>[\d.]+) s\s+temp table (?P<table>zc_tmp_[0-9a-f]+) gone \(checked in the warehouse\)$",
    re.MULTILINE,
)


def env_for(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZEROCOPY_")}
    env["ZEROCOPY_DATA_DIR"] = str(data_dir)
    env["ZEROCOPY_LOG_LEVEL"] = "warning"
    return env


def test_demo_exits_0_and_prints_each_segments_facts(tmp_path: Path) -> None:
    proc = subprocess.run(
        [ZEROCOPY, "demo"], capture_output=True, text=True, timeout=240, env=env_for(tmp_path)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    results = [m.groupdict() for m in RESULT_LINE.finditer(out)]
    assert len(results) == 6, out  # three segments, refreshed twice
    first, second = results[:3], results[3:]
    assert [r["name"] for r in first] == [r["name"] for r in second]
    for r in first:
        assert int(r["members"]) > 0 and int(r["added"]) == int(r["members"])
        assert int(r["removed"]) == 0
    for before, after in zip(first, second, strict=True):
        # The warehouse changed in a way that touches every segment.
        assert int(after["added"]) + int(after["removed"]) > 0
        assert int(after["members"]) == (
            int(before["members"]) + int(after["added"]) - int(after["removed"])
        )
    assert len({r["table"] for r in results}) == 6  # one temporary table per run
    assert "WITH ranked AS" not in out  # SQL is not dumped; the facts are
    assert re.search(r"refused: missing_id_column", out)
    assert "active: 7 tables and views" in out
    # Recreated each run: a second run starts from scratch and prints the same first refresh.
    again = subprocess.run(
        [ZEROCOPY, "demo"], capture_output=True, text=True, timeout=240, env=env_for(tmp_path)
    )
    assert again.returncode == 0, again.stderr
    again_results = [m.groupdict() for m in RESULT_LINE.finditer(again.stdout)]
    assert [(r["name"], r["members"]) for r in again_results] == [
        (r["name"], r["members"]) for r in results
    ]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """``zerocopy serve`` on a free port, with a workspace created by the CLI beforehand."""
    env = env_for(tmp_path / "data")
    created = subprocess.run(
        [ZEROCOPY, "workspace", "create", "Acme"], capture_output=True, text=True, env=env
    )
    assert created.returncode == 0, created.stderr
    key = re.search(r"zc_[0-9a-f]{12}_\S+", created.stdout)
    assert key is not None
    warehouse = tmp_path / "warehouse.duckdb"
    load_duckdb(warehouse, "marketing", build(users=60))
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [ZEROCOPY, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, timeout=60)
        yield f"http://127.0.0.1:{port}", key.group(0), warehouse
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    # SIGTERM is a graceful shutdown (uvicorn re-raises the signal once the lifespan closed).
    text = (tmp_path / "serve.log").read_text()
    assert proc.returncode in (0, -15), text
    assert "Traceback" not in text and '"level": "error"' not in text, text


def test_serve_walkthrough_over_real_http(served: tuple[str, str, Path]) -> None:
    base, key, warehouse = served
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
        assert http.get("/health").json()["status"] == "ok"
        assert http.get("/schema/openapi.json").status_code == 200
        cred = http.post(
            "/v1/credentials",
            json={"name": "Warehouse", "kind": "duckdb", "settings": {"path": str(warehouse)}},
        ).json()
        source = http.post(
            "/v1/sources",
            json={"name": "Marketing", "credential_id": cred["id"], "scope": "marketing"},
        ).json()
        assert source["status"] == "draft"
        tested = http.post(f"/v1/sources/{source['id']}/test")
        assert tested.status_code == 200 and tested.json()["source"]["status"] == "active"
        tables = http.get(f"/v1/sources/{source['id']}/tables", params={"search": "user"})
        assert "users" in {t["name"] for t in tables.json()}
        sql = "SELECT external_user_id FROM users WHERE is_subscribed"
        check = http.post("/v1/segments/validate", json={"source_id": source["id"], "sql": sql})
        assert check.json()["valid"] is True
        seg = http.post(
            "/v1/segments", json={"name": "Subscribed", "source_id": source["id"], "sql": sql}
        ).json()
        run = http.post(f"/v1/segments/{seg['id']}/refresh")
        assert run.status_code == 202
        until = time.monotonic() + 30
        while True:
            state = http.get(f"/v1/runs/{run.json()['id']}").json()
            if state["status"] not in ("queued", "running") or time.monotonic() > until:
                break
            time.sleep(0.05)
        assert state["status"] == "succeeded", state
        members = http.get(f"/v1/segments/{seg['id']}/members", params={"limit": 5}).json()
        assert len(members["items"]) == min(5, state["member_count"])
        assert members["total"] == state["member_count"] > 0
