"""Red-team cases every adapter must pass against its peer, through the adapter protocol only:
zerocopy's own result tables never show in the catalog, and ids come back as the table holds
them whatever they are (NULL, duplicated, unicode, very long, integers, none at all).

What the engine does with them (drop NULLs and duplicates, cast to text) is not the adapter's
business; the adapter must neither fail nor alter them.
"""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest
from sqlglot import exp

from dialects.base import BaseAdapter, temp_table_name
from dialects.protocol import QueryTag
from tests.conformance.target import ConformanceTarget

pytestmark = pytest.mark.anyio

ID = "external_user_id"
LONG = "é" * 2000 + "-end"
TEXT_IDS: list[str | None] = ["b", None, "a", "b", "ü", "表", "🙂", LONG, "a b.c", "O'Brien"]


def _run() -> tuple[str, QueryTag]:
    run_id = str(uuid.uuid4())
    return temp_table_name(run_id), QueryTag(run_id=run_id, purpose="test")


def _literal(adapter: BaseAdapter, value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    node = exp.Literal.string(value)
    if adapter.SQLGLOT_DIALECT in {"fabric", "tsql"}:
        node = exp.National(this=value)  # N'…': T-SQL keeps unicode only in national literals
    # sqlglot writes Redshift's quote as \' (Redshift reads it); the peer is PostgreSQL,
    # which reads only ''.
    dialect = "postgres" if adapter.SQLGLOT_DIALECT == "redshift" else adapter.SQLGLOT_DIALECT
    return node.sql(dialect=dialect)


def _union(adapter: BaseAdapter, values: list[Any], cast: str | None = None) -> str:
    col = exp.to_identifier(ID, quoted=True).sql(dialect=adapter.SQLGLOT_DIALECT)
    parts = []
    for i, v in enumerate(values):
        lit = _literal(adapter, v)
        if v is None and cast:
            lit = f"CAST(NULL AS {cast})"
        parts.append(f"SELECT {lit} AS {col}" if i == 0 or cast is None else f"SELECT {lit}")
    return " UNION ALL ".join(parts)


async def _read(adapter: BaseAdapter, table: str, **kwargs: Any) -> list[list[Any]]:
    return [b.to_pylist() async for b in adapter.read_column(table, ID, **kwargs)]


async def test_result_tables_in_flight_are_not_in_the_catalog(target: ConformanceTarget) -> None:
    table, tag = _run()
    async with target.adapter() as adapter:
        try:
            sql = _union(adapter, ["x"])
            await adapter.materialize(sql, table, deadline=anyio.current_time() + 60, tag=tag)
            in_flight = await adapter.list_temp_tables()
            listed = {t.name for t in (await adapter.test()).tables}
        finally:
            await adapter.drop_table(table)
    assert table in in_flight
    assert listed == target.expected_tables


async def test_text_ids_with_nulls_duplicates_unicode_and_long_values(
    target: ConformanceTarget,
) -> None:
    table, tag = _run()
    async with target.adapter() as adapter:
        try:
            sql = _union(adapter, TEXT_IDS)
            done = await adapter.materialize(
                sql, table, deadline=anyio.current_time() + 60, tag=tag
            )
            batches = await _read(adapter, table, batch_rows=3)
            ordered = [v for b in await _read(adapter, table, ordered=True) for v in b]
        finally:
            await adapter.drop_table(table)
    got = [v for b in batches for v in b]
    assert all(len(b) <= 3 for b in batches)
    assert sorted(v for v in got if v is not None) == sorted(v for v in TEXT_IDS if v is not None)
    assert got.count(None) == 1
    if done.rows is not None:
        assert done.rows == len(TEXT_IDS)
    non_null = [v for v in ordered if v is not None]
    if type(adapter).ID_ORDER is not None:
        assert non_null == sorted(non_null, key=lambda v: v.encode())
    assert sorted(non_null) == sorted(v for v in TEXT_IDS if v is not None)


async def test_integer_ids_read_back_ordered_or_not(target: ConformanceTarget) -> None:
    values = [10, 9, 10, -1, 2**40]
    table, tag = _run()
    async with target.adapter() as adapter:
        try:
            sql = _union(adapter, values)
            await adapter.materialize(sql, table, deadline=anyio.current_time() + 60, tag=tag)
            plain = [v for b in await _read(adapter, table, batch_rows=2) for v in b]
            ordered = [v for b in await _read(adapter, table, ordered=True) for v in b]
        finally:
            await adapter.drop_table(table)
    assert sorted(int(v) for v in plain) == sorted(values)
    assert sorted(int(v) for v in ordered) == sorted(values)


async def test_an_empty_result_reads_as_no_batch(target: ConformanceTarget) -> None:
    table, tag = _run()
    async with target.adapter() as adapter:
        try:
            col = exp.to_identifier(ID, quoted=True).sql(dialect=adapter.SQLGLOT_DIALECT)
            sql = f"SELECT {col} FROM {adapter.quote_table('users')} WHERE 1 = 0"
            done = await adapter.materialize(
                sql, table, deadline=anyio.current_time() + 60, tag=tag
            )
            plain = await _read(adapter, table, batch_rows=5)
            ordered = await _read(adapter, table, ordered=True)
        finally:
            await adapter.drop_table(table)
        assert table not in await adapter.list_temp_tables()
    assert (plain, ordered) == ([], [])
    assert done.rows in (None, 0)
