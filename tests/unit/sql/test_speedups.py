"""The check's speed-ups change no result: guarded SELECT rewrites and flat-metadata copies."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlglot
import sqlglot.expressions.core as core
import sqlglot.generator as generator_module
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from zerocopy.sql import fastcopy
from zerocopy.sql.generation import guard_select_rewrites

TARGETS = ["snowflake", "bigquery", "redshift", "databricks", "duckdb", "postgres", "tsql"]

# Queries that reach each guarded rewrite (EXPLODE projections, UNNEST sources,
# GENERATE_DATE_ARRAY, ANY) and ordinary ones that do not.
QUERIES: list[tuple[str, str]] = [
    ("bigquery", "SELECT x FROM UNNEST([1, 2, 3]) AS x"),
    ("bigquery", "SELECT u.id, e FROM users AS u, UNNEST(u.events) AS e WHERE e > 1"),
    ("bigquery", "SELECT s.a FROM UNNEST([STRUCT(1 AS a, 2 AS b)]) AS s"),
    (
        "bigquery",
        "SELECT d FROM UNNEST(GENERATE_DATE_ARRAY('2020-01-01', '2020-02-01', INTERVAL 1 DAY)) AS d",
    ),
    ("bigquery", "SELECT ARRAY_LENGTH(GENERATE_DATE_ARRAY('2020-01-01', '2020-02-01')) AS n"),
    ("databricks", "SELECT id, explode(tags) AS tag FROM users"),
    ("databricks", "SELECT id, posexplode(tags) FROM users"),
    ("databricks", "SELECT id, explode_outer(tags) AS t FROM users"),
    ("databricks", "SELECT id FROM users LATERAL VIEW explode(tags) t AS tag"),
    ("postgres", "SELECT id FROM users WHERE 5 = ANY(scores)"),
    ("postgres", "SELECT id FROM users, unnest(tags) AS t(tag)"),
    ("snowflake", "SELECT u.id, f.value FROM users AS u, LATERAL FLATTEN(input => u.tags) AS f"),
    ("duckdb", "SELECT id, unnest(tags) AS tag FROM users"),
    ("redshift", "SELECT c.id, o FROM customers AS c, c.orders AS o"),
    (
        "snowflake",
        "WITH a AS (SELECT id, MAX(x) AS m FROM t GROUP BY id) SELECT a.id FROM a "
        "JOIN u ON u.id = a.id WHERE a.m > 3 QUALIFY ROW_NUMBER() OVER (ORDER BY a.m) = 1",
    ),
    ("postgres", "SELECT id FROM t WHERE id IN (SELECT id FROM u WHERE x > 1) ORDER BY id"),
]


@contextmanager
def select_handler(generator: type, handler: object) -> Iterator[None]:
    """Use ``handler`` for SELECTs in ``generator`` for the duration of the block."""
    saved = generator.TRANSFORMS[exp.Select]
    dispatch = generator_module._DISPATCH_CACHE.get(generator)
    generator.TRANSFORMS[exp.Select] = handler
    if dispatch is not None:
        dispatch[exp.Select] = handler
    try:
        yield
    finally:
        generator.TRANSFORMS[exp.Select] = saved
        if dispatch is not None:
            dispatch[exp.Select] = saved


def render(sql: str, read: str, target: str) -> str:
    tree = sqlglot.parse_one(sql, read=read)
    try:
        return Dialect.get_or_raise(target).generate(tree, copy=False, comments=False)
    except Exception as exc:  # the same failure must happen both ways
        return f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("target", TARGETS)
def test_guarded_select_rewrites_render_the_same_sql(target: str) -> None:
    generator = Dialect.get_or_raise(target).generator_class
    generator()  # builds sqlglot's dispatch cache for the class
    guard_select_rewrites(generator)
    guarded = generator.TRANSFORMS.get(exp.Select)
    original = _unguarded(guarded)
    for read, sql in QUERIES:
        fast = render(sql, read, target)
        with select_handler(generator, original):
            slow = render(sql, read, target)
        assert fast == slow, (read, sql, target)


def _unguarded(handler: object) -> object:
    """sqlglot's own handler: the same rewrites with the guards removed."""
    if not getattr(handler, "_zerocopy_guarded", False):
        return handler
    names = handler.__code__.co_freevars  # type: ignore[attr-defined]
    contents = [c.cell_contents for c in handler.__closure__]  # type: ignore[attr-defined]
    cells = dict(zip(names, contents, strict=True))
    ours = [r for r in cells["transforms"] if not getattr(r, "_zerocopy_gate", False)]
    rewrites = [getattr(r, "__wrapped__", r) for r in ours]
    assert any(r is not g for r, g in zip(rewrites, ours, strict=True))
    from sqlglot import transforms

    return transforms.preprocess(rewrites, cells["generator"])


def test_snowflake_and_bigquery_rewrites_are_guarded() -> None:
    for name in ("snowflake", "bigquery"):
        generator = Dialect.get_or_raise(name).generator_class
        guard_select_rewrites(generator)
        assert getattr(generator.TRANSFORMS[exp.Select], "_zerocopy_guarded", False)


def test_generators_with_several_guards_search_once_per_select() -> None:
    """Snowflake, BigQuery and Redshift guard two or more rewrites: a gate searches first."""
    for name in ("snowflake", "bigquery", "redshift"):
        generator = Dialect.get_or_raise(name).generator_class
        guard_select_rewrites(generator)
        handler = generator.TRANSFORMS[exp.Select]
        cells = dict(
            zip(
                handler.__code__.co_freevars,
                [c.cell_contents for c in handler.__closure__],
                strict=True,
            )
        )
        assert getattr(cells["transforms"][0], "_zerocopy_gate", False), name


def test_fast_deepcopy_gives_equal_independent_trees() -> None:
    assert fastcopy.install()
    assert core.deepcopy is fastcopy.deepcopy
    tree = sqlglot.parse_one(
        "SELECT /* c */ a.x AS y, CAST(b AS INT) FROM t AS a JOIN u ON u.id = a.id", read="postgres"
    )
    tree.find(exp.Column).meta["dot_parts"] = ["a", "x"]  # a list value: deep-copied
    copied = tree.copy()
    assert copied == tree and copied.sql() == tree.sql()
    for left, right in zip(tree.walk(), copied.walk(), strict=True):
        assert left.meta == right.meta and left.comments == right.comments
        if left._meta is not None:
            assert left._meta is not right._meta
    copied.find(exp.Column).meta["dot_parts"].append("z")
    assert tree.find(exp.Column).meta["dot_parts"] == ["a", "x"]


def test_fast_deepcopy_matches_copy_deepcopy() -> None:
    values: list[object] = [
        {"line": 1, "col": 2, "start": 0, "end": 3},
        {"a": [1, 2]},
        ["x", "y"],
        [["nested"]],
        {"flag": True, "none": None, "f": 1.5},
    ]
    for value in values:
        fast = fastcopy.deepcopy(value)
        assert fast == copy.deepcopy(value) and fast is not value


def test_check_leaves_the_garbage_collector_as_it_found_it() -> None:
    import gc

    from tests.unit.sql.catalog import CATALOG, SCOPE
    from zerocopy.sql import check_segment_sql

    assert gc.isenabled()
    for sql in ("SELECT external_user_id FROM users", "SELECT FROM WHERE", "\x00" * 3):
        check_segment_sql(sql, dialect="postgres", catalog=CATALOG, scope=SCOPE)
        assert gc.isenabled()
    gc.disable()
    try:
        check_segment_sql(
            "SELECT external_user_id FROM users", dialect="duckdb", catalog=CATALOG, scope=SCOPE
        )
        assert not gc.isenabled()  # a caller that paused the GC keeps it paused
    finally:
        gc.enable()


def test_reused_tokenizer_gives_the_tokens_of_a_fresh_one() -> None:
    """The check keeps one tokenizer per dialect and thread: same tokens, also after a failure."""
    from sqlglot.errors import TokenError

    from zerocopy.sql.check import _dialect, _tokenize

    def shape(tokens: list) -> list[tuple]:
        return [(t.token_type, t.text, t.start, t.end, t.line, t.col, t.comments) for t in tokens]

    for name in TARGETS:
        dialect = _dialect(name)
        for sql in ("SELECT a /* c */ FROM t; SELECT 'x'", "SELECT 'unterminated", "SELECT 1"):
            try:
                fresh = shape(dialect.tokenize(sql))
            except TokenError:
                with pytest.raises(TokenError):
                    _tokenize(dialect, sql)
                continue
            assert shape(_tokenize(dialect, sql)) == fresh, (name, sql)


def test_a_cached_catalog_does_not_keep_every_checked_query_alive() -> None:
    """sqlglot's schema memoizes lookups by table expression (each one holding its query's
    tree): the scope schema bounds those caches, so checking many distinct queries against
    one cached catalog keeps memory flat."""
    from zerocopy.sql import SqlCatalog, check_segment_sql
    from zerocopy.sql.catalog import _ScopeSchema
    from zerocopy.sql.check import _dialect

    catalog = SqlCatalog({"marketing": {"users": {"external_user_id": "VARCHAR", "x": "INT"}}})
    for i in range(300):
        result = check_segment_sql(
            f"SELECT t{i}.external_user_id FROM users AS t{i} WHERE t{i}.x > {i}",
            dialect="postgres",
            catalog=catalog,
            scope="marketing",
        )
        assert result.valid, result.errors
    schemas = list(catalog.view(_dialect("postgres")).by_scope.values())
    assert schemas and all(isinstance(s, _ScopeSchema) for s in schemas)
    for schema in schemas:
        assert len(schema._find_cache) <= _ScopeSchema.MAX_CACHED + 1
        assert len(schema._normalized_table_cache) <= _ScopeSchema.MAX_CACHED + 1
