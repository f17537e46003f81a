"""HTTP batch destination scenarios: what the receiver gets for event and purchase times.

Issue 8: "Timestamps with and without time zone are handled explicitly (UTC assumed for naive
ones)". The receiver must not have to guess: every ``time`` arrives as the UTC instant in
ISO 8601 with ``Z``, whatever ISO 8601 spelling the source used.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.peers.http_destination.fixtures import HttpPeer, http_peer, http_peer_server
from zerocopy.destinations.http import HttpDestination, HttpDestinationConfig
from zerocopy.destinations.protocol import DeliveryBatch
from zerocopy.sync.types import DataType, Identifier, ValidRow
from zerocopy.sync.watermark import WatermarkState

__all__ = ["http_peer", "http_peer_server"]

pytestmark = [pytest.mark.anyio, pytest.mark.peer("http_destination")]

T0 = datetime(2026, 1, 1, tzinfo=UTC)

TIMES = [
    ("2026-03-01T10:00:00+05:45", "2026-03-01T04:15:00Z"),
    ("2026-03-01T10:00:00-03:30", "2026-03-01T13:30:00Z"),
    ("2026-03-01 10:00:00", "2026-03-01T10:00:00Z"),
    ("2026-03-01", "2026-03-01T00:00:00Z"),
    ("2026-03-01T10:00:00.250Z", "2026-03-01T10:00:00.250000Z"),
    ("2026-03-01t10:00:00z", "2026-03-01T10:00:00Z"),
]


def _rows(data_type: DataType) -> list[ValidRow]:
    out = []
    for i, (given, _) in enumerate(TIMES):
        payload: dict[str, object] = {"time": given}
        if data_type is DataType.CUSTOM_EVENTS:
            payload |= {"name": f"e{i}"}
        else:
            payload |= {"product_id": f"p{i}", "currency": "EUR", "price": 1.0, "quantity": 1}
        out.append(
            ValidRow(
                position=i,
                row_hash=f"{data_type.value}-{i}",
                updated_at=T0,
                identifier=Identifier("external_id", "u1"),
                payload=payload,
            )
        )
    return out


@pytest.mark.parametrize("data_type", [DataType.CUSTOM_EVENTS, DataType.PURCHASES])
async def test_event_and_purchase_times_arrive_as_utc_instants(
    http_peer: HttpPeer, data_type: DataType
) -> None:
    config = HttpDestinationConfig(url=http_peer.url, api_key=http_peer.key, batch_rows=75)
    dest = HttpDestination(config)
    result = await dest.deliver(
        DeliveryBatch(
            workspace_id="w1",
            sync_id="s1",
            run_id="r1",
            data_type=data_type,
            rows=_rows(data_type),
            watermark=WatermarkState(value=T0),
        )
    )
    await dest.aclose()
    assert result.accepted and result.delivered == len(TIMES)
    stored = http_peer.state()["rows"]
    got = [stored[f"{data_type.value}-{i}"]["time"] for i in range(len(TIMES))]
    assert got == [want for _, want in TIMES]
