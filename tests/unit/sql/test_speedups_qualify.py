"""The qualification speed-ups change no result: the mirrored qualifier without USING
expansion, the one-level schema lookup and the already-folded identifier short cut."""

from __future__ import annotations

import pytest
import sqlglot
import sqlglot.optimizer.qualify_columns as qc
from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.schema import MappingSchema

from zerocopy.sql import SqlCatalog, qualification
from zerocopy.sql.check import _dialect

DIALECTS = ["snowflake", "bigquery", "redshift", "databricks", "duckdb", "postgres", "tsql"]

CATALOG = {
    "marketing": {
        "users": {"id": "INT", "country": "VARCHAR", "tags": "VARCHAR"},
        "events": {"id": "INT", "user_id": "INT", "name": "VARCHAR"},
        "orders": {"id": "INT", "user_id": "INT", "total": "INT"},
    }
}

QUERIES = [
    "SELECT u.id, e.name FROM users AS u JOIN events AS e ON e.user_id = u.id",
    "SELECT id FROM users",
    "SELECT * FROM users AS u LEFT JOIN orders AS o ON o.user_id = u.id",
    "WITH a AS (SELECT user_id, COUNT(*) AS n FROM events GROUP BY user_id) "
    "SELECT u.id, a.n FROM users AS u JOIN a ON a.user_id = u.id WHERE a.n > 2 ORDER BY n",
    "SELECT u.id FROM users AS u, orders AS o WHERE o.user_id = u.id",
    "SELECT u.id FROM users AS u CROSS JOIN events AS e",
    "SELECT id FROM users JOIN users ON users.id = users.id",  # no source left: refused
    "SELECT x.id FROM (SELECT id FROM users) AS x JOIN orders AS o ON o.user_id = x.id",
    "SELECT id, country AS c FROM users WHERE c = 'FR' GROUP BY 1, 2",
    "SELECT id FROM users WHERE id IN (SELECT user_id FROM events JOIN orders AS o "
    "ON o.user_id = events.user_id)",
    "SELECT id FROM users UNION ALL SELECT user_id FROM events",
    "SELECT nope FROM users",
    "SELECT u.id FROM users AS u JOIN events AS e USING (id)",
]


def _run(sql: str, dialect: str, *, mirrored: bool) -> tuple[str, str | None]:
    """(tree SQL, error) of qualifying ``sql`` with sqlglot's qualifier or the mirrored one."""
    read = _dialect(dialect)
    tree = sqlglot.parse_one(sql, read=read)
    tree = normalize_identifiers(tree, dialect=read)
    schema = SqlCatalog(CATALOG).view(read).scope_schema("marketing", annotate=False)
    joins = [node for node in tree.walk() if isinstance(node, exp.Join)]
    try:
        if mirrored:
            plain = qualification.plain_joins(joins)
            out = qualification.qualify_columns(tree, schema, dialect=read, plain_joins=plain)
        else:
            out = qc.qualify_columns(
                tree,
                schema,
                expand_alias_refs=True,
                expand_stars=True,
                allow_partial_qualification=True,
                dialect=read,
            )
    except OptimizeError as exc:
        return tree.sql(read), str(exc)
    return out.sql(read), None


def test_the_mirrored_qualifier_is_the_one_of_the_installed_sqlglot() -> None:
    assert qualification.MIRRORED, f"sqlglot {sqlglot.__version__} is not the mirrored release"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("sql", QUERIES)
def test_mirrored_qualifier_gives_sqlglots_tree_and_errors(sql: str, dialect: str) -> None:
    assert _run(sql, dialect, mirrored=True) == _run(sql, dialect, mirrored=False)


def test_plain_joins_sees_using_natural_and_nested_joins() -> None:
    def joins(sql: str) -> list[exp.Expr]:
        return [
            n for n in sqlglot.parse_one(sql, read="postgres").walk() if isinstance(n, exp.Join)
        ]

    assert qualification.plain_joins(joins("SELECT 1 FROM a JOIN b ON a.x = b.x"))
    assert not qualification.plain_joins(joins("SELECT 1 FROM a JOIN b USING (x)"))
    assert not qualification.plain_joins(joins("SELECT 1 FROM a NATURAL JOIN b"))
    assert not qualification.plain_joins(joins("SELECT 1 FROM (a JOIN b ON a.x = b.x) AS t"))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_one_level_schema_lookup_answers_like_sqlglots(dialect: str) -> None:
    read = _dialect(dialect)
    ours = SqlCatalog(CATALOG).view(read).scope_schema("marketing")
    theirs = MappingSchema(dict(ours.mapping), dialect=read, normalize=False)
    for sql in ["users", "marketing.users", "other.db.events", "nothing", '"USERS"']:
        table = exp.to_table(sql, dialect=read)
        table = normalize_identifiers(table, dialect=read)
        assert ours.column_names(table) == theirs.column_names(table)
    assert ours.column_names("users") == theirs.column_names("users")


@pytest.mark.parametrize("dialect", [*DIALECTS, "fabric"])
@pytest.mark.parametrize("name", ["abc", "ABC", "aBc", "Straße", "ǅx", "İd", "x1_"])
@pytest.mark.parametrize("quoted", [False, True])
def test_folded_identifier_short_cut_normalizes_like_the_dialect(
    dialect: str, name: str, quoted: bool
) -> None:
    read = _dialect(dialect)
    rule = type(read).normalize_identifier
    for parent in (None, "table"):
        ours, theirs = (exp.Identifier(this=name, quoted=quoted) for _ in range(2))
        if parent:  # BigQuery keeps qualified table names as written
            exp.Table(this=ours, db=exp.to_identifier("ds"))
            exp.Table(this=theirs, db=exp.to_identifier("ds"))
        assert read.normalize_identifier(ours).this == rule(read, theirs).this
