"""The check's speed-ups give what sqlglot itself gives: reused generators and tokenizers, the
BigQuery escape table dropped only when no name can need it, statements unlinked after a check."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from zerocopy.sql import SqlCatalog, check_segment_sql
from zerocopy.sql.check import _dialect, _normalize_names
from zerocopy.sql.generation import generator_for

CATALOG = {
    "marketing": {
        "users": {"external_user_id": "VARCHAR", "country": "VARCHAR", "a\\b": "VARCHAR"},
        "purchases": {"external_user_id": "VARCHAR", "price": "DOUBLE", "p": "VARCHAR"},
    }
}

QUERIES = [
    "SELECT u.external_user_id FROM users u JOIN purchases p "
    "ON p.external_user_id = u.external_user_id WHERE p.price > 10",
    "SELECT external_user_id FROM users WHERE country IN ('FR', 'DE') ORDER BY 1 LIMIT 5",
    "WITH s AS (SELECT external_user_id, SUM(price) AS total FROM purchases GROUP BY 1) "
    "SELECT external_user_id FROM s WHERE total > 3",
]


def _stock(sql: str, read: str, write: str) -> str:
    """sqlglot's own rendering with a new generator, as the check configures it (or its
    refusal)."""
    tree = sqlglot.parse_one(sql, read=read)
    try:
        return sqlglot.Dialect.get_or_raise(write).generate(
            tree, copy=False, comments=False, unsupported_level=ErrorLevel.RAISE
        )
    except UnsupportedError as exc:
        return f"unsupported: {exc}"


def _reused(sql: str, read: str, write: str) -> str:
    """The same through `generator_for` (the thread's reused generator)."""
    tree = sqlglot.parse_one(sql, read=read)
    texts = (sql,)
    try:
        return generator_for(_dialect(write), lambda: texts).generate(tree, copy=False)
    except UnsupportedError as exc:
        return f"unsupported: {exc}"


def test_reused_generator_renders_like_a_new_one() -> None:
    for read in ("snowflake", "bigquery", "postgres", "duckdb", "databricks", "redshift"):
        for write in ("bigquery", "snowflake", "tsql"):
            for sql in QUERIES * 2:  # the second round reuses the generators of the first
                assert _reused(sql, read, write) == _stock(sql, read, write), (read, write, sql)


def test_generated_alias_names_restart_for_each_use() -> None:
    # sqlglot names generated aliases from a per-generator sequence (_t0, _t1, ...)
    bigquery = _dialect("bigquery")
    first = generator_for(bigquery)
    first._next_name()
    first._next_name()
    again = generator_for(bigquery)
    assert again._next_name() == "_t0"


def test_escape_table_kept_when_a_name_needs_it() -> None:
    # a quoted BigQuery name holding a backslash and a newline must stay escaped
    sql = "SELECT `a\\\\b` AS `x\\ny` FROM `d.t`"
    tree = sqlglot.parse_one(sql, read="bigquery")
    names = "".join(i.name for i in tree.find_all(exp.Identifier))
    assert "\\" in names and "\n" in names
    plain = generator_for(_dialect("bigquery"), lambda: ("abc",)).generate(tree.copy())
    kept = generator_for(_dialect("bigquery"), lambda: (names,)).generate(tree.copy())
    assert kept == _stock(sql, "bigquery", "bigquery")
    assert plain != kept  # without the table the names come out unescaped


def test_check_escapes_names_from_the_query_and_the_catalog() -> None:
    catalog = SqlCatalog(CATALOG)
    result = check_segment_sql(
        "SELECT external_user_id, `a\\\\b` FROM users",
        dialect="bigquery",
        catalog=catalog,
        scope="marketing",
    )
    assert result.valid, result.errors
    assert result.sql == "SELECT external_user_id, `a\\\\b` FROM marketing.users"
    # and from another dialect, where the name needs no escape in the text
    result = check_segment_sql(
        'SELECT external_user_id, "a\\b" FROM users',
        dialect="postgres",
        catalog=catalog,
        scope="marketing",
        target="bigquery",
    )
    assert result.valid, result.errors
    assert result.sql == "SELECT external_user_id, `a\\\\b` FROM marketing.users"


def test_repeated_checks_give_the_same_result() -> None:
    catalog = SqlCatalog(CATALOG)
    for dialect in ("snowflake", "bigquery", "postgres", "duckdb", "databricks", "redshift"):
        for sql in QUERIES:
            results = [
                check_segment_sql(sql, dialect=dialect, catalog=catalog, scope="marketing")
                for _ in range(3)
            ]
            assert results[0].valid, (dialect, sql, results[0].errors)
            assert all(r.to_dict() == results[0].to_dict() for r in results), (dialect, sql)


def test_dialect_tokenize_reuses_tokenizer_with_same_tokens() -> None:
    for name in ("snowflake", "bigquery", "postgres"):
        dialect = _dialect(name)
        fresh = sqlglot.Dialect.get_or_raise(name)
        for text in ("p", "SELECT 'x\\n' AS \"a\" -- c\nFROM t", "VARCHAR"):
            got = [(t.token_type, t.text, t.start, t.end) for t in dialect.tokenize(text)]
            want = [(t.token_type, t.text, t.start, t.end) for t in fresh.tokenize(text)]
            assert got == want, (name, text)


def test_inlined_name_normalization_matches_the_dialects() -> None:
    names = ["abc", "ABC", "MiXed", "ÉtÉ_ß", "x1", ""]
    for name in ("snowflake", "bigquery", "postgres", "duckdb", "databricks", "redshift", "tsql"):
        dialect = _dialect(name)
        for text in names:
            for quoted in (False, True):
                ours = exp.Identifier(this=text, quoted=quoted)
                theirs = exp.Identifier(this=text, quoted=quoted)
                exp.Table(this=ours)  # a parent, as in a query (BigQuery looks at it)
                exp.Table(this=theirs)
                _normalize_names(dialect, [ours])
                dialect.normalize_identifier(theirs)
                assert ours.this == theirs.this, (name, text, quoted)
