"""Red-team round 13 (issue #4): a select item's alias read in the same SELECT.

Snowflake, DuckDB, Redshift and Databricks read a select item's alias in WHERE and in later
select items (``SELECT LOWER(email) AS e, SPLIT_PART(e, '@', 2) AS dom … WHERE dom = …``);
sqlglot's qualification reads it so for every dialect and writes it as is. So:

- for PostgreSQL and BigQuery input the check passed a query the warehouse refuses (column
  ``c`` does not exist); now ``unknown_column``, as the warehouse would (BigQuery reads the
  alias in HAVING, PostgreSQL nowhere of these);
- emitted for PostgreSQL, BigQuery, Redshift, Databricks or Fabric the alias stayed (an
  unknown column there, or worse a source column of another meaning); now the reference
  becomes the item's expression. HAVING aliases of non-aggregates likewise for PostgreSQL
  and Fabric. A source column of the alias's name is still the column.

``SPLIT_PART`` (every input dialect but BigQuery) was emitted as is for BigQuery, which has
no such function; now it is the part of BigQuery's ``SPLIT`` (``SAFE_ORDINAL``, ``''`` past
the end, negative parts from the end), or refused when the part or delimiter is computed.

BigQuery's ``INSTR(s, sub, -1)`` (the last occurrence: a negative position searches
backwards) was emitted as a forward search from the start (``CHARINDEX('.', s, -1)``,
``SUBSTRING(s FROM -1)``), and ``INSTR(s, sub, 1, 2)`` lost its occurrence for PostgreSQL and
Redshift (the first one found); now the last occurrence is computed on the reversed text, and
the rest refused.

``LAST_DAY(d, 'week'|'quarter'|'year')`` (Snowflake, BigQuery) lost its unit for PostgreSQL
and Fabric (sqlglot wrote the month's last day, ``EOMONTH(d)``); now the unit's last day for
PostgreSQL (Monday weeks), refused where it cannot be written (Fabric, BigQuery's Sunday
weeks).

``GROUP BY 1`` and ``GROUP BY alias`` were emitted as is for Fabric/T-SQL, where a position
is a constant (an error: each GROUP BY expression must contain a column) and an alias is
unknown; now each becomes the select item's expression (a source column of the name stays).

Databricks' ``datediff(end, start)`` (days between the dates: 23:00 to 01:00 is 1) was
emitted for PostgreSQL as elapsed seconds / 86400 cast to BIGINT (0 there, and 13.96 days
rounded to 14); now ``CAST(end AS DATE) - CAST(start AS DATE)`` when the text has no
three-argument ``DATEDIFF(DAY, …)`` (which sqlglot reads the same way, and means elapsed days).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import psycopg
import pytest
import sqlglot

from tests.unit.sql.catalog import duckdb_marketing, postgres_marketing
from tests.unit.sql.checks import check_sql, emitted_sql, error_codes, sorted_ids

# (external_user_id, email, country)
USERS: list[tuple[str, str | None, str | None]] = [
    ("u1", "a@gmail.com", "US"),
    ("u2", "b@yahoo.com", "us"),
    ("u3", None, "FR"),
    ("u4", "D@GMAIL.com", "fr"),
]
_COLUMNS = "external_user_id, email, country"


SEED = {"users": (_COLUMNS, USERS)}


@pytest.fixture()
def warehouse() -> duckdb.DuckDBPyConnection:
    return duckdb_marketing(SEED)


@pytest.fixture()
def pg(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    with postgres_marketing(postgres_url, SEED) as con:
        yield con


# (source dialect, query, ids the source dialect returns)
ALIAS_READS: list[tuple[str, str, list[str]]] = [
    (
        "snowflake",
        "SELECT external_user_id, country AS c FROM users WHERE c = 'US'",
        ["u1"],
    ),
    (
        "snowflake",
        "SELECT external_user_id, LOWER(email) AS e, SPLIT_PART(e, '@', 2) AS dom "
        "FROM users WHERE dom = 'gmail.com'",
        ["u1", "u4"],
    ),
    (
        "duckdb",
        "SELECT external_user_id, UPPER(country) || '!' AS c FROM users WHERE c = 'US!'",
        ["u1", "u2"],
    ),
    (
        "redshift",
        "SELECT external_user_id, LOWER(country) AS lc, lc || '-x' AS tag FROM users "
        "WHERE tag = 'fr-x'",
        ["u3", "u4"],
    ),
    (
        "snowflake",
        "SELECT external_user_id, LOWER(country) AS cc FROM users GROUP BY 1, cc HAVING cc <> 'us'",
        ["u3", "u4"],
    ),
]


@pytest.mark.parametrize(("dialect", "sql", "ids"), ALIAS_READS)
def test_alias_reads_run_on_duckdb(
    warehouse: duckdb.DuckDBPyConnection, dialect: str, sql: str, ids: list[str]
) -> None:
    assert sorted_ids(warehouse, emitted_sql(sql, dialect, "duckdb")) == ids


@pytest.mark.parametrize(("dialect", "sql", "ids"), ALIAS_READS)
def test_alias_reads_run_on_postgres(
    pg: psycopg.Connection[Any], dialect: str, sql: str, ids: list[str]
) -> None:
    assert sorted_ids(pg, emitted_sql(sql, dialect, "postgres")) == ids


@pytest.mark.parametrize("target", ["bigquery", "redshift", "databricks", "fabric"])
def test_alias_in_where_becomes_its_expression(target: str) -> None:
    sql = emitted_sql(
        "SELECT external_user_id, country AS c FROM users WHERE c = 'US'", "snowflake", target
    )
    assert "c = 'US'" not in sql
    assert "country = 'US'" in sql


def test_source_column_of_the_alias_name_stays_the_column(pg: psycopg.Connection[Any]) -> None:
    # email is a column of users: WHERE reads the column, not the alias (country)
    sql = "SELECT external_user_id, country AS email FROM users WHERE email LIKE '%gmail%'"
    emitted = emitted_sql(sql, "snowflake", "postgres")
    assert "email LIKE '%gmail%'" in emitted
    assert sorted_ids(pg, emitted) == ["u1"]


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("postgres", "SELECT external_user_id, country AS c FROM users WHERE c = 'US'"),
        ("bigquery", "SELECT external_user_id, country AS c FROM users WHERE c = 'US'"),
        (
            "postgres",
            "SELECT external_user_id, LOWER(email) AS e, SPLIT_PART(e, '@', 2) AS dom FROM users",
        ),
        (
            "bigquery",
            "SELECT external_user_id, LOWER(email) AS e, UPPER(e) AS u FROM users",
        ),
        (
            "postgres",
            "SELECT external_user_id, COUNT(*) AS n FROM users GROUP BY 1 HAVING n > 1",
        ),
    ],
)
def test_alias_reads_the_dialect_refuses_are_unknown_columns(dialect: str, sql: str) -> None:
    result = check_sql(sql, dialect)
    assert [e.code for e in result.errors] == ["unknown_column"]
    assert "alias" in result.errors[0].message
    assert result.errors[0].line == 1


def test_postgres_refuses_alias_reads_it_fails_on(pg: psycopg.Connection[Any]) -> None:
    # the refusal matches the warehouse's own
    with pytest.raises(psycopg.errors.UndefinedColumn):
        pg.execute("SELECT external_user_id, country AS c FROM marketing.users WHERE c = 'US'")


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("bigquery", "SELECT external_user_id, COUNT(*) AS n FROM users GROUP BY 1 HAVING n > 1"),
        ("postgres", "SELECT external_user_id, country AS c FROM users GROUP BY 1, c"),
        ("postgres", "SELECT external_user_id, country AS c FROM users ORDER BY c"),
        (
            "postgres",
            "SELECT external_user_id FROM (SELECT external_user_id, country AS c FROM users) t "
            "WHERE c = 'US'",
        ),
    ],
)
def test_alias_reads_the_dialect_takes_stay_valid(dialect: str, sql: str) -> None:
    assert error_codes(sql, dialect) == []


@pytest.mark.parametrize("target", ["postgres", "bigquery"])
def test_later_item_on_an_aggregate_alias_is_translated_with_it(target: str) -> None:
    # the copied aggregate is translated like the item's own (collect_set has no
    # ARRAY_UNIQUE_AGG in PostgreSQL or BigQuery)
    sql = emitted_sql(
        "SELECT external_user_id, collect_set(name) AS names, size(names) AS n FROM events "
        "GROUP BY external_user_id",
        "databricks",
        target,
    )
    assert "ARRAY_UNIQUE_AGG" not in sql
    assert "(names" not in sql


def test_later_item_on_an_aggregate_alias_runs_on_postgres(pg: psycopg.Connection[Any]) -> None:
    pg.execute(
        "INSERT INTO marketing.events (event_id, external_user_id, name) "
        "VALUES ('e1', 'u1', 'open'), ('e2', 'u1', 'buy'), ('e3', 'u2', 'open')"
    )
    sql = (
        "SELECT external_user_id, collect_set(name) AS names, size(names) AS n FROM events "
        "GROUP BY external_user_id HAVING n > 1"
    )
    assert sorted_ids(pg, emitted_sql(sql, "databricks", "postgres")) == ["u1"]


# --- SPLIT_PART for BigQuery -------------------------------------------------------------

SPLIT_PARTS: list[tuple[str, str]] = [
    ("snowflake", "SPLIT_PART(email, '@', 2)"),
    ("snowflake", "SPLIT_PART(email, '@', -1)"),
    ("snowflake", "SPLIT_PART(email, '@', 3)"),
    ("postgres", "SPLIT_PART(email, '.', -2)"),
    ("databricks", "split_part(email, '@', 1)"),
    ("redshift", "SPLIT_PART(email, '@', 2)"),
]


@pytest.mark.parametrize(("dialect", "call"), SPLIT_PARTS)
def test_split_part_for_bigquery_means_the_same(dialect: str, call: str) -> None:
    # the BigQuery form, read back into DuckDB, gives each row's part as DuckDB's own
    # split_part does (NULL, '' and a single-part text included)
    sql = f"SELECT external_user_id, {call} AS part FROM users"
    emitted = check_sql(sql, dialect, "bigquery").sql
    assert emitted and "SPLIT_PART" not in emitted.upper()
    select = sqlglot.parse_one(emitted, read="bigquery").expressions[1].this
    rows = "(VALUES ('a@b.com'), (NULL), (''), ('x'), ('a.b@c.d.e')) AS r(email)"
    source = sqlglot.parse_one(call, read=dialect).sql("duckdb")
    con = duckdb.connect()
    got = con.execute(f"SELECT {select.sql('duckdb')} FROM {rows}").fetchall()
    assert got == con.execute(f"SELECT {source} FROM {rows}").fetchall()


@pytest.mark.parametrize(
    ("dialect", "call"),
    [
        ("duckdb", "SPLIT_PART(email, '.', LENGTH(first_name))"),
        ("redshift", "SPLIT_PART(email, '', 1)"),
        ("postgres", "SPLIT_PART(email, country, 1)"),
    ],
)
def test_split_part_bigquery_cannot_take_is_refused(dialect: str, call: str) -> None:
    sql = f"SELECT external_user_id FROM users WHERE {call} = 'x'"
    assert error_codes(sql, dialect, "bigquery") == ["unsupported_in_dialect"]


def test_snowflake_split_part_zero_is_the_first_part() -> None:
    emitted = emitted_sql(
        "SELECT external_user_id FROM users WHERE SPLIT_PART(email, '@', 0) = 'a'",
        "snowflake",
        "bigquery",
    )
    assert "SAFE_ORDINAL(1)" in emitted


# --- BigQuery INSTR backwards and by occurrence ----------------------------------------------

_LAST_DOT = "SELECT external_user_id, INSTR(email, '.', -1) AS at FROM users"


def _last_positions(rows: list[tuple[str, str | None, str | None]]) -> list[tuple[str, int | None]]:
    """Each user's position of the last '.' in the email, as BigQuery's INSTR(…, -1) gives it."""
    return sorted((uid, None if email is None else email.rfind(".") + 1) for uid, email, _ in rows)


def test_bigquery_instr_from_the_end_on_duckdb(warehouse: duckdb.DuckDBPyConnection) -> None:
    body = check_sql(_LAST_DOT, "bigquery", "duckdb").sql
    assert body
    assert sorted(warehouse.execute(body).fetchall()) == _last_positions(USERS)


def test_bigquery_instr_from_the_end_on_postgres(pg: psycopg.Connection[Any]) -> None:
    body = check_sql(_LAST_DOT, "bigquery", "postgres").sql
    assert body
    assert sorted(pg.execute(body).fetchall()) == _last_positions(USERS)


@pytest.mark.parametrize("target", ["snowflake", "redshift", "databricks"])
def test_bigquery_instr_from_the_end_is_no_forward_search(target: str) -> None:
    emitted = emitted_sql(_LAST_DOT, "bigquery", target)
    assert "-1" not in emitted
    assert "REVERSE(" in emitted


@pytest.mark.parametrize(
    ("call", "target"),
    [
        ("INSTR(email, '.', 1, 2)", "postgres"),
        ("INSTR(email, '.', 1, 2)", "redshift"),
        ("INSTR(email, '.', -2)", "duckdb"),
        ("INSTR(email, '.', -1, 2)", "snowflake"),
        ("INSTR(email, country, -1)", "postgres"),
        ("INSTR(email, '.', -1)", "fabric"),
    ],
)
def test_bigquery_instr_the_target_cannot_express_is_refused(call: str, target: str) -> None:
    sql = f"SELECT external_user_id FROM users WHERE {call} > 2"
    assert error_codes(sql, "bigquery", target) == ["unsupported_in_dialect"]


# --- LAST_DAY of a week, quarter, year -------------------------------------------------------

_CREATED = {
    "u1": "2024-03-01 10:00:00",  # a Friday
    "u2": "2024-02-25 23:00:00",  # a Sunday
    "u3": "2023-12-31 01:00:00",  # a Sunday, last day of the year
    "u4": "2024-05-13 00:00:00",  # a Monday
}


@pytest.mark.parametrize(
    ("dialect", "unit"),
    [
        ("snowflake", "'week'"),
        ("snowflake", "'quarter'"),
        ("snowflake", "'year'"),
        ("bigquery", "ISOWEEK"),
        ("bigquery", "WEEK(MONDAY)"),
        ("bigquery", "QUARTER"),
    ],
)
def test_last_day_of_a_unit_on_postgres_as_on_duckdb(
    pg: psycopg.Connection[Any],
    warehouse: duckdb.DuckDBPyConnection,
    dialect: str,
    unit: str,
) -> None:
    for uid, created in _CREATED.items():
        update = "UPDATE marketing.users SET created_at = CAST('{}' AS TIMESTAMP) WHERE "
        update += "external_user_id = '{}'"
        pg.execute(update.format(created, uid))
        warehouse.execute(update.format(created, uid))
    arg = "DATE(created_at)" if dialect == "bigquery" else "created_at"
    sql = f"SELECT external_user_id, LAST_DAY({arg}, {unit}) AS d FROM users"
    on_pg = sorted(pg.execute(str(check_sql(sql, dialect, "postgres").sql)).fetchall())
    on_duckdb = sorted(warehouse.execute(str(check_sql(sql, dialect, "duckdb").sql)).fetchall())
    assert on_pg == on_duckdb
    assert len({day for _, day in on_pg}) > 1


@pytest.mark.parametrize(
    ("dialect", "call", "target"),
    [
        ("snowflake", "LAST_DAY(created_at, 'week')", "fabric"),
        ("snowflake", "LAST_DAY(created_at, 'year')", "fabric"),
        ("bigquery", "LAST_DAY(DATE(created_at), WEEK)", "postgres"),
    ],
)
def test_last_day_of_a_unit_the_target_cannot_write_is_refused(
    dialect: str, call: str, target: str
) -> None:
    sql = f"SELECT external_user_id FROM users WHERE {call} = '2024-03-31'"
    assert error_codes(sql, dialect, target) == ["unsupported_in_dialect"]


def test_last_day_of_the_month_is_still_the_month() -> None:
    sql = "SELECT external_user_id FROM users WHERE LAST_DAY(created_at) = '2024-03-31'"
    assert "INTERVAL '1 MONTH'" in emitted_sql(sql, "snowflake", "postgres")
    assert "EOMONTH(" in emitted_sql(sql, "snowflake", "fabric")


# --- GROUP BY positions and aliases for Fabric -----------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "sql", "group"),
    [
        (
            "snowflake",
            "SELECT external_user_id, COUNT(*) AS n FROM events GROUP BY 1 HAVING COUNT(*) > 2",
            "GROUP BY external_user_id HAVING",
        ),
        (
            "snowflake",
            "SELECT external_user_id, LOWER(country) AS c FROM users GROUP BY external_user_id, c",
            "GROUP BY external_user_id, LOWER(country)",
        ),
        (
            "bigquery",
            "SELECT external_user_id, LOWER(country) AS lc FROM users GROUP BY 1, 2",
            "GROUP BY external_user_id, LOWER(country)",
        ),
        (
            # a source column of the alias's name is the column (PostgreSQL's rule)
            "postgres",
            "SELECT external_user_id, LOWER(country) AS country FROM users GROUP BY 1, country",
            "GROUP BY external_user_id, country",
        ),
    ],
)
def test_group_keys_for_fabric_are_expressions(dialect: str, sql: str, group: str) -> None:
    emitted = check_sql(sql, dialect, "fabric").sql
    assert emitted is not None
    assert group in emitted


# --- Databricks datediff(end, start) for PostgreSQL ------------------------------------------


@pytest.mark.parametrize(
    "call", ["datediff(updated_at, created_at)", "date_diff(updated_at, created_at)"]
)
def test_databricks_datediff_counts_dates_on_postgres(
    pg: psycopg.Connection[Any], warehouse: duckdb.DuckDBPyConnection, call: str
) -> None:
    spans = {
        "u1": ("2024-03-03 23:00:00", "2024-03-04 01:00:00"),  # 1 date apart, 2 hours
        "u2": ("2024-02-25 10:00:00", "2024-03-10 09:00:00"),  # 14 dates apart, 13.96 days
        "u3": ("2024-03-09 00:00:00", "2024-03-02 00:00:00"),  # -7
    }
    for uid, (created, updated) in spans.items():
        update = (
            f"UPDATE marketing.users SET created_at = CAST('{created}' AS TIMESTAMP), "
            f"updated_at = CAST('{updated}' AS TIMESTAMP) WHERE external_user_id = '{uid}'"
        )
        pg.execute(update)
        warehouse.execute(update)
    sql = f"SELECT external_user_id, {call} AS days FROM users WHERE created_at IS NOT NULL"
    on_pg = sorted(pg.execute(str(check_sql(sql, "databricks", "postgres").sql)).fetchall())
    assert on_pg == [("u1", 1), ("u2", 14), ("u3", -7)]
    on_duckdb = warehouse.execute(str(check_sql(sql, "databricks", "duckdb").sql)).fetchall()
    assert sorted(on_duckdb) == on_pg
