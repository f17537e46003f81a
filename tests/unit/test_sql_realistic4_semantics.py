"""Round 4 (issue #4): transpiles that used to change a realistic query's results, run on data.

Each test runs the SQL emitted for DuckDB (or, for Snowflake, sqlglot's reading of the emitted
Snowflake SQL, which models Snowflake's own window defaults) on a few rows and compares with
the answer the source warehouse gives, computed here independently.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
import sqlglot

from tests.unit.sql.catalog import CATALOG, SCOPE, marketing_ddl
from zerocopy.sql import SqlCatalog, check_segment_sql

_CATALOG = SqlCatalog(CATALOG)
REFERENCE = dt.datetime(2024, 3, 10, 12, 0, 0)
EVENTS = [
    ("a", dt.datetime(2024, 3, 10, 11, 0, 1)),  # 59m59s before: 0 hours elapsed, 1 boundary
    ("b", dt.datetime(2024, 3, 10, 11, 0, 0)),  # exactly 1 hour
    ("c", dt.datetime(2024, 3, 9, 12, 30, 0)),  # 23.5 hours: 0 days elapsed, 1 boundary
    ("d", dt.datetime(2024, 3, 8, 12, 0, 0)),  # exactly 2 days
    ("e", dt.datetime(2024, 3, 10, 13, 59, 59)),  # 1h59m59s after: -1 hour elapsed, -1 boundary
    ("f", dt.datetime(2024, 3, 11, 11, 0, 0)),  # 23 hours after: 0 days elapsed
]


@pytest.fixture()
def warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for statement in marketing_ddl():
        con.execute(statement)
    return con


def _checked(sql: str, dialect: str, target: str) -> str:
    result = check_segment_sql(sql, dialect=dialect, catalog=_CATALOG, scope=SCOPE, target=target)
    assert result.valid, result.errors
    assert result.sql
    return result.sql


def _elapsed(later: dt.datetime, earlier: dt.datetime, seconds: int) -> int:
    """Whole units elapsed, truncated toward zero (BigQuery's TIMESTAMP_DIFF)."""
    return int((later - earlier).total_seconds() / seconds)


@pytest.mark.parametrize(("unit", "seconds"), [("HOUR", 3600), ("DAY", 86400), ("MINUTE", 60)])
def test_bigquery_timestamp_diff_counts_elapsed_units_in_duckdb(
    warehouse: duckdb.DuckDBPyConnection, unit: str, seconds: int
) -> None:
    warehouse.executemany(
        "INSERT INTO marketing.events (external_user_id, occurred_at) VALUES (?, ?)", EVENTS
    )
    sql = _checked(
        "SELECT external_user_id, "
        f"TIMESTAMP_DIFF(TIMESTAMP '2024-03-10 12:00:00', occurred_at, {unit}) AS n "
        "FROM marketing.events",
        "bigquery",
        "duckdb",
    )
    got = dict(warehouse.execute(sql).fetchall())
    assert got == {user: _elapsed(REFERENCE, at, seconds) for user, at in EVENTS}


def test_redshift_listagg_distinct_with_delimiter_in_duckdb(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    rows = [("u1", "p2"), ("u1", "p1"), ("u1", "p2"), ("u2", "p9")]
    warehouse.executemany(
        "INSERT INTO marketing.purchases (external_user_id, product_id) VALUES (?, ?)", rows
    )
    sql = _checked(
        "SELECT external_user_id, LISTAGG(DISTINCT product_id, ';') WITHIN GROUP "
        "(ORDER BY product_id) AS products FROM marketing.purchases GROUP BY external_user_id",
        "redshift",
        "duckdb",
    )
    assert dict(warehouse.execute(sql).fetchall()) == {"u1": "p1;p2", "u2": "p9"}


def test_redshift_listagg_without_delimiter_concatenates(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    warehouse.executemany(
        "INSERT INTO marketing.purchases (external_user_id, product_id) VALUES (?, ?)",
        [("u1", "a"), ("u1", "b")],
    )
    sql = _checked(
        "SELECT external_user_id, LISTAGG(product_id) WITHIN GROUP (ORDER BY product_id) AS s "
        "FROM marketing.purchases GROUP BY external_user_id",
        "redshift",
        "duckdb",
    )
    assert warehouse.execute(sql).fetchall() == [("u1", "ab")]


@pytest.mark.parametrize("dialect", ["postgres", "duckdb", "bigquery", "databricks", "redshift"])
def test_value_window_without_frame_keeps_its_frame_in_snowflake(
    warehouse: duckdb.DuckDBPyConnection, dialect: str
) -> None:
    rows = [
        ("u1", "trial", dt.datetime(2024, 1, 1)),
        ("u1", "paid", dt.datetime(2024, 2, 1)),
        ("u1", "churned", dt.datetime(2024, 3, 1)),
    ]
    warehouse.executemany(
        "INSERT INTO marketing.subscriptions (external_user_id, state, updated_at) "
        "VALUES (?, ?, ?)",
        rows,
    )
    query = (
        "SELECT external_user_id, updated_at, LAST_VALUE(state) OVER "
        "(PARTITION BY external_user_id ORDER BY updated_at) AS so_far "
        "FROM marketing.subscriptions"
    )
    snowflake_sql = _checked(query, dialect, "snowflake")
    # sqlglot reads Snowflake's frameless LAST_VALUE as the whole partition (Snowflake's rule)
    as_duckdb = sqlglot.transpile(snowflake_sql, read="snowflake", write="duckdb")[0]
    got = sorted(warehouse.execute(as_duckdb).fetchall())
    assert [state for _, _, state in got] == ["trial", "paid", "churned"]


def _boundaries(earlier: dt.datetime, later: dt.datetime, unit: str) -> int:
    """Unit boundaries crossed from ``earlier`` to ``later`` (Redshift's DATEDIFF; weeks
    start on Monday)."""
    if unit == "hour":
        return int(
            (later.replace(minute=0, second=0) - earlier.replace(minute=0, second=0))
            / dt.timedelta(hours=1)
        )
    if unit == "day":
        return (later.date() - earlier.date()).days
    monday = lambda at: at.date() - dt.timedelta(days=at.weekday())  # noqa: E731
    return (monday(later) - monday(earlier)).days // 7


@pytest.mark.parametrize("unit", ["hour", "day", "week"])
def test_redshift_datediff_counts_boundaries_in_duckdb(
    warehouse: duckdb.DuckDBPyConnection, unit: str
) -> None:
    pairs = [
        ("a", dt.datetime(2024, 3, 9, 23, 0), dt.datetime(2024, 3, 10, 1, 0)),
        ("b", dt.datetime(2024, 3, 10, 12, 0), dt.datetime(2024, 3, 11, 1, 0)),  # Sun -> Mon
        ("c", dt.datetime(2024, 3, 12, 13, 59), dt.datetime(2024, 3, 12, 14, 1)),
        ("d", dt.datetime(2024, 3, 11, 1, 0), dt.datetime(2024, 3, 9, 23, 0)),
    ]
    warehouse.executemany(
        "INSERT INTO marketing.users (external_user_id, created_at, updated_at) VALUES (?, ?, ?)",
        pairs,
    )
    sql = _checked(
        f"SELECT external_user_id, DATEDIFF({unit}, created_at, updated_at) AS n "
        "FROM marketing.users",
        "redshift",
        "duckdb",
    )
    got = dict(warehouse.execute(sql).fetchall())
    assert got == {user: _boundaries(a, b, unit) for user, a, b in pairs}


def test_group_by_all_of_only_aggregates_is_one_group_for_postgres() -> None:
    sql = _checked(
        "SELECT max(external_user_id) AS external_user_id, count(*) AS n "
        "FROM marketing.users GROUP BY ALL",
        "duckdb",
        "postgres",
    )
    assert sql == (
        "SELECT MAX(external_user_id) AS external_user_id, COUNT(*) AS n FROM marketing.users"
    )


@pytest.mark.parametrize(("unit", "seconds"), [("HOUR", 3600), ("MINUTE", 60), ("WEEK", 604800)])
def test_databricks_datediff_unit_counts_elapsed_units_in_duckdb(
    warehouse: duckdb.DuckDBPyConnection, unit: str, seconds: int
) -> None:
    warehouse.executemany(
        "INSERT INTO marketing.events (external_user_id, occurred_at) VALUES (?, ?)", EVENTS
    )
    sql = _checked(
        f"SELECT external_user_id, datediff({unit}, occurred_at, "
        "TIMESTAMP '2024-03-10 12:00:00') AS n FROM marketing.events",
        "databricks",
        "duckdb",
    )
    got = dict(warehouse.execute(sql).fetchall())
    assert got == {user: _elapsed(REFERENCE, at, seconds) for user, at in EVENTS}
