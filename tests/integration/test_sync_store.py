"""The built-in profile store's semantics, retention and credential_in_use, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from tests.integration.state_fixtures import db_fixture  # noqa: F401
from zerocopy.destinations.builtin import BuiltinStore
from zerocopy.destinations.protocol import DeliveryBatch
from zerocopy.errors import ZerocopyError
from zerocopy.services import credentials, syncs
from zerocopy.state.db import Database
from zerocopy.state.models import Credential, Workspace
from zerocopy.state.sync_models import (
    StoreAlias,
    StoreEvent,
    StoreProfile,
    Sync,
    SyncRowLog,
    SyncRun,
    braze_id_of,
)
from zerocopy.sync.types import DataType, ValidRow
from zerocopy.sync.validate import validate_batch
from zerocopy.sync.watermark import WatermarkState

pytestmark = pytest.mark.anyio

T = datetime(2026, 2, 1, tzinfo=UTC)
COLS = ("EXTERNAL_ID", "ALIAS_NAME", "ALIAS_LABEL", "BRAZE_ID", "EMAIL", "PHONE", "PAYLOAD")


async def workspace_and_sync(db: Database) -> tuple[str, str]:
    async with db.transaction() as s:
        ws = Workspace(name="acme")
        s.add(ws)
        await s.flush()
        cred = Credential(workspace_id=ws.id, name="files", kind="s3", settings={})
        s.add(cred)
        await s.flush()
        sync = Sync(
            workspace_id=ws.id, name="s", credential_id=cred.id, data_type="user_attributes"
        )
        s.add(sync)
        await s.flush()
        return ws.id, sync.id


def rows(data_type: DataType, *specs: dict[str, Any], minutes: int = 0) -> list[ValidRow]:
    data: dict[str, list[Any]] = {c: [s.get(c) for s in specs] for c in COLS}
    data["UPDATED_AT"] = [T + timedelta(minutes=minutes + i) for i in range(len(specs))]
    verdicts = validate_batch(data_type, pa.RecordBatch.from_pydict(data), start_position=0)
    assert all(isinstance(v, ValidRow) for v in verdicts), verdicts
    return [v for v in verdicts if isinstance(v, ValidRow)]


async def deliver(
    db: Database, ws: str, sync_id: str, data_type: DataType, valid: list[ValidRow]
) -> Any:
    batch = DeliveryBatch(
        workspace_id=ws,
        sync_id=sync_id,
        run_id="r",
        data_type=data_type,
        rows=valid,
        watermark=WatermarkState(value=valid[-1].updated_at, seen={valid[-1].row_hash: 1}),
    )
    return await BuiltinStore(db).deliver(batch)


async def profiles(db: Database, ws: str) -> list[StoreProfile]:
    async with db.session() as s:
        found = await s.scalars(
            sa.select(StoreProfile).where(StoreProfile.workspace_id == ws).order_by(StoreProfile.id)
        )
        return list(found.all())


async def test_merge_null_removes_and_watermark_commits_with_the_batch(db: Database) -> None:
    ws, sync_id = await workspace_and_sync(db)
    A = DataType.USER_ATTRIBUTES
    result = await deliver(
        db,
        ws,
        sync_id,
        A,
        rows(
            A,
            {"EXTERNAL_ID": "u1", "PAYLOAD": '{"plan": "pro", "name": "Ann", "tags": [{"a": 1}]}'},
            {"EXTERNAL_ID": "u1", "PAYLOAD": '{"name": null, "score": 3}'},
        ),
    )
    assert (result.accepted, result.delivered, result.rejections) == (True, 2, [])
    (p,) = await profiles(db, ws)
    assert p.attributes == {"plan": "pro", "tags": [{"a": 1}], "score": 3}
    assert p.updated_at == T + timedelta(minutes=1)
    async with db.session() as s:
        sync = await s.get(Sync, sync_id)
    assert sync is not None and WatermarkState.from_json(sync.watermark).value == T + timedelta(
        minutes=1
    )


P_OLD = "0000000a-0000-5000-8000-000000000001"
P_NEW = "0000000b-0000-5000-8000-000000000002"


async def test_braze_id_never_creates_and_email_matches_the_most_recent(db: Database) -> None:
    ws, sync_id = await workspace_and_sync(db)
    A = DataType.USER_ATTRIBUTES
    async with db.transaction() as s:
        for pid, when in ((P_OLD, T - timedelta(days=2)), (P_NEW, T - timedelta(days=1))):
            s.add(
                StoreProfile(
                    id=pid,
                    workspace_id=ws,
                    braze_id=braze_id_of(pid),  # always derived from the id
                    email="x@example.com",
                    attributes={},
                    updated_at=when,
                )
            )
    result = await deliver(
        db,
        ws,
        sync_id,
        A,
        rows(
            A,
            {"BRAZE_ID": "nobody", "PAYLOAD": '{"a": 1}'},
            {"EMAIL": "X@example.com", "PAYLOAD": '{"via": "email"}'},
            {"BRAZE_ID": braze_id_of(P_OLD), "PAYLOAD": '{"via": "braze"}'},
            {"PHONE": "+15550001111", "PAYLOAD": '{"via": "phone"}'},
        ),
    )
    assert [(r.index, r.code) for r in result.rejections] == [(0, "unknown_braze_id")]
    assert result.delivered == 3
    by_id = {p.id: p for p in await profiles(db, ws)}
    assert by_id[P_OLD].attributes == {"via": "braze"}
    assert by_id[P_NEW].attributes == {"via": "email"}  # the most recently updated one
    created = [p for p in by_id.values() if p.phone == "+15550001111"]
    assert len(created) == 1 and created[0].attributes == {"via": "phone"}
    assert len(by_id) == 3  # the unknown braze id created nothing
    # P_OLD is now the most recently updated: the next e-mail row goes to it.
    later = rows(A, {"EMAIL": "x@example.com", "PAYLOAD": '{"n": 2}'}, minutes=9)
    await deliver(db, ws, sync_id, A, later)
    by_id = {p.id: p for p in await profiles(db, ws)}
    assert by_id[P_OLD].attributes == {"via": "braze", "n": 2}


async def test_aliases_events_and_deletes(db: Database) -> None:
    ws, sync_id = await workspace_and_sync(db)
    A, E, D = DataType.USER_ATTRIBUTES, DataType.CUSTOM_EVENTS, DataType.USER_DELETES
    await deliver(
        db, ws, sync_id, A, rows(A, {"ALIAS_NAME": "n1", "ALIAS_LABEL": "crm", "PAYLOAD": "{}"})
    )
    ev = '{"name": "view", "time": "2026-02-01T00:00:00Z"}'
    await deliver(
        db,
        ws,
        sync_id,
        E,
        rows(
            E,
            {"ALIAS_NAME": "n1", "ALIAS_LABEL": "crm", "PAYLOAD": ev},
            {"EXTERNAL_ID": "u9", "PAYLOAD": ev},
        ),
    )
    async with db.session() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(StoreEvent)) == 2
        assert await s.scalar(sa.select(sa.func.count()).select_from(StoreAlias)) == 1
    result = await deliver(
        db,
        ws,
        sync_id,
        D,
        rows(D, {"ALIAS_NAME": "n1", "ALIAS_LABEL": "crm"}, {"EXTERNAL_ID": "ghost"}),
    )
    assert result.delivered == 2
    remaining = await profiles(db, ws)
    assert [p.external_id for p in remaining] == ["u9"]
    async with db.session() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(StoreEvent)) == 1
        assert await s.scalar(sa.select(sa.func.count()).select_from(StoreAlias)) == 0


async def test_retention_sweeps_old_row_logs_and_runs(db: Database) -> None:
    ws, sync_id = await workspace_and_sync(db)
    now = datetime.now(UTC)
    async with db.transaction() as s:
        for run_id, age in (("old", 400), ("mid", 40), ("new", 1)):
            created = now - timedelta(days=age)
            s.add(
                SyncRun(
                    id=run_id,
                    sync_id=sync_id,
                    workspace_id=ws,
                    status="success",
                    max_runtime_s=60,
                    created_at=created,
                )
            )
            await s.flush()
            s.add(
                SyncRowLog(
                    run_id=run_id,
                    sync_id=sync_id,
                    position=0,
                    verdict="error",
                    code="no_identifier",
                    created_at=created,
                )
            )
    assert await syncs.sweep_retention(db, now=now) == {"row_logs": 2, "runs": 1}
    async with db.session() as s:
        assert sorted((await s.scalars(sa.select(SyncRun.id))).all()) == ["mid", "new"]
        assert (await s.scalars(sa.select(SyncRowLog.run_id))).all() == ["new"]


async def test_credential_used_by_a_sync_cannot_be_deleted(db: Database) -> None:
    ws, _ = await workspace_and_sync(db)
    async with db.session() as s:
        cred = await s.scalar(sa.select(Credential).where(Credential.workspace_id == ws))
        assert cred is not None
        with pytest.raises(ZerocopyError) as info:
            await credentials.delete_credential(s, ws, cred.id)
    assert info.value.code == "credential_in_use"
    assert len(info.value.details["sync_ids"]) == 1


# ------------------------------------------------------------------ columnar attributes path
def _source_batch(specs: list[tuple[str | None, str | None]], minutes: list[int]) -> Any:
    return pa.RecordBatch.from_pydict(
        {
            "UPDATED_AT": [T + timedelta(minutes=m) for m in minutes],
            "EXTERNAL_ID": [e for e, _ in specs],
            "PAYLOAD": [p for _, p in specs],
        }
    )


async def _store_rows(db: Database, ws: str) -> list[tuple[Any, ...]]:
    async with db.session() as s:
        found = await s.execute(
            sa.select(
                StoreProfile.external_id,
                StoreProfile.braze_id,
                StoreProfile.email,
                StoreProfile.phone,
                StoreProfile.attributes,
                StoreProfile.updated_at,
            ).where(StoreProfile.workspace_id == ws)
        )
        return sorted(
            (e, len(b), em, ph, json.dumps(a, sort_keys=True), u) for e, b, em, ph, a, u in found
        )


async def test_columnar_attributes_equal_the_per_row_path(db: Database) -> None:
    """The fast path (AttributeRows, set-based merge) leaves exactly the per-row path's store."""
    from zerocopy.sync.types import AttributeRows, RowError
    from zerocopy.sync.validate import attribute_columns, row_hashes, updated_micros

    A = DataType.USER_ATTRIBUTES
    first = _source_batch(
        [
            ("u1", '{"plan": "pro", "name": "Ann", "nested": {"x": 1}}'),
            ("u2", '{"plan": "free"}'),
            ("tab\there\\back", '{"k": "v\\\\t\\"q\\""}'),
        ],
        [0, 30, 1],
    )
    second = _source_batch(
        [
            ("u1", '{"name": null, "nested": {"y": null}, "score": 3}'),  # merge, null removes
            ("u2", '{"plan": "team"}'),  # older than the stored profile: updated_at stays
            ("u3", '{"a": 1, "gone": null}'),  # new profile, null dropped
            ("u3", '{"a": 2, "b": [1, {"c": null}]}'),  # same id twice in one batch: in order
            ("u3", '{"a": null}'),
            ("", '{"a": 1}'),  # no identifier: row error
            ("u4", "[1, 2]"),  # not an object: row error
            ("u5", '{"é": "ünïcode ✓", "n": 1.25, "t": true, "f": false, "z": 0}'),
            ("tab\there\\back", '{"k": null, "k2": "line\\nbreak"}'),
        ],
        [5, 10, 11, 12, 13, 14, 15, 16, 17],
    )
    # No null, no repeated id, but an existing profile: the optimistic COPY must back off.
    third = _source_batch([("u9", '{"a": 1}'), ("u1", '{"z": 1}')], [20, 21])
    results: list[list[tuple[Any, ...]]] = []
    for columnar in (False, True):
        ws, sync_id = await workspace_and_sync(db)
        for batch in (first, second, third):
            hashes, updated = row_hashes(batch), updated_micros(batch.column("UPDATED_AT"))
            per_row = validate_batch(A, batch, start_position=0)
            fast = attribute_columns(batch, start_position=0, hashes=hashes, updated_us=updated)
            assert fast is not None
            cols, refused = fast
            assert [(e.position, e.code) for e in refused] == [
                (v.position, v.code) for v in per_row if isinstance(v, RowError)
            ]
            valid = [v for v in per_row if isinstance(v, ValidRow)]
            assert [v.position for v in cols.materialise()] == [v.position for v in valid]
            assert [v.payload for v in cols.materialise()] == [v.payload for v in valid]
            delivery = DeliveryBatch(
                workspace_id=ws,
                sync_id=sync_id,
                run_id="r",
                data_type=A,
                rows=[] if columnar else valid,
                watermark=WatermarkState(value=T, seen={}),
                columns=cols if columnar else None,
            )
            result = await BuiltinStore(db).deliver(delivery)
            assert (result.accepted, result.delivered) == (True, len(valid))
            assert isinstance(cols, AttributeRows)
        results.append(await _store_rows(db, ws))
    assert results[0] == results[1]
    assert len(results[0]) == 6


async def test_columnar_path_declines_rows_it_cannot_prove(db: Database) -> None:
    """Subscription fields, other identifiers, long digit runs: the per-row path decides."""
    from zerocopy.sync.validate import attribute_columns, row_hashes, updated_micros

    for payload in (
        '{"email_subscribe": "opted_in"}',
        '{"big": 123456789012345678901}',
        '{"n": 1.5e3}',
        '{"m": -0.0}',
    ):
        batch = _source_batch([("u1", payload)], [0])
        fast = attribute_columns(
            batch,
            start_position=0,
            hashes=row_hashes(batch),
            updated_us=updated_micros(batch.column("UPDATED_AT")),
        )
        assert fast is None
