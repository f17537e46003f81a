"""HTTP batch destination against the local receiver peer, over real HTTP.

The destination is driven through the core's Destination protocol (DeliveryBatch in,
DeliveryResult out), the way the sync engine drives it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import anyio
import pytest

from tests.peers.http_destination.fixtures import HttpPeer, http_peer, http_peer_server
from tests.support import free_port
from zerocopy import errors
from zerocopy.destinations.http import HttpDestination, HttpDestinationConfig, batch_id
from zerocopy.destinations.protocol import DeliveryBatch, Destination
from zerocopy.errors import ZerocopyError
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
