"""BigQuery's set operations by column name (``CORRESPONDING``, and the ``INNER`` / ``FULL`` /
``LEFT`` modes sqlglot keeps on them) exist in no other warehouse. sqlglot read
``UNION ALL CORRESPONDING`` as ``INNER UNION ALL BY NAME`` and wrote that for every target,
which DuckDB, Snowflake and PostgreSQL cannot parse, and the PostgreSQL-family rewrite skipped
it (no "name" in the text). Now, for any target but BigQuery, branches listing the same
columns are put in the first branch's order and matched by position (exact in every mode);
other branches are refused as ``unsupported_in_dialect``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import psycopg
import pytest

from tests.unit.sql.catalog import duckdb_marketing, postgres_marketing
from tests.unit.sql.checks import check_sql, emitted_sql, error_codes, sorted_ids

USERS = [("u1", "a@x.io"), ("u2", "b@x.io"), ("u3", None)]
SAME = (
    "SELECT external_user_id, email FROM marketing.users WHERE email IS NOT NULL "
    "UNION ALL CORRESPONDING "
    "SELECT email, external_user_id FROM marketing.users WHERE email IS NULL"
)
OTHERS = ["duckdb", "snowflake", "postgres", "redshift", "databricks", "fabric"]


SEED = {"users": ("external_user_id, email", USERS)}


@pytest.fixture()
def warehouse() -> duckdb.DuckDBPyConnection:
    return duckdb_marketing(SEED)


@pytest.fixture()
def pg(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    with postgres_marketing(postgres_url, SEED) as con:
        yield con


@pytest.mark.parametrize("target", OTHERS)
def test_corresponding_with_the_same_columns_becomes_positional(target: str) -> None:
    sql = emitted_sql(SAME, "bigquery", target).upper()
    assert "CORRESPONDING" not in sql and "BY NAME" not in sql and "INNER UNION" not in sql
    assert "UNION ALL" in sql


def test_corresponding_runs_on_duckdb(warehouse: duckdb.DuckDBPyConnection) -> None:
    assert sorted_ids(warehouse, emitted_sql(SAME, "bigquery", "duckdb")) == ["u1", "u2", "u3"]


def test_corresponding_runs_on_postgres(pg: psycopg.Connection[Any]) -> None:
    assert sorted_ids(pg, emitted_sql(SAME, "bigquery", "postgres")) == ["u1", "u2", "u3"]


def test_bigquery_keeps_its_own_form() -> None:
    sql = emitted_sql(SAME, "bigquery", "bigquery").upper()
    assert "BY NAME" in sql or "CORRESPONDING" in sql


@pytest.mark.parametrize("target", OTHERS)
def test_corresponding_with_other_columns_is_refused(target: str) -> None:
    sql = (
        "SELECT external_user_id, email FROM marketing.users "
        "UNION ALL CORRESPONDING SELECT external_user_id, phone FROM marketing.users"
    )
    assert error_codes(sql, "bigquery", target) == ["unsupported_in_dialect"]
    message = check_sql(sql, "bigquery", target).errors[0].message
    assert "BY NAME / CORRESPONDING" in message


def test_plain_by_name_between_duckdb_and_snowflake_is_kept() -> None:
    sql = (
        "SELECT external_user_id, email FROM marketing.users "
        "UNION ALL BY NAME SELECT email, external_user_id FROM marketing.users"
    )
    assert "BY NAME" in emitted_sql(sql, "duckdb", "snowflake").upper()
