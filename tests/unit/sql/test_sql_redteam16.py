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
from tests.unit.sql.checks import emitted_sql, error_codes, sorted_ids

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


# --- Snowflake TO_CHAR / TO_VARCHAR of a date or time with a format ------------------------

# (external_user_id, created_at)
SIGNUPS: list[tuple[str, str]] = [
    ("s1", "2024-01-05 13:45:00"),
    ("s2", "2024-02-29 08:00:00"),
    ("s3", "2023-12-31 23:59:00"),
]
SIGNUP_SEED = {"users": ("external_user_id, created_at", SIGNUPS)}

# (Snowflake condition, the ids Snowflake returns)
TO_CHARS: list[tuple[str, list[str]]] = [
    ("TO_VARCHAR(created_at, 'YYYY-MM') = '2024-01'", ["s1"]),
    ("TO_CHAR(created_at, 'YYYY-MM-DD') = '2024-02-29'", ["s2"]),
    ("TO_CHAR(created_at, 'MON YYYY') = 'Dec 2023'", ["s3"]),
    ("TO_CHAR(created_at, 'HH24:MI') = '13:45'", ["s1"]),
    ("TO_VARCHAR(DATE_TRUNC('MONTH', created_at), 'YYYY-MM-DD') = '2024-02-01'", ["s2"]),
    ("TO_VARCHAR(u.created_at, 'YYYY') = '2024'", ["s1", "s2"]),
]


@pytest.fixture(scope="module")
def signups() -> duckdb.DuckDBPyConnection:
    return duckdb_marketing(SIGNUP_SEED)


@pytest.fixture()
def pg_signups(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    with postgres_marketing(postgres_url, SIGNUP_SEED) as con:
        yield con


_SIGNUPS = "SELECT u.external_user_id FROM users AS u WHERE "


@pytest.mark.parametrize(("condition", "ids"), TO_CHARS)
def test_snowflake_date_formats_on_duckdb(
    signups: duckdb.DuckDBPyConnection, condition: str, ids: list[str]
) -> None:
    assert sorted_ids(signups, emitted_sql(_SIGNUPS + condition, "snowflake", "duckdb")) == ids


@pytest.mark.postgres
@pytest.mark.parametrize(("condition", "ids"), TO_CHARS)
def test_snowflake_date_formats_on_postgres(
    pg_signups: psycopg.Connection[Any], condition: str, ids: list[str]
) -> None:
    assert sorted_ids(pg_signups, emitted_sql(_SIGNUPS + condition, "snowflake", "postgres")) == ids


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("bigquery", "FORMAT_TIMESTAMP('%Y-%m', u.created_at)"),
        ("databricks", "DATE_FORMAT(u.created_at, 'yyyy-MM')"),
    ],
)
def test_snowflake_date_format_for_other_targets(target: str, expected: str) -> None:
    sql = emitted_sql(
        _SIGNUPS + "TO_VARCHAR(u.created_at, 'YYYY-MM') = '2024-01'", "snowflake", target
    )
    assert expected in sql


def test_snowflake_date_format_of_a_date_for_bigquery() -> None:
    sql = _SIGNUPS + "TO_CHAR(u.created_at::DATE, 'YYYY-MM') = '2024-01'"
    assert "FORMAT_DATE('%Y-%m', CAST(u.created_at AS DATE))" in emitted_sql(
        sql, "snowflake", "bigquery"
    )


def test_snowflake_number_format_still_refused_for_duckdb() -> None:
    """A number's format model has no DuckDB form: still unsupported there."""
    sql = _SIGNUPS + "TO_CHAR(u.lifetime_value, '999.99') = '1.00'"
    assert error_codes(sql, "snowflake", "duckdb") == ["unsupported_in_dialect"]
