"""Red-team round 16 (issue #4): common marketing SQL refused or translated wrongly.

Databricks' ``datediff(DAY, start, end)`` / ``date_diff(DAY, …)`` / ``timestampdiff(DAY, …)``
count whole days elapsed (a DAY is 86400 seconds: 23:00 to 01:00 the next day is 0), while its
two-argument ``datediff(end, start)`` counts days between the dates (1 there). sqlglot reads
both ``DATEDIFF`` forms alike, and the three-argument one was written as the target's
boundary-counting ``DATEDIFF``/``DATE_DIFF`` (DuckDB, Snowflake, Redshift) or rounded on
PostgreSQL; ``timestampdiff`` was refused for PostgreSQL. The forms are now told apart by
where the operands stand in the text (``end`` first: two arguments), and the elapsed ones
written as elapsed counts.

Snowflake ``TO_CHAR``/``TO_VARCHAR(created_at, 'YYYY-MM')`` (month keys of cohorts) was refused
for DuckDB and BigQuery, kept with Snowflake's template for Databricks (``DD`` the day of the
year there) and PostgreSQL (``MON`` is ``DEC`` there, ``Dec`` in Snowflake): sqlglot cannot
type a column at parse time. With the catalog's type it is the formatted time it is.

``HOUR(x)``, ``MINUTE``, ``SECOND``, ``DAYOFMONTH``, ``DAYOFYEAR``, ``QUARTER``, Snowflake
``DAYOFWEEKISO``/``WEEKISO``/``YEAROFWEEKISO`` (and the DuckDB/Databricks spellings) were
refused for PostgreSQL (sqlglot writes calls it lacks): now ``EXTRACT(field FROM x)``.

Snowflake/BigQuery ``SPLIT(email, '@')[1]`` (an email's domain) and DuckDB ``str_split`` were
refused for PostgreSQL (no ``SPLIT``): with a literal delimiter they are
``REGEXP_SPLIT_TO_ARRAY`` (which keeps ``['']`` for an empty string; ``string_to_array`` gives
an empty array), and DuckDB ``len()`` of one its ``CARDINALITY``.

``DAYNAME``/``MONTHNAME`` (Snowflake's ``Sat``/``Jun``, DuckDB's ``Saturday``/``June``),
``CONTAINS`` and ``ENDS_WITH``/``ENDSWITH`` were refused for PostgreSQL: now ``TO_CHAR`` with
English templates, ``STRPOS(…) > 0`` and ``RIGHT(s, LENGTH(t)) = t``.
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


# --- date parts as functions (HOUR(x), QUARTER(x), DAYOFWEEKISO(x) …) for PostgreSQL ----------

# (external_user_id, created_at)
MOMENTS: list[tuple[str, str]] = [
    ("d1", "2024-01-01 10:15:30.75"),  # a Monday, ISO week 1 of 2024
    ("d2", "2023-01-01 23:59:59"),  # a Sunday, ISO week 52 of 2022
    ("d3", "2024-07-15 00:00:05"),  # a Monday in the third quarter
]
MOMENT_SEED = {"users": ("external_user_id, created_at", MOMENTS)}

# (dialect, condition, the ids the source warehouse returns)
DATE_PARTS: list[tuple[str, str, list[str]]] = [
    ("snowflake", "HOUR(created_at) = 10", ["d1"]),
    ("snowflake", "HOUR(created_at) BETWEEN 8 AND 20", ["d1"]),
    ("snowflake", "MINUTE(created_at) = 59", ["d2"]),
    ("snowflake", "SECOND(created_at) = 30", ["d1"]),
    ("snowflake", "DAYOFMONTH(created_at) = 15", ["d3"]),
    ("snowflake", "DAYOFYEAR(created_at) = 1", ["d1", "d2"]),
    ("snowflake", "QUARTER(created_at) = 3", ["d3"]),
    ("snowflake", "DAYOFWEEKISO(created_at) = 7", ["d2"]),
    ("snowflake", "WEEKISO(created_at) = 52", ["d2"]),
    ("snowflake", "YEAROFWEEKISO(created_at) = 2022", ["d2"]),
    ("databricks", "hour(created_at) = 23 AND second(created_at) = 59", ["d2"]),
    ("databricks", "weekofyear(created_at) = 29 AND quarter(created_at) = 3", ["d3"]),
    ("duckdb", "isodow(created_at) = 1 AND dayofmonth(created_at) = 1", ["d1"]),
    ("duckdb", "second(created_at) = 30", ["d1"]),
]


@pytest.fixture(scope="module")
def moments() -> duckdb.DuckDBPyConnection:
    return duckdb_marketing(MOMENT_SEED)


@pytest.fixture()
def pg_moments(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    with postgres_marketing(postgres_url, MOMENT_SEED) as con:
        yield con


@pytest.mark.parametrize(("dialect", "condition", "ids"), DATE_PARTS)
def test_date_part_functions_on_duckdb(
    moments: duckdb.DuckDBPyConnection, dialect: str, condition: str, ids: list[str]
) -> None:
    assert sorted_ids(moments, emitted_sql(_USERS + condition, dialect, "duckdb")) == ids


@pytest.mark.postgres
@pytest.mark.parametrize(("dialect", "condition", "ids"), DATE_PARTS)
def test_date_part_functions_on_postgres(
    pg_moments: psycopg.Connection[Any], dialect: str, condition: str, ids: list[str]
) -> None:
    assert sorted_ids(pg_moments, emitted_sql(_USERS + condition, dialect, "postgres")) == ids


# (event_id, external_user_id, occurred_at in UTC)
EVENTS: list[tuple[str, str, str]] = [
    ("e1", "u1", "2024-01-15 08:30:00"),  # 09:30 in Paris (winter, +1)
    ("e2", "u2", "2024-07-15 17:30:00"),  # 19:30 in Paris (summer, +2)
    ("e3", "u3", "2024-07-15 07:00:00"),  # 09:00 in Paris
]


@pytest.mark.postgres
def test_hour_of_a_converted_time_on_postgres(postgres_url: str) -> None:
    """A corpus query (redteam:sf_convert_timezone_and_hour) refused before for HOUR()."""
    sql = (
        "SELECT external_user_id FROM events "
        "WHERE HOUR(CONVERT_TIMEZONE('UTC', 'Europe/Paris', occurred_at)) BETWEEN 9 AND 18"
    )
    seed = {"events": ("event_id, external_user_id, occurred_at", EVENTS)}
    with postgres_marketing(postgres_url, seed) as con:
        assert sorted_ids(con, emitted_sql(sql, "snowflake", "postgres")) == ["u1", "u3"]


# --- Snowflake SPLIT(s, d)[i] for PostgreSQL -------------------------------------------------

# (external_user_id, email, first_name)
CONTACTS: list[tuple[str, str | None, str]] = [
    ("p1", "a@gmail.com", "a.b"),
    ("p2", "b@x.org", "ab"),
    ("p3", "", "a|b"),
    ("p4", None, "x"),
    ("p5", "c@d@e", "a.b.c"),
]
CONTACT_SEED = {"users": ("external_user_id, email, first_name", CONTACTS)}

# (Snowflake condition, the ids Snowflake returns)
SPLITS: list[tuple[str, list[str]]] = [
    ("SPLIT(email, '@')[1]::string = 'gmail.com'", ["p1"]),
    ("SPLIT(email, '@')[0]::string = ''", ["p3"]),  # SPLIT('', '@') is ['']
    ("SPLIT(email, '@')[2]::string = 'e'", ["p5"]),
    ("SPLIT(email, '@')[1] IS NULL", ["p3", "p4"]),
    ("SPLIT(first_name, '.')[1]::string = 'b'", ["p1", "p5"]),
    ("SPLIT(first_name, '|')[1]::string = 'b'", ["p3"]),
]


@pytest.fixture(scope="module")
def contacts() -> duckdb.DuckDBPyConnection:
    return duckdb_marketing(CONTACT_SEED)


@pytest.mark.parametrize(("condition", "ids"), SPLITS)
def test_snowflake_split_items_on_duckdb(
    contacts: duckdb.DuckDBPyConnection, condition: str, ids: list[str]
) -> None:
    assert sorted_ids(contacts, emitted_sql(_USERS + condition, "snowflake", "duckdb")) == ids


@pytest.mark.postgres
@pytest.mark.parametrize(("condition", "ids"), SPLITS)
def test_snowflake_split_items_on_postgres(
    postgres_url: str, condition: str, ids: list[str]
) -> None:
    with postgres_marketing(postgres_url, CONTACT_SEED) as con:
        assert sorted_ids(con, emitted_sql(_USERS + condition, "snowflake", "postgres")) == ids


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("dialect", "condition", "ids"),
    [
        ("bigquery", "SPLIT(email, '@')[SAFE_OFFSET(1)] = 'gmail.com'", ["p1"]),
        ("bigquery", "SPLIT(first_name, '.')[SAFE_OFFSET(2)] = 'c'", ["p5"]),
        ("duckdb", "str_split(email, '@')[3] = 'e'", ["p5"]),
        ("snowflake", "ARRAY_SIZE(SPLIT(email, '@')) = 1", ["p3"]),
    ],
)
def test_other_splits_on_postgres(
    postgres_url: str, dialect: str, condition: str, ids: list[str]
) -> None:
    with postgres_marketing(postgres_url, CONTACT_SEED) as con:
        assert sorted_ids(con, emitted_sql(_USERS + condition, dialect, "postgres")) == ids


@pytest.mark.postgres
def test_duckdb_length_of_a_split_on_postgres(postgres_url: str) -> None:
    """DuckDB ``len(string_split(…))`` counts the parts (sqlglot wrote ``LENGTH(array)``)."""
    sql = "SELECT external_user_id FROM users WHERE len(string_split(first_name, '.')) = 3"
    with postgres_marketing(postgres_url, CONTACT_SEED) as con:
        assert sorted_ids(con, emitted_sql(sql, "duckdb", "postgres")) == ["p5"]


# --- day and month names, CONTAINS, ENDS_WITH for PostgreSQL ---------------------------------

# (external_user_id, email, created_at)
NAMED: list[tuple[str, str | None, str]] = [
    ("n1", "test@acme.com", "2024-06-01 10:00:00"),  # a Saturday in June
    ("n2", "jane@example.org", "2024-09-02 10:00:00"),  # a Monday in September
    ("n3", None, "2024-06-05 10:00:00"),  # a Wednesday in June
]
NAMED_SEED = {"users": ("external_user_id, email, created_at", NAMED)}

# (dialect, condition, the ids the source warehouse returns)
NAMES: list[tuple[str, str, list[str]]] = [
    ("snowflake", "DAYNAME(created_at) = 'Sat'", ["n1"]),
    ("snowflake", "MONTHNAME(created_at) = 'Jun'", ["n1", "n3"]),
    ("duckdb", "dayname(created_at) = 'Monday'", ["n2"]),
    ("duckdb", "monthname(created_at) = 'September'", ["n2"]),
    ("snowflake", "CONTAINS(email, 'acme')", ["n1"]),
    ("snowflake", "NOT CONTAINS(email, 'acme')", ["n2"]),
    ("databricks", "contains(email, '@example.')", ["n2"]),
    ("snowflake", "ENDSWITH(email, '.org')", ["n2"]),
    ("bigquery", "ENDS_WITH(email, '.com')", ["n1"]),
    ("bigquery", "NOT ENDS_WITH(email, '.com')", ["n2"]),
]


@pytest.fixture(scope="module")
def named() -> duckdb.DuckDBPyConnection:
    return duckdb_marketing(NAMED_SEED)


@pytest.mark.parametrize(("dialect", "condition", "ids"), NAMES)
def test_names_and_string_tests_on_duckdb(
    named: duckdb.DuckDBPyConnection, dialect: str, condition: str, ids: list[str]
) -> None:
    assert sorted_ids(named, emitted_sql(_USERS + condition, dialect, "duckdb")) == ids


@pytest.mark.postgres
@pytest.mark.parametrize(("dialect", "condition", "ids"), NAMES)
def test_names_and_string_tests_on_postgres(
    postgres_url: str, dialect: str, condition: str, ids: list[str]
) -> None:
    with postgres_marketing(postgres_url, NAMED_SEED) as con:
        assert sorted_ids(con, emitted_sql(_USERS + condition, dialect, "postgres")) == ids


# (purchase_id, external_user_id, purchased_at)
PURCHASES: list[tuple[str, str, str]] = [
    ("o1", "c1", "2024-01-10 09:00:00"),
    ("o2", "c1", "2024-03-02 09:00:00"),
    ("o3", "c2", "2023-12-20 09:00:00"),
    ("o4", "c2", "2024-01-05 09:00:00"),
    ("o5", "c3", "2024-01-31 23:00:00"),
]
PURCHASE_SEED = {"purchases": ("purchase_id, external_user_id, purchased_at", PURCHASES)}

# cohorts by first purchase month: a CTE's MIN(…) and a HAVING's
COHORTS: list[str] = [
    "WITH f AS (SELECT external_user_id, MIN(purchased_at) AS first_purchase FROM purchases "
    "GROUP BY 1) SELECT external_user_id FROM f WHERE TO_CHAR(first_purchase, 'YYYY-MM') = "
    "'2024-01'",
    "SELECT p.external_user_id FROM (SELECT external_user_id, MIN(purchased_at) AS fp "
    "FROM purchases GROUP BY 1) AS p WHERE TO_VARCHAR(p.fp, 'YYYY-MM') = '2024-01'",
    "SELECT external_user_id FROM purchases GROUP BY 1 "
    "HAVING TO_CHAR(MIN(purchased_at), 'YYYY-MM') = '2024-01'",
]


@pytest.mark.parametrize("sql", COHORTS)
def test_snowflake_cohort_months_on_duckdb(sql: str) -> None:
    con = duckdb_marketing(PURCHASE_SEED)
    assert sorted_ids(con, emitted_sql(sql, "snowflake", "duckdb")) == ["c1", "c3"]


@pytest.mark.postgres
@pytest.mark.parametrize("sql", COHORTS)
def test_snowflake_cohort_months_on_postgres(postgres_url: str, sql: str) -> None:
    with postgres_marketing(postgres_url, PURCHASE_SEED) as con:
        assert sorted_ids(con, emitted_sql(sql, "snowflake", "postgres")) == ["c1", "c3"]


@pytest.mark.parametrize("sql", COHORTS)
def test_snowflake_cohort_months_for_databricks(sql: str) -> None:
    assert "'yyyy-MM'" in emitted_sql(sql, "snowflake", "databricks")
