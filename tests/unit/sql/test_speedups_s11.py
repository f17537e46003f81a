"""Session 11 speed-ups of the rewrites before emitting change no result.

* ``set_operations_by_name`` walks the tree for set operations only when the text has a
  UNION/EXCEPT/INTERSECT token (`targets.has_token_of`, the check's token types listed once):
  the parser builds a set operation nowhere else.
* ``_alias_references`` lists the SELECTs and the bare columns' names in one walk, and
  searches a SELECT's clauses only when one of its aliases is such a name.
* ``having_aliases`` looks for the select items' aggregates only when the HAVING has a bare
  column.

Each test shows the rewrite still acts when its construct is there, and the results equal
those of the slow path (the skipped walk forced) on queries with and without it.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlglot import TokenType, exp

from tests.unit.sql.catalog import CATALOG, SCOPE
from zerocopy.sql import SqlCatalog, check_segment_sql, hardening, targets
from zerocopy.sql.check import _Check
from zerocopy.sql.result import CheckResult

_CATALOG = SqlCatalog(CATALOG)


def check(sql: str, dialect: str, target: str) -> dict[str, Any]:
    return check_segment_sql(
        sql, dialect=dialect, catalog=_CATALOG, scope=SCOPE, target=target
    ).to_dict()


def codes(result: dict[str, Any]) -> list[str]:
    return [error["code"] for error in result["errors"]]


# --- set operations BY NAME: the token prefilter ----------------------------------------------

SET_OPERATIONS = [
    # BY NAME, reordered for positional targets
    (
        "duckdb",
        "SELECT external_user_id, first_name FROM users UNION BY NAME "
        "SELECT first_name, external_user_id FROM users",
    ),
    (
        "duckdb",
        "SELECT external_user_id, first_name FROM users UNION ALL BY NAME "
        "SELECT first_name AS first_name, external_user_id FROM users",
    ),
    # BY NAME over stars: refused for positional targets
    ("duckdb", "SELECT * FROM users UNION BY NAME SELECT * FROM users"),
    (
        "snowflake",
        "SELECT external_user_id, country FROM users UNION ALL BY NAME "
        "SELECT country, external_user_id FROM users",
    ),
    # Snowflake MINUS is an EXCEPT token; a set operation in a subquery and a CTE
    ("snowflake", "SELECT external_user_id FROM users MINUS SELECT external_user_id FROM events"),
    (
        "postgres",
        "SELECT u.external_user_id FROM users AS u WHERE u.external_user_id IN "
        "(SELECT e.external_user_id FROM events AS e WHERE e.name = 'x' "
        "INTERSECT SELECT p.external_user_id FROM purchases AS p)",
    ),
    (
        "bigquery",
        "WITH a AS (SELECT external_user_id, name FROM events UNION DISTINCT "
        "SELECT external_user_id, name FROM events) SELECT external_user_id FROM a",
    ),
    # no set operation, the word NAME present (a column): no walk
    ("duckdb", "SELECT e.external_user_id, e.name FROM events AS e WHERE e.name = 'login'"),
    ("snowflake", "SELECT external_user_id FROM events WHERE name = 'union'"),
]
TARGETS = ("postgres", "redshift", "fabric", "duckdb", "snowflake")


@pytest.mark.parametrize(("dialect", "sql"), SET_OPERATIONS)
def test_set_operation_prefilter_changes_no_result(
    monkeypatch: pytest.MonkeyPatch, dialect: str, sql: str
) -> None:
    fast = {target: check(sql, dialect, target) for target in TARGETS}
    monkeypatch.setattr(targets, "has_token_of", lambda check, types: True)
    slow = {target: check(sql, dialect, target) for target in TARGETS}
    assert fast == slow


def test_union_by_name_is_still_rewritten_for_postgres() -> None:
    sql = (
        "SELECT external_user_id, first_name FROM users UNION BY NAME "
        "SELECT first_name, external_user_id FROM users"
    )
    result = check(sql, "duckdb", "postgres")
    assert result["valid"], result
    assert "BY NAME" not in result["sql"]
    second = result["sql"].split("UNION")[1]
    assert second.index("external_user_id") < second.index("first_name")


def test_union_by_name_over_stars_is_still_refused() -> None:
    sql = "SELECT * FROM users UNION BY NAME SELECT * FROM users"
    assert codes(check(sql, "duckdb", "postgres")) == ["unsupported_in_dialect"]
    assert codes(check(sql, "duckdb", "duckdb")) == []


def test_token_types_lists_the_texts_tokens() -> None:
    run = _Check(
        "SELECT external_user_id FROM users UNION SELECT external_user_id FROM events",
        "duckdb",
        "postgres",
        _CATALOG,
        SCOPE,
        "external_user_id",
        CheckResult(dialect="duckdb", target="postgres"),
    )
    run.run()
    assert TokenType.UNION in run.token_types()
    assert run.token_types() is run.token_types()  # memoized
    assert targets.has_token_of(run, {TokenType.UNION})
    assert not targets.has_token_of(run, {TokenType.INTERSECT, TokenType.EXCEPT})
    assert targets.has_token_of(object(), {TokenType.UNION})  # no token list: walk


# --- select aliases read in the same SELECT ---------------------------------------------------

ALIAS_READS = [
    # an alias read in WHERE, a later item, HAVING
    ("snowflake", "SELECT external_user_id, country AS c FROM users WHERE c = 'FR'"),
    ("snowflake", "SELECT external_user_id, LOWER(country) AS c, c || 'x' AS d FROM users"),
    (
        "snowflake",
        "SELECT external_user_id, COUNT(*) AS n FROM events GROUP BY external_user_id HAVING n > 1",
    ),
    (
        "duckdb",
        "SELECT external_user_id, price * quantity AS total FROM purchases WHERE total > 10",
    ),
    # the read in a nested SELECT only; an outer SELECT with aliases nobody reads
    (
        "snowflake",
        "SELECT s.external_user_id, s.total AS t FROM (SELECT "
        "external_user_id, price * 2 AS total, total + 1 AS more FROM purchases) AS s",
    ),
    # PostgreSQL/BigQuery input: refused
    ("postgres", "SELECT external_user_id, country AS c FROM users WHERE c = 'FR'"),
    ("bigquery", "SELECT external_user_id, country AS c FROM users WHERE c = 'FR'"),
    # a bare column with an alias's name that is a source column: stays
    (
        "snowflake",
        "SELECT external_user_id, LOWER(country) AS country FROM users WHERE country = 'FR'",
    ),
    # every column qualified: nothing read
    (
        "postgres",
        "SELECT u.external_user_id, u.country AS c FROM users AS u WHERE u.country = 'FR'",
    ),
]


@pytest.mark.parametrize(("dialect", "sql"), ALIAS_READS)
def test_alias_reads_are_found_as_before(
    monkeypatch: pytest.MonkeyPatch, dialect: str, sql: str
) -> None:
    compared: list[str] = []
    original = hardening.before_emit

    def spy(checking: Any, root: exp.Expr) -> bool:
        assert hardening._alias_references(checking, root) == _old_alias_references(checking, root)
        compared.append(checking.target_name)
        return original(checking, root)

    monkeypatch.setattr(hardening, "before_emit", spy)
    for target in TARGETS:
        check(sql, dialect, target)
    assert compared  # every query above reaches the emission for some target


def _old_alias_references(check: Any, root: exp.Expr) -> list[Any]:
    """`hardening._alias_references` before session 11: every SELECT with aliases has its
    clauses searched for bare columns."""
    work = getattr(check, "work", None)
    if work is None:
        return []
    found: list[Any] = []
    for select in root.find_all(exp.Select):
        aliases = {i.alias.lower() for i in select.expressions if isinstance(i, exp.Alias)}
        if not aliases:
            continue
        clauses: list[tuple[str, Any]] = []
        if not any(item.is_star for item in select.expressions):
            clauses.extend(("expressions", item) for item in select.expressions[1:])
        clauses.extend((k, select.args[k]) for k in ("where", "having") if select.args.get(k))
        candidates = [
            (key, clause, column)
            for key, clause in clauses
            for column in clause.find_all(exp.Column)
            if not column.table
            and column.name.lower() in aliases
            and column.find_ancestor(exp.Select) is select
        ]
        if not candidates:
            continue
        twin_select = targets._twin(select, root, work)
        if not isinstance(twin_select, exp.Select):
            continue
        for key, clause, column in candidates:
            if key == "expressions":
                index = select.expressions.index(clause)
                twin_clause: Any = twin_select.expressions[index]
                if isinstance(twin_clause, exp.Alias) and not isinstance(clause, exp.Alias):
                    twin_clause = twin_clause.this
            else:
                twin_clause = twin_select.args.get(key)
            if not isinstance(twin_clause, exp.Expr) or type(twin_clause) is not type(clause):
                continue
            twin = targets.same_place(column, clause, twin_clause)
            if twin is not None and (
                not isinstance(twin, exp.Column) or twin.name.lower() != column.name.lower()
            ):
                found.append((column, key, select))
    return found


def test_alias_read_is_still_expanded_for_postgres() -> None:
    sql = "SELECT external_user_id, country AS c FROM users WHERE c = 'FR'"
    result = check(sql, "snowflake", "postgres")
    assert result["valid"], result
    assert "WHERE country = 'FR'" in result["sql"]
    refused = check(sql, "postgres", "postgres")
    assert codes(refused) == ["unknown_column"]


# --- HAVING reading an aggregate's alias ------------------------------------------------------

HAVING = [
    (
        "snowflake",
        "SELECT external_user_id, COUNT(*) AS n FROM events GROUP BY external_user_id HAVING n > 1",
    ),
    (
        "duckdb",
        "SELECT p.external_user_id, SUM(p.price) AS s FROM purchases AS p "
        "GROUP BY p.external_user_id HAVING s > 10 AND COUNT(*) > 1",
    ),
    # qualified HAVING columns only: no aggregate lookup
    (
        "snowflake",
        "SELECT p.external_user_id, SUM(p.price) AS s FROM purchases AS p "
        "GROUP BY p.external_user_id HAVING COUNT(DISTINCT p.purchase_id) >= 2",
    ),
    # a bare HAVING column that is no alias
    (
        "duckdb",
        "SELECT external_user_id, SUM(price) AS s FROM purchases "
        "GROUP BY external_user_id HAVING MAX(price) > 1",
    ),
]


@pytest.mark.parametrize(("dialect", "sql"), HAVING)
def test_having_aliases_as_before(dialect: str, sql: str) -> None:
    for target in ("postgres", "fabric", dialect):
        result = check(sql, dialect, target)
        assert result["valid"] or target == "fabric", (target, result)


def test_having_alias_is_still_replaced_for_postgres() -> None:
    sql = (
        "SELECT external_user_id, COUNT(*) AS n FROM events GROUP BY external_user_id HAVING n > 1"
    )
    result = check(sql, "snowflake", "postgres")
    assert result["valid"], result
    assert "HAVING COUNT(*) > 1" in result["sql"]
    mixed = (
        "SELECT p.external_user_id, SUM(p.price) AS s FROM purchases AS p "
        "GROUP BY p.external_user_id HAVING s > 10 AND COUNT(p.purchase_id) > 1"
    )
    result = check(mixed, "duckdb", "postgres")
    assert result["valid"], result
    assert "HAVING SUM(p.price) > 10 AND COUNT(p.purchase_id) > 1" in result["sql"]
