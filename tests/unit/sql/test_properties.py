"""Property tests: any input yields a structured result, never an exception (issue #4)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.sql.catalog import CATALOG, DIALECTS, SCOPE
from zerocopy.errors import (
    FORBIDDEN_FUNCTION,
    MISSING_ID_COLUMN,
    MULTIPLE_STATEMENTS,
    NOT_READ_ONLY,
    OUT_OF_SCOPE,
    PARSE_ERROR,
    UNKNOWN_COLUMN,
    UNKNOWN_DIALECT,
    UNKNOWN_TABLE,
    UNSUPPORTED_IN_DIALECT,
)
from zerocopy.sql import CODE_ORDER, SqlCatalog, check_segment_sql

CODES = {
    PARSE_ERROR,
    MULTIPLE_STATEMENTS,
    NOT_READ_ONLY,
    FORBIDDEN_FUNCTION,
    OUT_OF_SCOPE,
    UNKNOWN_TABLE,
    UNKNOWN_COLUMN,
    MISSING_ID_COLUMN,
    UNSUPPORTED_IN_DIALECT,
    UNKNOWN_DIALECT,
}
_CATALOG = SqlCatalog(CATALOG)

# SQL-ish fragments so generated inputs get past the tokenizer and reach the later stages.
FRAGMENTS = [
    "SELECT",
    "external_user_id",
    "FROM",
    "users",
    "u",
    "events",
    "e",
    "JOIN",
    "ON",
    "=",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "(",
    ")",
    ",",
    ";",
    "*",
    "'x'",
    "1",
    "NULL",
    "WITH",
    "AS",
    "UNION",
    "ALL",
    "GROUP",
    "BY",
    "ORDER",
    "LIMIT",
    "INSERT",
    "DELETE",
    "DROP",
    "TABLE",
    "--",
    "/*",
    "*/",
    "\n",
    "u.email",
    "marketing.",
    "information_schema.tables",
    "$$",
    "attributes:plan",
    "->>",
    "::text",
    "read_csv('x')",
    "pg_sleep(1)",
    "@stage",
    "`",
    '"',
    "QUALIFY",
    "OVER",
    "PARTITION",
    "INTO",
    "FOR UPDATE",
    "LATERAL",
    "UNNEST(",
]


def _assert_structured(result: Any) -> None:
    """The invariants every result keeps, whatever the input."""
    data = result.to_dict()
    assert set(data) == {"valid", "errors", "sql", "ids_sql", "tables", "dialect", "target"}
    assert data["valid"] is (not data["errors"])
    ranks = [CODE_ORDER.index(e["code"]) for e in data["errors"]]
    assert ranks == sorted(ranks)
    for error in data["errors"]:
        assert error["code"] in CODES
        assert isinstance(error["message"], str) and error["message"]
        for key in ("line", "column"):
            assert error[key] is None or (isinstance(error[key], int) and error[key] >= 1)
    if data["valid"]:
        assert isinstance(data["sql"], str) and isinstance(data["ids_sql"], str)
    else:
        assert data["sql"] is None and data["ids_sql"] is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=st.text(max_size=200), dialect=st.sampled_from(DIALECTS))
def test_any_text_gives_a_structured_result(sql: str, dialect: str) -> None:
    _assert_structured(check_segment_sql(sql, dialect=dialect, catalog=_CATALOG, scope=SCOPE))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(st.sampled_from(FRAGMENTS), max_size=30),
    dialect=st.sampled_from(DIALECTS),
    target=st.sampled_from(DIALECTS),
)
def test_sql_like_token_soup_gives_a_structured_result(
    parts: list[str], dialect: str, target: str
) -> None:
    sql = " ".join(parts)
    result = check_segment_sql(sql, dialect=dialect, catalog=_CATALOG, scope=SCOPE, target=target)
    _assert_structured(result)


@settings(max_examples=60, deadline=None)
@given(
    catalog=st.one_of(
        st.none(),
        st.dictionaries(st.text(max_size=5), st.one_of(st.none(), st.integers(), st.text())),
        st.dictionaries(
            st.text(max_size=5),
            st.dictionaries(st.text(max_size=5), st.dictionaries(st.text(max_size=5), st.text())),
        ),
    ),
    scope=st.one_of(st.none(), st.text(max_size=12), st.integers()),
    id_column=st.one_of(st.none(), st.text(max_size=10)),
    dialect=st.one_of(st.sampled_from([*DIALECTS, "fabric", "tsql"]), st.text(max_size=8)),
)
def test_odd_arguments_never_raise(catalog: Any, scope: Any, id_column: Any, dialect: Any) -> None:
    result = check_segment_sql(
        "SELECT external_user_id FROM users",
        dialect=dialect,
        catalog=catalog,
        scope=scope,
        id_column=id_column,
    )
    _assert_structured(result)


def test_deep_nesting_is_refused_not_raised() -> None:
    sql = "SELECT external_user_id FROM users WHERE " + "(" * 3000 + "1" + ")" * 3000
    result = check_segment_sql(sql, dialect="postgres", catalog=_CATALOG, scope=SCOPE)
    _assert_structured(result)
    assert [e.code for e in result.errors] == [PARSE_ERROR]
    assert "nests too deeply" in result.errors[0].message


def test_realistic_nesting_is_fine() -> None:
    sql = "SELECT external_user_id FROM users WHERE " + "(" * 100 + "1 = 1" + ")" * 100
    assert check_segment_sql(sql, dialect="postgres", catalog=_CATALOG, scope=SCOPE).valid


def test_oversized_sql_is_refused() -> None:
    sql = "SELECT external_user_id FROM users WHERE country IN (" + "'FR', " * 40_000 + "'DE')"
    result = check_segment_sql(sql, dialect="postgres", catalog=_CATALOG, scope=SCOPE)
    assert [e.code for e in result.errors] == [PARSE_ERROR]
    assert "limited" in result.errors[0].message


def test_non_string_sql_does_not_raise() -> None:
    result = check_segment_sql(None, dialect="postgres", catalog=_CATALOG, scope=SCOPE)  # type: ignore[arg-type]
    assert [e.code for e in result.errors] == [PARSE_ERROR]
