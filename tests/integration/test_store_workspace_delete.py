"""Deleting a workspace removes its profile store rows (no foreign key cascades to them), on
SQLite and PostgreSQL, and leaves other workspaces' rows alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from tests.integration.state_fixtures import db_fixture, make_segment  # noqa: F401
from tests.integration.test_sync_store import T, deliver, rows, workspace_and_sync
from zerocopy.errors import ZerocopyError
from zerocopy.services import workspaces
from zerocopy.state.db import Database
from zerocopy.state.models import Workspace
from zerocopy.state.sync_models import (
    StoreAccount,
    StoreAlias,
    StoreCatalogItem,
    StoreEvent,
    StoreProfile,
    StorePurchase,
    Sync,
)
from zerocopy.sync.types import DataType, ValidRow
from zerocopy.sync.validate import validate_batch

pytestmark = pytest.mark.anyio

STORE = (StoreProfile, StoreAlias, StoreEvent, StorePurchase, StoreCatalogItem, StoreAccount)


def keyed(data_type: DataType, *specs: dict[str, Any]) -> list[ValidRow]:
    names = sorted({k for spec in specs for k in spec})
    data: dict[str, list[Any]] = {c: [s.get(c) for s in specs] for c in names}
    data["UPDATED_AT"] = [T + timedelta(minutes=i) for i in range(len(specs))]
    verdicts = validate_batch(data_type, pa.RecordBatch.from_pydict(data), start_position=0)
    assert all(isinstance(v, ValidRow) for v in verdicts), verdicts
    return [v for v in verdicts if isinstance(v, ValidRow)]


async def fill(db: Database, ws: str, sync_id: str, tag: str) -> None:
    """One row of every store table for ``ws``."""
    A, E, P = DataType.USER_ATTRIBUTES, DataType.CUSTOM_EVENTS, DataType.PURCHASES
    await deliver(db, ws, sync_id, A, rows(A, {"EXTERNAL_ID": f"{tag}-1", "PAYLOAD": '{"a": 1}'}))
    alias = {"ALIAS_NAME": f"{tag}-al", "ALIAS_LABEL": "crm", "PAYLOAD": '{"b": 2}'}
    await deliver(db, ws, sync_id, A, rows(A, alias))
    event = '{"name": "opened", "time": "2026-02-01T00:00:00Z"}'
    await deliver(db, ws, sync_id, E, rows(E, {"EXTERNAL_ID": f"{tag}-1", "PAYLOAD": event}))
    purchase = (
        '{"product_id": "sku", "currency": "EUR", "price": 3.5, "time": "2026-02-01T00:00:00Z"}'
    )
    await deliver(db, ws, sync_id, P, rows(P, {"EXTERNAL_ID": f"{tag}-1", "PAYLOAD": purchase}))
    C = DataType.CATALOG_ITEMS
    await deliver(db, ws, sync_id, C, keyed(C, {"ID": f"{tag}-item", "PAYLOAD": '{"x": 1}'}))
    acc = {"ID": f"{tag}-acc", "NAME": "Acme", "PAYLOAD": "{}"}
    await deliver(db, ws, sync_id, DataType.ACCOUNTS, keyed(DataType.ACCOUNTS, acc))


async def counts(db: Database, ws: str) -> dict[str, int]:
    async with db.session() as s:
        return {
            model.__tablename__: await s.scalar(
                sa.select(sa.func.count()).select_from(model).where(model.workspace_id == ws)
            )
            or 0
            for model in STORE
        }


async def test_deleting_a_workspace_deletes_its_store_rows_and_only_its_own(db: Database) -> None:
    gone, gone_sync = await workspace_and_sync(db)
    kept, kept_sync = await workspace_and_sync(db)
    # The doomed workspace also has a source and a segment (RESTRICT links to its credential).
    segment = await make_segment(db)
    async with db.transaction() as s:
        await s.execute(
            sa.update(Sync).where(Sync.id == gone_sync).values(source_id=segment.source_id)
        )
    await fill(db, gone, gone_sync, "g")
    await fill(db, kept, kept_sync, "k")
    await fill(db, segment.workspace_id, gone_sync, "s")
    full = {t.__tablename__: 1 for t in STORE} | {"store_profile": 2}  # + the alias one
    assert await counts(db, gone) == full
    assert await counts(db, kept) == full

    async with db.session() as s:
        await workspaces.delete_workspace(s, gone)
        await workspaces.delete_workspace(s, segment.workspace_id)
    assert await counts(db, gone) == {t.__tablename__: 0 for t in STORE}
    assert await counts(db, segment.workspace_id) == {t.__tablename__: 0 for t in STORE}
    assert await counts(db, kept) == full
    async with db.session() as s:
        assert await s.get(Workspace, gone) is None
        assert await s.get(Workspace, kept) is not None
        assert await s.get(Sync, gone_sync) is None
        with pytest.raises(ZerocopyError) as err:
            await workspaces.delete_workspace(s, gone)
    assert err.value.code == "not_found"
