"""Quantified comparisons (``= ANY``, ``<> ALL``, ``op ANY/ALL``) written for another warehouse.

sqlglot writes ``x = ANY (ARRAY['a', 'b'])`` as it is for every target, where Snowflake,
BigQuery, Redshift and Fabric have no quantified comparison over an array (and BigQuery and
Databricks none over a subquery): ``= ANY`` becomes ``IN`` and ``<> ALL`` ``NOT IN`` (the same
test by the SQL standard's definition of IN), anything else they cannot express is refused.
"""

from __future__ import annotations

import duckdb
import pytest

from tests.unit.sql.catalog import CATALOG, SCOPE
from zerocopy.sql import check_segment_sql

TARGETS = ["duckdb", "snowflake", "bigquery", "redshift", "databricks", "fabric"]


def _check(sql: str, target: str, dialect: str = "postgres") -> tuple[list[str], str]:
    result = check_segment_sql(sql, dialect=dialect, catalog=CATALOG, scope=SCOPE, target=target)
    return [e.code for e in result.errors], result.ids_sql or ""


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(
    ("condition", "written"),
    [
        ("email = ANY (ARRAY['a@x.io', 'b@x.io'])", "email IN ('a@x.io', 'b@x.io')"),
        ("email <> ALL (ARRAY['a@x.io'])", "NOT email IN ('a@x.io')"),
        ("email = SOME (ARRAY['a@x.io'])", "email IN ('a@x.io')"),
        ("email = ANY (ARRAY(SELECT email FROM users))", "email IN (SELECT email FROM"),
        ("email = ANY (SELECT email FROM users)", "email IN (SELECT email FROM"),
        ("email <> ALL (SELECT email FROM users)", "NOT email IN (SELECT email FROM"),
    ],
)
def test_membership_tests_become_in_lists(condition: str, written: str, target: str) -> None:
    codes, sql = _check(f"SELECT external_user_id FROM users WHERE {condition}", target)
    assert codes == []
    assert written in sql
    assert "ANY" not in sql.upper().replace("COMPANY", "") and " ALL " not in sql.upper()


@pytest.mark.parametrize(
    ("condition", "refused_for"),
    [
        # no quantified comparison over an array there
        (
            "lifetime_value > ANY (ARRAY[1, 2])",
            {"snowflake", "bigquery", "redshift", "fabric", "databricks"},
        ),
        # a PostgreSQL array literal written as text is an array only in PostgreSQL
        ("email = ANY ('{a@x.io,b@x.io}')", set(TARGETS)),
        # no quantified comparison over a subquery there
        ("lifetime_value > ALL (SELECT lifetime_value FROM users)", {"bigquery", "databricks"}),
    ],
)
def test_what_the_target_cannot_express_is_refused(condition: str, refused_for: set[str]) -> None:
    sql = f"SELECT external_user_id FROM users WHERE {condition}"
    for target in TARGETS:
        codes, _ = _check(sql, target)
        expected = ["unsupported_in_dialect"] if target in refused_for else []
        assert codes == expected, target


def test_the_same_dialect_is_left_as_written() -> None:
    codes, sql = _check(
        "SELECT external_user_id FROM users WHERE email = ANY (ARRAY['a'])", "postgres"
    )
    assert codes == [] and "ANY" in sql.upper()


def test_the_in_lists_select_the_same_rows_on_duckdb() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marketing")
    con.execute("CREATE TABLE marketing.users (external_user_id VARCHAR, email VARCHAR)")
    con.execute(
        "INSERT INTO marketing.users VALUES ('1', 'a@x.io'), ('2', 'b@x.io'), ('3', NULL), "
        "('4', 'c@x.io')"
    )
    for condition, expected in [
        ("email = ANY (ARRAY['a@x.io', 'c@x.io'])", ["1", "4"]),
        ("email <> ALL (ARRAY['a@x.io', 'c@x.io'])", ["2"]),
        ("email <> ALL (ARRAY['a@x.io', NULL])", []),
    ]:
        original = con.execute(
            f"SELECT external_user_id FROM marketing.users WHERE {condition} ORDER BY 1"
        ).fetchall()
        codes, sql = _check(
            f"SELECT external_user_id FROM users WHERE {condition}", "snowflake", "postgres"
        )
        assert codes == []
        where = sql[sql.index("WHERE") : sql.index(") AS zc_segment")]
        translated = con.execute(
            f"SELECT external_user_id FROM marketing.users {where} ORDER BY 1"
        ).fetchall()
        assert [r[0] for r in translated] == [r[0] for r in original] == expected, condition
