"""``zerocopy sql check`` as a user runs it: a subprocess, JSON on stdout, exit 0/1/2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO

ZEROCOPY = str(REPO / ".venv" / "bin" / "zerocopy")

CATALOG = {
    "scope": "marketing",
    "tables": {
        "marketing": {
            "users": {"external_user_id": "VARCHAR", "country": "VARCHAR", "plan": "VARCHAR"},
            "events": {
                "external_user_id": "VARCHAR",
                "name": "VARCHAR",
                "occurred_at": "TIMESTAMP",
            },
        }
    },
}


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ZEROCOPY, "sql", "check", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def catalog(tmp_path: Path) -> str:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(CATALOG))
    return str(path)


def expected(sql: str, dialect: str, target: str | None = None) -> dict[str, object]:
    """What the function itself returns for the same input (the CLI must print exactly this)."""
    from zerocopy.sql import check_segment_sql

    result = check_segment_sql(
        sql, dialect=dialect, catalog=CATALOG["tables"], scope="marketing", target=target
    )
    out: dict[str, object] = result.to_dict()
    return out


def test_valid_sql_exits_0_and_prints_the_function_result(catalog: str) -> None:
    sql = "SELECT external_user_id FROM users WHERE country = 'US'"
    proc = run("--dialect", "duckdb", "--catalog", catalog, sql)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed == expected(sql, "duckdb")
    assert printed["valid"] is True
    assert printed["errors"] == []


def test_transpiles_to_the_target_dialect(catalog: str) -> None:
    sql = "SELECT external_user_id FROM users WHERE plan ILIKE 'pro%'"
    proc = run("--dialect", "duckdb", "--to", "snowflake", "--catalog", catalog, sql)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed == expected(sql, "duckdb", "snowflake")


def test_invalid_sql_exits_1_with_codes(catalog: str) -> None:
    sql = "SELECT external_user_id FROM customers"
    proc = run("--dialect", "duckdb", "--catalog", catalog, sql)
    assert proc.returncode == 1, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed["valid"] is False
    assert [e["code"] for e in printed["errors"]] == ["unknown_table"]
    assert printed == expected(sql, "duckdb")


def test_not_read_only_exits_1(catalog: str) -> None:
    proc = run("--dialect", "duckdb", "--catalog", catalog, "DELETE FROM users")
    assert proc.returncode == 1
    assert "not_read_only" in {e["code"] for e in json.loads(proc.stdout)["errors"]}


def test_reads_sql_from_stdin(catalog: str) -> None:
    sql = "SELECT external_user_id FROM events WHERE name = 'checkout'"
    proc = run("--dialect", "duckdb", "--catalog", catalog, "-", stdin=sql)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == expected(sql, "duckdb")


def test_unknown_dialect_is_a_usage_error(catalog: str) -> None:
    proc = run("--dialect", "cobol", "--catalog", catalog, "SELECT 1")
    assert proc.returncode == 2
    assert "cobol" in proc.stderr


def test_missing_catalog_file_is_a_usage_error(tmp_path: Path) -> None:
    proc = run("--dialect", "duckdb", "--catalog", str(tmp_path / "nope.json"), "SELECT 1")
    assert proc.returncode == 2
    assert "nope.json" in proc.stderr


def test_malformed_catalog_file_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text('{"tables": []}')
    proc = run("--dialect", "duckdb", "--catalog", str(path), "SELECT 1")
    assert proc.returncode == 2
    assert "scope" in proc.stderr


def test_missing_sql_is_a_usage_error(catalog: str) -> None:
    proc = run("--dialect", "duckdb", "--catalog", catalog, "-", stdin="")
    assert proc.returncode == 2
    assert "no SQL" in proc.stderr


def test_missing_dialect_option_is_a_usage_error(catalog: str) -> None:
    proc = run("--catalog", catalog, "SELECT 1")
    assert proc.returncode == 2
