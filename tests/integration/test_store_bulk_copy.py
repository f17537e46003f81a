"""The built-in store's bulk paths for columnar ``user_attributes`` batches, on both backends:
a first load (every row creates its profile) written in pieces and in profile-id order keeps
every row's own id, braze id, external id, attributes and time."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa

from tests.integration.state_fixtures import db_fixture  # noqa: F401
from tests.integration.test_sync_store import workspace_and_sync
from zerocopy.destinations import builtin
from zerocopy.destinations.builtin import BuiltinStore
from zerocopy.destinations.protocol import DeliveryBatch
from zerocopy.state.db import Database
from zerocopy.state.sync_models import StoreProfile, braze_id_of, profile_id_of_external
from zerocopy.sync.types import AttributeRows, DataType
from zerocopy.sync.watermark import WatermarkState, to_micros

pytestmark = pytest.mark.anyio

T0 = to_micros(datetime(2026, 3, 1, tzinfo=UTC))


def _batch(ws: str, sync_id: str, columns: AttributeRows) -> DeliveryBatch:
    """A first-load batch of ``columns`` (no watermark yet)."""
    return DeliveryBatch(
        workspace_id=ws,
        sync_id=sync_id,
        run_id="r",
        data_type=DataType.USER_ATTRIBUTES,
        rows=[],
        watermark=WatermarkState(value=None, seen={}),
        columns=columns,
    )


def _columns(n: int) -> tuple[AttributeRows, list[str], list[str]]:
    """``n`` rows of distinct external ids (some needing COPY escapes), no nulls."""
    ext = [f"u{i}" if i % 997 else f"tab\t{i}\\back" for i in range(n)]
    payloads = [
        json.dumps({"plan": ("gold", "silver")[i % 2], "score": i, "line": "a\\nb" * (i % 3)})
        for i in range(n)
    ]
    columns = AttributeRows(
        positions=np.arange(n, dtype=np.int64),
        hashes=[f"h{i}" for i in range(n)],
        updated_us=np.arange(T0, T0 + n, dtype=np.int64),
        external_ids=pa.array(ext, pa.string()),
        payloads=pa.array(payloads, pa.string()),
    )
    return columns, ext, payloads


async def test_first_load_in_pieces_keeps_every_rows_own_profile(db: Database) -> None:
    n = 2 * builtin.COPY_PIECE_ROWS + 1234  # three pieces, the last one short
    ws, sync_id = await workspace_and_sync(db)
    columns, ext, payloads = _columns(n)
    store = BuiltinStore(db)
    result = await store.deliver(_batch(ws, sync_id, columns))
    assert (result.accepted, result.delivered, result.rejections) == (True, n, [])
    async with db.session() as s:
        found = (
            await s.execute(
                sa.select(
                    StoreProfile.external_id,
                    StoreProfile.id,
                    StoreProfile.braze_id,
                    StoreProfile.attributes,
                    StoreProfile.updated_at,
                ).where(StoreProfile.workspace_id == ws)
            )
        ).all()
    stored = {e: (pid, braze, attrs, to_micros(upd)) for e, pid, braze, attrs, upd in found}
    assert len(found) == len(stored) == n
    for i, (e, text) in enumerate(zip(ext, payloads, strict=True)):
        pid = profile_id_of_external(ws, e)
        assert stored[e] == (pid, braze_id_of(pid), json.loads(text), T0 + i), e


async def _analyzed(db: Database) -> tuple[int, float]:
    """(times store_profile was analyzed, the row count its statistics hold)."""
    async with db.engine.connect() as conn:
        count = await conn.scalar(
            sa.text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'store_profile'")
        )
        tuples = await conn.scalar(
            sa.text("SELECT reltuples FROM pg_class WHERE relname = 'store_profile'")
        )
    return int(count or 0), float(tuples or 0)


async def test_statistics_refreshed_when_planned_against_and_at_the_end(db: Database) -> None:
    """PostgreSQL: a first load that only copies new profiles in is analyzed once, at the end
    of the run (the store's close); a batch that looks profiles up is preceded by it."""
    if not db.is_postgres:
        return  # SQLite keeps no statistics here
    ws, sync_id = await workspace_and_sync(db)
    n = BuiltinStore.ANALYZE_FIRST_AFTER_ROWS + 1000
    columns, _ext, _payloads = _columns(n)

    store = BuiltinStore(db)
    await store.deliver(_batch(ws, sync_id, columns.slice(0, n // 2)))
    await store.deliver(_batch(ws, sync_id, columns.slice(n // 2, n)))
    assert (await _analyzed(db))[0] == 0  # nothing planned against the profiles yet
    await store.aclose()
    count, tuples = await _analyzed(db)
    assert (count, tuples) == (1, n)
    await store.aclose()  # nothing new since: not again
    assert (await _analyzed(db))[0] == 1

    # A store that meets existing profiles merges them through planned statements: the
    # statistics due are refreshed before such a batch.
    again = BuiltinStore(db)
    more, _e, _p = _columns(2 * n)
    await again.deliver(_batch(ws, sync_id, more.slice(n, 2 * n)))  # new profiles only: copied in
    assert (await _analyzed(db))[0] == 1
    await again.deliver(
        _batch(ws, sync_id, more.slice(0, n))
    )  # existing: the copy backs off, staged
    assert (await _analyzed(db))[0] == 1  # the COPY was tried first: nothing due before it
    await again.deliver(_batch(ws, sync_id, more.slice(0, 10)))
    count, tuples = await _analyzed(db)
    assert (count, tuples) == (2, 2 * n)
