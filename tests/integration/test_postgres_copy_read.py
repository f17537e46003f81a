"""PostgreSQL incremental reads through ``COPY … TO STDOUT`` (CSV parsed by Arrow) give the
same batches as the cursor path, value for value and type for type, on awkward values.

Both paths are the adapter's own, run against the local server: the COPY path for tables
whose columns are all of a type it takes, the cursor path (forced by one column of another
type, or read directly) for comparison.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from dialects import postgres as pg_dialect
from dialects.pglike import rows_batch
from dialects.postgres import PostgresAdapter
from dialects.protocol import ConnectionConfig, Scope, Watermark
from tests.support import postgres_credential_settings
from zerocopy.errors import ZerocopyError

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

COLUMNS = [
    "updated_at",
    "ext",
    "payload",
    "doc",
    "pad",
    "n16",
    "n32",
    "n64",
    "flag",
    "day",
    "naive",
]

ROWS = """
INSERT INTO t VALUES
 ('2026-01-01 00:00:00+00', 'u1', '{"a": 1}', '{"b": [1, 2]}', 'x', 1, 2, 3, true,
  '2026-01-01', '2026-01-01 10:00:00.123456'),
 ('2026-01-01 00:00:00.000001+05:30', '', '', '{}', '', -1, -2, -3, false,
  '1999-12-31', '0001-01-01 00:00:00'),
 ('2026-01-01 00:00:00.5+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 ('2026-01-02 00:00:00+00', 'NULL', 'NA', '"null"', 'N/A', 32767, 2147483647,
  9223372036854775807, true, '9999-12-31', '9999-12-31 23:59:59.999999'),
 ('2026-01-02 00:00:00+00', ' lead and trail ', E'a,b\\n"c"\\r\\nd\\te', '{"k": "v,\\"q\\""}',
  'ab', 0, 0, 0, false, '2026-01-02', '2026-01-02 00:00:00'),
 ('2026-01-03 00:00:00+00', E'\\\\.', 'é ✓ \U0001f600', '[1, {"x": null}]', '\\.', 1, 1, 1,
  true, '2026-01-03', '2026-01-03 00:00:00'),
 ('infinity', 'inf', 'x', '1', 'x', 1, 1, 1, true, '2026-01-04', '2026-01-04 00:00:00'),
 (NULL, 'nullts', 'x', '2', 'x', 1, 1, 1, true, '2026-01-05', '2026-01-05 00:00:00')
"""


@pytest.fixture
def source(postgres_url: str) -> Iterator[str]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE t (updated_at timestamptz, ext text, payload varchar(200), "
            "doc jsonb, pad char(3), n16 smallint, n32 integer, n64 bigint, flag boolean, "
            "day date, naive timestamp, other numeric)"
        )
        conn.execute(ROWS)
        # A session time zone and date style the COPY's text forms must not depend on.
        db = f'"{conn.info.dbname}"'
        conn.execute(f"ALTER DATABASE {db} SET TimeZone TO 'Asia/Kolkata'")
        conn.execute(f"ALTER DATABASE {db} SET DateStyle TO 'ISO, DMY'")
    yield postgres_url


def adapter(url: str) -> PostgresAdapter:
    return PostgresAdapter(
        ConnectionConfig(
            settings=postgres_credential_settings(url), secrets={}, scope=Scope(schema="public")
        )
    )


async def read(a: PostgresAdapter, watermark: Watermark, columns: list[str], rows: int) -> Any:
    batches = [
        b async for b in a.read_incremental("t", watermark, batch_rows=rows, columns=columns)
    ]
    return batches


def cursor_read(a: PostgresAdapter, watermark: Watermark, columns: list[str], rows: int) -> Any:
    """The cursor path, as the adapter runs it for columns COPY does not take."""
    sql, params = a._incremental_query("t", watermark, columns)
    with a._session() as conn:
        return [rows_batch(d, r) for d, r in a._stream(conn, sql, params, rows)]


@pytest.mark.parametrize("batch_rows", [1, 3, 50_000])
@pytest.mark.parametrize(
    "start", [None, datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)], ids=["all", "from"]
)
async def test_copy_batches_equal_the_cursor_path(
    source: str, batch_rows: int, start: datetime | None
) -> None:
    a = adapter(source)
    try:
        for watermark in (
            Watermark(start, "updated_at"),
            Watermark(None, "updated_at", nulls_only=True),
        ):
            via_copy = await read(a, watermark, COLUMNS, batch_rows)
            via_cursor = cursor_read(a, watermark, COLUMNS, batch_rows)
            assert [b.num_rows for b in via_copy] == [b.num_rows for b in via_cursor]
            assert [b.schema for b in via_copy] == [b.schema for b in via_cursor]
            assert [b.to_pylist() for b in via_copy] == [b.to_pylist() for b in via_cursor]
            assert via_copy, "the table has rows on both sides of the watermark"
        # The session the COPY ran on went back to the pool usable, in its own settings.
        with a._session() as conn:
            assert conn.execute("SHOW TimeZone").fetchone() == ("Asia/Kolkata",)
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    finally:
        await a.aclose()


async def test_copy_reads_awkward_text_exactly(source: str) -> None:
    a = adapter(source)
    try:
        (batch,) = await read(a, Watermark(None, "updated_at"), ["updated_at", "ext"], 100)
    finally:
        await a.aclose()
    assert batch.schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
    got = batch.to_pydict()
    ext, stamps = got["ext"], got["updated_at"]
    assert ext[:3] == ["", "u1", None]  # an empty string is not NULL
    assert sorted(ext[3:5]) == [" lead and trail ", "NULL"]  # a tie: either order
    assert ext[5:] == ["\\.", "inf", "nullts"]
    assert stamps[:3] == [
        datetime(2025, 12, 31, 18, 30, 0, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC),
    ]
    # 'infinity' reads as NULL, as on the cursor path (it sorts before the NULL row).
    assert stamps[6:] == [None, None]


async def test_other_column_types_take_the_cursor_path(source: str) -> None:
    a = adapter(source)
    try:
        with a._session() as conn:
            sql, params = a._incremental_query("t", Watermark(None, "updated_at"), ["other"])
            assert pg_dialect._copy_description(conn, sql, params) is None
            sql, params = a._incremental_query("t", Watermark(None, "updated_at"), COLUMNS)
            assert pg_dialect._copy_description(conn, sql, params) is not None
        batches = await read(a, Watermark(None, "updated_at"), ["updated_at", "other"], 100)
    finally:
        await a.aclose()
    assert sum(b.num_rows for b in batches) == 8


async def test_a_failing_copy_is_the_driver_error_and_the_session_is_not_reused(
    source: str,
) -> None:
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE big AS SELECT i AS k, now() AS updated_at FROM generate_series(1, 10) i"
        )
        conn.execute("CREATE VIEW boom AS SELECT updated_at, (1 / (k - 7))::text AS v FROM big")
    a = adapter(source)
    try:
        with pytest.raises(ZerocopyError) as info:
            async for _ in a.read_incremental(
                "boom", Watermark(None, "updated_at"), batch_rows=2, columns=["updated_at", "v"]
            ):
                pass
        assert "division by zero" in info.value.message
        # The pool holds no session that saw the error; the next read works.
        assert all(not c.closed for c in a._idle)
        rows = [b async for b in a.read_incremental("big", Watermark(None, "updated_at"))]
        assert sum(b.num_rows for b in rows) == 10
    finally:
        await a.aclose()
