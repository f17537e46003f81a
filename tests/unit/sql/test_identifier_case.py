"""Catalog names stored in a case the warehouse does not fold unquoted names to.

PostgreSQL folds unquoted names to lower case; a table created with quoted upper-case names
(``"EXTERNAL_ID"``, as ingestion tools do) is reported by the warehouse exactly as stored. The check matches an
unquoted name to it (the user plausibly means it) and the quoted stored spelling too, refuses
a quoted name in another case (the warehouse would not find it), and emits every reference as
stored, quoted where the target needs it, so that the SQL runs (`zerocopy.sql.spelling`).
The execution tests run the emitted SQL on PostgreSQL and DuckDB tables made with such names.

Snowflake is deliberately left out: a lower-case single-case name in a Snowflake catalog is
read as the ordinary upper-case stored name written in lower case (catalogs are commonly
written that way), so the quoted upper-case spelling matches it and the SQL is emitted as
written (tests/sql_corpus/snowflake.yaml, redteam*.yaml).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import psycopg
import pytest

from zerocopy.sql import SqlCatalog, check_segment_sql

# PostgreSQL tables as an ingestion tool creates them (quoted upper case), one with mixed
# case, one ordinary (lower case)
PG_CATALOG = {
    "crm": {
        "CONTACTS": {
            "EXTERNAL_USER_ID": "TEXT",
            "EXTERNAL_ID": "TEXT",
            "EMAIL": "TEXT",
            "UPDATED_AT": "TIMESTAMP",
        },
        "Visits": {"externalUserId": "TEXT", "visitCount": "INTEGER"},
        "orders": {"external_user_id": "TEXT", "amount": "INTEGER"},
    }
}
PG_DDL = [
    "DROP SCHEMA IF EXISTS crm CASCADE",
    "CREATE SCHEMA crm",
    'CREATE TABLE crm."CONTACTS" ("EXTERNAL_USER_ID" TEXT, "EXTERNAL_ID" TEXT, "EMAIL" TEXT, '
    '"UPDATED_AT" TIMESTAMP)',
    'CREATE TABLE crm."Visits" ("externalUserId" TEXT, "visitCount" INTEGER)',
    "CREATE TABLE crm.orders (external_user_id TEXT, amount INTEGER)",
    "INSERT INTO crm.\"CONTACTS\" VALUES ('u1', 'x1', 'a@x.io', '2026-01-02'), "
    "('u2', 'x2', NULL, '2025-01-02'), ('u3', 'x3', 'c@x.io', '2026-03-01')",
    "INSERT INTO crm.\"Visits\" VALUES ('u1', 3), ('u3', 1)",
    "INSERT INTO crm.orders VALUES ('u1', 10), ('u2', 20)",
]


def _check(sql: str, dialect: str, target: str | None = None, **kwargs: Any) -> Any:
    return check_segment_sql(
        sql,
        dialect=dialect,
        catalog=SqlCatalog(PG_CATALOG),
        scope="crm",
        target=target,
        **kwargs,
    )


def _valid(sql: str, dialect: str, target: str | None = None, **kwargs: Any) -> Any:
    result = _check(sql, dialect, target, **kwargs)
    assert result.valid, [e.to_dict() for e in result.errors]
    return result


def _codes(sql: str, dialect: str, target: str | None = None) -> list[str]:
    return [e.code for e in _check(sql, dialect, target).errors]


# --- matching ---------------------------------------------------------------------------


def test_postgres_quoted_stored_spelling_is_the_column() -> None:
    result = _valid(
        'SELECT "EXTERNAL_USER_ID", "EXTERNAL_ID" FROM "CONTACTS" WHERE "UPDATED_AT" > '
        "'2026-01-01'",
        "postgres",
    )
    assert result.tables == ["crm.CONTACTS"]


def test_postgres_quoted_other_case_is_refused_naming_the_stored_spelling() -> None:
    result = _check('SELECT "external_user_id" FROM contacts', "postgres")
    assert [e.code for e in result.errors] == ["unknown_column"]
    assert '"EXTERNAL_USER_ID"' in result.errors[0].message


def test_postgres_quoted_table_in_other_case_is_refused() -> None:
    result = _check('SELECT external_user_id FROM "contacts"', "postgres")
    assert [e.code for e in result.errors] == ["unknown_table"]
    assert '"CONTACTS"' in result.errors[0].message


def test_quoted_alias_spelled_like_a_column_is_not_refused() -> None:
    sql = (
        'SELECT t."external_user_id" FROM (SELECT "EXTERNAL_USER_ID" AS "external_user_id" '
        "FROM contacts) AS t"
    )
    assert _valid(sql, "postgres").sql.startswith('SELECT t."external_user_id" FROM (SELECT')


# --- emitting ---------------------------------------------------------------------------


def test_postgres_unquoted_names_are_emitted_as_stored() -> None:
    result = _valid(
        "SELECT external_user_id, email FROM contacts WHERE updated_at > '2026-01-01' "
        "ORDER BY external_user_id",
        "postgres",
    )
    assert result.sql == (
        'SELECT "EXTERNAL_USER_ID", "EMAIL" FROM crm."CONTACTS" WHERE '
        '"UPDATED_AT" > \'2026-01-01\' ORDER BY "EXTERNAL_USER_ID"'
    )
    assert 'zc_segment."EXTERNAL_USER_ID" IS NOT NULL' in result.ids_sql
    # targets whose column names are case-insensitive are left as written
    for target in ("duckdb", "bigquery", "databricks", "redshift"):
        other = _valid("SELECT external_user_id FROM contacts", "postgres", target)
        assert '"' not in other.sql and "`" not in other.sql, (target, other.sql)


def test_the_ids_sql_alias_stays_the_configured_id_column() -> None:
    result = _valid("SELECT * FROM contacts", "postgres")
    assert result.ids_sql.startswith(
        'SELECT DISTINCT CAST(zc_segment."EXTERNAL_USER_ID" AS TEXT) AS external_user_id FROM'
    )


# --- running the emitted SQL ----------------------------------------------------------------

RUNS = [
    # (dialect the query is written in, query, ids)
    ("postgres", "SELECT external_user_id FROM contacts WHERE email IS NOT NULL", ["u1", "u3"]),
    ("postgres", 'SELECT "EXTERNAL_USER_ID" FROM "CONTACTS" WHERE "EMAIL" IS NULL', ["u2"]),
    (
        "postgres",
        "SELECT external_id AS external_user_id FROM contacts WHERE updated_at >= '2026-01-01'",
        ["x1", "x3"],
    ),
    ("postgres", "SELECT * FROM contacts WHERE external_id <> 'x2'", ["u1", "u3"]),
    (
        "postgres",
        "SELECT c.* FROM contacts c JOIN orders o ON o.external_user_id = c.external_user_id",
        ["u1", "u2"],
    ),
    (
        "postgres",
        "SELECT external_user_id FROM contacts a JOIN contacts b USING (external_user_id) "
        "WHERE a.email IS NULL",
        ["u2"],
    ),
    (
        "postgres",
        "SELECT x.external_user_id FROM (SELECT * FROM contacts) x WHERE x.email LIKE 'c%'",
        ["u3"],
    ),
    (
        "postgres",
        "WITH c AS (SELECT external_user_id, email FROM contacts) "
        "SELECT c.external_user_id FROM c WHERE c.email IS NOT NULL",
        ["u1", "u3"],
    ),
    (
        "postgres",
        "SELECT external_user_id FROM contacts WHERE email IS NULL "
        "UNION SELECT external_user_id FROM orders WHERE amount = 10",
        ["u1", "u2"],
    ),
    # column lists name the outputs: references to them are not respelled
    (
        "postgres",
        "WITH t(uid, mail) AS (SELECT external_user_id, email FROM contacts) "
        "SELECT uid AS external_user_id FROM t WHERE mail IS NOT NULL",
        ["u1", "u3"],
    ),
    (
        "postgres",
        "SELECT t.external_user_id FROM (SELECT external_id FROM contacts) AS t(external_user_id)",
        ["x1", "x2", "x3"],
    ),
    (
        "postgres",
        "SELECT contacts.external_user_id, count(*) AS n FROM contacts GROUP BY "
        "contacts.external_user_id HAVING count(*) = 1 ORDER BY external_user_id",
        ["u1", "u2", "u3"],
    ),
    (
        "duckdb",
        "SELECT externaluserid AS external_user_id FROM visits WHERE visitcount >= 1",
        ["u1", "u3"],
    ),
    ("duckdb", "SELECT external_user_id FROM contacts WHERE Email IS NULL", ["u2"]),
    ("snowflake", "SELECT external_user_id FROM contacts WHERE email IS NULL", ["u2"]),
    (
        "bigquery",
        "SELECT c.external_user_id FROM contacts AS c JOIN orders AS o "
        "ON o.external_user_id = c.external_user_id",
        ["u1", "u2"],
    ),
]


def _ids(con: Any, sql: str) -> list[str]:
    return sorted(row[0] for row in con.execute(sql).fetchall())


@pytest.fixture()
def pg(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(postgres_url, autocommit=True) as con:
        for statement in PG_DDL:
            con.execute(statement)
        yield con


@pytest.fixture()
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    for statement in PG_DDL[1:]:
        con.execute(statement)
    yield con
    con.close()


@pytest.mark.parametrize(("dialect", "sql", "ids"), RUNS)
def test_emitted_sql_runs_on_postgres(
    pg: psycopg.Connection[Any], dialect: str, sql: str, ids: list[str]
) -> None:
    result = _valid(sql, dialect, "postgres")
    assert _ids(pg, result.ids_sql) == ids
    pg.execute(result.sql).fetchall()  # the query itself runs too


# PostgreSQL's quoted stored spellings, run on DuckDB (refused as unknown before)
DUCKDB_RUNS = [
    ("postgres", 'SELECT "EXTERNAL_USER_ID" FROM "CONTACTS" WHERE "EMAIL" IS NULL', ["u2"]),
    (
        "postgres",
        'SELECT c."EXTERNAL_USER_ID" FROM "CONTACTS" c JOIN "Visits" v '
        'ON v."externalUserId" = c."EXTERNAL_USER_ID" WHERE c."UPDATED_AT" > \'2026-01-01\'',
        ["u1", "u3"],
    ),
]


@pytest.mark.parametrize(("dialect", "sql", "ids"), DUCKDB_RUNS)
def test_emitted_sql_runs_on_duckdb(
    duck: duckdb.DuckDBPyConnection, dialect: str, sql: str, ids: list[str]
) -> None:
    result = _valid(sql, dialect, "duckdb")
    assert _ids(duck, result.ids_sql) == ids
    duck.execute(result.sql).fetchall()
