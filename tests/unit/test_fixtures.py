"""The fixture warehouse: deterministic, documented, with the bad sync rows it promises."""

from __future__ import annotations

import json
from collections import Counter

import duckdb
import psycopg
import pyarrow as pa
import pytest
import sqlglot

from fixtures import (
    BAD_SYNC_KINDS,
    SYNC_ROW_KINDS,
    SYNC_TIE_SIZE,
    Warehouse,
    build,
    load_duckdb,
    statements,
)
from fixtures.render import create_table_sql, view_sql

ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us"),
}
IDENTIFIERS = ("EXTERNAL_ID", "BRAZE_ID", "EMAIL", "PHONE")


@pytest.fixture(scope="module")
def wh() -> Warehouse:
    return build(users=200)


def test_same_seed_same_rows_other_seed_other_rows(wh: Warehouse) -> None:
    again = build(users=200)
    other = build(users=200, seed=7)
    assert [t.data for t in again.tables] == [t.data for t in wh.tables]
    assert wh.table("users").data != other.table("users").data


def test_tables_views_and_sizes(wh: Warehouse) -> None:
    assert {t.name for t in wh.tables} == {
        "users",
        "events",
        "purchases",
        "subscriptions",
        "accounts",
        "users_attributes_sync",
    }
    assert [v.name for v in wh.views] == ["active_users"]
    assert wh.table("users").data.num_rows == 200
    assert build(users=1000).table("users").data.num_rows == 1000
    ids = wh.table("users").data.column("external_user_id").to_pylist()
    assert len(set(ids)) == len(ids)
    # every event points at a real user
    assert set(wh.table("events").data.column("external_user_id").to_pylist()) <= set(ids)


def test_every_table_and_column_is_described_with_a_generic_type(wh: Warehouse) -> None:
    for table in wh.tables:
        assert table.description
        assert table.data.column_names == table.column_names
        for column, field in zip(table.columns, table.data.schema, strict=True):
            assert column.description, (table.name, column.name)
            assert field.type == ARROW_TYPES[column.type], (table.name, column.name, field.type)
    assert all(v.description for v in wh.views)


def test_only_builds_the_requested_tables() -> None:
    small = build(users=50, only=["accounts"])
    assert [t.name for t in small.tables] == ["accounts"]
    assert small.views == ()
    with pytest.raises(ValueError, match="unknown fixture tables"):
        build(only=["nope"])


def _identifiers(row: dict[str, object]) -> int:
    count = sum(row[k] is not None for k in IDENTIFIERS)
    return count + (row["ALIAS_NAME"] is not None and row["ALIAS_LABEL"] is not None)


def _valid_json(text: object) -> bool:
    try:
        return isinstance(json.loads(str(text)), dict)
    except ValueError:
        return False


def test_sync_rows_are_good_except_the_documented_bad_ones(wh: Warehouse) -> None:
    rows = wh.table("users_attributes_sync").data.to_pylist()
    bad = {i: kind for kind, positions in wh.bad_sync_rows.items() for i in positions}
    assert set(wh.bad_sync_rows) == set(BAD_SYNC_KINDS)
    assert all(wh.bad_sync_rows[k] for k in BAD_SYNC_KINDS)
    kinds_seen: Counter[str] = Counter()
    for i, row in enumerate(rows):
        kind = bad.get(i)
        kinds_seen[SYNC_ROW_KINDS[i % 20]] += 1
        if kind == "no_identifier":
            assert _identifiers(row) == 0 and _valid_json(row["PAYLOAD"]), row
        elif kind == "two_identifiers":
            assert _identifiers(row) == 2 and _valid_json(row["PAYLOAD"]), row
        elif kind == "invalid_json":
            assert _identifiers(row) == 1 and not _valid_json(row["PAYLOAD"]), row
        else:
            assert _identifiers(row) == 1 and _valid_json(row["PAYLOAD"]), row
    assert {"external_id", "email", "phone", "braze_id", "alias"} <= set(kinds_seen)


def test_sync_watermark_has_ties(wh: Warehouse) -> None:
    stamps = wh.table("users_attributes_sync").data.column("UPDATED_AT").to_pylist()
    assert stamps == sorted(stamps)
    counts = Counter(stamps)
    assert set(list(counts.values())[:-1]) == {SYNC_TIE_SIZE}


def test_load_duckdb_bulk_loads_tables_views_and_comments(wh: Warehouse) -> None:
    con = duckdb.connect()
    load_duckdb(con, "mkt", wh)
    for table in wh.tables:
        assert con.sql(f'SELECT * FROM mkt."{table.name}"').to_arrow_table() == table.data
    comments = dict(
        con.sql(
            "SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'mkt' "
            "UNION ALL SELECT view_name, comment FROM duckdb_views() WHERE schema_name = 'mkt'"
        ).fetchall()
    )
    described = {t.name: t.description for t in wh.tables}
    described.update({v.name: v.description for v in wh.views})
    assert comments == described
    column_comments = dict(
        con.sql(
            "SELECT column_name, comment FROM duckdb_columns() "
            "WHERE schema_name = 'mkt' AND table_name = 'purchases'"
        ).fetchall()
    )
    assert column_comments == {c.name: c.description for c in wh.table("purchases").columns}
    expected = sum(
        1 for r in wh.table("users").data.to_pylist() if r["is_subscribed"] and r["plan"] != "free"
    )
    assert con.sql("SELECT count(*) FROM mkt.active_users").fetchall() == [(expected,)]


def test_rendered_statements_round_trip_through_duckdb(wh: Warehouse) -> None:
    """The INSERT/DDL rendering (used by peers) reproduces the Arrow data exactly."""
    small = build(users=40)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA s")
    for sql in statements(small, "duckdb", "s", batch_rows=17):
        con.execute(sql)
    for table in small.tables:
        assert con.sql(f'SELECT * FROM s."{table.name}"').to_arrow_table() == table.data
    assert con.sql("SELECT comment FROM duckdb_views() WHERE view_name = 'active_users'").fetchall()


@pytest.mark.parametrize("dialect", ["postgres", "redshift", "snowflake", "databricks", "bigquery"])
def test_rendered_statements_parse_in_their_dialect(dialect: str) -> None:
    small = build(users=20)
    for sql in statements(small, dialect, "s", "db"):
        sqlglot.parse_one(sql, dialect=dialect)
    for table in small.tables:
        if dialect in {"snowflake", "databricks", "bigquery"}:
            sql = create_table_sql(table, dialect, "s", inline_comments=True)
            assert table.description.split("'")[0] in sql
    assert '"s"."users"' in view_sql(small.views[0], "postgres", "s")


@pytest.mark.postgres
def test_rendered_statements_load_into_postgres(postgres_url: str) -> None:
    small = build(users=30)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA mkt")
        for sql in statements(small, "postgres", "mkt"):
            conn.execute(sql)
        for table in small.tables:
            got = conn.execute(f'SELECT count(*) FROM mkt."{table.name}"').fetchone()
            assert got == (table.data.num_rows,)
        desc = conn.execute("SELECT obj_description('mkt.users'::regclass, 'pg_class')").fetchone()
        assert desc == (small.table("users").description,)
        row = conn.execute(
            'SELECT "UPDATED_AT", "PAYLOAD" FROM mkt.users_attributes_sync ORDER BY 1 LIMIT 1'
        ).fetchone()
        first = small.table("users_attributes_sync").data.to_pylist()[0]
        assert row == (first["UPDATED_AT"], first["PAYLOAD"])
