"""The qualification's scopes, reused by the check (`qualification.reusable_scopes`), are the
scopes a new ``traverse_scope`` of the qualified tree builds: same expressions, types,
sources, links and (recomputed) columns, for every query of the SQL corpus in every dialect."""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, TokenError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import Scope, traverse_scope

from tests.unit.sql.catalog import CATALOG, DIALECTS, SCOPE, corpus_cases
from zerocopy.sql import SqlCatalog, qualification
from zerocopy.sql.check import _dialect

EXTRA = [
    # CTE column aliases and expression subqueries: a new traversal differs, nothing reused
    "WITH s (id) AS (SELECT external_user_id FROM users) SELECT id AS external_user_id FROM s",
    "SELECT (SELECT MAX(price) FROM purchases) AS m, external_user_id FROM users GROUP BY 1",
    "SELECT external_user_id FROM users WHERE country IN (SELECT currency FROM purchases)",
    # stars, alias references, positional GROUP BY / ORDER BY, derived tables, set operations
    "SELECT * FROM (SELECT external_user_id, country AS c FROM users) AS t WHERE c = 'FR'",
    "SELECT external_user_id, country AS c FROM users GROUP BY 1, 2 HAVING c <> 'x' ORDER BY 2",
    "SELECT external_user_id FROM users UNION ALL SELECT external_user_id FROM purchases",
    "WITH a AS (SELECT * FROM users), b AS (SELECT a.* FROM a JOIN purchases p "
    "ON p.external_user_id = a.external_user_id) SELECT b.external_user_id FROM b",
]


def _queries() -> list[tuple[str, str]]:
    found = [(case["sql"], d) for _, case, d in corpus_cases() if d in DIALECTS]
    found.extend((sql, d) for sql in EXTRA for d in DIALECTS)
    return found


def _index(scopes: list[Scope], value: Any) -> Any:
    if isinstance(value, Scope):
        found = [i for i, s in enumerate(scopes) if s is value]
        if found:
            return ("scope", found[0])
        # a scope the traversal does not list (a recursive CTE's anchor): by what it covers
        return ("unlisted", id(value.expression), value.scope_type)
    return ("node", id(value))


def _shape(scopes: list[Scope]) -> list[Any]:
    """Everything the check reads from a scope, with scopes as positions and nodes as ids."""

    def sources(mapping: dict[str, Any]) -> list[Any]:
        return [(name, _index(scopes, value)) for name, value in mapping.items()]

    def nodes(items: Any) -> list[int]:
        return [id(item) for item in items]

    shape = []
    for scope in scopes:
        shape.append(
            (
                id(scope.expression),
                scope.scope_type,
                sources(scope.sources),
                sources(scope.lateral_sources),
                sources(scope.cte_sources),
                scope.outer_columns,
                _index(scopes, scope.parent) if scope.parent else None,
                [
                    [_index(scopes, s) for s in children]
                    for children in (
                        scope.subquery_scopes,
                        scope.derived_table_scopes,
                        scope.table_scopes,
                        scope.cte_scopes,
                        scope.set_operation_scopes,
                        scope.udtf_scopes,
                    )
                ],
                scope.can_be_correlated,
                nodes(scope.columns),
                nodes(scope.external_columns),
                nodes(scope.local_columns),
                nodes(scope.stars),
                nodes(scope.tables),
                nodes(scope.derived_tables),
                nodes(scope.ctes),
                nodes(scope.subqueries),
                nodes(scope.udtfs),
                nodes(scope.join_hints),
                nodes(scope.pivots),
                sources({k: v[1] for k, v in scope.selected_sources.items()}),
                [(name, _index(scopes, value)) for name, value in scope.references],
            )
        )
    return shape


def test_reused_scopes_are_the_scopes_of_a_new_traversal() -> None:
    catalog = SqlCatalog(CATALOG)
    compared = refused = 0
    for sql, dialect_name in _queries():
        dialect = _dialect(dialect_name)
        try:
            trees = sqlglot.parse(sql, dialect=dialect)
        except (ParseError, TokenError):
            continue
        if len(trees) != 1 or not isinstance(trees[0], exp.Query):
            continue
        tree = normalize_identifiers(trees[0], dialect=dialect)
        schema = catalog.view(dialect).scope_schema(SCOPE)
        plain = qualification.plain_joins(list(tree.find_all(exp.Join)))
        walked: list[Scope] = []
        try:
            tree = qualification.qualify_columns(
                tree, schema, dialect=dialect, plain_joins=plain, scopes=walked
            )
        except (OptimizeError, ValueError):
            continue  # refused by sqlglot (the check reports these otherwise)
        reused = qualification.reusable_scopes(walked)
        if reused is None:
            refused += 1
            continue
        fresh = traverse_scope(tree)
        assert _shape(reused) == _shape(fresh), (dialect_name, sql)
        compared += 1
    # the corpus exercises both: reused scopes, and queries where a new traversal is needed
    assert compared > 300
    assert refused > 20
