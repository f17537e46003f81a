"""Red-team round 12 (issue #4): translations checked on data, in each dialect's idiom.

- PostgreSQL/Redshift integer division of an integer *expression* (a string length or
  position, Redshift ``DATEDIFF``, ``date - date``, ``ROW_NUMBER()``, integer arithmetic)
  emitted for DuckDB kept the fraction (``LENGTH(x) / 2`` was 1.5, not 1);
- Snowflake/Redshift ``REGEXP_SUBSTR(…, 'e')`` returned the whole match, not the first
  group, in DuckDB; Redshift got the group number as a *position* (``REGEXP_SUBSTR(x, p, 0)``
  fails there, ``…, 1)`` returns the whole match) or a sixth argument it does not take;
  BigQuery got a whole match of a pattern with a group (it returns the group) and lost flags;
- PostgreSQL jsonb ``?``, ``?|``, ``?&``, ``@>``, ``<@`` were emitted as is for DuckDB and
  Redshift (no such JSON operators there; ``?`` is a parameter marker in DuckDB).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import psycopg
import pytest

from tests.unit.sql.catalog import duckdb_marketing, postgres_marketing
from tests.unit.sql.checks import check_sql, emitted_sql, error_codes, sorted_ids

# (external_user_id, email, first_name, created_at, attributes)
USERS: list[tuple[str, str | None, str, str, str | None]] = [
    ("u1", "a@gmail.com", "Ann", "2024-03-01 10:00:00", '{"tier": "gold", "tags": ["vip"]}'),
    ("u2", "b@yahoo.com", "Bob", "2024-02-20 10:00:00", '{"tier": "silver"}'),
    ("u3", None, "Cy", "2023-01-01 10:00:00", '{"tags": ["gold"]}'),
    ("u4", "D@GMAIL.com", "Di", "2024-03-10 10:00:00", None),
]
# (purchase_id, external_user_id, quantity)
PURCHASES: list[tuple[str, str, int]] = [("p1", "u1", 1), ("p2", "u2", 3), ("p3", "u4", 5)]

_USER_COLUMNS = "external_user_id, email, first_name, created_at, attributes"


SEED = {
    "users": (_USER_COLUMNS, USERS),
    "purchases": ("purchase_id, external_user_id, quantity", PURCHASES),
}


@pytest.fixture()
def warehouse() -> duckdb.DuckDBPyConnection:
    return duckdb_marketing(SEED)


@pytest.fixture()
def pg(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    with postgres_marketing(postgres_url, SEED) as con:
        yield con


# --- integer division of integer expressions -----------------------------------------------

# (source dialect, query, ids the source dialect returns)
INTEGER_DIVISIONS: list[tuple[str, str, list[str]]] = [
    # every first name has 2 or 3 characters: / 2 is 1 for all in PostgreSQL
    ("postgres", "SELECT external_user_id FROM users WHERE LENGTH(first_name) / 2 = 1", []),
    ("postgres", "SELECT external_user_id FROM users WHERE CHAR_LENGTH(first_name) / 2 = 1", []),
    ("redshift", "SELECT external_user_id FROM users WHERE LEN(first_name) / 2 = 1", []),
    # '@' at position 2: 2 / 3 is 0 in PostgreSQL, 0.67 in DuckDB
    (
        "postgres",
        "SELECT external_user_id FROM users WHERE POSITION('@' IN email) / 3 = 0",
        ["u1", "u2", "u4"],
    ),
    (
        "redshift",
        "SELECT external_user_id FROM users WHERE CHARINDEX('@', email) / 3 = 0",
        ["u1", "u2", "u4"],
    ),
    # Redshift DATEDIFF is a BIGINT: 9 days / 7 is 1 week
    (
        "redshift",
        "SELECT external_user_id FROM users "
        "WHERE DATEDIFF(day, created_at, '2024-03-10 10:00:00') / 7 = 1",
        ["u1"],
    ),
    # date - date is a number of days in PostgreSQL
    (
        "postgres",
        "SELECT external_user_id FROM users WHERE (DATE '2024-03-10' - created_at::date) / 7 = 1",
        ["u1"],
    ),
    # integer arithmetic of integer columns, ranking windows
    (
        "postgres",
        "SELECT external_user_id FROM purchases WHERE (quantity + 2) / 2 = 2",
        ["u2"],
    ),
    (
        "postgres",
        "SELECT external_user_id FROM (SELECT external_user_id, "
        "ROW_NUMBER() OVER (ORDER BY external_user_id) / 2 AS pair FROM users) t WHERE pair = 1",
        ["u2", "u3"],
    ),
]


@pytest.mark.parametrize(("dialect", "sql", "expected"), INTEGER_DIVISIONS)
def test_integer_division_of_integer_expressions_in_duckdb(
    warehouse: duckdb.DuckDBPyConnection, dialect: str, sql: str, expected: list[str]
) -> None:
    expected = expected or ["u1", "u2", "u3", "u4"]
    assert sorted_ids(warehouse, emitted_sql(sql, dialect, "duckdb")) == expected


@pytest.mark.postgres
def test_integer_division_cases_give_the_same_ids_on_postgres(
    pg: psycopg.Connection[Any],
) -> None:
    for dialect, sql, expected in INTEGER_DIVISIONS:
        if dialect == "postgres":
            ids = sorted_ids(pg, emitted_sql(sql, dialect, "postgres"))
            assert ids == (expected or ["u1", "u2", "u3", "u4"]), sql


def test_fraction_division_is_left_alone(warehouse: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT external_user_id FROM users WHERE LENGTH(first_name) / 2.0 = 1.5"
    assert sorted_ids(warehouse, emitted_sql(sql, "postgres", "duckdb")) == ["u1", "u2"]


# --- REGEXP_SUBSTR / REGEXP_EXTRACT capture groups ----------------------------------------


@pytest.mark.parametrize(
    ("dialect", "sql", "expected"),
    [
        (
            "snowflake",
            "SELECT external_user_id FROM users "
            "WHERE REGEXP_SUBSTR(email, '@([a-z]+)', 1, 1, 'e') = 'gmail'",
            ["u1"],
        ),
        (
            "snowflake",
            "SELECT external_user_id FROM users "
            "WHERE REGEXP_SUBSTR(email, '@([a-z]+)', 1, 1, 'ie') = 'GMAIL'",
            ["u4"],
        ),
        (
            "redshift",
            "SELECT external_user_id FROM users "
            "WHERE REGEXP_SUBSTR(email, '@([a-z]+)', 1, 1, 'e') = 'gmail'",
            ["u1"],
        ),
        # without 'e' the whole match, as before
        (
            "snowflake",
            "SELECT external_user_id FROM users WHERE REGEXP_SUBSTR(email, '@([a-z]+)') = '@gmail'",
            ["u1"],
        ),
        (
            "redshift",
            "SELECT external_user_id FROM users WHERE REGEXP_SUBSTR(email, '@([a-z]+)') = '@gmail'",
            ["u1"],
        ),
    ],
)
def test_regexp_substr_e_extracts_the_first_group_in_duckdb(
    warehouse: duckdb.DuckDBPyConnection, dialect: str, sql: str, expected: list[str]
) -> None:
    assert sorted_ids(warehouse, emitted_sql(sql, dialect, "duckdb")) == expected


@pytest.mark.parametrize(
    ("dialect", "call", "written"),
    [
        ("databricks", "REGEXP_EXTRACT(email, '@([a-z]+)')", "REGEXP_SUBSTR(email, '@([a-z]+)', 1, 1, 'e')"),
        ("duckdb", "REGEXP_EXTRACT(email, '@([a-z]+)')", "REGEXP_SUBSTR(email, '@([a-z]+)')"),
        ("duckdb", "REGEXP_EXTRACT(email, '@([a-z]+)', 1)", "REGEXP_SUBSTR(email, '@([a-z]+)', 1, 1, 'e')"),
        ("snowflake", "REGEXP_SUBSTR(email, '@([a-z]+)')", "REGEXP_SUBSTR(email, '@([a-z]+)')"),
        ("snowflake", "REGEXP_SUBSTR(email, '@([a-z]+)', 1, 1, 'e')", "REGEXP_SUBSTR(email, '@([a-z]+)', 1, 1, 'e')"),
        ("snowflake", "REGEXP_SUBSTR(email, '@([a-z]+)', 3)", "REGEXP_SUBSTR(email, '@([a-z]+)', 3)"),
        ("snowflake", "REGEXP_SUBSTR(email, '@([a-z]+)', 1, 1, 'ie')", "REGEXP_SUBSTR(email, '@([a-z]+)', 1, 1, 'ie')"),
        ("bigquery", "REGEXP_EXTRACT(email, '@([a-z]+)')", "REGEXP_SUBSTR(email, '@([a-z]+)', 1, 1, 'e')"),
    ],
)  # fmt: skip
def test_regexp_extraction_in_redshift_form(dialect: str, call: str, written: str) -> None:
    """Redshift's REGEXP_SUBSTR(x, pattern, position, occurrence, parameters): no group
    argument, 'e' for the first group."""
    sql = f"SELECT external_user_id FROM users WHERE {call} = 'gmail'"
    assert f"WHERE {written} = 'gmail'" in emitted_sql(sql, dialect, "redshift")


@pytest.mark.parametrize(
    ("dialect", "call"),
    [
        ("snowflake", "REGEXP_SUBSTR(email, '@([a-z]+)(\\\\.)', 1, 1, 'e', 2)"),
        ("duckdb", "REGEXP_EXTRACT(email, '@([a-z]+)(\\.)', 2)"),
        ("snowflake", "REGEXP_SUBSTR(email, '@([a-z]+)', 1, 1, 'm')"),
    ],
)
def test_regexp_extraction_redshift_cannot_express_is_refused(dialect: str, call: str) -> None:
    sql = f"SELECT external_user_id FROM users WHERE {call} = 'gmail'"
    result = check_sql(sql, dialect, "redshift")
    assert [e.code for e in result.errors] == ["unsupported_in_dialect"]
    assert "regular expression extraction" in result.errors[0].message


@pytest.mark.parametrize(
    ("dialect", "call", "code"),
    [
        # BigQuery returns the only group: a whole match of a grouped pattern is refused
        ("snowflake", "REGEXP_SUBSTR(email, '@([a-z]+)')", "unsupported_in_dialect"),
        ("duckdb", "REGEXP_EXTRACT(email, '@([a-z]+)')", "unsupported_in_dialect"),
        ("redshift", "REGEXP_SUBSTR(email, '@([a-z]+)')", "unsupported_in_dialect"),
        # flags BigQuery's REGEXP_EXTRACT has no argument for
        ("snowflake", "REGEXP_SUBSTR(email, '@([a-z]+)', 1, 1, 'ie')", "unsupported_in_dialect"),
        # a group past the only one
        ("databricks", "REGEXP_EXTRACT(email, '@([a-z]+)(\\\\.)', 2)", "unsupported_in_dialect"),
        # these mean the same in BigQuery
        ("snowflake", "REGEXP_SUBSTR(email, '@([a-z]+)', 1, 1, 'e')", ""),
        ("snowflake", "REGEXP_SUBSTR(email, '@[a-z]+')", ""),
        ("snowflake", "REGEXP_SUBSTR(email, '@(?:[a-z]+)')", ""),
        ("databricks", "REGEXP_EXTRACT(email, '@([a-z]+)')", ""),
        ("duckdb", "REGEXP_EXTRACT(email, '@([a-z]+)', 1)", ""),
    ],
)
def test_regexp_extraction_for_bigquery(dialect: str, call: str, code: str) -> None:
    sql = f"SELECT external_user_id FROM users WHERE {call} = 'gmail'"
    assert error_codes(sql, dialect, "bigquery") == ([code] if code else [])


# --- PostgreSQL jsonb operators ------------------------------------------------------------

JSONB_OPERATORS = [
    "SELECT external_user_id FROM users WHERE attributes ? 'tier'",
    "SELECT external_user_id FROM users WHERE attributes -> 'tags' ?| ARRAY['vip', 'gold']",
    "SELECT external_user_id FROM users WHERE attributes ?& ARRAY['tier', 'tags']",
    'SELECT external_user_id FROM users WHERE attributes @> \'{"tier": "gold"}\'',
    'SELECT external_user_id FROM users WHERE attributes::jsonb @> \'{"tier": "gold"}\'::jsonb',
    'SELECT external_user_id FROM users WHERE \'{"tier": "gold"}\'::jsonb <@ attributes',
]


@pytest.mark.parametrize("sql", JSONB_OPERATORS)
@pytest.mark.parametrize(
    "target", ["snowflake", "bigquery", "redshift", "databricks", "duckdb", "fabric"]
)
def test_jsonb_operators_are_refused_outside_postgres(sql: str, target: str) -> None:
    result = check_sql(sql, "postgres", target)
    assert [e.code for e in result.errors] == ["unsupported_in_dialect"]
    assert "jsonb operators" in result.errors[0].message


@pytest.mark.postgres
def test_jsonb_operators_run_on_postgres(pg: psycopg.Connection[Any]) -> None:
    found = [sorted_ids(pg, emitted_sql(sql, "postgres", "postgres")) for sql in JSONB_OPERATORS]
    assert found == [["u1", "u2"], ["u1", "u3"], ["u1"], ["u1"], ["u1"], ["u1"]]


def test_array_containment_is_still_translated(warehouse: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT external_user_id FROM users WHERE ARRAY['a'] <@ ARRAY['a', 'b']"
    assert sorted_ids(warehouse, emitted_sql(sql, "postgres", "duckdb")) == [
        "u1",
        "u2",
        "u3",
        "u4",
    ]


# --- derived tables without an alias, set operations BY NAME --------------------------------


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        (
            "snowflake",
            "SELECT external_user_id FROM (SELECT external_user_id, first_name FROM users) "
            "WHERE first_name = 'Ann'",
        ),
        (
            "redshift",
            "SELECT external_user_id FROM (SELECT external_user_id, RANK() OVER "
            "(ORDER BY first_name) AS r FROM users) WHERE r = 1",
        ),
        (
            "databricks",
            "SELECT external_user_id FROM (SELECT external_user_id FROM users "
            "WHERE first_name = 'Ann') WHERE external_user_id IS NOT NULL",
        ),
    ],
)
def test_derived_table_without_alias_gets_one_for_postgres(
    warehouse: duckdb.DuckDBPyConnection, pg: psycopg.Connection[Any], dialect: str, sql: str
) -> None:
    for target, con in (("postgres", pg), ("duckdb", warehouse)):
        assert sorted_ids(con, emitted_sql(sql, dialect, target)) == ["u1"], target
    for target in ("redshift", "fabric"):
        if target != dialect:  # the user's own warehouse gets the query as written
            assert "AS _zc_derived1" in emitted_sql(sql, dialect, target)


def test_derived_table_alias_avoids_names_in_use() -> None:
    sql = (
        "SELECT external_user_id FROM (SELECT external_user_id AS _zc_derived1 FROM users) "
        "JOIN users ON external_user_id = _zc_derived1"
    )
    assert "AS _zc_derived2" in emitted_sql(sql, "snowflake", "postgres")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT external_user_id, first_name FROM users UNION BY NAME "
        "SELECT first_name, external_user_id FROM users WHERE first_name = 'Ann'",
        "SELECT external_user_id, first_name FROM users UNION ALL BY NAME "
        "SELECT first_name AS first_name, external_user_id FROM users",
    ],
)
def test_union_by_name_is_positional_for_postgres(
    warehouse: duckdb.DuckDBPyConnection, pg: psycopg.Connection[Any], sql: str
) -> None:
    assert sorted_ids(warehouse, sql.replace("users", "marketing.users")) == (
        ["u1", "u2", "u3", "u4"]
        if "ALL" not in sql
        else ["u1", "u1", "u2", "u2", "u3", "u3", "u4", "u4"]
    )
    emitted = emitted_sql(sql, "duckdb", "postgres")
    assert "BY NAME" not in emitted
    assert sorted_ids(pg, emitted) == ["u1", "u2", "u3", "u4"]
    for target in ("redshift", "fabric"):
        assert "BY NAME" not in emitted_sql(sql, "duckdb", target)


def test_union_by_name_over_a_star_is_refused_for_postgres() -> None:
    sql = "SELECT * FROM users UNION BY NAME SELECT * FROM users"
    for target in ("postgres", "redshift", "fabric"):
        assert error_codes(sql, "duckdb", target) == ["unsupported_in_dialect"], target
    assert error_codes(sql, "duckdb", "duckdb") == []


# --- pg_ functions that only compute ---------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("SELECT external_user_id FROM users WHERE pg_column_size(email) > 4", ""),
        ("SELECT external_user_id FROM users WHERE pg_size_pretty(pg_size_bytes('1 kB')) = ''", ""),
        # sizes of relations named in a string stay refused
        (
            "SELECT external_user_id FROM users WHERE pg_relation_size('marketing.users') > 0",
            "forbidden_function",
        ),
        (
            "SELECT external_user_id FROM users WHERE pg_total_relation_size('finance.x') > 0",
            "forbidden_function",
        ),
    ],
)
def test_pure_pg_functions_are_allowed(sql: str, code: str) -> None:
    assert error_codes(sql, "postgres") == ([code] if code else [])


@pytest.mark.postgres
def test_pg_column_size_runs_on_postgres(pg: psycopg.Connection[Any]) -> None:
    sql = "SELECT external_user_id FROM users WHERE pg_column_size(email) > 4"
    assert sorted_ids(pg, emitted_sql(sql, "postgres", "postgres")) == ["u1", "u2", "u4"]


# --- [NOT] LIKE ANY / ALL pattern lists ------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "sql", "expected"),
    [
        # BigQuery's quantified LIKE was written as is for PostgreSQL (a syntax error there)
        (
            "bigquery",
            "SELECT external_user_id FROM users WHERE LOWER(email) LIKE ANY ('%gmail%', '%yahoo%')",
            ["u1", "u2", "u4"],
        ),
        (
            "bigquery",
            "SELECT external_user_id FROM users WHERE email LIKE ALL ('%a%', '%.com')",
            ["u1", "u2"],
        ),
        # NOT LIKE ANY (some pattern does not match) lost its NOT for PostgreSQL/Redshift/BigQuery
        (
            "databricks",
            "SELECT external_user_id FROM users WHERE email NOT LIKE ANY ('%gmail%', '%yahoo%')",
            ["u1", "u2", "u4"],
        ),
        (
            "databricks",
            "SELECT external_user_id FROM users WHERE email NOT LIKE ALL ('%gmail%', '%yahoo%')",
            ["u4"],
        ),
        (
            "bigquery",
            "SELECT external_user_id FROM users WHERE email NOT LIKE ANY ('%gmail%', '%yahoo%')",
            ["u1", "u2", "u4"],
        ),
        # Snowflake's NOT stays outside the quantified LIKE: no pattern matches
        (
            "snowflake",
            "SELECT external_user_id FROM users WHERE email NOT LIKE ANY ('%gmail%', '%yahoo%')",
            ["u4"],
        ),
    ],
)
def test_like_pattern_lists_keep_their_meaning(
    warehouse: duckdb.DuckDBPyConnection,
    pg: psycopg.Connection[Any],
    dialect: str,
    sql: str,
    expected: list[str],
) -> None:
    assert sorted_ids(warehouse, emitted_sql(sql, dialect, "duckdb")) == expected
    assert sorted_ids(pg, emitted_sql(sql, dialect, "postgres")) == expected
    emitted = emitted_sql(sql, dialect, "redshift")
    assert "ANY (" not in emitted and "ALL (" not in emitted
    if "NOT" in sql and dialect != "snowflake":
        assert emitted.count("NOT ") >= 2


@pytest.mark.parametrize("dialect", ["duckdb", "snowflake", "databricks", "bigquery"])
def test_using_join_with_an_unaliased_derived_table_resolves_the_shared_column(
    warehouse: duckdb.DuckDBPyConnection, pg: psycopg.Connection[Any], dialect: str
) -> None:
    # the USING column is one column of the join: it was taken for an ambiguous one between
    # the alias and the subquery's empty name (unknown_column)
    sql = (
        "SELECT external_user_id FROM users u JOIN (SELECT external_user_id FROM users "
        "WHERE first_name = 'Ann') USING (external_user_id)"
    )
    for target, con in (("duckdb", warehouse), ("postgres", pg)):
        assert sorted_ids(con, emitted_sql(sql, dialect, target)) == ["u1"], target
    assert error_codes(
        sql.replace("SELECT external_user_id FROM users u", "SELECT nope FROM users u"), dialect
    ) == [
        "unknown_column",
        "missing_id_column",
    ]
