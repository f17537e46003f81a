"""Red-team round 3 rules (issue #4): pg_catalog-qualified types, STREAM reads, BigQuery null
placement, clauses BigQuery lacks, OPENROWSET(BULK …), ids through UNPIVOT.

The corpus (tests/sql_corpus/redteam3.yaml) holds the verdicts; these tests check what the
corpus cannot: that the SQL emitted for BigQuery orders rows as the original query does (run
on DuckDB with NULLs in the sort key), and the helpers' edge cases.
"""

from __future__ import annotations

from types import SimpleNamespace

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from tests.unit.sql.catalog import CATALOG, SCOPE
from zerocopy.sql import SqlCatalog, check_segment_sql, hardening
from zerocopy.sql.rules import rules_for

_CATALOG = SqlCatalog(CATALOG)


def _check(sql: str, dialect: str, target: str | None = None) -> tuple[list[str], str | None]:
    result = check_segment_sql(sql, dialect=dialect, catalog=_CATALOG, scope=SCOPE, target=target)
    return [issue.code for issue in result.errors], result.sql


# Rows with NULL and tied sort keys, so a changed null placement or peer group shows.
_ROWS = [
    ("u1", "p1", 10.0, "2024-01-01 00:00:00"),
    ("u1", "p2", 20.0, None),
    ("u1", "p3", 30.0, "2024-01-03 00:00:00"),
    ("u1", "p4", 40.0, "2024-01-03 00:00:00"),
    ("u1", "p5", 50.0, None),
    ("u2", "p6", 5.0, None),
    ("u2", "p7", 7.0, "2024-01-02 00:00:00"),
]


def _run(sql: str) -> list[tuple[object, ...]]:
    connection = duckdb.connect()
    connection.execute("CREATE SCHEMA marketing")
    connection.execute(
        "CREATE TABLE marketing.purchases (purchase_id VARCHAR, external_user_id VARCHAR, "
        "product_id VARCHAR, currency VARCHAR, price DOUBLE, quantity INT, "
        "purchased_at TIMESTAMP)"
    )
    for user, purchase, price, at in _ROWS:
        connection.execute(
            "INSERT INTO marketing.purchases VALUES (?, ?, 'x', 'EUR', ?, 1, ?)",
            [purchase, user, price, at],
        )
    rows = connection.execute(sql).fetchall()
    connection.close()
    return sorted(rows, key=repr)


_ORDERED_QUERIES = [
    "SELECT external_user_id, purchase_id, SUM(price) OVER (PARTITION BY external_user_id "
    "ORDER BY purchased_at ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS s FROM purchases",
    "SELECT external_user_id, purchase_id, SUM(price) OVER (PARTITION BY external_user_id "
    "ORDER BY purchased_at) AS s FROM purchases",
    "SELECT external_user_id, purchase_id, SUM(price) OVER (PARTITION BY external_user_id "
    "ORDER BY purchased_at DESC NULLS FIRST) AS s FROM purchases",
    "SELECT external_user_id, purchase_id, COUNT(*) OVER (PARTITION BY external_user_id "
    "ORDER BY purchased_at NULLS LAST RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS n "
    "FROM purchases",
    "SELECT external_user_id, LIST(purchase_id ORDER BY purchased_at) AS ps FROM purchases "
    "GROUP BY external_user_id",
]


@pytest.mark.parametrize("sql", _ORDERED_QUERIES)
def test_bigquery_null_placement_keeps_the_order(sql: str) -> None:
    """The BigQuery SQL (``y IS NULL, y``) read back into DuckDB returns what the DuckDB
    query returns: same null placement, same peers in the implicit RANGE frame."""
    codes, original = _check(sql, "duckdb")
    assert codes == [] and original
    codes, bigquery = _check(sql, "duckdb", target="bigquery")
    assert codes == [], codes
    assert bigquery and "IS NULL" in bigquery
    back = sqlglot.transpile(bigquery, read="bigquery", write="duckdb")[0]
    assert _run(back) == _run(original)


def test_bigquery_null_placement_leaves_other_orders_alone() -> None:
    """A query-level ORDER BY and a numbering window keep sqlglot's own NULLS clause."""
    sql = (
        "SELECT external_user_id, ROW_NUMBER() OVER (PARTITION BY external_user_id ORDER BY "
        "purchased_at) AS rn FROM purchases ORDER BY purchased_at"
    )
    codes, out = _check(sql, "postgres", target="bigquery")
    assert codes == []
    assert out is not None and "IS NULL" not in out and "NULLS LAST" in out


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ({"start": "UNBOUNDED", "end": "CURRENT ROW"}, True),
        ({"start": "CURRENT ROW"}, True),
        ({"start": exp.Literal.number(3), "end": "CURRENT ROW"}, False),
        ({"start": "UNBOUNDED", "end": exp.Interval(this=exp.Literal.string("7"))}, False),
    ],
)
def test_unbounded_frame(bounds: dict[str, object], expected: bool) -> None:
    spec = exp.WindowSpec(kind="RANGE", **bounds)
    assert hardening._unbounded_frame(spec) is expected


def _fake_check(target: str) -> SimpleNamespace:
    rules = rules_for(target)
    assert rules is not None
    issues: list[tuple[str, str]] = []
    return SimpleNamespace(
        write_rules=rules,
        write_dialect=sqlglot.Dialect.get_or_raise(rules.sqlglot_dialect),
        issue=lambda code, message, position=(None, None): issues.append((code, message)),
        issues=issues,
    )


@pytest.mark.parametrize(
    ("sql", "refused"),
    [
        ("SELECT ARRAY_AGG(x) FILTER(WHERE x IS NOT NULL) FROM t", True),
        ("SELECT PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY x) FROM t", True),
        ("SELECT 'FILTER(x)' AS a, 'WITHIN GROUP' AS b FROM t", False),
        ("SELECT `filter` FROM t WHERE `within` = 1", False),
        ("SELECT COUNTIF(x > 1) FROM t", False),
    ],
)
def test_missing_clause_bigquery(sql: str, refused: bool) -> None:
    check = _fake_check("bigquery")
    assert hardening._missing_clause(check, sql) is refused
    assert [code for code, _ in check.issues] == (["unsupported_in_dialect"] if refused else [])


def test_missing_clause_only_for_targets_without_it() -> None:
    """DuckDB and PostgreSQL have FILTER and WITHIN GROUP: nothing is refused there."""
    for target in ("duckdb", "postgres"):
        check = _fake_check(target)
        sql = "SELECT COUNT(*) FILTER(WHERE x > 1), MEDIAN(x) WITHIN GROUP (ORDER BY x) FROM t"
        assert hardening._missing_clause(check, sql) is False


@pytest.mark.parametrize("dialect", ["postgres", "redshift"])
def test_pg_catalog_qualifier_dropped_only_from_types(dialect: str) -> None:
    """``pg_catalog.`` goes from casts only: tables and functions keep it (and are checked)."""
    codes, out = _check(
        "SELECT external_user_id FROM users WHERE created_at::pg_catalog.date > "
        "CAST('2024-01-01' AS pg_catalog.date) AND pg_catalog.lower(plan) = 'pro'",
        dialect,
    )
    assert codes == []
    assert out is not None and "pg_catalog.date" not in out.lower()
    assert "pg_catalog.lower" in out.lower() or "lower(" in out.lower()
    codes, _ = _check("SELECT external_user_id FROM pg_catalog.pg_user", dialect)
    assert codes == ["out_of_scope"]


def test_stream_refusal_names_the_table_and_its_position() -> None:
    result = check_segment_sql(
        "SELECT external_user_id\nFROM STREAM(users)",
        dialect="databricks",
        catalog=_CATALOG,
        scope=SCOPE,
    )
    assert [i.code for i in result.errors] == ["unsupported_in_dialect"]
    issue = result.errors[0]
    assert "FROM users" in issue.message and issue.line == 2
    assert result.tables == ["marketing.users"]


def test_openrowset_refusal_points_at_the_call() -> None:
    result = check_segment_sql(
        "SELECT external_user_id\nFROM OPENROWSET(BULK 'https://a/b.parquet', FORMAT = 'PARQUET') AS r",
        dialect="fabric",
        catalog=_CATALOG,
        scope=SCOPE,
    )
    assert [(i.code, i.line, i.column) for i in result.errors] == [("forbidden_function", 2, 6)]
    assert "OPENROWSET" in result.errors[0].message


_PIVOTED = "(SELECT external_user_id, currency, price FROM purchases)"


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        (
            "bigquery",
            f"SELECT external_user_id, spend_EUR FROM {_PIVOTED} "
            "PIVOT (SUM(price) AS spend FOR currency IN ('EUR', 'USD')) AS p",
        ),
        (
            "bigquery",
            f"SELECT external_user_id, n_eur FROM {_PIVOTED} PIVOT (SUM(price) AS spend, "
            "COUNT(*) AS n FOR currency IN ('EUR' AS eur, 'USD')) AS p",
        ),
        (
            "databricks",
            f"SELECT external_user_id, USD FROM {_PIVOTED} "
            "PIVOT (SUM(price) AS spend FOR currency IN ('EUR', 'USD')) AS p",
        ),
    ],
)
def test_pivot_names_are_the_dialects_own(dialect: str, sql: str) -> None:
    """A generated PIVOT column named as the input dialect spells it is valid there, and
    refused for a target whose PIVOT names it otherwise (DuckDB: EUR_spend, eur_n)."""
    codes, out = _check(sql, dialect)
    assert codes == [] and out is not None
    codes, out = _check(sql, dialect, target="duckdb")
    assert codes == ["unsupported_in_dialect"] and out is None


def test_pivot_star_is_emitted_as_star_for_any_target() -> None:
    """With SELECT *, no generated name is written: every PIVOT target accepts it."""
    sql = f"SELECT * FROM {_PIVOTED} PIVOT (SUM(price) AS spend FOR currency IN ('EUR', 'USD'))"
    for target in ("bigquery", "duckdb", "snowflake", "databricks"):
        codes, out = _check(sql, "bigquery", target=target)
        assert codes == [] and out is not None and "SELECT *" in out


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT external_user_id FROM users WHERE PARSENAME(email, 1) = 'com'",
        "SELECT u.external_user_id FROM users u CROSS APPLY OPENJSON(u.attributes) j "
        "WHERE j.[key] = 'plan'",
    ],
)
def test_fabric_string_and_json_functions_stay_valid(sql: str) -> None:
    """The T-SQL catalog-probe deny-list (OBJECT_ID, COL_LENGTH …) leaves string and JSON
    helpers alone (these do not translate to DuckDB, so they live here, not in the corpus)."""
    assert _check(sql, "fabric")[0] == []
