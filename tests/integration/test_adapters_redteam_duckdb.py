"""Red-team of the DuckDB adapter: the file going away or locked, awkward catalogs, awkward
ids, through the adapter protocol on real files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import duckdb
import pytest

from dialects.base import temp_table_name
from dialects.protocol import ConnectionConfig, QueryTag, Scope
from dialects.registry import create_adapter
from fixtures import build, load_duckdb
from zerocopy import errors
from zerocopy.errors import ZerocopyError

pytestmark = pytest.mark.anyio

SCHEMA = "mkt"
SELECT = f"SELECT external_user_id FROM {SCHEMA}.users"


def config(path: Path | str, schema: str = SCHEMA) -> ConnectionConfig:
    return ConnectionConfig({"path": str(path)}, {}, Scope(schema))


def tag() -> QueryTag:
    return QueryTag(run_id=str(uuid.uuid4()), purpose="refresh", segment_id="seg-redteam")


@pytest.fixture
def warehouse_file(tmp_path: Path) -> Path:
    path = tmp_path / "wh.duckdb"
    load_duckdb(path, SCHEMA, build(users=50, only=["users"]))
    return path


def temp_tables(path: Path, schema: str = SCHEMA) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? "
            "AND lower(table_name) LIKE 'zc_tmp_%'",
            [schema],
        ).fetchall()
    return [r[0] for r in rows]


# --------------------------------------------------------------------------- the file goes away
@pytest.mark.parametrize("how", ["deleted", "moved", "replaced"])
async def test_a_file_deleted_moved_or_replaced_under_a_kept_adapter_is_scope_not_found(
    warehouse_file: Path, how: str
) -> None:
    """DuckDB keeps writing to an unlinked file: without a check, refreshes would "succeed"
    into a file nobody can open again. Each call names the path instead."""
    replacement = warehouse_file.with_name("replacement.duckdb")
    load_duckdb(replacement, SCHEMA, build(users=5, only=["users"]))  # built before ours opens
    adapter = create_adapter("duckdb", config(warehouse_file))
    try:
        assert "users" in {t.name for t in await adapter.list_tables()}
        _take_away(warehouse_file, how, replacement)
        failures = []
        for call in ("list", "ctas"):
            with pytest.raises(ZerocopyError) as caught:
                if call == "list":
                    await adapter.list_tables()
                else:
                    await adapter.materialize(
                        SELECT, temp_table_name("gone"), deadline=anyio.current_time() + 30,
                        tag=tag(),
                    )  # fmt: skip
            failures.append(caught.value)
    finally:
        await adapter.aclose()
    for failure in failures:
        assert failure.code == errors.SCOPE_NOT_FOUND
        assert str(warehouse_file) in failure.message
    if how != "deleted":
        assert temp_tables(warehouse_file.with_name("moved.duckdb")) == []
    if how == "replaced":
        # A fresh adapter opens the new file.
        async with create_adapter("duckdb", config(warehouse_file)) as fresh:
            assert "users" in {t.name for t in await fresh.list_tables()}


def _take_away(path: Path, how: str, replacement: Path) -> None:
    if how == "deleted":
        path.unlink()
        return
    path.rename(path.with_name("moved.duckdb"))
    if how == "replaced":
        replacement.rename(path)


def _make_unreadable(path: Path) -> str:
    """The code an unopenable file gives: root reads any file, so there it becomes a directory."""
    if os.geteuid() == 0:
        path.unlink()
        path.mkdir()
        return errors.SCOPE_NOT_FOUND
    path.chmod(0)
    return errors.PERMISSION_DENIED


@contextmanager
def other_process_holding(path: Path) -> Iterator[subprocess.Popen[str]]:
    code = textwrap.dedent(
        f"""
        import sys, duckdb
        con = duckdb.connect({str(path)!r})
        print("ready", flush=True)
        sys.stdin.read()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.kill()
        proc.wait()


async def test_a_file_locked_by_another_process_between_runs_is_busy_then_works_again(
    warehouse_file: Path,
) -> None:
    async with create_adapter("duckdb", config(warehouse_file)) as adapter:
        table = temp_table_name(str(uuid.uuid4()))
        await adapter.materialize(SELECT, table, deadline=anyio.current_time() + 30, tag=tag())
        await adapter.drop_table(table)
    with other_process_holding(warehouse_file) as proc:
        async with create_adapter("duckdb", config(warehouse_file)) as adapter:
            with pytest.raises(ZerocopyError) as caught:
                await adapter.materialize(
                    SELECT, temp_table_name("busy"), deadline=anyio.current_time() + 30, tag=tag()
                )
    assert caught.value.code == errors.WAREHOUSE_BUSY
    assert str(proc.pid) in caught.value.message
    async with create_adapter("duckdb", config(warehouse_file)) as adapter:
        table = temp_table_name(str(uuid.uuid4()))
        done = await adapter.materialize(
            SELECT, table, deadline=anyio.current_time() + 30, tag=tag()
        )
        await adapter.drop_table(table)
    assert done.rows == 50
    assert temp_tables(warehouse_file) == []


async def test_an_unreadable_file_is_permission_denied_naming_the_fix(
    warehouse_file: Path,
) -> None:
    expected = _make_unreadable(warehouse_file)
    async with create_adapter("duckdb", config(warehouse_file)) as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.test()
    assert caught.value.code == expected
    assert str(warehouse_file) in caught.value.message


# --------------------------------------------------------------------------- awkward catalogs
ODD = "Odd Schema Ü"
COMMENT = 'It\'s "quoted";\nsecond line -- not a comment */ /*'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@pytest.fixture
def odd_file(tmp_path: Path) -> Path:
    path = tmp_path / "odd.duckdb"
    s = f'"{ODD}"'
    wide = ", ".join(f"c{i:03d} INTEGER" for i in range(300))
    with duckdb.connect(str(path)) as con:
        for sql in (
            f"CREATE SCHEMA {s}",
            f'CREATE TABLE {s}."MixedCase" (external_user_id VARCHAR, "Weird Col" INTEGER, '
            '"dotted.col" VARCHAR, "ünï 表" VARCHAR)',
            f'COMMENT ON TABLE {s}."MixedCase" IS {_literal(COMMENT)}',
            f'COMMENT ON COLUMN {s}."MixedCase"."Weird Col" IS {_literal(COMMENT)}',
            f'CREATE TABLE {s}."with space" (external_user_id VARCHAR)',
            f'CREATE TABLE {s}."with.dot" (external_user_id VARCHAR)',
            f'CREATE TABLE {s}."ünïcødé_表" (external_user_id VARCHAR)',
            f"CREATE TABLE {s}.wide (external_user_id VARCHAR, {wide})",
            f'CREATE VIEW {s}."V iew" AS SELECT external_user_id, "Weird Col" FROM {s}."MixedCase"',
            f'COMMENT ON VIEW {s}."V iew" IS {_literal(COMMENT)}',
            f"CREATE TABLE {s}.zc_tmp_orphan (external_user_id VARCHAR)",
            f"INSERT INTO {s}.\"MixedCase\" VALUES ('ü1', 1, 'a.b', '表')",
        ):
            con.execute(sql)
    return path


async def test_catalog_of_awkward_names_comments_and_widths(odd_file: Path) -> None:
    async with create_adapter("duckdb", config(odd_file, ODD)) as adapter:
        result = await adapter.test()
        table = temp_table_name(str(uuid.uuid4()))
        await adapter.materialize(
            f'SELECT external_user_id FROM "{ODD}"."MixedCase"', table,
            deadline=anyio.current_time() + 30, tag=tag(),
        )  # fmt: skip
        listed_meanwhile = {t.name for t in await adapter.list_tables()}
        ids = [
            v async for b in adapter.read_column(table, "external_user_id") for v in b.to_pylist()
        ]
        await adapter.drop_table(table)
    by_name = {t.name: t for t in result.tables}
    assert set(by_name) == {"MixedCase", "with space", "with.dot", "ünïcødé_表", "wide", "V iew"}
    assert table not in listed_meanwhile
    mixed = by_name["MixedCase"]
    assert mixed.description == COMMENT
    assert [c.name for c in mixed.columns] == [
        "external_user_id",
        "Weird Col",
        "dotted.col",
        "ünï 表",
    ]
    assert {c.name: c.description for c in mixed.columns}["Weird Col"] == COMMENT
    assert len(by_name["wide"].columns) == 301
    assert (by_name["V iew"].kind, by_name["V iew"].description) == ("view", COMMENT)
    assert ids == ["ü1"]
    assert temp_tables(odd_file, ODD) == ["zc_tmp_orphan"]


async def test_temp_tables_of_other_connections_are_not_listed(warehouse_file: Path) -> None:
    async with create_adapter("duckdb", config(warehouse_file)) as adapter:
        before = {t.name for t in await adapter.list_tables()}
        from dialects.duckdb import _INSTANCES

        other = _INSTANCES[str(warehouse_file.resolve())].cursor()  # noqa: ASYNC240
        try:
            other.execute("CREATE TEMP TABLE users_tmp AS SELECT 1 AS external_user_id")
            listed = {t.name for t in await adapter.list_tables()}
        finally:
            other.close()
    assert listed == before
    assert "users" in listed


# --------------------------------------------------------------------------- awkward ids
LONG = "é" * 5000 + "-end"


@pytest.mark.parametrize(
    ("type_sql", "values", "expected"),
    [
        ("VARCHAR", ["b", None, "a", "b", "ü", "表", LONG, ""], ["", "a", "b", "b", "ü", "表", LONG]),
        ("BIGINT", [10, None, 9, 10, -1, 2**62], [-1, 9, 10, 10, 2**62]),
        ("DECIMAL(30,0)", [Decimal("123456789012345678901234567890"), None, Decimal(7)],
         [Decimal(7), Decimal("123456789012345678901234567890")]),
        ("UUID", [uuid.UUID(int=2), None, uuid.UUID(int=1), uuid.UUID(int=2)],
         [uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=2)]),
    ],
    ids=["text", "bigint", "decimal", "uuid"],
)  # fmt: skip
async def test_ids_of_every_type_with_nulls_duplicates_unicode_and_long_values(
    warehouse_file: Path, type_sql: str, values: list[Any], expected: list[Any]
) -> None:
    with duckdb.connect(str(warehouse_file)) as con:
        con.execute(f"CREATE TABLE {SCHEMA}.ids_src (external_user_id {type_sql})")
        con.executemany(f"INSERT INTO {SCHEMA}.ids_src VALUES (?)", [[v] for v in values])
    table = temp_table_name(str(uuid.uuid4()))
    async with create_adapter("duckdb", config(warehouse_file)) as adapter:
        done = await adapter.materialize(
            f"SELECT external_user_id FROM {SCHEMA}.ids_src", table,
            deadline=anyio.current_time() + 30, tag=tag(),
        )  # fmt: skip
        batches = [b async for b in adapter.read_column(table, "external_user_id", batch_rows=2)]
        ordered = [
            v
            async for b in adapter.read_column(table, "external_user_id", ordered=True)
            for v in b.to_pylist()
        ]
        await adapter.drop_table(table)
    got = [v for b in batches for v in b.to_pylist()]
    assert done.rows == len(values)
    assert all(len(b) <= 2 for b in batches)
    assert got.count(None) == 1
    assert sorted(v for v in got if v is not None) == sorted(
        str(v) if isinstance(v, uuid.UUID) else v for v in expected
    )
    non_null = [v for v in ordered if v is not None]
    assert non_null == sorted(non_null, key=lambda v: str(v).encode())
    assert temp_tables(warehouse_file) == []


async def test_an_empty_result_reads_as_no_batch(warehouse_file: Path) -> None:
    table = temp_table_name(str(uuid.uuid4()))
    async with create_adapter("duckdb", config(warehouse_file)) as adapter:
        done = await adapter.materialize(
            SELECT + " WHERE false", table, deadline=anyio.current_time() + 30, tag=tag()
        )
        plain = [b async for b in adapter.read_column(table, "external_user_id", batch_rows=5)]
        ordered = [b async for b in adapter.read_column(table, "external_user_id", ordered=True)]
        await adapter.drop_table(table)
    assert (done.rows, plain, ordered) == (0, [], [])
