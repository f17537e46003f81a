"""Every benchmark under ``bench/`` still runs, on tiny sizes, and prints its JSON line.

The benchmarks import engine internals (a batch validator, the scheduler's tick, the refresh
engine), so an internal change can break one without any other test noticing (it happened:
``bench/ingest_phases.py`` failed for a session). Nothing here looks at the figures: speed is
measured by running the benchmarks themselves, not by tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]

CASES = {
    "sql_check": (
        ["bench/sql_check.py", "--iterations", "3", "--dialect", "duckdb"],
        {"dialect", "check_p50_ms", "parse_one_p50_ms", "ratio_check_parse_p50"},
    ),
    "refresh": (["bench/refresh.py", "--users", "2000"], {"users", "first"}),
    "refresh_redshift": (["bench/refresh_redshift.py", "--users", "2000"], {"sizes"}),
    "ingest_phases": (
        ["bench/ingest_phases.py", "--rows", "2000", "--backends", "sqlite,postgres"],
        {"rows", "validate_us", "sqlite_engine_status", "postgres_engine_status", "peak_mb"},
    ),
    "ingest": (
        ["bench/ingest.py", "--rows", "2000"],
        {"rows", "rows_per_s", "vs_bare", "vs_dlt", "peak_mb"},
    ),
    "scheduler": (
        ["bench/scheduler.py", "--jobs", "12", "--workers", "1"],
        {"workers", "jobs_per_s", "lag_p50_s", "lag_p99_s", "baseline_jobs_per_s"},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_benchmark_runs_and_prints_its_json_line(
    name: str, postgres_server: str, tmp_path: Path
) -> None:
    args, keys = CASES[name]
    env = {
        **os.environ,
        "ZEROCOPY_TEST_POSTGRES_URL": postgres_server,
        "TMPDIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stdout[-2000:]
    last = json.loads(lines[-1])
    assert keys <= set(last), (sorted(keys - set(last)), last)
    if name == "ingest_phases":
        assert last["sqlite_engine_status"] == last["postgres_engine_status"] == "success"
