"""Red-team round 16 (issue #4): common marketing SQL refused or translated wrongly.

Databricks' ``datediff(DAY, start, end)`` / ``date_diff(DAY, …)`` / ``timestampdiff(DAY, …)``
count whole days elapsed (a DAY is 86400 seconds: 23:00 to 01:00 the next day is 0), while its
two-argument ``datediff(end, start)`` counts days between the dates (1 there). sqlglot reads
both ``DATEDIFF`` forms alike, and the three-argument one was written as the target's
boundary-counting ``DATEDIFF``/``DATE_DIFF`` (DuckDB, Snowflake, Redshift) or rounded on
PostgreSQL; ``timestampdiff`` was refused for PostgreSQL. The forms are now told apart by
where the operands stand in the text (``end`` first: two arguments), and the elapsed ones
written as elapsed counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import psycopg
import pytest

from tests.unit.sql.catalog import duckdb_marketing, postgres_marketing
from tests.unit.sql.checks import emitted_sql, sorted_ids

# (external_user_id, created_at, updated_at)
USERS: list[tuple[str, str, str]] = [
    ("a1", "2024-01-01 23:00:00", "2024-01-02 01:00:00"),  # 2 hours, over one midnight
    ("a2", "2024-01-01 10:00:00", "2024-01-03 09:00:00"),  # 1 day 23 hours, two midnights
    ("a3", "2024-01-01 10:00:00", "2024-01-03 11:00:00"),  # 2 days 1 hour
    ("a4", "2024-01-03 01:00:00", "2024-01-01 23:00:00"),  # backwards: -1 day 2 hours
]
SEED = {"users": ("external_user_id, created_at, updated_at", USERS)}


@pytest.fixture(scope="module")
def warehouse() -> duckdb.DuckDBPyConnection:
    return duckdb_marketing(SEED)


@pytest.fixture()
def pg(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    with postgres_marketing(postgres_url, SEED) as con:
        yield con


_USERS = "SELECT external_user_id FROM users WHERE "

# (Databricks condition, the ids Databricks returns)
DAY_DIFFS: list[tuple[str, list[str]]] = [
    # whole days elapsed
    ("datediff(DAY, created_at, updated_at) >= 1", ["a2", "a3"]),
    ("datediff(day, created_at, updated_at) = 0", ["a1"]),
    ("datediff(DAY, created_at, updated_at) = -1", ["a4"]),
    ("date_diff(DAY, created_at, updated_at) >= 1", ["a2", "a3"]),
    ("timestampdiff(DAY, created_at, updated_at) >= 1", ["a2", "a3"]),
    ("timestampdiff(DAY, created_at, updated_at) = -1", ["a4"]),
    ("timestampdiff(HOUR, created_at, updated_at) = 2", ["a1"]),
    ("datediff(DAY, '2024-01-02', created_at) = 1", ["a4"]),
    ("datediff(DAY, '2024-01-02', created_at) = 0", ["a1", "a2", "a3"]),
    # days between the dates
    ("datediff(updated_at, created_at) = 1", ["a1"]),
    ("datediff(updated_at, created_at) = 2", ["a2", "a3"]),
    ("date_diff(updated_at, created_at) = -2", ["a4"]),
    # both in one query
    ("datediff(DAY, created_at, updated_at) = 0 AND datediff(updated_at, created_at) = 1", ["a1"]),
    ("datediff(updated_at, created_at) = 2 AND datediff(DAY, created_at, updated_at) = 1", ["a2"]),
]


@pytest.mark.parametrize(("condition", "ids"), DAY_DIFFS)
def test_databricks_day_differences_on_duckdb(
    warehouse: duckdb.DuckDBPyConnection, condition: str, ids: list[str]
) -> None:
    assert sorted_ids(warehouse, emitted_sql(_USERS + condition, "databricks", "duckdb")) == ids


@pytest.mark.postgres
@pytest.mark.parametrize(("condition", "ids"), DAY_DIFFS)
def test_databricks_day_differences_on_postgres(
    pg: psycopg.Connection[Any], condition: str, ids: list[str]
) -> None:
    assert sorted_ids(pg, emitted_sql(_USERS + condition, "databricks", "postgres")) == ids


@pytest.mark.parametrize("target", ["snowflake", "redshift"])
def test_databricks_elapsed_days_are_corrected_boundary_counts(target: str) -> None:
    """Snowflake's and Redshift's DATEDIFF(DAY, …) count midnights: the count is corrected
    where the start moved by it overshoots the end (checked on DuckDB above, whose DATE_DIFF
    also counts midnights)."""
    sql = emitted_sql(_USERS + "datediff(DAY, created_at, updated_at) >= 1", "databricks", target)
    assert "THEN DATEDIFF(DAY, created_at, updated_at) - 1" in sql
    two = emitted_sql(_USERS + "datediff(updated_at, created_at) >= 1", "databricks", target)
    assert "WHERE DATEDIFF(DAY, created_at, updated_at) >= 1" in two
