"""The DuckDB incremental read in ranges of ``UPDATED_AT``: the same rows in the same order as
one ``WHERE col >= :watermark ORDER BY col``, with no sorted statement larger than a range.

A single ``ORDER BY`` holds the whole result in DuckDB's memory until its last row is fetched
(peak RSS grew with the rows read); the adapter now reads consecutive ranges ``lo <= col <
hi`` of at most ``READ_CHUNK_ROWS`` rows (or ``READ_CHUNK_BYTES``), each sorted on its own.
A batch never spans two statements, so "every batch fits a range" is checked on the batches.
The bounds are quantiles of a sample of the column; these tables are smaller than the sample,
so the bounds are exact and the checks deterministic.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import anyio
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dialects.duckdb import DuckDBAdapter
from dialects.protocol import ConnectionConfig, Scope, Watermark
from zerocopy import errors
from zerocopy.errors import ZerocopyError

pytestmark = pytest.mark.anyio

# Values of each type: with ties (each value repeated) that straddle range ends, NULLs, and
# values whose Python form loses precision (nanoseconds, infinity).
VALUE_SQL = {
    "TIMESTAMP": "TIMESTAMP '2026-01-01' + (i // 3) * INTERVAL 1 SECOND",
    "TIMESTAMPTZ": "TIMESTAMPTZ '2026-01-01 05:00:00+05' + (i // 3) * INTERVAL 1 MINUTE",
    "TIMESTAMP_NS": "TIMESTAMP_NS '2026-01-01 00:00:00.000000001' + (i // 3) * INTERVAL 1 SECOND",
    "VARCHAR": "CAST(TIMESTAMP '2026-01-01' + (i // 3) * INTERVAL 1 SECOND AS VARCHAR)",
    "DATE": "DATE '2026-01-01' + CAST(i // 3 AS INTEGER)",
}


def _config(path: Path) -> ConnectionConfig:
    return ConnectionConfig({"path": str(path)}, {}, Scope.parse("main"))


def _make(path: Path, kind: str, rows: int, extra: str = "") -> None:
    with duckdb.connect(str(path)) as con:
        con.execute(
            f"CREATE TABLE t AS SELECT CASE WHEN i % 17 = 5 THEN NULL ELSE "
            f"CAST({VALUE_SQL[kind]} AS {kind}) END AS updated_at, i AS id, "
            f"'p' || i AS payload FROM range({rows}) r(i) ORDER BY hash(i)"
        )
        if extra:
            con.execute(extra)


def _single_statement(path: Path, where: str, params: list[Any]) -> pa.Table:
    """What one ``ORDER BY`` returns (the reference), as Arrow (nanoseconds kept)."""
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(
            f"SELECT * FROM t {where} ORDER BY updated_at", params=params or None
        ).to_arrow_table()


async def _read(
    path: Path, watermark: Watermark, batch_rows: int = 1000
) -> tuple[pa.Table, list[pa.RecordBatch]]:
    batches = []
    async with DuckDBAdapter(_config(path)) as adapter:
        async for batch in adapter.read_incremental("t", watermark, batch_rows=batch_rows):
            batches.append(batch)
    return pa.Table.from_batches(batches), batches


def _assert_same_read(got: pa.Table, want: pa.Table) -> None:
    """Same rows, same order of ``updated_at`` (rows tied on it come in any order, as in SQL)."""
    assert got.num_rows == want.num_rows
    assert got.column("updated_at").equals(want.column("updated_at"))
    keys = [("updated_at", "ascending"), ("id", "ascending")]
    assert got.sort_by(keys).equals(want.sort_by(keys))


def _assert_ranges(batches: list[pa.RecordBatch], limit: int) -> None:
    """Each batch comes from one range: besides its largest group of rows tied on one value
    (never split), at most twice ``limit`` rows (the bounds are quantiles: a range holds its
    size plus the ties at its ends)."""
    for batch in batches:
        counts = pc.value_counts(batch.column("updated_at")).field("counts")
        largest = pc.max(counts).as_py() or 0
        assert batch.num_rows - largest <= 2 * limit, (batch.num_rows, largest)


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(DuckDBAdapter, "READ_CHUNK_ROWS", 7, raising=False)
    return 7


@pytest.mark.parametrize("kind", sorted(VALUE_SQL))
async def test_ranged_read_returns_the_single_statements_rows_in_order(
    tmp_path: Path, kind: str, small_ranges: int
) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.duckdb"
    _make(path, kind, 400)
    # First run (no watermark): every row, NULLs last.
    got, batches = await _read(path, Watermark(None, column="updated_at"))
    want = _single_statement(path, "", [])
    assert want.num_rows == 400
    assert got.column("updated_at")[-1].as_py() is None  # NULLs last
    _assert_same_read(got, want)
    _assert_ranges(batches, small_ranges)
    assert len(batches) > 400 // small_ranges // 2  # it was read in ranges

    if kind == "VARCHAR":
        return  # a text UPDATED_AT is always read whole (the engine filters after parsing)
    # Later runs: from a watermark on (inclusive), no NULLs; a watermark of a tied value.
    start = dt.datetime(2026, 1, 1, 0, 1, 3)
    if kind == "DATE":
        start = dt.datetime(2026, 2, 3)
    elif kind == "TIMESTAMPTZ":
        start = dt.datetime(2026, 1, 1, 1, 3, tzinfo=dt.UTC)
    got, batches = await _read(path, Watermark(start, column="updated_at"))
    want = _single_statement(path, "WHERE updated_at >= ?", [start])
    assert 0 < want.num_rows < 400
    _assert_same_read(got, want)
    _assert_ranges(batches, small_ranges)


async def test_a_value_shared_by_more_rows_than_a_range_is_read_whole(
    tmp_path: Path, small_ranges: int
) -> None:
    path = tmp_path / "ties.duckdb"
    _make(
        path,
        "TIMESTAMP",
        120,
        # 50 rows on one value, and infinities at both ends.
        "UPDATE t SET updated_at = TIMESTAMP '2026-01-01 00:00:10' WHERE id BETWEEN 30 AND 79; "
        "UPDATE t SET updated_at = 'infinity' WHERE id IN (100, 101); "
        "UPDATE t SET updated_at = '-infinity' WHERE id = 102",
    )
    got, batches = await _read(path, Watermark(None, column="updated_at"))
    _assert_same_read(got, _single_statement(path, "", []))
    _assert_ranges(batches, small_ranges)
    assert max(b.num_rows for b in batches) >= 50  # the tie, in one range


async def test_wide_rows_make_shorter_ranges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ranges are sized in bytes too: 20 kB rows with 200 kB a range are 10 rows a range."""
    monkeypatch.setattr(DuckDBAdapter, "READ_CHUNK_BYTES", 200_000, raising=False)
    path = tmp_path / "wide.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE t AS SELECT TIMESTAMP '2026-01-01' + i * INTERVAL 1 SECOND "
            "AS updated_at, i AS id, repeat(chr(CAST(65 + i % 26 AS INTEGER)), 20000) AS payload "
            "FROM range(300) r(i) ORDER BY hash(i)"
        )
    got, batches = await _read(path, Watermark(None, column="updated_at"))
    _assert_same_read(got, _single_statement(path, "", []))
    _assert_ranges(batches, 10)
    assert len(batches) >= 30


async def test_a_read_larger_than_a_range_of_the_default_size_returns_every_row(
    tmp_path: Path,
) -> None:
    """The defaults, on more rows than one range: every row, in order."""
    path = tmp_path / "big.duckdb"
    rows = DuckDBAdapter.READ_CHUNK_ROWS * 2 + 123
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE t AS SELECT TIMESTAMP '2026-01-01' + (i * 7919 % ?) "
            "* INTERVAL 1 MILLISECOND AS updated_at, i AS id FROM range(?) r(i)",
            [rows, rows],
        )
    seen = 0
    last: Any = None
    batches = 0
    async with DuckDBAdapter(_config(path)) as adapter:
        async for batch in adapter.read_incremental(
            "t", Watermark(None, column="updated_at"), batch_rows=50_000
        ):
            values = batch.column("updated_at")
            assert last is None or values[0].as_py() >= last
            assert values.to_pylist() == sorted(values.to_pylist())
            last = values[-1].as_py()
            seen += batch.num_rows
            batches += 1
    assert seen == rows
    assert batches >= 3


async def test_closing_the_adapter_between_two_ranges_stops_the_read(
    tmp_path: Path, small_ranges: int
) -> None:
    path = tmp_path / "close.duckdb"
    _make(path, "TIMESTAMP", 100)
    adapter = DuckDBAdapter(_config(path))
    reading = adapter.read_incremental("t", Watermark(None, column="updated_at"), batch_rows=100)
    first = await reading.__anext__()
    assert first.num_rows <= small_ranges
    await adapter.aclose()
    with pytest.raises(ZerocopyError) as info, anyio.fail_after(10):
        async for _ in reading:
            pass
    assert info.value.code == errors.CANCELLED


async def test_a_view_is_read_in_ranges_like_a_table(tmp_path: Path, small_ranges: int) -> None:
    path = tmp_path / "view.duckdb"
    _make(path, "TIMESTAMP", 200, "CREATE VIEW v AS SELECT * FROM t WHERE id % 3 <> 0")
    batches = []
    async with DuckDBAdapter(_config(path)) as adapter:
        async for batch in adapter.read_incremental(
            "v", Watermark(None, column="updated_at"), batch_rows=1000
        ):
            batches.append(batch)
    with duckdb.connect(str(path), read_only=True) as con:
        want = con.sql("SELECT * FROM v ORDER BY updated_at").to_arrow_table()
    _assert_same_read(pa.Table.from_batches(batches), want)
    _assert_ranges(batches, small_ranges)
