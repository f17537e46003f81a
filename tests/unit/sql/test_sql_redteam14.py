"""Red-team round 14 (issue #4): pattern matching across warehouses.

LIKE escapes: PostgreSQL, Redshift, BigQuery and Databricks read a backslash in a LIKE
pattern as the escape character when no ESCAPE is given; Snowflake, DuckDB and T-SQL read it
as a backslash (and T-SQL reads ``[…]`` as a character class). sqlglot writes the pattern as
is, so PostgreSQL's ``email LIKE 'e\\_x%'`` (``e_x…``) matched nothing in DuckDB, and DuckDB's
``LIKE 'e\\_x%'`` (a backslash, then any character) matched ``e_x…`` in PostgreSQL. Now a
backslash pattern gets ``ESCAPE '\\'`` where the target has no default escape, and a pattern
without one has its backslashes doubled where the target has one (``REPLACE`` around a
computed part); an explicit ESCAPE is kept, and rewritten as backslash escapes for BigQuery,
which has no ESCAPE clause.

Regular-expression matches: Snowflake's ``RLIKE``/``REGEXP``/``REGEXP_LIKE`` (and DuckDB's
``regexp_full_match``) match the whole string, every other warehouse's match test anywhere in
it. sqlglot wrote Snowflake's ``email RLIKE 'gmail'`` (false for ``a@gmail.com``) as
PostgreSQL ``email ~ 'gmail'`` (true) and PostgreSQL's ``email ~ 'gmail'`` as Snowflake
``REGEXP_LIKE(email, 'gmail')`` (false); a flag argument was written where the target's
function has none (BigQuery ``REGEXP_CONTAINS(x, p, 'i')``, ``REGEXP_I_LIKE``). Now a
whole-string test is anchored (``^(?:p)$``) elsewhere, a search is ``REGEXP_COUNT(x, p) > 0``
for Snowflake, and flags go inline (``(?i)``) or as ``~*``; flags that cannot be carried are
refused (``unsupported_in_dialect``).

Date/time formats: sqlglot reads a format through the source dialect's table into strftime
directives and writes it through the target's; a template word missing from the source table
stayed as text (PostgreSQL ``TO_CHAR(t, 'Dy Mon DD')`` became DuckDB ``'%uy Mon %d'``), text
of a strftime format became template fields (BigQuery ``'%G-W%V'`` became PostgreSQL
``'IYYY-WIW'``), and PostgreSQL ``D`` (Sunday = 1) was read as ``%u`` (Monday = 1). Such a
format is now refused (``unsupported_in_dialect``); plain fields are translated as before.

PostgreSQL's ``round(double precision)`` rounds halves to even (``round(2.5)`` is 2); every
other warehouse's ROUND rounds them away from zero, and sqlglot wrote ``ROUND(x)`` as is. Now
it is DuckDB ``ROUND_EVEN(x, 0)``, Databricks ``BROUND(x)``, BigQuery's ``ROUND_HALF_EVEN`` of
the value as BIGNUMERIC, and refused for Snowflake and Fabric.

``ADD_MONTHS``: Snowflake's moves a month's last day to the result's last day
(2024-02-29 + 1 is 2024-03-31), Databricks' only clamps and returns a DATE. sqlglot wrote
Databricks' as Snowflake/Redshift ``ADD_MONTHS`` (the last-day rule applied) and both as
``ADD_MONTHS`` for BigQuery (none there). Databricks' is now ``DATEADD(MONTH, n, CAST(x AS
DATE))`` as a DATE; Snowflake's is written as a last-day test for a DATE argument, and
refused otherwise where no ADD_MONTHS has its rule.

``COUNT_IF`` (Snowflake, BigQuery ``COUNTIF``, Databricks) is 0 over no rows or only NULLs;
sqlglot wrote DuckDB ``COUNT_IF`` (NULL there) and PostgreSQL ``SUM(CASE … ELSE 0 END)`` (NULL
over no rows), so ``(SELECT COUNT_IF(…) …) = 0`` lost users without rows. Now
``COUNT(CASE WHEN c THEN 1 END)``; DuckDB's own NULL-returning count_if is kept elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import psycopg
import pytest

from tests.unit.sql.catalog import duckdb_marketing, postgres_marketing
from tests.unit.sql.checks import check_sql, emitted_sql, error_codes, sorted_ids

# (external_user_id, email, first_name)
USERS: list[tuple[str, str | None, str | None]] = [
    ("u1", "a@gmail.com", "a"),
    ("u2", "e_x@corp.io", "e_"),
    ("u3", "exx@corp.io", "ex"),
    ("u4", "back\\slash", "k\\s"),
    ("u5", "a[b]c@GMAIL.com", "[b]"),
    ("u6", None, None),
    ("u7", "100%@yahoo.com", "100%"),
]
_COLUMNS = "external_user_id, email, first_name"


SEED = {"users": (_COLUMNS, USERS)}


@pytest.fixture()
def warehouse() -> duckdb.DuckDBPyConnection:
    return duckdb_marketing(SEED)


@pytest.fixture()
def pg(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    with postgres_marketing(postgres_url, SEED) as con:
        yield con


# (source dialect, query, ids the source warehouse returns)
LIKE_PATTERNS: list[tuple[str, str, list[str]]] = [
    # backslash escapes: an escaped wildcard is the character itself
    ("postgres", r"SELECT external_user_id FROM users WHERE email LIKE 'e\_x%'", ["u2"]),
    ("postgres", r"SELECT external_user_id FROM users WHERE email ILIKE 'E\_X%'", ["u2"]),
    (
        "postgres",
        r"SELECT external_user_id FROM users WHERE email NOT LIKE '%\_%'",
        ["u1", "u3", "u4", "u5", "u7"],
    ),
    ("postgres", r"SELECT external_user_id FROM users WHERE email LIKE '%\\%'", ["u4"]),
    ("postgres", r"SELECT external_user_id FROM users WHERE email LIKE '%\%%'", ["u7"]),
    ("postgres", r"SELECT external_user_id FROM users WHERE email LIKE '%' || '\_' || '%'", ["u2"]),
    (
        "postgres",
        r"SELECT external_user_id FROM users WHERE email LIKE ANY (ARRAY['%\_%', '%\%%'])",
        ["u2", "u7"],
    ),
    # a computed pattern: the column's backslash escapes too
    (
        "postgres",
        r"SELECT external_user_id FROM users WHERE email LIKE first_name || '%'",
        ["u1", "u2", "u3", "u7"],
    ),
    ("redshift", r"SELECT external_user_id FROM users WHERE email LIKE 'e\\_x%'", ["u2"]),
    ("databricks", r"SELECT external_user_id FROM users WHERE email LIKE 'e\\_x%'", ["u2"]),
    ("bigquery", r"SELECT external_user_id FROM users WHERE email LIKE 'e\\_x%'", ["u2"]),
    # no default escape: a backslash is itself
    ("duckdb", r"SELECT external_user_id FROM users WHERE email LIKE 'e\_x%'", []),
    ("duckdb", r"SELECT external_user_id FROM users WHERE email LIKE '%k\s%'", ["u4"]),
    (
        "duckdb",
        r"SELECT external_user_id FROM users WHERE email LIKE '%' || first_name || '%'",
        ["u1", "u2", "u3", "u4", "u5", "u7"],
    ),
    ("snowflake", r"SELECT external_user_id FROM users WHERE email LIKE '%k\\s%'", ["u4"]),
    ("snowflake", r"SELECT external_user_id FROM users WHERE email LIKE 'e\\_x%'", []),
    # an explicit escape means the same everywhere
    ("duckdb", "SELECT external_user_id FROM users WHERE email LIKE 'e!_x%' ESCAPE '!'", ["u2"]),
    ("postgres", "SELECT external_user_id FROM users WHERE email LIKE 'e!_x%' ESCAPE '!'", ["u2"]),
    # brackets are plain characters outside T-SQL
    ("postgres", "SELECT external_user_id FROM users WHERE email LIKE 'a[b]%'", ["u5"]),
]


@pytest.mark.parametrize(("dialect", "sql", "ids"), LIKE_PATTERNS)
def test_like_patterns_keep_their_escapes_on_duckdb(
    warehouse: duckdb.DuckDBPyConnection, dialect: str, sql: str, ids: list[str]
) -> None:
    assert sorted_ids(warehouse, emitted_sql(sql, dialect, "duckdb")) == ids


@pytest.mark.postgres
@pytest.mark.parametrize(("dialect", "sql", "ids"), LIKE_PATTERNS)
def test_like_patterns_keep_their_escapes_on_postgres(
    pg: psycopg.Connection[Any], dialect: str, sql: str, ids: list[str]
) -> None:
    assert sorted_ids(pg, emitted_sql(sql, dialect, "postgres")) == ids


def test_like_source_runs_give_the_listed_ids(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    """The expected ids of the DuckDB cases are DuckDB's own answers."""
    warehouse.execute("SET schema = 'marketing'")
    for dialect, sql, ids in LIKE_PATTERNS:
        if dialect == "duckdb":
            assert sorted_ids(warehouse, sql) == ids, sql


@pytest.mark.postgres
def test_like_postgres_cases_are_postgres_answers(pg: psycopg.Connection[Any]) -> None:
    """The expected ids of the PostgreSQL cases are PostgreSQL's own answers."""
    pg.execute("SET search_path = marketing")
    for dialect, sql, ids in LIKE_PATTERNS:
        if dialect == "postgres":
            assert sorted_ids(pg, sql) == ids, sql


@pytest.mark.parametrize(
    ("dialect", "sql", "target", "expected"),
    [
        # a backslash pattern for a warehouse without a default escape
        (
            "postgres",
            r"SELECT external_user_id FROM users WHERE email LIKE '%\_%'",
            "snowflake",
            r"email LIKE '%\\_%' ESCAPE '\\'",
        ),
        (
            "postgres",
            r"SELECT external_user_id FROM users WHERE email LIKE '%\_%'",
            "fabric",
            r"email LIKE '%\_%' ESCAPE '\'",
        ),
        # T-SQL: a bracket is a character class, matched as itself here
        (
            "postgres",
            "SELECT external_user_id FROM users WHERE email LIKE 'a[b]%'",
            "fabric",
            r"email LIKE 'a\[b]%' ESCAPE '\'",
        ),
        (
            "duckdb",
            "SELECT external_user_id FROM users WHERE email LIKE 'a[b]%'",
            "fabric",
            "email LIKE 'a[[]b]%'",
        ),
        # no default escape, written for warehouses that have one
        (
            "snowflake",
            r"SELECT external_user_id FROM users WHERE email LIKE '%k\\s%'",
            "databricks",
            r"email LIKE '%k\\\\s%'",
        ),
        (
            "duckdb",
            "SELECT external_user_id FROM users WHERE email LIKE '%' || first_name",
            "bigquery",
            r"email LIKE '%' || REPLACE(first_name, '\\', '\\\\')",
        ),
        # BigQuery has no ESCAPE clause: the pattern is rewritten with backslashes
        (
            "postgres",
            "SELECT external_user_id FROM users WHERE email LIKE 'e!_x!!%' ESCAPE '!'",
            "bigquery",
            r"email LIKE 'e\\_x!%'",
        ),
        # the same convention on both sides: as written
        (
            "postgres",
            r"SELECT external_user_id FROM users WHERE email LIKE '%\_%'",
            "redshift",
            r"email LIKE '%\\_%'",
        ),
        (
            "duckdb",
            r"SELECT external_user_id FROM users WHERE email LIKE '%k\s%'",
            "snowflake",
            r"email LIKE '%k\\s%'",
        ),
    ],
)
def test_like_escapes_for_other_warehouses(
    dialect: str, sql: str, target: str, expected: str
) -> None:
    assert expected in emitted_sql(sql, dialect, target)


def test_bigquery_like_escape_over_a_computed_pattern_is_refused() -> None:
    sql = "SELECT external_user_id FROM users WHERE email LIKE first_name || '!_%' ESCAPE '!'"
    assert error_codes(sql, "postgres", "bigquery") == ["unsupported_in_dialect"]
    assert error_codes(sql, "postgres", "duckdb") == []


# (source dialect, query, ids the source warehouse returns)
REGEX_MATCHES: list[tuple[str, str, list[str]]] = [
    # Snowflake: the whole string
    ("snowflake", "SELECT external_user_id FROM users WHERE email RLIKE 'gmail'", []),
    ("snowflake", "SELECT external_user_id FROM users WHERE email RLIKE '.*gmail.*'", ["u1"]),
    (
        "snowflake",
        "SELECT external_user_id FROM users WHERE email REGEXP 'a@gmail.com|e.x@corp.io'",
        ["u1", "u2", "u3"],
    ),
    (
        "snowflake",
        "SELECT external_user_id FROM users WHERE REGEXP_LIKE(email, '.*GMAIL.*', 'i')",
        ["u1", "u5"],
    ),
    (
        "snowflake",
        "SELECT external_user_id FROM users WHERE NOT email RLIKE '.*@corp[.]io'",
        ["u1", "u4", "u5", "u7"],
    ),
    (
        "snowflake",
        "SELECT external_user_id FROM users WHERE email RLIKE first_name || '.*'",
        ["u1", "u2", "u3", "u7"],
    ),
    (
        "duckdb",
        "SELECT external_user_id FROM users WHERE regexp_full_match(email, 'e.x@corp[.]io')",
        ["u2", "u3"],
    ),
    # everywhere else: anywhere in the string
    ("postgres", "SELECT external_user_id FROM users WHERE email ~ 'gmail'", ["u1"]),
    (
        "postgres",
        "SELECT external_user_id FROM users WHERE email ~* 'gmail' AND email !~ '^a@'",
        ["u5"],
    ),
    (
        "duckdb",
        "SELECT external_user_id FROM users WHERE regexp_matches(email, 'GMAIL', 'i')",
        ["u1", "u5"],
    ),
    ("databricks", "SELECT external_user_id FROM users WHERE email RLIKE 'corp'", ["u2", "u3"]),
    (
        "bigquery",
        "SELECT external_user_id FROM users WHERE REGEXP_CONTAINS(email, r'^e.x')",
        ["u2", "u3"],
    ),
]


@pytest.mark.parametrize(("dialect", "sql", "ids"), REGEX_MATCHES)
def test_regex_matches_keep_their_extent_on_duckdb(
    warehouse: duckdb.DuckDBPyConnection, dialect: str, sql: str, ids: list[str]
) -> None:
    assert sorted_ids(warehouse, emitted_sql(sql, dialect, "duckdb")) == ids


@pytest.mark.postgres
@pytest.mark.parametrize(("dialect", "sql", "ids"), REGEX_MATCHES)
def test_regex_matches_keep_their_extent_on_postgres(
    pg: psycopg.Connection[Any], dialect: str, sql: str, ids: list[str]
) -> None:
    assert sorted_ids(pg, emitted_sql(sql, dialect, "postgres")) == ids


@pytest.mark.parametrize(
    ("dialect", "sql", "target", "expected"),
    [
        # a search is no whole-string REGEXP_LIKE on Snowflake
        (
            "postgres",
            "SELECT external_user_id FROM users WHERE email ~ 'gmail' AND email ~* 'x'",
            "snowflake",
            "REGEXP_COUNT(email, 'gmail') > 0 AND REGEXP_COUNT(email, 'x', 1, 'i') > 0",
        ),
        (
            "bigquery",
            "SELECT external_user_id FROM users WHERE NOT REGEXP_CONTAINS(email, 'corp')",
            "snowflake",
            "NOT REGEXP_COUNT(email, 'corp') > 0",
        ),
        (
            "duckdb",
            "SELECT external_user_id FROM users WHERE regexp_full_match(email, 'q.*')",
            "snowflake",
            "REGEXP_LIKE(email, 'q.*')",
        ),
        # whole-string tests elsewhere are anchored, flags inline
        (
            "snowflake",
            "SELECT external_user_id FROM users WHERE REGEXP_LIKE(email, 'gm', 'i')",
            "bigquery",
            "REGEXP_CONTAINS(email, '(?i)^(?:gm)$')",
        ),
        (
            "snowflake",
            "SELECT external_user_id FROM users WHERE email RLIKE 'gm'",
            "databricks",
            "REGEXP_LIKE(email, '^(?:gm)$')",
        ),
        (
            "snowflake",
            "SELECT external_user_id FROM users WHERE email RLIKE 'gm'",
            "redshift",
            "email ~ '^(gm)$'",
        ),
        (
            "postgres",
            "SELECT external_user_id FROM users WHERE email ~* 'gm'",
            "databricks",
            "REGEXP_LIKE(email, '(?i)gm')",
        ),
        (
            "duckdb",
            "SELECT external_user_id FROM users WHERE regexp_matches(email, 'gm', 'i')",
            "bigquery",
            "REGEXP_CONTAINS(email, '(?i)gm')",
        ),
    ],
)
def test_regex_matches_for_other_warehouses(
    dialect: str, sql: str, target: str, expected: str
) -> None:
    assert expected in emitted_sql(sql, dialect, target)


@pytest.mark.parametrize(
    ("dialect", "sql", "target"),
    [
        # PostgreSQL's ~ has no flag argument and its embedded m/s mean other things
        (
            "snowflake",
            "SELECT external_user_id FROM users WHERE REGEXP_LIKE(email, 'a', 'm')",
            "postgres",
        ),
        # a computed flag cannot be carried
        (
            "snowflake",
            "SELECT external_user_id FROM users WHERE REGEXP_LIKE(email, 'a', first_name)",
            "bigquery",
        ),
        # a flag no target knows
        (
            "duckdb",
            "SELECT external_user_id FROM users WHERE regexp_matches(email, 'a', 'x')",
            "bigquery",
        ),
    ],
)
def test_regex_flags_that_cannot_be_carried_are_refused(
    dialect: str, sql: str, target: str
) -> None:
    assert error_codes(sql, dialect, target) == ["unsupported_in_dialect"]
    assert error_codes(sql, dialect, dialect) == []


# --- date/time format strings ------------------------------------------------------------------

# (source dialect, query, target): formats sqlglot would carry with another meaning
LOST_FORMATS: list[tuple[str, str, str]] = [
    # PostgreSQL/Redshift template words sqlglot's table lacks stay as text (`Dy` -> `%uy`)
    (
        "postgres",
        "SELECT external_user_id, TO_CHAR(created_at, 'Dy Mon DD') AS d FROM users",
        "duckdb",
    ),
    ("redshift", "SELECT external_user_id, TO_CHAR(created_at, 'Day') AS d FROM users", "duckdb"),
    (
        "postgres",
        "SELECT external_user_id, TO_CHAR(created_at, 'FMMonth') AS d FROM users",
        "bigquery",
    ),
    (
        "postgres",
        "SELECT external_user_id, TO_CHAR(created_at, 'HH12:MI AM') AS d FROM users",
        "duckdb",
    ),
    # PostgreSQL `D` (Sunday = 1) was read as strftime `%u` (Monday = 1)
    ("postgres", "SELECT external_user_id, TO_CHAR(created_at, 'D') AS d FROM users", "duckdb"),
    # text of a strftime format becomes template fields (`W`: the week of the month)
    (
        "bigquery",
        "SELECT external_user_id, FORMAT_TIMESTAMP('%G-W%V', created_at) AS d FROM users",
        "postgres",
    ),
    (
        "duckdb",
        "SELECT external_user_id, strftime(created_at, 'Week %V') AS d FROM users",
        "postgres",
    ),
    # a directive the target's template has no exact word for (Snowflake has no week number)
    (
        "bigquery",
        "SELECT external_user_id, FORMAT_DATE('%Y-%W', DATE(created_at)) AS d FROM users",
        "snowflake",
    ),
    ("duckdb", "SELECT external_user_id, strftime(created_at, '%u') AS d FROM users", "postgres"),
]


@pytest.mark.parametrize(("dialect", "sql", "target"), LOST_FORMATS)
def test_time_formats_that_change_meaning_are_refused(dialect: str, sql: str, target: str) -> None:
    assert error_codes(sql, dialect, target) == ["unsupported_in_dialect"]
    assert error_codes(sql, dialect, dialect) == []


# (source dialect, query, the rows the source warehouse returns)
KEPT_FORMATS: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "postgres",
        "SELECT external_user_id, TO_CHAR(created_at, 'YYYY-MM-DD HH24:MI') AS d FROM users",
        [("u1", "2024-01-07 00:30")],
    ),
    (
        "postgres",
        "SELECT external_user_id, TO_CHAR(created_at, 'TMDy TMMon DD, IYYY-IW') AS d FROM users",
        [("u1", "Sun Jan 07, 2024-01")],
    ),
    (
        "redshift",
        "SELECT external_user_id, TO_CHAR(created_at, 'YYYY-MM') AS d FROM users",
        [("u1", "2024-01")],
    ),
    (
        "duckdb",
        "SELECT external_user_id, strftime(created_at, '%d/%m/%Y %H:%M') AS d FROM users",
        [("u1", "07/01/2024 00:30")],
    ),
    (
        "bigquery",
        "SELECT external_user_id, FORMAT_TIMESTAMP('%a %b %d', created_at) AS d FROM users",
        [("u1", "Sun Jan 07")],
    ),
    (
        "databricks",
        "SELECT external_user_id, date_format(created_at, 'yyyy-MM-dd HH:mm') AS d FROM users",
        [("u1", "2024-01-07 00:30")],
    ),
]


def _format_rows(con: Any, sql: str) -> list[tuple[str, str]]:
    con.execute("DELETE FROM marketing.users")
    con.execute(
        "INSERT INTO marketing.users (external_user_id, created_at) "
        "VALUES ('u1', TIMESTAMP '2024-01-07 00:30:00')"
    )
    return [(row[0], row[1]) for row in con.execute(sql).fetchall()]


@pytest.mark.parametrize(("dialect", "sql", "rows"), KEPT_FORMATS)
def test_plain_time_formats_run_the_same_on_duckdb(
    warehouse: duckdb.DuckDBPyConnection, dialect: str, sql: str, rows: list[tuple[str, str]]
) -> None:
    result = check_sql(sql, dialect, "duckdb")
    assert result.valid, [e.to_dict() for e in result.errors]
    assert _format_rows(warehouse, str(result.sql)) == rows


@pytest.mark.postgres
@pytest.mark.parametrize(("dialect", "sql", "rows"), KEPT_FORMATS)
def test_plain_time_formats_run_the_same_on_postgres(
    pg: psycopg.Connection[Any], dialect: str, sql: str, rows: list[tuple[str, str]]
) -> None:
    result = check_sql(sql, dialect, "postgres")
    assert result.valid, [e.to_dict() for e in result.errors]
    assert _format_rows(pg, str(result.sql)) == rows


# --- PostgreSQL round(double precision) -------------------------------------------------------

# lifetime_value is DOUBLE in the catalog: PostgreSQL rounds its halves to even
ROUNDINGS: list[str] = [
    "SELECT external_user_id, ROUND(lifetime_value) AS r FROM users",
    "SELECT external_user_id, ROUND(lifetime_value * 2 - 0.5) AS r FROM users",
    "SELECT external_user_id, ROUND(COALESCE(lifetime_value, 0)) AS r FROM users",
    # round(numeric) rounds halves away from zero, in PostgreSQL as elsewhere
    "SELECT external_user_id, ROUND(lifetime_value::numeric) AS r FROM users",
]
_VALUES = [("r1", 2.5), ("r2", -2.5), ("r3", 3.5), ("r4", 0.5), ("r5", 120.25), ("r6", None)]


def _rounded(con: Any, sql: str) -> list[tuple[str, float | None]]:
    con.execute("DELETE FROM marketing.users")
    for user, value in _VALUES:
        con.execute(
            f"INSERT INTO marketing.users (external_user_id, lifetime_value) "
            f"VALUES ('{user}', {'NULL' if value is None else value})"
        )
    return sorted(
        (row[0], None if row[1] is None else float(row[1])) for row in con.execute(sql).fetchall()
    )


@pytest.mark.postgres
@pytest.mark.parametrize("sql", ROUNDINGS)
def test_postgres_round_of_a_double_keeps_halves_to_even_on_duckdb(
    warehouse: duckdb.DuckDBPyConnection, pg: psycopg.Connection[Any], sql: str
) -> None:
    pg.execute("SET search_path = marketing")
    expected = _rounded(pg, sql)
    result = check_sql(sql, "postgres", "duckdb")
    assert result.valid, [e.to_dict() for e in result.errors]
    assert _rounded(warehouse, str(result.sql)) == expected


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("duckdb", "ROUND_EVEN(lifetime_value, 0)"),
        ("databricks", "BROUND(lifetime_value)"),
        (
            "bigquery",
            "CAST(ROUND(CAST(lifetime_value AS BIGNUMERIC), 0, 'ROUND_HALF_EVEN') AS FLOAT64)",
        ),
    ],
)
def test_postgres_round_of_a_double_for_other_warehouses(target: str, expected: str) -> None:
    assert expected in emitted_sql(ROUNDINGS[0], "postgres", target)


@pytest.mark.parametrize("target", ["snowflake", "fabric"])
def test_postgres_round_of_a_double_is_refused_where_halves_cannot_go_to_even(target: str) -> None:
    assert error_codes(ROUNDINGS[0], "postgres", target) == ["unsupported_in_dialect"]
    assert error_codes(ROUNDINGS[3], "postgres", target) == []


# --- ADD_MONTHS -------------------------------------------------------------------------------

DATABRICKS_ADD_MONTHS = (
    "SELECT external_user_id, add_months(created_at, 1) AS a, add_months(created_at, -3) AS b "
    "FROM users"
)
# Databricks: clamps to the month's end, no last-day rule, a DATE
_ADDED = [("m1", "2024-02-29", "2023-10-31"), ("m2", "2024-03-01", "2023-11-01")]


def _added(con: Any, sql: str) -> list[tuple[str, str, str]]:
    con.execute("DELETE FROM marketing.users")
    con.execute(
        "INSERT INTO marketing.users (external_user_id, created_at) VALUES "
        "('m1', TIMESTAMP '2024-01-31 08:00:00'), ('m2', TIMESTAMP '2024-02-01 23:00:00')"
    )
    return sorted((r[0], str(r[1]), str(r[2])) for r in con.execute(sql).fetchall())


def test_databricks_add_months_on_duckdb(warehouse: duckdb.DuckDBPyConnection) -> None:
    result = check_sql(DATABRICKS_ADD_MONTHS, "databricks", "duckdb")
    assert result.valid, [e.to_dict() for e in result.errors]
    assert _added(warehouse, str(result.sql)) == _ADDED


@pytest.mark.postgres
def test_databricks_add_months_on_postgres(pg: psycopg.Connection[Any]) -> None:
    result = check_sql(DATABRICKS_ADD_MONTHS, "databricks", "postgres")
    assert result.valid, [e.to_dict() for e in result.errors]
    assert _added(pg, str(result.sql)) == _ADDED


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        # Snowflake's and Redshift's ADD_MONTHS would move 2024-02-29 to 2024-03-31
        ("snowflake", "CAST(DATEADD(MONTH, 1, CAST(created_at AS DATE)) AS DATE)"),
        ("redshift", "CAST(DATEADD(MONTH, 1, CAST(created_at AS DATE)) AS DATE)"),
        # BigQuery has no ADD_MONTHS
        ("bigquery", "CAST(DATE_ADD(CAST(created_at AS DATE), INTERVAL 1 MONTH) AS DATE)"),
    ],
)
def test_databricks_add_months_for_other_warehouses(target: str, expected: str) -> None:
    assert expected in emitted_sql(DATABRICKS_ADD_MONTHS, "databricks", target)


SNOWFLAKE_ADD_MONTHS = "SELECT external_user_id, ADD_MONTHS(created_at, 1) AS a FROM users"


@pytest.mark.parametrize("target", ["bigquery", "databricks", "postgres", "fabric"])
def test_snowflake_add_months_last_day_rule_is_refused_where_missing(target: str) -> None:
    assert error_codes(SNOWFLAKE_ADD_MONTHS, "snowflake", target) == ["unsupported_in_dialect"]


@pytest.mark.parametrize("target", ["snowflake", "redshift", "duckdb"])
def test_snowflake_add_months_stays_where_the_rule_exists(target: str) -> None:
    assert error_codes(SNOWFLAKE_ADD_MONTHS, "snowflake", target) == []


SNOWFLAKE_DATE_ADD_MONTHS = (
    "SELECT external_user_id, ADD_MONTHS(CAST(created_at AS DATE), 1) AS a, "
    "ADD_MONTHS(CAST(created_at AS DATE), -2) AS b FROM users"
)
# Snowflake: a month's last day goes to the result's last day
_LAST_DAYS = [
    ("d1", "2024-03-31", "2023-12-31"),  # from 2024-02-29
    ("d2", "2024-02-29", "2023-11-30"),  # from 2024-01-30 (clamped; not a last day)
    ("d3", "2024-05-31", "2024-02-29"),  # from 2024-04-30
]


def _moved(con: Any, sql: str) -> list[tuple[str, str, str]]:
    con.execute("DELETE FROM marketing.users")
    con.execute(
        "INSERT INTO marketing.users (external_user_id, created_at) VALUES "
        "('d1', TIMESTAMP '2024-02-29 10:00:00'), ('d2', TIMESTAMP '2024-01-30 00:00:00'), "
        "('d3', TIMESTAMP '2024-04-30 23:00:00')"
    )
    return sorted((r[0], str(r[1]), str(r[2])) for r in con.execute(sql).fetchall())


def test_snowflake_add_months_of_a_date_on_duckdb(warehouse: duckdb.DuckDBPyConnection) -> None:
    result = check_sql(SNOWFLAKE_DATE_ADD_MONTHS, "snowflake", "duckdb")
    assert result.valid, [e.to_dict() for e in result.errors]
    assert _moved(warehouse, str(result.sql)) == _LAST_DAYS


@pytest.mark.postgres
def test_snowflake_add_months_of_a_date_on_postgres(pg: psycopg.Connection[Any]) -> None:
    result = check_sql(SNOWFLAKE_DATE_ADD_MONTHS, "snowflake", "postgres")
    assert result.valid, [e.to_dict() for e in result.errors]
    assert _moved(pg, str(result.sql)) == _LAST_DAYS


@pytest.mark.parametrize("target", ["bigquery", "databricks"])
def test_snowflake_add_months_of_a_date_is_a_last_day_test(target: str) -> None:
    assert "LAST_DAY(" in emitted_sql(SNOWFLAKE_DATE_ADD_MONTHS, "snowflake", target)


# --- COUNT_IF -----------------------------------------------------------------------------------

# users with no purchase over 50: Snowflake/BigQuery/Databricks COUNT_IF is 0 over no rows
COUNT_IF_ZERO: list[tuple[str, str]] = [
    (
        "databricks",
        "SELECT u.external_user_id FROM users u WHERE (SELECT count_if(p.price > 50) "
        "FROM purchases p WHERE p.external_user_id = u.external_user_id) = 0",
    ),
    (
        "bigquery",
        "SELECT u.external_user_id FROM users u WHERE (SELECT COUNTIF(p.price > 50) "
        "FROM purchases p WHERE p.external_user_id = u.external_user_id) = 0",
    ),
    (
        "snowflake",
        "SELECT u.external_user_id FROM users u LEFT JOIN purchases p USING (external_user_id) "
        "GROUP BY u.external_user_id HAVING COUNT_IF(p.price > 50) = 0",
    ),
]


def _purchases(con: Any) -> None:
    con.execute("DELETE FROM marketing.purchases")
    con.execute(
        "INSERT INTO marketing.purchases (purchase_id, external_user_id, price) VALUES "
        "('p1', 'u1', 10), ('p2', 'u2', 100), ('p3', 'u3', NULL)"
    )


_NO_BIG_PURCHASE = ["u1", "u3", "u4", "u5", "u6", "u7"]


@pytest.mark.parametrize(("dialect", "sql"), COUNT_IF_ZERO)
def test_count_if_is_zero_over_no_rows_on_duckdb(
    warehouse: duckdb.DuckDBPyConnection, dialect: str, sql: str
) -> None:
    _purchases(warehouse)
    assert sorted_ids(warehouse, emitted_sql(sql, dialect, "duckdb")) == _NO_BIG_PURCHASE


@pytest.mark.postgres
@pytest.mark.parametrize(("dialect", "sql"), COUNT_IF_ZERO)
def test_count_if_is_zero_over_no_rows_on_postgres(
    pg: psycopg.Connection[Any], dialect: str, sql: str
) -> None:
    _purchases(pg)
    assert sorted_ids(pg, emitted_sql(sql, dialect, "postgres")) == _NO_BIG_PURCHASE


@pytest.mark.postgres
def test_duckdb_count_if_keeps_its_null_on_postgres(
    warehouse: duckdb.DuckDBPyConnection, pg: psycopg.Connection[Any]
) -> None:
    """DuckDB's count_if is NULL when no value is true or false (no rows, only NULLs)."""
    sql = (
        "SELECT u.external_user_id FROM users u WHERE (SELECT count_if(p.price > 50) "
        "FROM purchases p WHERE p.external_user_id = u.external_user_id) IS NULL"
    )
    _purchases(warehouse)
    _purchases(pg)
    warehouse.execute("SET schema = 'marketing'")
    expected = sorted_ids(warehouse, sql)
    assert expected == ["u3", "u4", "u5", "u6", "u7"]
    assert sorted_ids(pg, emitted_sql(sql, "duckdb", "postgres")) == expected
