"""Targeted tests of `check_segment_sql`: result shape, ordering, positions, catalogs, output SQL."""

from __future__ import annotations

import logging

import duckdb
import pytest
import sqlglot

from tests.unit.sql.catalog import CATALOG, MARKETING, SCOPE
from zerocopy.errors import (
    MISSING_ID_COLUMN,
    MULTIPLE_STATEMENTS,
    NOT_READ_ONLY,
    OUT_OF_SCOPE,
    PARSE_ERROR,
    UNKNOWN_COLUMN,
    UNKNOWN_DIALECT,
    UNKNOWN_TABLE,
    ZerocopyError,
)
from zerocopy.sql import SqlCatalog, check_segment_sql, ctas_sql, transpile_sql


def check(sql: str, dialect: str = "postgres", **kwargs: object):
    kwargs.setdefault("catalog", CATALOG)
    kwargs.setdefault("scope", SCOPE)
    return check_segment_sql(sql, dialect=dialect, **kwargs)  # type: ignore[arg-type]


def test_to_dict_shape_of_a_valid_query() -> None:
    result = check("SELECT external_user_id FROM users WHERE country = 'FR'")
    assert result.to_dict() == {
        "valid": True,
        "errors": [],
        "sql": "SELECT external_user_id FROM marketing.users WHERE country = 'FR'",
        "ids_sql": (
            "SELECT DISTINCT CAST(zc_segment.external_user_id AS TEXT) AS external_user_id "
            "FROM (SELECT external_user_id FROM marketing.users WHERE country = 'FR') "
            "AS zc_segment WHERE zc_segment.external_user_id IS NOT NULL"
        ),
        "tables": ["marketing.users"],
        "dialect": "postgres",
        "target": "postgres",
    }


def test_errors_are_all_reported_in_issue_order() -> None:
    sql = "SELECT email FROM users u JOIN finance.x f ON TRUE WHERE u.age > 1"
    result = check(sql)
    assert [e.code for e in result.errors] == [OUT_OF_SCOPE, UNKNOWN_COLUMN, MISSING_ID_COLUMN]
    assert not result.valid and result.sql is None and result.ids_sql is None
    as_error = result.errors[0].to_error()
    assert isinstance(as_error, ZerocopyError) and as_error.code == OUT_OF_SCOPE
    with pytest.raises(ZerocopyError) as raised:
        result.raise_for_errors()
    assert len(raised.value.details["errors"]) == 3


def test_parse_error_position_is_the_offending_token() -> None:
    result = check("SELECT external_user_id\nFROM users\nWHERE country = = 'FR'")
    assert [e.code for e in result.errors] == [PARSE_ERROR]
    assert (result.errors[0].line, result.errors[0].column) == (3, 17)


def test_unknown_column_names_table_column_and_position() -> None:
    result = check("SELECT u.external_user_id\n  FROM users u\n WHERE u.emial = 'a@b.c'")
    [issue] = result.errors
    assert issue.code == UNKNOWN_COLUMN
    assert "u.emial" in issue.message and "did you mean email" in issue.message
    assert (issue.line, issue.column) == (3, 8)


def test_unknown_table_suggests_the_closest_name() -> None:
    [issue] = check("SELECT external_user_id FROM purchase").errors
    assert issue.code == UNKNOWN_TABLE and "did you mean purchases" in issue.message
    assert (issue.line, issue.column) == (1, 30)


def test_multiple_statements_points_at_the_second_one() -> None:
    result = check("SELECT external_user_id FROM users;\n  DROP TABLE users")
    assert [e.code for e in result.errors] == [MULTIPLE_STATEMENTS, NOT_READ_ONLY]
    assert (result.errors[0].line, result.errors[0].column) == (2, 3)


def test_unknown_dialects() -> None:
    assert [e.code for e in check("SELECT 1", dialect="oracle").errors] == [UNKNOWN_DIALECT]
    result = check("SELECT external_user_id FROM users", target="mysql")
    assert [e.code for e in result.errors] == [UNKNOWN_DIALECT]
    assert "mysql" in result.errors[0].message


@pytest.mark.parametrize("dialect", ["tsql", "fabric"])
def test_tsql_and_fabric_are_accepted_as_input(dialect: str) -> None:
    result = check("SELECT TOP 10 external_user_id FROM users", dialect=dialect, target="snowflake")
    assert result.valid, result.errors
    assert result.sql == "SELECT external_user_id FROM marketing.users LIMIT 10"


def test_catalog_keyed_by_database_dot_schema_and_three_levels() -> None:
    for catalog in ({"analytics.marketing": MARKETING}, {"analytics": {"marketing": MARKETING}}):
        result = check(
            "SELECT external_user_id FROM analytics.marketing.users",
            dialect="snowflake",
            catalog=catalog,
            scope="analytics.marketing",
        )
        assert result.valid, result.errors
        assert result.tables == ["analytics.marketing.users"]
        assert "FROM analytics.marketing.users" in (result.sql or "")


def test_sql_catalog_is_built_once_per_dialect() -> None:
    catalog = SqlCatalog(CATALOG)
    assert len(catalog) == len(MARKETING)
    first = check("SELECT external_user_id FROM users", dialect="snowflake", catalog=catalog)
    view = catalog._views["Snowflake"]
    second = check("SELECT external_user_id FROM users", dialect="snowflake", catalog=catalog)
    assert first.valid and second.valid
    assert catalog._views["Snowflake"] is view


def test_custom_id_column_on_the_ingestion_table() -> None:
    ok = check("SELECT external_id FROM users_attributes_sync", id_column="EXTERNAL_ID")
    assert ok.valid, ok.errors
    assert "AS EXTERNAL_ID" in (ok.ids_sql or "")
    bad = check("SELECT braze_id FROM users_attributes_sync", id_column="EXTERNAL_ID")
    assert [e.code for e in bad.errors] == [MISSING_ID_COLUMN]


def test_comments_never_reach_the_warehouse() -> None:
    result = check("SELECT external_user_id -- x */ DROP TABLE users; /*\nFROM users")
    assert result.valid
    assert result.sql == "SELECT external_user_id FROM marketing.users"


def test_redshift_ids_are_cast_wide_enough() -> None:
    result = check("SELECT external_user_id FROM users", dialect="redshift")
    assert "CAST(zc_segment.external_user_id AS VARCHAR(65535))" in (result.ids_sql or "")


def test_cte_query_hoists_with_in_ids_sql() -> None:
    result = check(
        "WITH b AS (SELECT external_user_id FROM purchases) SELECT external_user_id FROM b",
        dialect="bigquery",
    )
    assert result.ids_sql is not None and result.ids_sql.startswith("WITH b AS (")
    assert "CAST(zc_segment.external_user_id AS STRING)" in result.ids_sql


def test_ctas_sql_wraps_ids_sql() -> None:
    result = check("SELECT external_user_id FROM users", dialect="snowflake")
    assert ctas_sql(result.ids_sql or "", "marketing.zc_tmp_1", target="snowflake") == (
        f"CREATE TABLE marketing.zc_tmp_1 AS {result.ids_sql}"
    )


def test_transpile_sql_refuses_statements() -> None:
    sql, issues = transpile_sql("DELETE FROM users", dialect="postgres", target="duckdb")
    assert sql is None and [i.code for i in issues] == [NOT_READ_ONLY]


def test_compiled_sqlglot_is_in_use() -> None:
    """`sqlglot[c]` installs mypyc-compiled modules; the 2 ms budget depends on them."""
    import sqlglot.optimizer.qualify_columns
    import sqlglot.parser

    assert sqlglot.parser.__file__.endswith(".so")
    assert sqlglot.optimizer.qualify_columns.__file__.endswith(".so")


@pytest.fixture(scope="module")
def warehouse() -> duckdb.DuckDBPyConnection:
    """A tiny marketing schema in DuckDB to run the generated SQL for real."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marketing")
    columns = ", ".join(
        f"{name} {'VARCHAR' if kind == 'JSON' else kind}"
        for name, kind in MARKETING["users"].items()
    )
    con.execute(f"CREATE TABLE marketing.users ({columns})")
    con.execute(
        "INSERT INTO marketing.users (external_user_id, country, plan, attributes) VALUES "
        "('u1', 'FR', 'pro', '{\"plan\": \"pro\"}'), ('u2', 'FR', 'free', '{}'), "
        "('u1', 'FR', 'pro', '{}'), (NULL, 'FR', 'pro', '{}'), ('u3', 'DE', 'pro', '{}')"
    )
    con.execute(
        "CREATE TABLE marketing.purchases (purchase_id VARCHAR, external_user_id INTEGER, "
        "product_id VARCHAR, currency VARCHAR, price DOUBLE, quantity INT, purchased_at TIMESTAMP)"
    )
    con.execute("INSERT INTO marketing.purchases (external_user_id, price) VALUES (7, 10), (7, 5)")
    return con


@pytest.mark.parametrize("source", ["duckdb", "postgres", "snowflake", "databricks"])
def test_ids_sql_runs_distinct_non_null_string_ids(
    warehouse: duckdb.DuckDBPyConnection, source: str
) -> None:
    result = check(
        "SELECT external_user_id FROM users WHERE country = 'FR'", dialect=source, target="duckdb"
    )
    assert result.valid, result.errors
    rows = warehouse.execute(f"{result.ids_sql} ORDER BY 1").fetchall()
    assert rows == [("u1",), ("u2",)]


def test_integer_ids_come_back_as_strings(warehouse: duckdb.DuckDBPyConnection) -> None:
    result = check("SELECT external_user_id FROM purchases WHERE price > 1", dialect="duckdb")
    assert warehouse.execute(result.ids_sql or "").fetchall() == [("7",)]


@pytest.mark.parametrize(
    "dialect", ["snowflake", "bigquery", "redshift", "databricks", "duckdb", "postgres"]
)
def test_exotic_catalog_types_do_not_break_the_check(dialect: str) -> None:
    catalog = {
        "marketing": {
            "users": {
                "external_user_id": "character varying(256)",
                "attributes": "STRUCT<plan STRING, tags ARRAY<STRING>>",
                "odd": "USER-DEFINED type!!",
                "n": "NUMBER(38,0)",
            }
        }
    }
    for sql in ("SELECT * FROM users", "SELECT external_user_id FROM users WHERE odd = 1"):
        result = check(sql, dialect=dialect, catalog=catalog)
        assert result.valid, result.errors


def test_other_schemas_in_the_catalog_stay_out_of_scope() -> None:
    catalog = {"marketing": MARKETING, "finance": {"users": {"external_user_id": "VARCHAR"}}}
    ok = check("SELECT external_user_id, email FROM users", catalog=catalog)
    assert ok.valid and ok.tables == ["marketing.users"]
    bad = check("SELECT external_user_id FROM finance.users", catalog=catalog)
    assert [e.code for e in bad.errors] == [OUT_OF_SCOPE]


@pytest.mark.parametrize(
    ("dialect", "sql", "codes"),
    [
        # mixed-case catalog names were created quoted: case-sensitive where the dialect is
        ("postgres", "SELECT external_user_id FROM users WHERE \"firstName\" = 'a'", []),
        ("postgres", "SELECT external_user_id FROM users WHERE firstName = 'a'", [UNKNOWN_COLUMN]),
        ("snowflake", "SELECT external_user_id FROM users WHERE firstName = 'a'", [UNKNOWN_COLUMN]),
        ("postgres", 'SELECT external_user_id FROM "Orders"', []),
        ("postgres", "SELECT external_user_id FROM Orders", [UNKNOWN_TABLE]),
        # case-insensitive dialects resolve them either way
        ("duckdb", "SELECT external_user_id FROM users WHERE firstName = 'a'", []),
        ("redshift", "SELECT external_user_id FROM Orders", []),
        ("databricks", "SELECT external_user_id FROM users WHERE firstname = 'a'", []),
        # BigQuery: table names matched case-insensitively, qualified or not
        ("bigquery", "SELECT external_user_id FROM marketing.Orders WHERE amount > 1", []),
        ("bigquery", "SELECT external_user_id FROM orders WHERE amount > 1", []),
        # single-case names fold: a lower-case Snowflake catalog matches unquoted names
        ("snowflake", "SELECT EXTERNAL_USER_ID FROM USERS", []),
    ],
)
def test_catalog_name_case_rules(dialect: str, sql: str, codes: list[str]) -> None:
    catalog = {
        "marketing": {
            "users": {"external_user_id": "TEXT", "firstName": "TEXT"},
            "Orders": {"external_user_id": "TEXT", "amount": "INT"},
        }
    }
    result = check(sql, dialect=dialect, catalog=catalog)
    assert [e.code for e in result.errors] == codes, result.errors


def test_the_check_logs_nothing() -> None:
    """sqlglot warns on opaque commands and unscopable SQL; the check reports, never logs."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("sqlglot")
    logger.addHandler(handler)
    try:
        for sql in ("CALL cleanup()", "SELECT external_user_id FROM finance.users @stage"):
            check(sql, dialect="snowflake")
        transpile_sql("CALL cleanup()", dialect="snowflake", target="duckdb")
        assert records == []
        sqlglot.parse_one("CALL cleanup()", read="snowflake")  # outside a check: untouched
        assert len(records) == 1
    finally:
        logger.removeHandler(handler)


def test_ids_sql_drops_an_order_by_that_only_orders() -> None:
    ordered = check("SELECT external_user_id FROM users ORDER BY lifetime_value DESC")
    assert (
        ordered.sql == "SELECT external_user_id FROM marketing.users ORDER BY lifetime_value DESC"
    )
    assert "ORDER BY" not in (ordered.ids_sql or "x ORDER BY")
    top = check("SELECT external_user_id FROM users ORDER BY lifetime_value DESC LIMIT 10")
    assert "ORDER BY lifetime_value DESC LIMIT 10" in (top.ids_sql or "")
