"""Red-team round 9 (issue #4): rewrites are checked on data, refusals by what they name.

Redshift ``TRUNC(timestamp)`` and DuckDB ``epoch_ms(timestamp)`` are translated by their
argument's type: the SQL emitted for DuckDB runs in DuckDB (and the PostgreSQL one on the local
PostgreSQL server) and gives the answer the source dialect documents. Star modifiers naming a
missing column, later statements' tables, unqualified user functions and sampling the target
lacks are refused with messages naming the construct.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import psycopg
import pytest

from tests.unit.sql.catalog import duckdb_marketing, postgres_marketing
from tests.unit.sql.checks import check_sql, emitted_sql, error_codes, sorted_ids
from zerocopy.sql.rules import builtin_functions
from zerocopy.sql.rules.postgres import POSTGRES_EXTENSION_FUNCTIONS

# (external_user_id, created_at, lifetime_value)
USERS: list[tuple[str, str, float]] = [
    ("u1", "2024-03-04 05:06:07.250", 12.9),
    ("u2", "2023-12-31 23:59:59", -3.7),
    ("u3", "1970-01-01 00:00:01", 0.5),
]


SEED = {"users": ("external_user_id, created_at, lifetime_value", USERS)}


@pytest.fixture()
def warehouse() -> duckdb.DuckDBPyConnection:
    return duckdb_marketing(SEED)


@pytest.fixture()
def pg(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    with postgres_marketing(postgres_url, SEED) as con:
        yield con


# --- Redshift TRUNC(timestamp), DuckDB epoch_ms(timestamp) ---------------------------------


def test_redshift_trunc_of_a_timestamp_is_its_date_in_duckdb(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    sql = "SELECT external_user_id FROM users WHERE TRUNC(created_at) = '2024-03-04'"
    emitted = emitted_sql(sql, "redshift", "duckdb")
    assert "CAST(created_at AS DATE)" in emitted
    assert sorted_ids(warehouse, emitted) == ["u1"]


def test_redshift_trunc_of_a_number_still_truncates(warehouse: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT external_user_id FROM users WHERE TRUNC(lifetime_value) IN (12, -3)"
    assert sorted_ids(warehouse, emitted_sql(sql, "redshift", "duckdb")) == ["u1", "u2"]


def test_redshift_trunc_of_an_unknown_type_is_refused() -> None:
    sql = (
        "SELECT external_user_id FROM (SELECT external_user_id, MAX(created_at) AS m FROM users "
        "GROUP BY 1) s WHERE TRUNC(m) = CURRENT_DATE"
    )
    result = check_sql(sql, "redshift", "postgres")
    assert [e.code for e in result.errors] == ["unsupported_in_dialect"]
    assert "TRUNC(x)" in result.errors[0].message
    # the user's own warehouse reads it as Redshift does
    assert error_codes(sql, "redshift", "redshift") == []


def test_duckdb_epoch_ms_of_a_timestamp_is_milliseconds_elsewhere(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    sql = "SELECT external_user_id FROM users WHERE epoch_ms(created_at) >= 1709528767250"
    assert sorted_ids(warehouse, emitted_sql(sql, "duckdb", "duckdb")) == ["u1"]
    for target, fragment in [
        ("snowflake", "DATE_PART(EPOCH_MILLISECOND, created_at)"),
        ("bigquery", "UNIX_MILLIS(created_at)"),
        ("databricks", "UNIX_MILLIS(created_at)"),
        ("postgres", "FLOOR(EXTRACT(EPOCH FROM created_at) * 1000)"),
        ("redshift", "FLOOR(EXTRACT(EPOCH FROM created_at) * 1000)"),
    ]:
        assert fragment in emitted_sql(sql, "duckdb", target), target


@pytest.mark.postgres
def test_duckdb_epoch_ms_and_redshift_trunc_run_on_postgres(pg: psycopg.Connection[Any]) -> None:
    sql = "SELECT external_user_id FROM users WHERE epoch_ms(created_at) >= 1709528767250"
    assert sorted_ids(pg, emitted_sql(sql, "duckdb", "postgres")) == ["u1"]
    sql = "SELECT external_user_id FROM users WHERE epoch_ms(created_at) BETWEEN 1000 AND 1000"
    assert sorted_ids(pg, emitted_sql(sql, "duckdb", "postgres")) == ["u3"]
    sql = "SELECT external_user_id FROM users WHERE TRUNC(created_at) = DATE '2023-12-31'"
    assert sorted_ids(pg, emitted_sql(sql, "redshift", "postgres")) == ["u2"]


# --- refusals name what they refuse ----------------------------------------------------------


def test_star_modifier_naming_a_missing_column() -> None:
    result = check_sql("SELECT * EXCLUDE (emial) FROM users", "snowflake")
    assert [e.code for e in result.errors] == ["unknown_column"]
    issue = result.errors[0]
    assert "emial" in issue.message and "EXCLUDE" in issue.message
    assert (issue.line, issue.column) == (1, 19)
    # the name as the warehouse folds it: a quoted lower-case name is another column there
    assert error_codes('SELECT * EXCLUDE ("external_user_id") FROM users', "snowflake") == [
        "unknown_column"
    ]
    assert error_codes("SELECT * EXCLUDE (EMAIL) FROM users", "snowflake") == []
    # a star over a source whose columns are unknown cannot be checked
    sql = "SELECT * EXCLUDE (x) FROM users, LATERAL FLATTEN(input => attributes:tags) f"
    assert error_codes(sql, "snowflake") == []


def test_later_statements_tables_are_checked() -> None:
    result = check_sql(
        "SELECT external_user_id FROM users;\nSELECT * FROM finance.secrets", "postgres"
    )
    assert [e.code for e in result.errors] == ["multiple_statements", "out_of_scope"]
    assert "finance.secrets" in result.errors[1].message
    assert (result.errors[1].line, result.errors[1].column) == (2, 15)
    assert result.tables == ["marketing.users"]


def test_unqualified_user_function_message_points_at_the_scope() -> None:
    result = check_sql("SELECT external_user_id FROM users WHERE is_vip(email)", "postgres")
    assert [e.code for e in result.errors] == ["forbidden_function"]
    assert "marketing.is_vip" in result.errors[0].message
    assert (
        error_codes("SELECT external_user_id FROM users WHERE marketing.is_vip(email)", "postgres")
        == []
    )
    # other dialects have no list of their built-in functions: not refused there
    assert error_codes("SELECT external_user_id FROM users WHERE is_vip(email)", "snowflake") == []


def test_extension_functions_are_not_postgres_builtins() -> None:
    """The allowed extension names add to the built-in list (none is already there)."""
    assert not POSTGRES_EXTENSION_FUNCTIONS & builtin_functions("postgres")
    for name in ["levenshtein", "similarity", "unaccent"]:
        sql = f"SELECT external_user_id FROM users WHERE {name}(email, email) IS NOT NULL"
        if name == "unaccent":
            sql = "SELECT external_user_id FROM users WHERE unaccent(email) = 'x'"
        assert error_codes(sql, "postgres") == [], name


def test_sampling_refusal_names_the_method() -> None:
    result = check_sql(
        "SELECT external_user_id FROM users USING SAMPLE 10 ROWS", "duckdb", "snowflake"
    )
    assert [e.code for e in result.errors] == ["unsupported_in_dialect"]
    assert "RESERVOIR" in result.errors[0].message and "rows" in result.errors[0].message
    # percentages that PostgreSQL and DuckDB both sample are kept
    sql = "SELECT external_user_id FROM users TABLESAMPLE BERNOULLI (10)"
    assert "TABLESAMPLE BERNOULLI (10 PERCENT)" in emitted_sql(sql, "postgres", "duckdb")


def test_engine_hash_refused_only_across_dialects() -> None:
    sql = "SELECT external_user_id FROM users WHERE MOD(ABS(HASH(email)), 10) = 0"
    assert error_codes(sql, "snowflake", "snowflake") == []
    result = check_sql(sql, "snowflake", "databricks")
    assert [e.code for e in result.errors] == ["unsupported_in_dialect"]
    assert "HASH()" in result.errors[0].message


def test_extract_fields_the_target_lacks() -> None:
    sql = "SELECT external_user_id FROM users WHERE DATE_PART(EPOCH_SECOND, created_at) > 0"
    for target in ["bigquery", "redshift", "databricks", "postgres"]:
        assert error_codes(sql, "snowflake", target) == ["unsupported_in_dialect"], target
    assert "EPOCH(created_at)" in emitted_sql(sql, "snowflake", "duckdb")
    sql = "SELECT external_user_id FROM users WHERE EXTRACT(YEAR FROM created_at) = 2024"
    for target in ["snowflake", "bigquery", "redshift", "databricks", "duckdb"]:
        assert error_codes(sql, "postgres", target) == [], target
