"""Session 12 speed-ups change no result.

* ``_alias_references`` takes the SELECTs and the columns of the query the check's copy walk
  already listed (`check._copy_tree`) instead of walking the tree once more: nothing between
  the copy and the rewrites before emitting adds or removes a SELECT or a column of the
  tree as written, so the lists are those a walk would find, in the same order.
* ``restore_quantified_all`` looks for ALL/SOME/ROW as words of their own with a regular
  expression over the text instead of listing every token's text: a function name is a token
  written as is, with no letter, digit or underscore right after it and no letter or
  underscore right before it.

Each test compares with the slow path (the walk, the token texts) on queries that have the
construct and queries that almost have it.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot
import sqlglot.errors
from sqlglot import exp

from tests.unit.sql.catalog import CATALOG, SCOPE
from zerocopy.sql import SqlCatalog, check_segment_sql, hardening
from zerocopy.sql.check import _copy_tree, _dialect, _tokenize
from zerocopy.sql.rules import rules_for

_CATALOG = SqlCatalog(CATALOG)

QUERIES = [
    # aliases read in WHERE, a later item, HAVING
    "SELECT external_user_id, price * quantity AS total, total + 1 AS more FROM purchases "
    "WHERE total > 10",
    "SELECT external_user_id, COUNT(*) AS n FROM events GROUP BY external_user_id HAVING n > 2",
    # nested SELECTs: CTEs, derived tables, scalar subqueries, IN subqueries, set operations
    "WITH a AS (SELECT external_user_id, country AS c FROM users WHERE c = 'FR') "
    "SELECT external_user_id FROM a WHERE external_user_id IN "
    "(SELECT external_user_id FROM events WHERE name = 'login')",
    "SELECT u.external_user_id, (SELECT MAX(e.occurred_at) FROM events e "
    "WHERE e.external_user_id = u.external_user_id) AS last_seen FROM users u",
    "SELECT external_user_id FROM (SELECT external_user_id, plan AS p FROM users) AS t "
    "WHERE p = 'pro' UNION SELECT external_user_id FROM subscriptions",
    "SELECT external_user_id FROM users UNION ALL SELECT external_user_id FROM events "
    "EXCEPT SELECT external_user_id FROM subscriptions",
    # stars, qualified and bare columns of the same names as aliases
    "SELECT *, country AS plan FROM users WHERE plan = 'pro'",
    "SELECT u.external_user_id, u.plan AS country FROM users u WHERE country = 'FR'",
    # the rewrites right after parsing: quantified ALL/SOME, row constructors
    "SELECT external_user_id FROM users WHERE country <> ALL (ARRAY['FR', 'DE'])",
    "SELECT external_user_id FROM users WHERE ROW(country, plan) = ROW('FR', 'pro')",
    # GROUP BY ALL, ORDER BY an alias, window functions
    "SELECT external_user_id, COUNT(*) AS n FROM events GROUP BY ALL ORDER BY n DESC",
    "SELECT external_user_id, ROW_NUMBER() OVER (PARTITION BY country ORDER BY created_at) "
    "AS rn FROM users QUALIFY rn = 1",
]

PAIRS = [
    ("snowflake", "postgres"),
    ("postgres", "postgres"),
    ("duckdb", "bigquery"),
    ("bigquery", "bigquery"),
    ("databricks", "fabric"),
    ("redshift", "snowflake"),
]


def _walked(root: exp.Expr) -> tuple[list[exp.Expr], list[exp.Expr]]:
    """The SELECTs and the columns of ``root`` as ``Expr.walk()`` finds them."""
    selects = [node for node in root.walk() if isinstance(node, exp.Select)]
    columns = [node for node in root.walk() if isinstance(node, exp.Column)]
    return selects, columns


@pytest.mark.parametrize("dialect", ["snowflake", "postgres", "duckdb", "bigquery"])
@pytest.mark.parametrize("sql", QUERIES)
def test_copy_walk_lists_selects_and_columns_in_walk_order(dialect: str, sql: str) -> None:
    try:
        root = sqlglot.parse_one(sql, read=rules_for(dialect).sqlglot_dialect)  # type: ignore[union-attr]
    except sqlglot.errors.ParseError:
        return  # a construct of another dialect (QUALIFY, ARRAY[…]): never copied there
    copied = _copy_tree(root)
    selects, columns = _walked(root)
    assert selects, "every test query has a SELECT"
    assert [id(n) for n in copied.selects] == [id(n) for n in selects]
    assert [id(n) for n in copied.columns] == [id(n) for n in columns]


@pytest.mark.parametrize(("dialect", "target"), PAIRS)
@pytest.mark.parametrize("sql", QUERIES)
def test_copy_walk_lists_hold_at_emit_time(
    monkeypatch: pytest.MonkeyPatch, dialect: str, target: str, sql: str
) -> None:
    """When the rewrites before emitting start, the tree as written still has exactly the
    SELECTs and columns the copy walk listed, and the alias reads found from those lists are
    the ones a walk of the tree finds."""
    real = hardening.before_emit
    seen: list[bool] = []

    def spy(check: Any, root: exp.Expr) -> bool:
        selects, columns = _walked(root)
        assert [id(n) for n in check.first_selects] == [id(n) for n in selects]
        assert {id(n) for n in columns} <= {id(n) for n in check.first_columns}
        fast = hardening._alias_references(check, root)
        slow = _walk_alias_references(check, root)
        assert fast == slow
        seen.append(True)
        return real(check, root)

    monkeypatch.setattr(hardening, "before_emit", spy)
    check_segment_sql(sql, dialect=dialect, catalog=_CATALOG, scope=SCOPE, target=target)
    monkeypatch.undo()
    again = check_segment_sql(sql, dialect=dialect, catalog=_CATALOG, scope=SCOPE, target=target)
    assert seen or not again.valid


def _walk_alias_references(check: Any, root: exp.Expr) -> list[Any]:
    """`hardening._alias_references` with no lists from the copy walk (it walks the tree)."""

    class Bare:
        def __getattr__(self, name: str) -> Any:
            if name in ("first_selects", "first_columns", "root"):
                return None
            return getattr(check, name)

    return hardening._alias_references(Bare(), root)


def test_alias_read_in_where_is_still_expanded_for_postgres() -> None:
    result = check_segment_sql(
        "SELECT external_user_id, price * quantity AS total FROM purchases WHERE total > 10",
        dialect="snowflake",
        catalog=_CATALOG,
        scope=SCOPE,
        target="postgres",
    )
    assert result.valid, result.to_dict()
    assert result.sql is not None
    where = result.sql.split("WHERE", 1)[1]
    assert "price" in where and "total" not in where


def test_alias_read_in_where_is_still_refused_in_postgres() -> None:
    result = check_segment_sql(
        "SELECT external_user_id, price * quantity AS total FROM purchases WHERE total > 10",
        dialect="postgres",
        catalog=_CATALOG,
        scope=SCOPE,
    )
    assert [e.code for e in result.errors] == ["unknown_column"]


# --- ALL / SOME / ROW as words of their own ----------------------------------------------------

TEXTS = [
    "SELECT external_user_id FROM users WHERE country <> ALL (ARRAY['FR'])",
    "SELECT external_user_id FROM users WHERE country = some(ARRAY['FR'])",
    "SELECT external_user_id FROM users WHERE ROW(country, plan) = ROW('FR', 'pro')",
    "SELECT ROW_NUMBER() OVER () AS rn, external_user_id FROM users",
    "SELECT external_user_id, 1row, x#ROW, $row FROM users",
    "SELECT small, total, rowx, allx, _all, all_, some1 FROM users",
    "SELECT 'all', \"row\", `some` FROM users -- all rows\n",
    "SELECT a FROM t WHERE x = ALL(SELECT y FROM u) UNION ALL SELECT b FROM v",
    "SELECT a FROM t WHERE x=ALL(y)AND y=SOME(z)OR ROW(a,b)=ROW(c,d)",
]


@pytest.mark.parametrize(
    "dialect", ["snowflake", "bigquery", "redshift", "databricks", "duckdb", "postgres", "tsql"]
)
@pytest.mark.parametrize("text", TEXTS)
def test_word_search_finds_every_word_token(dialect: str, text: str) -> None:
    """Wherever a token's text is ALL, SOME or ROW, the regular expressions find the word."""
    try:
        tokens = _tokenize(_dialect(rules_for(dialect).sqlglot_dialect), text)  # type: ignore[union-attr]
    except Exception:
        return  # a text this dialect cannot tokenize is never checked further
    words = {token.text.upper() for token in tokens}
    if not words.isdisjoint(("ALL", "SOME")):
        assert hardening._QUANTIFIER_WORDS.search(text) is not None
    if "ROW" in words:
        assert hardening._ROW_WORD.search(text) is not None


def test_words_inside_names_are_not_found() -> None:
    text = "SELECT ROW_NUMBER() OVER () AS rn, small, total, rowx, allx, _all, all_ FROM users"
    assert hardening._QUANTIFIER_WORDS.search(text) is None
    assert hardening._ROW_WORD.search(text) is None


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT external_user_id FROM users WHERE country <> ALL (ARRAY['FR', 'DE'])",
        "SELECT external_user_id FROM users WHERE country = SOME (ARRAY['FR', 'DE'])",
        "SELECT external_user_id FROM users WHERE ROW(country, plan) = ROW('FR', 'pro')",
        "SELECT external_user_id FROM users WHERE country<>all(ARRAY['FR'])AND plan='pro'",
    ],
)
def test_quantifiers_and_rows_are_still_restored_in_postgres(sql: str) -> None:
    result = check_segment_sql(sql, dialect="postgres", catalog=_CATALOG, scope=SCOPE)
    assert result.valid, result.to_dict()


# --- the lower-cased text, once per check -------------------------------------------------------
# Rewrites that only apply when a keyword is in the text test `check.text_lower` (the text
# lower-cased once per check) instead of lower-casing the text each time: a keyword written
# in upper or mixed case still turns the rewrite on.


def test_text_lower_is_the_lower_cased_text_memoized() -> None:
    from zerocopy.sql.check import CheckResult, _Check

    sql = "SELECT External_User_Id FROM Users ORDER BY ALL"
    run = _Check(
        sql,
        "duckdb",
        "postgres",
        _CATALOG,
        SCOPE,
        "external_user_id",
        CheckResult(dialect="duckdb", target="postgres"),
    )
    assert run.text_lower == sql.lower()
    assert run.text_lower is run.text_lower


KEYWORD_REWRITES = [
    (
        "SELECT external_user_id, country FROM users ORDER BY ALL",
        "duckdb",
        "postgres",
        "SELECT external_user_id, country FROM marketing.users ORDER BY 1, 2",
    ),
    (
        "SELECT external_user_id FROM users WHERE DATE_TRUNC('WEEK', created_at) > '2024-01-01'",
        "snowflake",
        "bigquery",
        "SELECT external_user_id FROM marketing.users WHERE "
        "TIMESTAMP_TRUNC(created_at, WEEK(MONDAY)) > '2024-01-01'",
    ),
    (
        "SELECT external_user_id FROM users WHERE SPLIT_PART(country, '-', 0) = 'FR'",
        "snowflake",
        "postgres",
        "SELECT external_user_id FROM marketing.users WHERE SPLIT_PART(country, '-', 1) = 'FR'",
    ),
    (
        "SELECT external_user_id FROM users TABLESAMPLE (10)",
        "snowflake",
        "postgres",
        "SELECT external_user_id FROM marketing.users TABLESAMPLE BERNOULLI (10)",
    ),
]


@pytest.mark.parametrize("case", ["upper", "mixed"])
@pytest.mark.parametrize(("sql", "dialect", "target", "expected"), KEYWORD_REWRITES)
def test_keyword_gated_rewrites_apply_whatever_the_case(
    sql: str, dialect: str, target: str, expected: str, case: str
) -> None:
    if case == "mixed":
        for word in ("ALL", "WEEK", "SPLIT_PART", "TABLESAMPLE"):
            sql = sql.replace(word, word[0] + word[1:].lower())
    result = check_segment_sql(sql, dialect=dialect, target=target, catalog=_CATALOG, scope=SCOPE)
    assert result.valid, result.to_dict()
    assert result.to_dict()["sql"] == expected


def test_snowflake_flatten_in_any_case_is_still_refused_for_duckdb() -> None:
    for word in ("FLATTEN", "Flatten", "flatten"):
        sql = f"SELECT u.external_user_id FROM users u, LATERAL {word}(input => u.attributes) f"
        result = check_segment_sql(
            sql, dialect="snowflake", target="duckdb", catalog=_CATALOG, scope=SCOPE
        )
        assert [e.code for e in result.errors] == ["unsupported_in_dialect"]


# --- HAVING aliases: no walk when every column is qualified ------------------------------------
# `having_aliases` (HAVING n > 2 with n an aggregate's alias, emitted for PostgreSQL) skips its
# walk for HAVINGs when every column of the query as written is qualified: the alias it
# replaces is a bare column. A query with a bare alias read still has it replaced.

HAVING_CASES = [
    (
        "SELECT external_user_id, country, COUNT(*) AS n FROM users "
        "GROUP BY external_user_id, country HAVING n > 2",
        "SELECT external_user_id, country, COUNT(*) AS n FROM marketing.users "
        "GROUP BY external_user_id, country HAVING COUNT(*) > 2",
    ),
    (
        "SELECT u.external_user_id, u.country, COUNT(*) AS n FROM users u "
        "GROUP BY u.external_user_id, u.country HAVING n > 2",
        "SELECT u.external_user_id, u.country, COUNT(*) AS n FROM marketing.users AS u "
        "GROUP BY u.external_user_id, u.country HAVING COUNT(*) > 2",
    ),
    (
        "SELECT u.external_user_id, u.country, COUNT(*) AS n FROM users u "
        "GROUP BY u.external_user_id, u.country HAVING COUNT(*) > 2",
        "SELECT u.external_user_id, u.country, COUNT(*) AS n FROM marketing.users AS u "
        "GROUP BY u.external_user_id, u.country HAVING COUNT(*) > 2",
    ),
]


@pytest.mark.parametrize(("sql", "expected"), HAVING_CASES)
def test_having_aliases_for_postgres(sql: str, expected: str) -> None:
    result = check_segment_sql(
        sql, dialect="snowflake", target="postgres", catalog=_CATALOG, scope=SCOPE
    )
    assert result.valid, result.to_dict()
    assert result.to_dict()["sql"] == expected
