"""DuckDB adapter behaviours beyond the conformance suite: file locking across processes,
one shared instance per file inside a process, settings, large streamed reads."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import anyio.to_thread
import duckdb
import pytest

from dialects.base import temp_table_name
from dialects.duckdb import _INSTANCES, DuckDBAdapter
from dialects.protocol import ConnectionConfig, QueryHandle, QueryTag, Scope, Watermark
from dialects.registry import create_adapter
from fixtures import build, load_duckdb
from tests.conformance.targets.duckdb import SLOW_SQL
from zerocopy import errors
from zerocopy.errors import ZerocopyError

pytestmark = pytest.mark.anyio

SCHEMA = "mkt"


def _config(path: Path | str, scope: str = SCHEMA, **settings: object) -> ConnectionConfig:
    return ConnectionConfig({"path": str(path), **settings}, {}, Scope.parse(scope))


def _tag() -> QueryTag:
    return QueryTag(run_id=str(uuid.uuid4()), purpose="test")


@pytest.fixture
def warehouse_file(tmp_path: Path) -> Path:
    """A warehouse file no other test in this process has opened."""
    path = tmp_path / "wh.duckdb"
    load_duckdb(path, SCHEMA, build(users=50, only=["users"]))
    return path


@contextmanager
def other_process_holding(path: Path, *, read_only: bool) -> Iterator[subprocess.Popen[str]]:
    """A second OS process with the DuckDB file open, like a second `zerocopy serve`."""
    code = textwrap.dedent(
        f"""
        import sys, duckdb
        con = duckdb.connect({str(path)!r}, read_only={read_only!r})
        print("ready", flush=True)
        sys.stdin.read()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read() if proc.stderr else line
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


async def test_another_writing_process_makes_the_source_busy(warehouse_file: Path) -> None:
    with other_process_holding(warehouse_file, read_only=False) as proc:
        async with create_adapter("duckdb", _config(warehouse_file)) as adapter:
            with pytest.raises(ZerocopyError) as caught:
                await adapter.test()
    assert caught.value.code == errors.WAREHOUSE_BUSY
    assert f"PID {proc.pid}" in caught.value.message
    assert "one writing process" in caught.value.message
    # Once the other process is gone the same source works.
    async with create_adapter("duckdb", _config(warehouse_file)) as adapter:
        assert {t.name for t in (await adapter.test()).tables} == {"users", "active_users"}


async def test_read_only_sources_share_the_file_across_processes(warehouse_file: Path) -> None:
    with other_process_holding(warehouse_file, read_only=True):
        async with create_adapter("duckdb", _config(warehouse_file, read_only=True)) as adapter:
            result = await adapter.test()
            assert "users" in {t.name for t in result.tables}
            with pytest.raises(ZerocopyError) as caught:
                await adapter.materialize(
                    f'SELECT external_user_id FROM "{SCHEMA}".users',
                    temp_table_name("ro"),
                    deadline=anyio.current_time() + 10,
                    tag=_tag(),
                )
    # DuckDB itself refused: the file was opened read-only.
    assert caught.value.code == errors.PERMISSION_DENIED
    assert "read-only" in caught.value.message and "read_only to false" in caught.value.message


async def test_adapters_on_one_file_share_one_instance_and_release_it(
    warehouse_file: Path,
) -> None:
    first = create_adapter("duckdb", _config(warehouse_file))
    second = create_adapter("duckdb", _config(warehouse_file))
    assert isinstance(first, DuckDBAdapter)
    key = first.path  # the resolved path is the instance key
    table = temp_table_name(str(uuid.uuid4()))
    try:
        await first.materialize(
            f'SELECT external_user_id FROM "{SCHEMA}".users',
            table,
            deadline=anyio.current_time() + 10,
            tag=_tag(),
        )
        assert table in await second.list_temp_tables()  # same database, no lock conflict
        assert _INSTANCES[key].users == 2
        await second.drop_table(table)
    finally:
        await first.aclose()
        await second.aclose()
    assert key not in _INSTANCES
    # The file lock is released: another process can now open it for writing.
    with other_process_holding(warehouse_file, read_only=False):
        pass


async def test_read_only_source_sharing_a_writer_instance_refuses_writes(
    warehouse_file: Path,
) -> None:
    async with (
        create_adapter("duckdb", _config(warehouse_file)) as writer,
        create_adapter("duckdb", _config(warehouse_file, read_only="true")) as reader,
    ):
        await writer.test()
        assert len((await reader.test()).tables) == 2
        table = temp_table_name(str(uuid.uuid4()))
        with pytest.raises(ZerocopyError) as caught:
            await reader.materialize(
                f'SELECT external_user_id FROM "{SCHEMA}".users',
                table,
                deadline=anyio.current_time() + 10,
                tag=_tag(),
            )
        assert caught.value.code == errors.PERMISSION_DENIED
        with pytest.raises(ZerocopyError):
            await reader.drop_table(table)
        assert await writer.list_temp_tables() == []


async def test_writer_refused_while_the_file_is_open_read_only_here(warehouse_file: Path) -> None:
    async with create_adapter("duckdb", _config(warehouse_file, read_only=True)) as reader:
        await reader.test()
        async with create_adapter("duckdb", _config(warehouse_file)) as writer:
            with pytest.raises(ZerocopyError) as caught:
                await writer.test()
    assert caught.value.code == errors.WAREHOUSE_BUSY


async def test_missing_file_is_scope_not_found_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo.duckdb"
    for read_only in (False, True):
        async with create_adapter("duckdb", _config(missing, read_only=read_only)) as adapter:
            with pytest.raises(ZerocopyError) as caught:
                await adapter.test()
        assert caught.value.code == errors.SCOPE_NOT_FOUND
        assert "typo.duckdb" in caught.value.message
    assert not missing.exists()


async def test_missing_schema_names_the_existing_ones(warehouse_file: Path) -> None:
    async with create_adapter("duckdb", _config(warehouse_file, scope="nope")) as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.test()
    assert caught.value.code == errors.SCOPE_NOT_FOUND
    assert "wh.mkt" in caught.value.message


async def test_scope_with_the_database_name(warehouse_file: Path) -> None:
    async with create_adapter("duckdb", _config(warehouse_file, scope="wh.mkt")) as adapter:
        assert adapter.quote_table("t") == '"wh"."mkt"."t"'
        assert len((await adapter.test()).tables) == 2
    async with create_adapter("duckdb", _config(warehouse_file, scope="other.mkt")) as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.test()
    assert caught.value.code == errors.SCOPE_NOT_FOUND


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"path": ":memory:"}, "path"),
        ({"path": ""}, "path"),
        ({}, "path"),
        ({"path": "x.duckdb", "read_only": "maybe"}, "read_only"),
        ({"path": "x.duckdb", "threads": 4}, "threads"),
    ],
)
def test_credential_settings_are_checked(settings: dict[str, object], field: str) -> None:
    with pytest.raises(ZerocopyError) as caught:
        DuckDBAdapter.check_credential(settings, {})
    assert caught.value.code == errors.INVALID_CREDENTIAL
    assert caught.value.details["field"] == field


def test_flags() -> None:
    assert DuckDBAdapter.SINGLE_WRITER_PROCESS is True
    assert DuckDBAdapter.SUPPORTS_SERVER_CANCEL is True
    assert DuckDBAdapter.MAX_CONCURRENT_QUERIES == 2
    assert not DuckDBAdapter.SECRET_FIELDS


async def test_large_result_streams_in_bounded_batches(warehouse_file: Path) -> None:
    table = temp_table_name(str(uuid.uuid4()))
    async with create_adapter("duckdb", _config(warehouse_file)) as adapter:
        result = await adapter.materialize(
            "SELECT 'u' || range AS external_user_id FROM range(300000)",
            table,
            deadline=anyio.current_time() + 30,
            tag=_tag(),
        )
        assert result.rows == 300_000
        sizes = [
            len(batch)
            async for batch in adapter.read_column(table, "external_user_id", batch_rows=10_000)
        ]
        await adapter.drop_table(table)
    assert sum(sizes) == 300_000
    assert max(sizes) <= 10_000 and len(sizes) >= 30


async def test_close_while_an_abandoned_statement_runs(warehouse_file: Path) -> None:
    """aclose() must not fail (nor hang) while a statement still runs on a cursor."""
    adapter = create_adapter("duckdb", _config(warehouse_file))
    handle = QueryHandle(table="zc_tmp_abandoned")
    sql = adapter.ctas_sql("zc_tmp_abandoned", SLOW_SQL, _tag())
    errors_seen: list[BaseException] = []

    def run() -> None:
        try:
            adapter._execute_ctas(sql, handle, 60, _tag())
        except BaseException as exc:
            errors_seen.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    while handle.native is None or not handle.native.executing:  # noqa: ASYNC110 (a thread sets it)
        await anyio.sleep(0.02)
    with anyio.fail_after(5):
        await adapter.aclose()
    await anyio.to_thread.run_sync(adapter._cancel, handle)
    await anyio.to_thread.run_sync(thread.join, 5)
    assert not thread.is_alive()
    assert [getattr(e, "code", None) for e in errors_seen] == [errors.CANCELLED]


async def test_aware_watermarks_compare_in_utc(warehouse_file: Path) -> None:
    warehouse = build(users=50, only=["users_attributes_sync"])
    load_duckdb(warehouse_file, SCHEMA, warehouse)
    naive = dt.datetime(2024, 1, 1, 0, 10)
    aware = dt.datetime(2024, 1, 1, 2, 10, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    stamps = warehouse.table("users_attributes_sync").data.column("UPDATED_AT").to_pylist()
    expected = sum(1 for s in stamps if s >= naive)
    assert 0 < expected < len(stamps)
    # Same process, default config: this shares the adapter's database instance, and its
    # global time zone is not UTC (as on a host set to New York).
    holder = duckdb.connect(str(warehouse_file))
    holder.execute("SET GLOBAL TimeZone = 'America/New_York'")
    async with create_adapter("duckdb", _config(warehouse_file)) as adapter:
        for value in (naive, aware):
            n = 0
            async for batch in adapter.read_incremental(
                "users_attributes_sync", Watermark(value), batch_rows=1000
            ):
                n += batch.num_rows
            assert n == expected, value
    holder.close()


async def test_source_connection_cannot_read_files_even_past_the_sql_check(
    warehouse_file: Path, tmp_path: Path
) -> None:
    """Defence in depth: the SQL check refuses ``read_csv``; the connection refuses it too."""
    secret = tmp_path / "secret.csv"
    secret.write_text("external_user_id\nstolen\n")
    table = temp_table_name(str(uuid.uuid4()))
    async with create_adapter("duckdb", _config(warehouse_file)) as adapter:
        with pytest.raises(ZerocopyError) as info:
            await adapter.materialize(
                f"SELECT external_user_id FROM read_csv('{secret}')",
                table,
                deadline=anyio.current_time() + 30,
                tag=_tag(),
            )
        await adapter.drop_table(table)
    assert info.value.code == errors.WAREHOUSE_ERROR
    assert "cannot access file" in info.value.message.lower()
