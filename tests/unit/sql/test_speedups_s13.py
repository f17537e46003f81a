"""Session 13 speed-ups change no result.

* `qualification.fill_columns` computes sqlglot's ``Scope.columns`` without searching the
  ancestor of a qualified column (a qualifier alone keeps it): the same columns, in the same
  order, as the property computes, for every scope of every corpus query, before and after
  qualification, in every dialect.
"""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, TokenError
from sqlglot.optimizer.qualify_columns import qualify_columns
from sqlglot.optimizer.scope import Scope, traverse_scope

from tests.unit.sql.catalog import CATALOG, DIALECTS, SCOPE, corpus_cases
from zerocopy.sql import SqlCatalog, qualification
from zerocopy.sql.check import _dialect
from zerocopy.sql.rules import rules_for

# Unqualified columns under each ancestor the property classifies by (SELECT, ORDER BY of the
# query and of a window, DISTINCT ON, CLUSTER BY, HAVING, QUALIFY, a star's EXCEPT, a table
# function), correlated subqueries and LATERAL derived tables (external columns).
EXTRA = [
    "SELECT external_user_id AS id, country FROM users ORDER BY id, country, plan",
    "SELECT external_user_id, ROW_NUMBER() OVER (PARTITION BY country ORDER BY created_at) "
    "AS rn FROM users QUALIFY rn = 1 AND plan = 'pro'",
    "SELECT DISTINCT ON (country) country AS c, external_user_id FROM users ORDER BY c",
    "SELECT external_user_id, COUNT(*) AS n FROM events GROUP BY external_user_id "
    "HAVING n > 2 AND COUNT(name) > 1",
    "SELECT * EXCEPT (country) FROM users",
    "SELECT external_user_id FROM users CLUSTER BY country",
    "SELECT u.external_user_id FROM users u WHERE EXISTS (SELECT 1 FROM events e "
    "WHERE e.external_user_id = u.external_user_id AND name = country)",
    "SELECT u.external_user_id, (SELECT MAX(occurred_at) FROM events e "
    "WHERE e.external_user_id = u.external_user_id) AS last_seen FROM users u",
    "SELECT u.external_user_id, l.n FROM users u, LATERAL (SELECT COUNT(*) AS n FROM events e "
    "WHERE e.external_user_id = u.external_user_id) AS l",
    "SELECT external_user_id, value FROM users, UNNEST(SPLIT(plan, ',')) AS value",
    "SELECT x FROM TABLE(GENERATOR(ROWCOUNT => 10)) ORDER BY x",
    "SELECT external_user_id, LISTAGG(name, ',') WITHIN GROUP (ORDER BY name) AS names "
    "FROM events GROUP BY external_user_id",
]


def _queries() -> list[tuple[str, str]]:
    found = [(case["sql"], d) for _, case, d in corpus_cases() if d in DIALECTS]
    found.extend((sql, d) for sql in EXTRA for d in DIALECTS)
    return found


def _compare(scopes: list[Scope]) -> int:
    """Fill each scope's columns, compare with the property's; the number compared."""
    compared = 0
    for scope in scopes:
        scope.clear_column_cache()
        qualification.fill_columns(scope)
        ours = scope._columns
        assert ours is not None
        scope.clear_column_cache()
        theirs = scope.columns
        assert [id(c) for c in ours] == [id(c) for c in theirs], scope.expression.sql()
        compared += 1
    return compared


def test_fill_columns_is_the_scope_columns_property() -> None:
    assert qualification.MIRRORED, "the mirrored sqlglot release is installed"
    catalog = SqlCatalog(CATALOG)
    compared = 0
    for sql, name in _queries():
        dialect = _dialect(rules_for(name).sqlglot_dialect)  # type: ignore[union-attr]
        try:
            tree = dialect.parse(sql)[0]
        except (ParseError, TokenError, IndexError):
            continue
        if not isinstance(tree, exp.Query):
            continue
        try:
            scopes = traverse_scope(tree)
        except (OptimizeError, ValueError):
            continue  # a tree sqlglot cannot scope: the check refuses it another way
        compared += _compare(scopes)
        schema = catalog.view(dialect).scope_schema(SCOPE, annotate=False)
        try:
            scopes = traverse_scope(qualify_columns(tree, schema, dialect=dialect))
        except (OptimizeError, ValueError):
            continue
        compared += _compare(scopes)
    assert compared > 5_000


@pytest.mark.parametrize("sql", EXTRA)
def test_unqualified_columns_are_classified_as_sqlglot_does(sql: str) -> None:
    """The queries above have unqualified columns the property keeps and leaves out."""
    for name in ("snowflake", "databricks", "bigquery", "postgres"):
        try:
            tree = sqlglot.parse_one(sql, read=name)
        except ParseError:
            continue
        scopes = traverse_scope(tree)
        _compare(scopes)
