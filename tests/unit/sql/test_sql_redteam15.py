"""Red-team round 15 (issue #4): semi-structured values across warehouses.

Snowflake compares a VARIANT path with a literal by its value (``attributes:tier = 'gold'``,
``attributes:n > 1``, ``IN``, ``LIKE``); sqlglot wrote a JSON extraction there, which DuckDB and
PostgreSQL cannot compare with text (``Malformed JSON`` / ``invalid input syntax for type
json``), PostgreSQL not with a number, and LIKE matched the quoted JSON text. Databricks'
``attributes:n > 1`` (text, read as a number against a number) became ``text > 1``, refused by
both. Now a path compared to text is the text extraction, one compared to a number that
extraction cast to DOUBLE.

Snowflake's ``attributes['tier']`` and ``GET(attributes, 'tier')`` are the path
``attributes:tier``; sqlglot wrote a subscript (``CAST(attributes['tier'] AS TEXT)`` is the JSON
text '"gold"' on DuckDB and PostgreSQL: ``= 'gold'`` matched nothing) and ``JSON_EXTRACT_PATH``
(no jsonb form in PostgreSQL). They are now written as the path.

Snowflake's ``FLATTEN`` (six columns of a VARIANT's elements) was written as
``TABLE(UNNEST(…))`` (a syntax error in DuckDB and PostgreSQL) and as Databricks ``LATERAL
EXPLODE(input => …) AS f(SEQ, …)``; ``from_json(x, 'array<string>')`` kept Databricks' schema
language for DuckDB (an error there). Both are refused as ``unsupported_in_dialect`` for other
warehouses, and so are Snowflake's positional columns (``SELECT $1 FROM VALUES …``: a bind
parameter elsewhere).

Also: DuckDB's built-in view ``pragma_database_list`` (read like a table) is a system catalog
(``out_of_scope``), not an unknown table; Snowflake's ``SPLIT_PART(s, d, 0)`` (the first part)
is part 1 for PostgreSQL, Redshift and Databricks (which refuse part 0); Databricks' ``a div b``
of a non-integer is ``CAST(TRUNC(a / b) AS BIGINT)`` for DuckDB (whose ``//`` only
integer-divides integers) and PostgreSQL (no ``DIV`` of double precision).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import psycopg
import pytest

from tests.unit.sql.catalog import CATALOG, duckdb_marketing, postgres_marketing
from tests.unit.sql.checks import check_sql as _check_sql
from tests.unit.sql.checks import error_codes, sorted_ids
from zerocopy.sql import SqlCatalog, check_segment_sql

# (external_user_id, attributes as JSON)
USERS: list[tuple[str, str | None]] = [
    ("u1", '{"tier": "gold", "tags": ["a", "b"], "n": 3, "loyalty": {"level": "x"}}'),
    ("u2", '{"tier": "silver", "tags": [], "n": 10}'),
    ("u3", None),
    ("u4", '{"tier": null, "n": 1}'),
    ("u5", '{"tier": "gold-plus", "tags": ["b"], "n": 2.5}'),
]
SEED = {"users": ("external_user_id, attributes", USERS)}


@pytest.fixture()
def warehouse() -> duckdb.DuckDBPyConnection:
    return duckdb_marketing(SEED)


@pytest.fixture()
def pg(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    with postgres_marketing(postgres_url, SEED) as con:
        yield con


def _ids_sql(sql: str, dialect: str, target: str) -> str:
    result = _check_sql(sql, dialect, target)
    assert result.valid, [e.to_dict() for e in result.errors]
    assert result.ids_sql
    return str(result.ids_sql)


# (source dialect, query, the ids the source warehouse returns)
PATHS: list[tuple[str, str, list[str]]] = [
    # a VARIANT path compared with text: its value
    ("snowflake", "SELECT external_user_id FROM users WHERE attributes:tier = 'gold'", ["u1"]),
    ("snowflake", "SELECT external_user_id FROM users WHERE 'gold' = attributes:tier", ["u1"]),
    (
        "snowflake",
        "SELECT external_user_id FROM users WHERE attributes:tier <> 'gold'",
        ["u2", "u5"],
    ),
    (
        "snowflake",
        "SELECT external_user_id FROM users WHERE attributes:tier IN ('gold', 'silver')",
        ["u1", "u2"],
    ),
    (
        "snowflake",
        "SELECT external_user_id FROM users WHERE attributes:tier LIKE 'gold%'",
        ["u1", "u5"],
    ),
    ("snowflake", "SELECT external_user_id FROM users WHERE attributes:tags[1] = 'b'", ["u1"]),
    (
        "snowflake",
        "SELECT external_user_id FROM users WHERE attributes:loyalty.level = 'x'",
        ["u1"],
    ),
    # ... with a number: compared as numbers (10 > 9, not '10' < '9')
    ("snowflake", "SELECT external_user_id FROM users WHERE attributes:n > 9", ["u2"]),
    (
        "snowflake",
        "SELECT external_user_id FROM users WHERE attributes:n >= 2.5",
        ["u1", "u2", "u5"],
    ),
    ("snowflake", "SELECT external_user_id FROM users WHERE attributes:n IN (1, 3)", ["u1", "u4"]),
    ("databricks", "SELECT external_user_id FROM users WHERE attributes:n > 9", ["u2"]),
    ("databricks", "SELECT external_user_id FROM users WHERE attributes:n = 3", ["u1"]),
    (
        "databricks",
        "SELECT external_user_id FROM users WHERE get_json_object(attributes, '$.n') > 9",
        ["u2"],
    ),
    (
        "databricks",
        "SELECT external_user_id FROM users WHERE get_json_object(attributes, '$.tier') = 'gold'",
        ["u1"],
    ),
    # bracket and GET access are the same paths
    (
        "snowflake",
        "SELECT external_user_id FROM users WHERE attributes['tier']::varchar = 'gold'",
        ["u1"],
    ),
    ("snowflake", "SELECT external_user_id FROM users WHERE attributes['tier'] = 'gold'", ["u1"]),
    (
        "snowflake",
        "SELECT external_user_id FROM users WHERE attributes['tags'][0]::string = 'b'",
        ["u5"],
    ),
    (
        "snowflake",
        "SELECT external_user_id FROM users WHERE attributes:loyalty['level']::string = 'x'",
        ["u1"],
    ),
    (
        "snowflake",
        "SELECT external_user_id FROM users WHERE attributes['loyalty']['level'] = 'x'",
        ["u1"],
    ),
    (
        "snowflake",
        "SELECT external_user_id FROM users WHERE GET(attributes, 'tier')::string = 'gold'",
        ["u1"],
    ),
    (
        "snowflake",
        "SELECT external_user_id FROM users WHERE ARRAY_SIZE(attributes['tags']) = 2",
        ["u1"],
    ),
    # a cast path is unchanged
    (
        "snowflake",
        "SELECT external_user_id FROM users WHERE attributes:tier::string = 'gold'",
        ["u1"],
    ),
]


@pytest.mark.parametrize(("dialect", "sql", "ids"), PATHS)
def test_semi_structured_paths_keep_their_values_on_duckdb(
    warehouse: duckdb.DuckDBPyConnection, dialect: str, sql: str, ids: list[str]
) -> None:
    assert sorted_ids(warehouse, _ids_sql(sql, dialect, "duckdb")) == ids


@pytest.mark.postgres
@pytest.mark.parametrize(("dialect", "sql", "ids"), PATHS)
def test_semi_structured_paths_keep_their_values_on_postgres(
    pg: psycopg.Connection[Any], dialect: str, sql: str, ids: list[str]
) -> None:
    assert sorted_ids(pg, _ids_sql(sql, dialect, "postgres")) == ids


@pytest.mark.parametrize(
    ("dialect", "sql", "target", "expected"),
    [
        (
            "snowflake",
            "SELECT external_user_id FROM users WHERE attributes:tier = 'gold'",
            "bigquery",
            "JSON_EXTRACT_SCALAR(attributes, '$.tier') = 'gold'",
        ),
        (
            "snowflake",
            "SELECT external_user_id FROM users WHERE attributes['tier']::string = 'gold'",
            "databricks",
            "CAST(attributes:tier AS STRING) = 'gold'",
        ),
        (
            "snowflake",
            "SELECT external_user_id FROM users WHERE attributes:n > 1",
            "postgres",
            "CAST(attributes ->> 'n' AS DOUBLE PRECISION) > 1",
        ),
        # a key that is not a plain name stays a subscript
        (
            "snowflake",
            "SELECT external_user_id FROM users WHERE attributes['a b']::string = 'x'",
            "duckdb",
            "attributes['a b']",
        ),
    ],
)
def test_semi_structured_paths_as_written(
    dialect: str, sql: str, target: str, expected: str
) -> None:
    assert expected in _ids_sql(sql, dialect, target)


def test_snowflake_sql_keeps_its_own_paths() -> None:
    """Nothing is rewritten for Snowflake itself."""
    sql = "SELECT external_user_id FROM users WHERE attributes['tier'] = 'gold'"
    assert "attributes['tier'] = 'gold'" in _ids_sql(sql, "snowflake", "snowflake")


def test_bracket_on_a_map_column_is_not_a_path() -> None:
    """Only a JSON/VARIANT/OBJECT column (or a path) is read as semi-structured data."""
    catalog = SqlCatalog(
        {
            "marketing": {
                **CATALOG["marketing"],
                "prefs": {"external_user_id": "VARCHAR", "m": "MAP"},
            }
        }
    )
    result = check_segment_sql(
        "SELECT external_user_id FROM prefs WHERE m['k'] = 'v'",
        dialect="snowflake",
        catalog=catalog,
        scope="marketing",
        target="duckdb",
    )
    assert result.valid, result.errors
    assert "m['k'] = 'v'" in str(result.sql)


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        (
            "snowflake",
            "SELECT external_user_id, f.value FROM users, TABLE(FLATTEN(attributes:tags)) f",
        ),
        (
            "snowflake",
            "SELECT external_user_id FROM users, TABLE(FLATTEN(input => attributes:tags)) f "
            "WHERE f.value::string = 'a'",
        ),
        (
            "snowflake",
            "SELECT u.external_user_id FROM users u, LATERAL FLATTEN(input => u.attributes:tags) f "
            "WHERE f.value::string = 'a'",
        ),
        (
            "databricks",
            "SELECT external_user_id FROM users "
            "WHERE array_contains(from_json(attributes:tags, 'array<string>'), 'a')",
        ),
    ],
)
@pytest.mark.parametrize("target", ["duckdb", "postgres", "bigquery", "databricks", "redshift"])
def test_flatten_and_from_json_schemas_are_refused_elsewhere(
    dialect: str, sql: str, target: str
) -> None:
    assert error_codes(sql, dialect, dialect) == []
    expected = [] if target == dialect else ["unsupported_in_dialect"]
    assert error_codes(sql, dialect, target) == expected


def test_refusals_name_the_construct() -> None:
    flatten = _check_sql(
        "SELECT external_user_id FROM users, TABLE(FLATTEN(attributes:tags)) f",
        "snowflake",
        "duckdb",
    )
    assert "FLATTEN" in flatten.errors[0].message
    assert flatten.errors[0].line == 1
    schema = _check_sql(
        "SELECT external_user_id FROM users WHERE from_json(attributes:tags, 'array<int>') IS NULL",
        "databricks",
        "duckdb",
    )
    assert "from_json" in schema.errors[0].message


def test_path_values_are_the_source_answers(warehouse: duckdb.DuckDBPyConnection) -> None:
    """The expected ids hold for the JSON values: DuckDB's own text extraction agrees."""
    warehouse.execute("SET schema = 'marketing'")
    assert sorted_ids(
        warehouse, "SELECT external_user_id FROM users WHERE attributes ->> '$.tier' = 'gold'"
    ) == ["u1"]
    assert sorted_ids(
        warehouse,
        "SELECT external_user_id FROM users WHERE CAST(attributes ->> '$.n' AS DOUBLE) > 9",
    ) == ["u2"]


@pytest.mark.parametrize(
    "sql",
    [
        # DuckDB's built-in view of the attached databases (names and file paths), read
        # without parentheses like a table: a system catalog, not a table of the source
        "SELECT external_user_id FROM users WHERE (SELECT count(*) FROM pragma_database_list) > 0",
        "SELECT database_name AS external_user_id FROM pragma_database_list",
        "SELECT external_user_id FROM users WHERE (SELECT count(*) FROM duckdb_tables) > 0",
    ],
)
def test_duckdb_builtin_views_are_out_of_scope(sql: str) -> None:
    assert error_codes(sql, "duckdb") == ["out_of_scope"]


def test_duckdb_builtin_view_is_a_view_there() -> None:
    """``pragma_database_list`` reads in DuckDB as a table (what made it an unknown table)."""
    con = duckdb.connect()
    assert con.execute("SELECT count(*) FROM pragma_database_list").fetchall()[0][0] >= 1


def test_a_source_table_named_like_a_builtin_view_is_read() -> None:
    catalog = SqlCatalog(
        {"marketing": {"pragma_users": {"external_user_id": "VARCHAR"}, **CATALOG["marketing"]}}
    )
    result = check_segment_sql(
        "SELECT external_user_id FROM pragma_users",
        dialect="duckdb",
        catalog=catalog,
        scope="marketing",
    )
    assert result.valid, result.errors


# Snowflake's SPLIT_PART part 0 is the first part; PostgreSQL refuses part 0
SPLIT_PARTS: list[tuple[str, list[str]]] = [
    ("SELECT external_user_id FROM users WHERE SPLIT_PART(email, '@', 0) = 'a'", ["u1"]),
    (
        "SELECT external_user_id FROM users "
        "WHERE SPLIT_PART(email, '@', LENGTH(external_user_id) - 2) = 'a'",
        ["u1"],
    ),
    ("SELECT external_user_id FROM users WHERE SPLIT_PART(email, '@', 2) = 'corp.io'", ["u2"]),
]
_EMAILS = [("u1", "a@gmail.com"), ("u2", "b@corp.io"), ("u3", None)]


@pytest.mark.postgres
@pytest.mark.parametrize(("sql", "ids"), SPLIT_PARTS)
def test_snowflake_split_part_zero_on_postgres(postgres_url: str, sql: str, ids: list[str]) -> None:
    seed = {"users": ("external_user_id, email", _EMAILS)}
    with postgres_marketing(postgres_url, seed) as con:
        assert sorted_ids(con, _ids_sql(sql, "snowflake", "postgres")) == ids


@pytest.mark.parametrize(("sql", "ids"), SPLIT_PARTS)
def test_snowflake_split_part_zero_on_duckdb(sql: str, ids: list[str]) -> None:
    con = duckdb_marketing({"users": ("external_user_id, email", _EMAILS)})
    assert sorted_ids(con, _ids_sql(sql, "snowflake", "duckdb")) == ids


@pytest.mark.parametrize("target", ["redshift", "databricks"])
def test_snowflake_split_part_zero_elsewhere(target: str) -> None:
    sql = "SELECT external_user_id FROM users WHERE SPLIT_PART(email, '@', 0) = 'a'"
    assert "SPLIT_PART(email, '@', 1)" in _ids_sql(sql, "snowflake", target)
    # another dialect's part 0 is not Snowflake's
    assert "SPLIT_PART(email, '@', 0)" in _ids_sql(
        sql.replace("0) = 'a'", "0) = 'a' OR TRUE"), "redshift", "redshift"
    )


# Databricks' `a div b` is the integral part of the quotient of any numbers (10.5 div 4 = 2)
DIVS: list[tuple[str, list[str]]] = [
    ("SELECT external_user_id FROM purchases WHERE price div 2 = 3", ["u2"]),
    ("SELECT external_user_id FROM purchases WHERE -price div 2 = -3", ["u2"]),
    ("SELECT external_user_id FROM purchases WHERE quantity div 2 = 1", ["u1"]),
]
_PURCHASES = {
    "purchases": (
        "purchase_id, external_user_id, price, quantity",
        [("p1", "u1", 10.0, 2), ("p2", "u2", 7.5, 1), ("p3", "u3", None, None)],
    )
}


@pytest.mark.parametrize(("sql", "ids"), DIVS)
def test_databricks_div_on_duckdb(sql: str, ids: list[str]) -> None:
    con = duckdb_marketing(_PURCHASES)
    assert sorted_ids(con, _ids_sql(sql, "databricks", "duckdb")) == ids


@pytest.mark.postgres
@pytest.mark.parametrize(("sql", "ids"), DIVS)
def test_databricks_div_on_postgres(postgres_url: str, sql: str, ids: list[str]) -> None:
    with postgres_marketing(postgres_url, _PURCHASES) as con:
        assert sorted_ids(con, _ids_sql(sql, "databricks", "postgres")) == ids


def test_databricks_div_of_integers_stays_an_integer_division() -> None:
    sql = "SELECT external_user_id FROM purchases WHERE quantity div 2 = 1"
    assert "quantity // 2" in _ids_sql(sql, "databricks", "duckdb")
    assert "DIV(quantity, 2)" in _ids_sql(sql, "databricks", "postgres")


@pytest.mark.parametrize("target", ["duckdb", "postgres", "bigquery", "databricks", "redshift"])
def test_snowflake_positional_columns_are_refused_elsewhere(target: str) -> None:
    """Snowflake's ``$1`` (the first column read) is a bind parameter everywhere else."""
    sql = (
        "SELECT external_user_id FROM users "
        "WHERE external_user_id IN (SELECT $1 FROM VALUES ('u1'), ('u2'))"
    )
    assert error_codes(sql, "snowflake", "snowflake") == []
    result = _check_sql(sql, "snowflake", target)
    assert [e.code for e in result.errors] == ["unsupported_in_dialect"]
    assert "$1" in result.errors[0].message


def test_snowflake_positional_column_failed_on_duckdb() -> None:
    """What the refusal prevents: the text as sqlglot wrote it does not run on DuckDB."""
    con = duckdb_marketing({})
    with pytest.raises(duckdb.Error):
        con.execute(
            "SELECT external_user_id FROM marketing.users "
            "WHERE external_user_id IN (SELECT $1 FROM (VALUES ('u1'), ('u2')))"
        ).fetchall()


def test_dollar_quoted_text_is_not_a_positional_column() -> None:
    sql = "SELECT external_user_id FROM users WHERE email = $$a@gmail.com$$"
    assert "email = 'a@gmail.com'" in _ids_sql(sql, "snowflake", "duckdb")
