"""HTTP batch destination against the local receiver peer, over real HTTP.

The destination is driven through the core's Destination protocol (DeliveryBatch in,
DeliveryResult out), the way the sync engine drives it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import anyio
import pytest
import sqlalchemy as sa

from tests.peers.http_destination.fixtures import HttpPeer, http_peer, http_peer_server
from tests.support import free_port
from zerocopy import errors
from zerocopy.connections import AdapterFactory
from zerocopy.destinations.factory import destination_factory
from zerocopy.destinations.http import HttpDestination, HttpDestinationConfig, batch_id
from zerocopy.destinations.protocol import DeliveryBatch, Destination
from zerocopy.errors import ZerocopyError
from zerocopy.secrets import SecretBox
from zerocopy.state.db import Database
from zerocopy.state.models import Credential, Source, SourceStatus, Workspace
from zerocopy.state.sync_models import Sync, SyncRowLog
from zerocopy.sync.engine import SyncEngine
from zerocopy.sync.types import (
    INVALID_FIELD,
    REJECTED_BY_DESTINATION,
    DataType,
    Identifier,
    ValidRow,
)
from zerocopy.sync.watermark import WatermarkState

__all__ = ["http_peer", "http_peer_server"]

pytestmark = [pytest.mark.anyio, pytest.mark.peer("http_destination")]

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rows(n: int, prefix: str = "u") -> list[ValidRow]:
    return [
        ValidRow(
            position=i,
            row_hash=f"{prefix}-hash-{i:05d}",
            updated_at=T0,
            identifier=Identifier("external_id", f"{prefix}{i}"),
            payload={"plan": "gold", "n": i, "gone": None},
        )
        for i in range(n)
    ]


def batch(rs: list[ValidRow], data_type: DataType = DataType.USER_ATTRIBUTES) -> DeliveryBatch:
    return DeliveryBatch(
        workspace_id="w1",
        sync_id="s1",
        run_id="r1",
        data_type=data_type,
        rows=rs,
        watermark=WatermarkState(value=T0),
    )


def destination(peer: HttpPeer, **kw: object) -> HttpDestination:
    defaults: dict[str, object] = {"batch_rows": 75, "backoff_base_s": 0.05, "max_attempts": 4}
    defaults.update(kw)
    deadline = defaults.pop("deadline", None)
    config = HttpDestinationConfig(url=peer.url, api_key=peer.key, **defaults)  # type: ignore[arg-type]
    return HttpDestination(config, deadline=deadline)  # type: ignore[arg-type]


async def test_batches_are_bounded_and_every_row_arrives(http_peer: HttpPeer) -> None:
    dest = destination(http_peer)
    assert isinstance(dest, Destination)
    result = await dest.deliver(batch(rows(200)))
    await dest.aclose()
    assert result.accepted and result.delivered == 200 and result.rejections == []
    state = http_peer.state()
    assert [r["rows"] for r in state["requests"]] == [75, 75, 50]
    assert all(r["batch_id"] == r["idempotency_key"] for r in state["requests"])
    assert len(state["rows"]) == 200
    stored = state["rows"]["u-hash-00007"]
    assert stored["identifier"] == {"external_id": "u7"}
    assert stored["attributes"] == {"plan": "gold", "n": 7, "gone": None}


async def test_events_go_in_the_events_array(http_peer: HttpPeer) -> None:
    event_rows = rows(3)
    for r in event_rows:
        r.payload = {"name": "login", "time": "2026-01-01T00:00:00Z", "properties": {"k": 1}}
    dest = destination(http_peer)
    assert (await dest.deliver(batch(event_rows, DataType.CUSTOM_EVENTS))).accepted
    await dest.aclose()
    row = http_peer.state()["rows"]["u-hash-00001"]
    assert row["name"] == "login" and row["properties"] == {"k": 1}


async def test_429_waits_for_retry_after_then_delivers(http_peer: HttpPeer) -> None:
    http_peer.script({"status": 429, "retry_after": "1"})
    dest = destination(http_peer)
    started = time.monotonic()
    result = await dest.deliver(batch(rows(10)))
    elapsed = time.monotonic() - started
    await dest.aclose()
    assert result.accepted and result.delivered == 10
    statuses = [r["status"] for r in http_peer.state()["requests"]]
    assert statuses == [429, 200]
    assert elapsed >= 1.0, "Retry-After: 1 was not honoured"
    assert len(http_peer.state()["rows"]) == 10


async def test_5xx_is_retried_with_backoff(http_peer: HttpPeer) -> None:
    http_peer.script({"status": 503}, {"status": 500})
    dest = destination(http_peer)
    result = await dest.deliver(batch(rows(80)))
    await dest.aclose()
    assert result.accepted and result.delivered == 80
    assert [r["status"] for r in http_peer.state()["requests"]] == [503, 500, 200, 200]
    assert len(http_peer.state()["rows"]) == 80


async def test_persistent_5xx_fails_the_batch_and_redelivery_loses_nothing(
    http_peer: HttpPeer,
) -> None:
    """First chunk acknowledged, second never: not accepted; the next run's re-send completes
    the set with no duplicate (same idempotency keys and row hashes)."""
    rs = rows(150)
    dest = destination(http_peer)
    http_peer.script({"status": "pass"}, *[{"status": 502}] * 4)
    failed = await dest.deliver(batch(rs))
    assert not failed.accepted and failed.delivered == 0
    assert "did not acknowledge" in (failed.error or "") and "HTTP 502" in (failed.error or "")
    assert len(http_peer.state()["rows"]) == 75
    retried = await dest.deliver(batch(rs))
    await dest.aclose()
    assert retried.accepted and retried.delivered == 150
    state = http_peer.state()
    assert sorted(state["rows"]) == sorted(r.row_hash for r in rs)
    keys = [r["idempotency_key"] for r in state["requests"] if r["status"] == 200]
    assert keys.count(batch_id(rs[:75])) == 2  # acknowledged, then re-sent with the same key


async def test_partial_rejections_become_row_errors(http_peer: HttpPeer) -> None:
    rs = rows(100)
    for i in (3, 80):
        rs[i].identifier = Identifier("external_id", f"bad{i}")
    rs[90].identifier = Identifier("external_id", "badx")
    http_peer.reject("external_id", "bad", code="invalid_field")
    dest = destination(http_peer)
    result = await dest.deliver(batch(rs))
    await dest.aclose()
    assert result.accepted and result.delivered == 97
    assert sorted((r.index, r.code) for r in result.rejections) == [
        (3, INVALID_FIELD),
        (80, INVALID_FIELD),
        (90, INVALID_FIELD),
    ]
    assert len(http_peer.state()["rows"]) == 97


async def test_unknown_rejection_code_is_kept_in_the_message(http_peer: HttpPeer) -> None:
    rs = rows(5)
    rs[2].identifier = Identifier("external_id", "nope")
    http_peer.reject("external_id", "nope", code="blocked_user")
    dest = destination(http_peer)
    result = await dest.deliver(batch(rs))
    await dest.aclose()
    (rej,) = result.rejections
    assert rej.index == 2 and rej.code == REJECTED_BY_DESTINATION
    assert rej.message.startswith("blocked_user:")


async def test_413_halves_the_batch(http_peer: HttpPeer) -> None:
    http_peer.script({"status": 413})
    dest = destination(http_peer, batch_rows=10)
    result = await dest.deliver(batch(rows(10)))
    await dest.aclose()
    assert result.accepted
    assert [(r["status"], r["rows"]) for r in http_peer.state()["requests"]] == [
        (413, 10),
        (200, 5),
        (200, 5),
    ]


async def test_wrong_key_is_a_sync_level_error_without_the_key(http_peer: HttpPeer) -> None:
    config = HttpDestinationConfig(url=http_peer.url, api_key="wrong-key-123456")
    dest = HttpDestination(config)
    with pytest.raises(ZerocopyError) as info:
        await dest.deliver(batch(rows(2)))
    await dest.aclose()
    assert info.value.code == errors.AUTH_FAILED
    assert "wrong-key-123456" not in str(info.value) and "wrong-key" not in repr(dest)
    assert http_peer.state()["rows"] == {}


async def test_retry_after_beyond_the_deadline_fails_fast(http_peer: HttpPeer) -> None:
    http_peer.script({"status": 429, "retry_after": "120"})
    dest = destination(http_peer, deadline=anyio.current_time() + 5)
    started = time.monotonic()
    result = await dest.deliver(batch(rows(3)))
    await dest.aclose()
    assert time.monotonic() - started < 3
    assert not result.accepted and "deadline" in (result.error or "")
    assert http_peer.state()["rows"] == {}


async def test_unreachable_destination_is_not_accepted() -> None:
    config = HttpDestinationConfig(
        url=f"http://127.0.0.1:{free_port()}/batches",
        api_key="k" * 16,
        max_attempts=3,
        backoff_base_s=0.01,
    )
    dest = HttpDestination(config)
    result = await dest.deliver(batch(rows(2)))
    await dest.aclose()
    assert not result.accepted and "connection failed" in (result.error or "")
    assert dest.attempts == 3


def test_plain_http_is_refused_off_loopback() -> None:
    with pytest.raises(ZerocopyError) as info:
        HttpDestinationConfig(url="http://example.com/x", api_key="k").validate()
    assert info.value.code == errors.VALIDATION_ERROR


# ---------------------------------------------------------------- through real sync runs
@pytest.fixture
async def sync_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'state.sqlite3'}")
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


def warehouse(path: Path, n: int) -> None:
    """A DuckDB table of ``n`` attribute rows, one second apart; ids ``bad*`` get refused."""
    import duckdb

    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE users AS SELECT TIMESTAMP '2026-01-01' + i * INTERVAL 1 SECOND AS updated_at, "
            "CASE WHEN i % 50 = 7 THEN 'bad' || i ELSE 'u' || i END AS external_id, "
            "'{\"n\": ' || i || '}' AS payload FROM range(?) t(i)",
            [n],
        )


async def http_sync(db: Database, duck: Path, http_options: dict[str, object]) -> str:
    async with db.transaction() as s:
        ws = Workspace(name="acme")
        s.add(ws)
        await s.flush()
        cred = Credential(
            workspace_id=ws.id, name="wh", kind="duckdb", settings={"path": str(duck)}
        )
        s.add(cred)
        await s.flush()
        src = Source(
            workspace_id=ws.id,
            credential_id=cred.id,
            name="wh",
            kind="duckdb",
            scope="main",
            max_runtime_s=60,
            status=SourceStatus.ACTIVE,
        )
        s.add(src)
        await s.flush()
        sync = Sync(
            workspace_id=ws.id,
            name="users",
            source_id=src.id,
            table_name="users",
            data_type="user_attributes",
            destination="http",
            status="active",
            settings={"http": http_options},
        )
        s.add(sync)
        await s.flush()
        return sync.id


def sync_engine(db: Database, peer: HttpPeer) -> SyncEngine:
    settings = SimpleNamespace(http_destination_url=peer.url, http_destination_key=peer.key)
    return SyncEngine(
        db,
        AdapterFactory(SecretBox([SecretBox.generate_key()])),
        destination_factory(db, settings),
        delivery_rows=100,
    )


async def test_sync_run_through_429_5xx_and_rejections_loses_nothing(
    sync_db: Database, http_peer: HttpPeer, tmp_path: Path
) -> None:
    duck = tmp_path / "wh.duckdb"
    warehouse(duck, 250)
    sync_id = await http_sync(sync_db, duck, {"batch_rows": 50, "backoff_base_s": 0.05})
    http_peer.reject("external_id", "bad", code="invalid_field")
    http_peer.script({"status": "pass"}, {"status": 429, "retry_after": "1"}, {"status": 503})
    run = await sync_engine(sync_db, http_peer).run(sync_id)
    assert (run.status, run.rows_read, run.rows_delivered, run.rows_errored) == (
        "partial_success",
        250,
        245,
        5,
    )
    state = http_peer.state()
    assert len(state["rows"]) == 245 and len(state["rejected"]) == 5
    assert [r["status"] for r in state["requests"]][:4] == [200, 429, 503, 200]
    assert run.watermark_after is not None
    assert run.watermark_after["value"].startswith("2026-01-01T00:04:09")
    async with sync_db.session() as s:
        codes = (
            await s.scalars(
                sa.select(SyncRowLog.code).where(
                    SyncRowLog.run_id == run.id, SyncRowLog.verdict == "error"
                )
            )
        ).all()
    assert codes == ["invalid_field"] * 5


async def test_sync_run_failing_mid_way_keeps_the_watermark_and_the_next_run_completes(
    sync_db: Database, http_peer: HttpPeer, tmp_path: Path
) -> None:
    duck = tmp_path / "wh.duckdb"
    warehouse(duck, 250)
    sync_id = await http_sync(
        sync_db, duck, {"batch_rows": 50, "backoff_base_s": 0.01, "max_attempts": 3}
    )
    # Engine batch 1 (rows 0-99) = two POSTs; the first POST of batch 2 fails for good.
    http_peer.script({"status": "pass"}, {"status": "pass"}, *[{"status": 502}] * 3)
    engine = sync_engine(sync_db, http_peer)
    failed = await engine.run(sync_id)
    assert (failed.status, failed.error_code) == ("error", errors.DESTINATION_ERROR)
    assert failed.rows_delivered == 100
    assert failed.watermark_after is not None
    assert failed.watermark_after["value"].startswith("2026-01-01T00:01:39")
    assert len(http_peer.state()["rows"]) == 100
    ok = await engine.run(sync_id)
    # The boundary row of the last acknowledged batch is read again and skipped.
    assert (ok.status, ok.rows_read, ok.rows_delivered, ok.rows_skipped) == ("success", 151, 150, 1)
    state = http_peer.state()
    assert len(state["rows"]) == 250
    # Nothing acknowledged was sent twice: 250 rows in acknowledged POSTs in total.
    assert sum(r["rows"] for r in state["requests"] if r["status"] == 200) == 250


async def test_a_watermark_reset_resends_rows_with_the_same_row_hashes(
    sync_db: Database, http_peer: HttpPeer, tmp_path: Path
) -> None:
    """After a reset the HTTP destination gets every row again with the row_hash it had
    (its idempotency key): a receiver keeping rows by it ends exactly as after one run."""
    duck = tmp_path / "wh.duckdb"
    warehouse(duck, 120)
    sync_id = await http_sync(sync_db, duck, {"batch_rows": 50})
    engine = sync_engine(sync_db, http_peer)
    first = await engine.run(sync_id)
    assert (first.status, first.rows_delivered) == ("success", 120)
    before = http_peer.state()["rows"]
    async with sync_db.transaction() as s:
        sync = await s.get(Sync, sync_id)
        assert sync is not None
        reset = WatermarkState.from_json(sync.watermark).reset(None)
        await s.execute(sa.update(Sync).where(Sync.id == sync_id).values(watermark=reset.to_json()))
    again = await engine.run(sync_id)
    assert (again.status, again.rows_read, again.rows_delivered) == ("success", 120, 120)
    state = http_peer.state()
    assert state["rows"] == before
    assert sum(r["rows"] for r in state["requests"] if r["status"] == 200) == 240


async def test_a_passed_deadline_sends_nothing(http_peer: HttpPeer) -> None:
    dest = destination(http_peer, deadline=anyio.current_time() - 1)
    result = await dest.deliver(batch(rows(3)))
    await dest.aclose()
    assert not result.accepted and "deadline passed" in (result.error or "")
    assert http_peer.state()["requests"] == []
