"""store_profile keeps one profile per (workspace, external id) through its primary key alone.

Migration 0008 dropped the unique ``(workspace_id, external_id)`` index: a profile created by
an external id has the id derived from the workspace and that external id, so the primary
key already refuses a second one, and lookups by external id go through it. On SQLite and
PostgreSQL: the index is gone (and comes back on downgrade, with the data kept), external
ids stay case- and space-exact on every write path and in the profile lookup, and the
database itself refuses a second profile for an external id.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tests.integration.state_fixtures import db_fixture  # noqa: F401
from tests.integration.test_sync_store import (
    T,
    _source_batch,
    _store_rows,
    deliver,
    rows,
    workspace_and_sync,
)
from zerocopy.destinations.builtin import BuiltinStore
from zerocopy.destinations.protocol import DeliveryBatch
from zerocopy.errors import ZerocopyError
from zerocopy.services.profiles import find_profile
from zerocopy.state.db import Database
from zerocopy.state.sync_models import StoreProfile, braze_id_of, profile_id_of_external
from zerocopy.sync.types import DataType
from zerocopy.sync.validate import attribute_columns, row_hashes, updated_micros
from zerocopy.sync.watermark import WatermarkState

pytestmark = pytest.mark.anyio

A = DataType.USER_ATTRIBUTES
CASES = ["abc", "ABC", "Abc", "ab c", "é", "É"]
"""External ids that differ only by case or spacing inside: each its own profile."""


async def _unique_keys(db: Database) -> list[tuple[str, ...]]:
    """Column tuples of store_profile's primary key, unique constraints and unique indexes."""

    def inspect(conn: Any) -> list[tuple[str, ...]]:
        insp = sa.inspect(conn)
        keys = [tuple(insp.get_pk_constraint("store_profile")["constrained_columns"])]
        keys += [tuple(u["column_names"]) for u in insp.get_unique_constraints("store_profile")]
        keys += [
            tuple(str(c) for c in i["column_names"])
            for i in insp.get_indexes("store_profile")
            if i["unique"]
        ]
        return sorted(set(keys))

    async with db.engine.connect() as conn:
        return await conn.run_sync(inspect)


async def test_only_the_primary_key_is_unique_and_downgrade_restores_the_index(
    db: Database,
) -> None:
    assert await _unique_keys(db) == [("id",)]
    ws, sync_id = await workspace_and_sync(db)
    await deliver(db, ws, sync_id, A, rows(A, {"EXTERNAL_ID": "u1", "PAYLOAD": '{"a": 1}'}))
    before = await _store_rows(db, ws)
    await db.downgrade("0007")
    assert await _unique_keys(db) == [("id",), ("workspace_id", "external_id")]
    assert await _store_rows(db, ws) == before
    await db.upgrade()
    assert await _unique_keys(db) == [("id",)]
    assert await _store_rows(db, ws) == before


async def test_the_primary_key_refuses_a_second_profile_for_an_external_id(db: Database) -> None:
    ws, sync_id = await workspace_and_sync(db)
    await deliver(db, ws, sync_id, A, rows(A, {"EXTERNAL_ID": "u1", "PAYLOAD": '{"a": 1}'}))
    pid = profile_id_of_external(ws, "u1")
    async with db.session() as s:
        (stored,) = (await s.scalars(sa.select(StoreProfile.id))).all()
    assert stored == pid
    with pytest.raises(IntegrityError):
        async with db.transaction() as s:
            s.add(
                StoreProfile(
                    id=pid,
                    workspace_id=ws,
                    external_id="u1",
                    braze_id=braze_id_of(pid),
                    attributes={},
                    updated_at=T,
                )
            )


async def _columnar(db: Database, ws: str, sync_id: str, specs: list[tuple[str, str]]) -> None:
    batch = _source_batch(list(specs), list(range(len(specs))))
    fast = attribute_columns(
        batch,
        start_position=0,
        hashes=row_hashes(batch),
        updated_us=updated_micros(batch.column("UPDATED_AT")),
    )
    assert fast is not None and not fast[1]
    result = await BuiltinStore(db).deliver(
        DeliveryBatch(
            workspace_id=ws,
            sync_id=sync_id,
            run_id="r",
            data_type=A,
            rows=[],
            watermark=WatermarkState(value=T, seen={}),
            columns=fast[0],
        )
    )
    assert (result.accepted, result.delivered) == (True, len(specs))


@pytest.mark.parametrize("columnar", [False, True], ids=["rows", "columns"])
async def test_external_ids_are_exact_on_every_write_path_and_in_the_lookup(
    db: Database, columnar: bool
) -> None:
    ws, sync_id = await workspace_and_sync(db)
    first = [(e, f'{{"v": {i}}}') for i, e in enumerate(CASES)]
    # Again, each id in its own later batch: merged into its profile, never a second one
    # (the second pass meets existing profiles: the columnar path's upsert, not its COPY).
    again = [(e, f'{{"w": {i}, "v": null}}') for i, e in enumerate(CASES)]
    for batch in (first, again):
        if columnar:
            await _columnar(db, ws, sync_id, batch)
        else:
            specs = [{"EXTERNAL_ID": e, "PAYLOAD": p} for e, p in batch]
            await deliver(db, ws, sync_id, A, rows(A, *specs))
    stored = await _store_rows(db, ws)
    assert sorted(r[0] for r in stored) == sorted(CASES)
    async with db.session() as s:
        for i, ext in enumerate(CASES):
            found = await find_profile(s, ws, external_id=ext)
            assert (found["id"], found["external_id"]) == (profile_id_of_external(ws, ext), ext)
            assert found["attributes"] == {"w": i}
        for missing in ("abc ", " abc", "ABc", "e\u0301"):  # no trimming, no folding
            with pytest.raises(ZerocopyError) as info:
                await find_profile(s, ws, external_id=missing)
            assert info.value.code == "not_found"
        other, _ = await workspace_and_sync(db)
        with pytest.raises(ZerocopyError):
            await find_profile(s, other, external_id="abc")  # another workspace's id
