"""Every adapter, against its own local peer, through the adapter protocol only.

The ``target`` fixture is parametrised over ``KINDS`` (see conftest.py). Where a peer cannot
show a behaviour, the test id says ``peer_cannot_show_<capability>`` and the test checks only
our side of it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import anyio
import pytest
from sqlglot import exp

from dialects.base import TEMP_TABLE_PREFIX, BaseAdapter, temp_table_name
from dialects.protocol import QueryTag, Watermark
from tests.conformance.target import ConformanceTarget
from zerocopy import errors
from zerocopy.errors import ZerocopyError

pytestmark = pytest.mark.anyio

ID = "external_user_id"
MAX_RUNTIME_S = 1.5
EARLY_S = 0.25
"""Margin under the base's cancel grace: finishing earlier proves the statement came back."""


def _run() -> tuple[str, str, QueryTag]:
    run_id = str(uuid.uuid4())
    return run_id, temp_table_name(run_id), QueryTag(run_id=run_id, purpose="test")


def _ident(adapter: BaseAdapter, name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect=adapter.SQLGLOT_DIALECT)


def _subscribed_ids_sql(adapter: BaseAdapter) -> str:
    subscribed = _ident(adapter, "is_subscribed")
    return (
        f"SELECT DISTINCT {_ident(adapter, ID)} FROM {adapter.quote_table('users')} "
        f"WHERE {subscribed} = TRUE"
    )


def _expected_subscribed(target: ConformanceTarget) -> set[str]:
    rows = target.warehouse.table("users").data.to_pylist()
    return {r[ID] for r in rows if r["is_subscribed"]}


async def _temp_tables(adapter: BaseAdapter) -> list[str]:
    return await adapter.list_temp_tables(TEMP_TABLE_PREFIX)


# ------------------------------------------------------------------------------ catalog
async def test_connection_test_lists_exactly_the_scope(target: ConformanceTarget) -> None:
    async with target.adapter() as adapter:
        result = await adapter.test()
    listed = {t.name: t for t in result.tables}
    assert set(listed) == target.expected_tables
    assert result.elapsed_s >= 0
    for table in target.warehouse.tables:
        if table.name not in listed:
            continue
        info = listed[table.name]
        assert info.kind == "table"
        assert [c.name for c in info.columns] == table.column_names
        if "table_descriptions" in target.can_show:
            assert info.description == table.description
        if "column_descriptions" in target.can_show:
            assert {c.name: c.description for c in info.columns} == {
                c.name: c.description for c in table.columns
            }
    if "views" in target.can_show:
        for view in target.warehouse.views:
            assert listed[view.name].kind == "view"
            assert listed[view.name].columns, "a view lists its columns"
            if "table_descriptions" in target.can_show:
                assert listed[view.name].description == view.description


# ------------------------------------------------------------------------------ materialize
async def test_materialize_reads_ids_in_bounded_batches_and_drops_twice(
    target: ConformanceTarget,
) -> None:
    _, table, tag = _run()
    batch_rows = 7
    async with target.adapter() as adapter:
        try:
            result = await adapter.materialize(
                _subscribed_ids_sql(adapter),
                table,
                deadline=anyio.current_time() + 60,
                tag=tag,
            )
            assert result.table == table
            assert table in await _temp_tables(adapter)
            ids: list[Any] = []
            sizes: list[int] = []
            async for batch in adapter.read_column(table, ID, batch_rows=batch_rows):
                sizes.append(len(batch))
                ids.extend(batch.to_pylist())
            assert sizes and max(sizes) <= batch_rows
            assert len(sizes) > 1, "the result must come back in several batches"
            assert len(ids) == len(set(ids))
            assert {str(i) for i in ids} == _expected_subscribed(target)
            if result.rows is not None:
                assert result.rows == len(ids)
        finally:
            await adapter.drop_table(table)
        await adapter.drop_table(table)  # idempotent
        assert table not in await _temp_tables(adapter)
        assert table not in {t.name for t in await adapter.list_tables()}


ORDER_PROBE = ["b", "B", "a_1", "a1", "A", "aB", "ab", "Z9", "z", "0", "-x", "~"]
"""Ids whose byte order differs from any locale's (case, punctuation, digits)."""


async def test_ordered_read_returns_ids_in_byte_order_where_promised(
    target: ConformanceTarget,
) -> None:
    """``read_column(ordered=True)``: byte-wise order where ``ID_ORDER`` promises it."""
    _, table, tag = _run()
    async with target.adapter() as adapter:
        col = _ident(adapter, ID)
        sql = " UNION ALL ".join(f"SELECT '{v}' AS {col}" for v in ORDER_PROBE)
        try:
            await adapter.materialize(sql, table, deadline=anyio.current_time() + 60, tag=tag)
            ids: list[str] = []
            async for batch in adapter.read_column(table, ID, batch_rows=5, ordered=True):
                ids.extend(str(v) for v in batch.to_pylist())
        finally:
            await adapter.drop_table(table)
    if type(adapter).ID_ORDER is None:
        assert sorted(ids) == sorted(ORDER_PROBE)
    else:
        assert ids == sorted(ORDER_PROBE, key=lambda v: v.encode())


async def test_two_materializations_run_at_once(target: ConformanceTarget) -> None:
    runs = [_run(), _run()]
    async with target.adapter() as adapter:
        try:

            async def materialize(table: str, tag: QueryTag) -> None:
                await adapter.materialize(
                    _subscribed_ids_sql(adapter),
                    table,
                    deadline=anyio.current_time() + 60,
                    tag=tag,
                )

            async with anyio.create_task_group() as tg:
                for _, table, tag in runs:
                    tg.start_soon(materialize, table, tag)
            assert {t for _, t, _ in runs} <= set(await _temp_tables(adapter))
        finally:
            for _, table, _ in runs:
                await adapter.drop_table(table)


# ------------------------------------------------------------------------------ deadline
@pytest.mark.capability("server_cancel")
async def test_deadline_ends_timed_out_and_leaves_nothing(target: ConformanceTarget) -> None:
    _, table, tag = _run()
    async with target.adapter(max_runtime_s=MAX_RUNTIME_S) as adapter:
        started = anyio.current_time()
        try:
            with pytest.raises(ZerocopyError) as caught:
                await adapter.materialize(
                    target.slow_sql, table, deadline=started + MAX_RUNTIME_S, tag=tag
                )
            elapsed = anyio.current_time() - started
            assert caught.value.code == errors.TIMED_OUT
            assert elapsed < MAX_RUNTIME_S + 2
            if "server_cancel" in target.can_show:
                # The base waits up to CANCEL_GRACE_S for the statement to come back:
                # returning well before that proves the peer really stopped it.
                assert elapsed < MAX_RUNTIME_S + adapter.CANCEL_GRACE_S - EARLY_S
                assert table not in await _temp_tables(adapter)
        finally:
            if "server_cancel" not in target.can_show:
                await adapter.drop_table(table)  # what the engine does in every outcome
        assert table not in await _temp_tables(adapter)


@pytest.mark.capability("server_timeout")
async def test_server_timeout_alone_stops_the_query(target: ConformanceTarget) -> None:
    """Without our watchdog (hook called directly), the peer's own timeout stops the query."""
    _, table, tag = _run()
    async with target.adapter(max_runtime_s=MAX_RUNTIME_S) as adapter:
        if "server_timeout" not in target.can_show:
            # Our side: the watchdog alone still ends the run timed_out.
            with pytest.raises(ZerocopyError) as caught:
                await adapter.materialize(
                    target.slow_sql, table, deadline=anyio.current_time() + 1.0, tag=tag
                )
            assert caught.value.code == errors.TIMED_OUT
            await adapter.drop_table(table)
            return
        from dialects.protocol import QueryHandle

        sql = adapter.ctas_sql(table, target.slow_sql, tag)
        handle = QueryHandle(table=table)
        started = anyio.current_time()

        def run() -> BaseException | None:
            try:
                adapter._execute_ctas(sql, handle, 1.0, tag)
            except BaseException as exc:
                return exc
            return None

        with anyio.fail_after(1.0 + 5):
            exc = await anyio.to_thread.run_sync(run)
        elapsed = anyio.current_time() - started
        assert exc is not None, "the slow query finished instead of timing out"
        assert adapter.map_error(exc).code == errors.TIMED_OUT, exc
        assert elapsed < 1.0 + 2
        assert table not in await _temp_tables(adapter)


# ------------------------------------------------------------------------------ cancel
@pytest.mark.capability("server_cancel")
async def test_user_cancel_stops_the_query_and_leaves_nothing(target: ConformanceTarget) -> None:
    _, table, tag = _run()
    outcome: dict[str, Any] = {}
    async with target.adapter() as adapter:

        async def refresh() -> None:
            try:
                await adapter.materialize(
                    target.slow_sql, table, deadline=anyio.current_time() + 60, tag=tag
                )
                outcome["finished"] = True
            except anyio.get_cancelled_exc_class():
                outcome["cancelled"] = True
                raise
            except BaseException as exc:
                outcome["error"] = exc
                raise

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(refresh)
                await anyio.sleep(1.0)  # the statement is running in the peer by now
                cancelled_at = anyio.current_time()
                tg.cancel_scope.cancel()
            elapsed = anyio.current_time() - cancelled_at
            assert outcome == {"cancelled": True}
            assert elapsed < 2
            if "server_cancel" in target.can_show:
                assert elapsed < adapter.CANCEL_GRACE_S - EARLY_S, "the peer kept running it"
                assert table not in await _temp_tables(adapter)
        finally:
            if "server_cancel" not in target.can_show:
                await adapter.drop_table(table)
        assert table not in await _temp_tables(adapter)


# ------------------------------------------------------------------------------ errors
async def test_failures_map_to_stable_codes(target: ConformanceTarget, error_code: str) -> None:
    """``error_code`` comes from ERROR_CODES (conftest): one case per code and kind."""
    code = error_code
    if code not in target.can_show:
        # Peer cannot show it: the target must not claim a provoking config either.
        assert code not in target.broken, f"{target.kind}: broken[{code!r}] but not in can_show"
        assert code in errors.__dict__.values()
        return
    _, table, tag = _run()
    async with target.adapter(config=target.broken[code]) as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.test()
            # Grants show at a CTAS, not at connect (e.g. no CREATE TABLE on the schema).
            try:
                await adapter.materialize(
                    _subscribed_ids_sql(adapter),
                    table,
                    deadline=anyio.current_time() + 30,
                    tag=tag,
                )
            finally:
                async with target.adapter() as cleaner:
                    await cleaner.drop_table(table)
    assert caught.value.code == code, caught.value
    assert caught.value.message
    assert target.kind in caught.value.details.get("warehouse", target.kind)


async def test_warehouse_error_carries_the_warehouse_message(target: ConformanceTarget) -> None:
    _, table, tag = _run()
    async with target.adapter() as adapter:
        missing = adapter.quote_table("zc_no_such_table")
        with pytest.raises(ZerocopyError) as caught:
            await adapter.materialize(
                f"SELECT {_ident(adapter, ID)} FROM {missing}",
                table,
                deadline=anyio.current_time() + 30,
                tag=tag,
            )
        assert caught.value.code == errors.WAREHOUSE_ERROR
        assert "zc_no_such_table" in caught.value.message
        assert table not in await _temp_tables(adapter)


# ------------------------------------------------------------------------------ incremental
def _naive_utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


async def test_incremental_read_repeats_ties_at_the_inclusive_boundary(
    target: ConformanceTarget,
) -> None:
    rows = target.warehouse.table("users_attributes_sync").data.to_pylist()
    stamps = [r["UPDATED_AT"] for r in rows]
    # A boundary value shared by several rows: the previous run stopped inside this tie.
    boundary = next(s for s in stamps[len(stamps) // 3 :] if stamps.count(s) > 1)
    expected = sorted((r["UPDATED_AT"], r["PAYLOAD"]) for r in rows if r["UPDATED_AT"] >= boundary)
    assert sum(1 for s, _ in expected if s == boundary) > 1
    batch_rows = 16
    got: list[tuple[Any, Any]] = []
    async with target.adapter() as adapter:
        async for batch in adapter.read_incremental(
            "users_attributes_sync",
            Watermark(value=boundary, column="UPDATED_AT"),
            batch_rows=batch_rows,
            columns=["UPDATED_AT", "PAYLOAD"],
        ):
            assert batch.num_rows <= batch_rows
            assert batch.schema.names == ["UPDATED_AT", "PAYLOAD"]
            got.extend((_naive_utc(r["UPDATED_AT"]), r["PAYLOAD"]) for r in batch.to_pylist())
        assert [s for s, _ in got] == sorted(s for s, _ in got), "ordered by the watermark"
        assert sorted(got) == expected

        everything = 0
        async for batch in adapter.read_incremental(
            "users_attributes_sync", Watermark(value=None), batch_rows=batch_rows
        ):
            assert batch.num_rows <= batch_rows
            everything += batch.num_rows
        assert everything == len(rows)
