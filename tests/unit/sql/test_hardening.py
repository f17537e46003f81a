"""The red-team fixes of `zerocopy.sql.hardening` that the corpus format cannot express."""

from __future__ import annotations

import pytest

from tests.unit.sql.catalog import CATALOG, SCOPE
from zerocopy.sql import SqlCatalog, check_segment_sql

_CATALOG = SqlCatalog(CATALOG)


@pytest.mark.parametrize(
    ("dialect", "target", "sql", "reference"),
    [
        # F7: the id returned under a quoted name is referenced as returned
        (
            "postgres",
            None,
            'SELECT external_user_id AS "External_User_Id" FROM users',
            '"External_User_Id"',
        ),
        (
            "snowflake",
            None,
            'SELECT external_user_id AS "external_user_id" FROM users',
            '"external_user_id"',
        ),
        # round 6: quotes that change nothing in the source dialect are dropped for another
        # target (kept, PostgreSQL looked up the upper-case "EXTERNAL_USER_ID" and Snowflake
        # the mixed-case "External_User_Id", columns the catalog does not have)
        ("snowflake", "postgres", 'SELECT u."EXTERNAL_USER_ID" FROM users u', "external_user_id"),
        ("duckdb", "snowflake", 'SELECT "External_User_Id" FROM users', "external_user_id"),
        # unquoted, or quoted as the target folds it anyway: the configured name, unquoted
        (
            "postgres",
            None,
            'SELECT external_user_id AS "external_user_id" FROM users',
            "external_user_id",
        ),
        (
            "snowflake",
            None,
            'SELECT external_user_id AS "EXTERNAL_USER_ID" FROM users',
            "external_user_id",
        ),
        ("duckdb", None, 'SELECT "External_User_Id" FROM users', "external_user_id"),
        (
            "snowflake",
            None,
            "SELECT external_user_id AS External_User_Id FROM users",
            "external_user_id",
        ),
        ("postgres", None, "SELECT * FROM users", "external_user_id"),
    ],
)
def test_ids_sql_references_the_returned_id(
    dialect: str, target: str | None, sql: str, reference: str
) -> None:
    result = check_segment_sql(sql, dialect=dialect, target=target, catalog=_CATALOG, scope=SCOPE)
    assert result.valid, result.errors
    assert result.ids_sql is not None
    assert f"CAST(zc_segment.{reference} AS " in result.ids_sql
    assert f"WHERE zc_segment.{reference} IS NOT NULL" in result.ids_sql
    assert result.ids_sql.split(" FROM (")[0].endswith(" AS external_user_id")
