"""Session 10 speed-ups of the mirrored qualifier change no result.

* A SELECT without a star keeps its scope's collection through star "expansion" (sqlglot's
  ``_expand_stars`` sets the same projections again and drops the collection), and when no
  step of the qualification replaced a node anywhere, the check reuses the collections
  instead of walking every scope again (``current`` of `qualification.reusable_scopes`).
* ``_expand_alias_refs`` after qualification is skipped when every column of the scope is
  qualified (`qualification._alias_refs_moot`), BigQuery's shadow marking done the same way.

Each is compared with the slow path: sqlglot's own ``qualify_columns`` (tree, including args
such as BigQuery's ``shadow``, and errors) and a new traversal of the qualified tree (every
collected list, by node identity), over the SQL corpus in every dialect and queries that
exercise what the fast paths skip (stars, alias references, positional GROUP BY / ORDER BY,
pseudocolumns, recursive CTEs).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot
import sqlglot.optimizer.qualify_columns as qc
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, TokenError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import Scope, traverse_scope

from tests.unit.sql.catalog import CATALOG, DIALECTS, SCOPE, corpus_cases
from zerocopy.sql import SqlCatalog, qualification
from zerocopy.sql.check import _dialect

# What the fast paths skip, and what makes them fall back.
EXTRA = [
    # every column qualified: both fast paths
    "SELECT u.external_user_id, u.country FROM users AS u WHERE u.country = 'FR'",
    "WITH a AS (SELECT p.external_user_id, SUM(p.price) AS total FROM purchases AS p "
    "GROUP BY p.external_user_id) SELECT a.external_user_id FROM a WHERE a.total > 3",
    # unqualified columns, qualified by the qualifier
    "SELECT external_user_id, country FROM users WHERE country = 'FR' ORDER BY country",
    # alias references in WHERE, GROUP BY, HAVING, QUALIFY, projections, join conditions
    "SELECT external_user_id, country AS c FROM users WHERE c = 'FR'",
    "SELECT country AS c, COUNT(*) AS n FROM users GROUP BY c HAVING n > 1",
    "SELECT external_user_id, LOWER(country) AS c, c || 'x' AS d FROM users",
    "SELECT external_user_id, ROW_NUMBER() OVER (ORDER BY country) AS r FROM users QUALIFY r = 1",
    "SELECT u.external_user_id, u.country AS c FROM users AS u JOIN purchases AS p "
    "ON p.currency = c",
    "SELECT u.external_user_id AS external_user_id, SUM(p.price) AS s FROM users AS u "
    "JOIN purchases AS p ON p.external_user_id = u.external_user_id "
    "GROUP BY u.external_user_id HAVING s > 10",
    # BigQuery: a qualifier equal to a projection alias (marked as shadowed)
    "SELECT users.external_user_id AS users, COUNT(*) AS n FROM users "
    "GROUP BY users.external_user_id HAVING COUNT(*) > 1",
    # positional and alias references in GROUP BY / ORDER BY / DISTINCT ON
    "SELECT external_user_id, country FROM users GROUP BY 1, 2 ORDER BY 2",
    "SELECT u.external_user_id, u.country AS c FROM users AS u ORDER BY c",
    "SELECT DISTINCT ON (country) external_user_id, country FROM users ORDER BY country",
    # stars: expanded by sqlglot's own step
    "SELECT * FROM users",
    "SELECT u.* FROM users AS u",
    "SELECT t.* FROM (SELECT u.external_user_id, u.country FROM users AS u) AS t",
    "SELECT COUNT(*) AS n, u.external_user_id FROM users AS u GROUP BY u.external_user_id",
    # Snowflake pseudocolumn LEVEL, recursive CTEs
    "SELECT external_user_id, level FROM users",
    "SELECT u.external_user_id, level FROM users AS u START WITH u.country = 'FR' "
    "CONNECT BY PRIOR u.external_user_id = u.country",
    "WITH RECURSIVE r AS (SELECT u.external_user_id AS x FROM users AS u UNION ALL "
    "SELECT r.x AS x FROM r WHERE r.x IS NULL) SELECT r.x AS external_user_id FROM r",
    # unknown columns, derived tables, set operations, subqueries
    "SELECT u.nope FROM users AS u",
    "SELECT nope FROM users",
    "SELECT t.external_user_id FROM (SELECT external_user_id FROM users) AS t "
    "JOIN purchases AS p ON p.external_user_id = t.external_user_id",
    "SELECT u.external_user_id FROM users AS u UNION ALL SELECT p.external_user_id "
    "FROM purchases AS p ORDER BY 1",
    "SELECT u.external_user_id FROM users AS u WHERE u.country IN "
    "(SELECT p.currency FROM purchases AS p)",
]


def _queries() -> list[tuple[str, str]]:
    found = [(case["sql"], d) for _, case, d in corpus_cases() if d in DIALECTS]
    found.extend((sql, d) for sql in EXTRA for d in DIALECTS)
    return found


def _parse(sql: str, dialect: Any) -> exp.Expr | None:
    try:
        trees = sqlglot.parse(sql, dialect=dialect)
    except (ParseError, TokenError):
        return None
    if len(trees) != 1 or not isinstance(trees[0], exp.Query):
        return None
    return normalize_identifiers(trees[0], dialect=dialect)


def _qualified(tree: exp.Expr, dialect: Any, *, mirrored: bool) -> tuple[str, str | None]:
    """(repr of the qualified tree, error) with the mirrored or sqlglot's own qualifier."""
    schema = SqlCatalog(CATALOG).view(dialect).scope_schema(SCOPE)
    try:
        if mirrored:
            plain = qualification.plain_joins(list(tree.find_all(exp.Join)))
            out = qualification.qualify_columns(
                tree, schema, dialect=dialect, plain_joins=plain, scopes=[], current=set()
            )
        else:
            out = qc.qualify_columns(
                tree,
                schema,
                expand_alias_refs=True,
                expand_stars=True,
                allow_partial_qualification=True,
                dialect=dialect,
            )
    except (OptimizeError, ValueError) as exc:
        return repr(tree), f"{type(exc).__name__}: {exc}"
    return repr(out), None


def test_the_mirrored_qualifier_is_the_one_of_the_installed_sqlglot() -> None:
    assert qualification.MIRRORED


def test_mirrored_qualifier_gives_sqlglots_trees_over_the_corpus() -> None:
    compared = 0
    for sql, name in _queries():
        dialect = _dialect(name)
        first, second = _parse(sql, dialect), _parse(sql, dialect)
        if first is None or second is None:
            continue
        ours = _qualified(first, dialect, mirrored=True)
        theirs = _qualified(second, dialect, mirrored=False)
        assert ours == theirs, (name, sql)
        compared += 1
    assert compared > 1000


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("sql", EXTRA)
def test_mirrored_qualifier_gives_sqlglots_tree(sql: str, dialect: str) -> None:
    read = _dialect(dialect)
    first, second = _parse(sql, read), _parse(sql, read)
    if first is None or second is None:  # a dialect that cannot parse it: nothing to compare
        assert first is None and second is None
        return
    assert _qualified(first, read, mirrored=True) == _qualified(second, read, mirrored=False)


_COLLECTED = (
    "_raw_columns",
    "_table_columns",
    "_stars",
    "_derived_tables",
    "_udtfs",
    "_tables",
    "_ordered_sources",
    "_ctes",
    "_subqueries",
    "_join_hints",
    "_comprehensions",
)


def _collection(scope: Scope) -> tuple[Any, ...]:
    """Everything a walk of the scope collects, nodes as ids (the scope collects first)."""
    scope.tables  # noqa: B018  (collects when not collected)
    return (
        *([id(node) for node in getattr(scope, name)] for name in _COLLECTED),
        sorted(scope._semi_anti_join_tables),
        sorted(scope._column_index),
        scope._scans_all_subscope_columns,
        [id(c) for c in scope.columns],
        sorted(scope.selected_sources),
    )


def _reuse(sql: str, name: str) -> str | None:
    """What the check does with the scopes: ``kept`` when it reuses their collections (they
    must then equal a new traversal's), ``walked`` when it walks them again, None when the
    query is not qualified."""
    dialect = _dialect(name)
    tree = _parse(sql, dialect)
    if tree is None:
        return None
    schema = SqlCatalog(CATALOG).view(dialect).scope_schema(SCOPE)
    plain = qualification.plain_joins(list(tree.find_all(exp.Join)))
    walked: list[Scope] = []
    current: set[int] = set()
    try:
        tree = qualification.qualify_columns(
            tree, schema, dialect=dialect, plain_joins=plain, scopes=walked, current=current
        )
    except (OptimizeError, ValueError):
        return None
    reused = qualification.reusable_scopes(walked, current)
    if reused is None:
        return None
    fresh = traverse_scope(tree)
    assert [_collection(s) for s in reused] == [_collection(s) for s in fresh], (name, sql)
    return "kept" if current else "walked"


def test_kept_collections_are_those_of_a_new_traversal() -> None:
    seen = {"kept": 0, "walked": 0}
    for sql, name in _queries():
        outcome = _reuse(sql, name)
        if outcome:
            seen[outcome] += 1
    # the corpus exercises both: collections kept, and queries whose scopes are walked again
    assert seen["kept"] > 300
    assert seen["walked"] > 100


@pytest.mark.parametrize(
    ("sql", "outcome"),
    [
        (EXTRA[0], "kept"),
        (EXTRA[1], "kept"),
        ("SELECT * FROM users", "walked"),  # stars expanded
        ("SELECT external_user_id, country FROM users GROUP BY 1, 2", "walked"),  # positional
        ("SELECT external_user_id, country AS c FROM users WHERE c = 'FR'", "walked"),  # alias
    ],
)
def test_collections_are_kept_only_when_no_node_was_replaced(sql: str, outcome: str) -> None:
    assert _reuse(sql, "postgres") == outcome


def _select_scope(sql: str, name: str) -> tuple[Scope, Any]:
    """The outermost scope of ``sql`` qualified up to (not including) the alias expansion."""
    dialect = _dialect(name)
    tree = _parse(sql, dialect)
    assert tree is not None
    schema = SqlCatalog(CATALOG).view(dialect).scope_schema(SCOPE)
    scope = traverse_scope(tree)[-1]
    resolver = qc.Resolver(scope, schema)
    qc._qualify_columns(scope, resolver, allow_partial_qualification=True)
    scope.clear_column_cache()
    return scope, dialect


@pytest.mark.parametrize("dialect", DIALECTS)
def test_alias_expansion_is_skipped_only_when_every_column_is_qualified(dialect: str) -> None:
    scope, read = _select_scope("SELECT u.external_user_id FROM users AS u", dialect)
    assert qualification._alias_refs_moot(scope, read, pseudocolumns_made=False)
    assert not qualification._alias_refs_moot(scope, read, pseudocolumns_made=True)
    scope.clear_cache()  # a collection that may not describe the tree: not trusted
    assert not qualification._alias_refs_moot(scope, read, pseudocolumns_made=False)
    scope, read = _select_scope(
        "SELECT u.country AS c, u.external_user_id FROM users AS u WHERE c = 'FR'", dialect
    )
    assert not qualification._alias_refs_moot(scope, read, pseudocolumns_made=False)
