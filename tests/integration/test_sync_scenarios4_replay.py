"""Sync scenarios, fourth round: the replay after a watermark reset, with identifiers whose
profile can change (e-mail and phone match the most recently updated holder).

A reset re-reads rows that were delivered before; issue 8 and the README promise that they
"do not apply twice in effect". An event or purchase identified by e-mail or phone went to
the profile holding the address then; when another profile has taken the address since, the
re-read copy must not land on that other profile as a second copy.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_sync_spec_harness import (  # noqa: F401
    Spec,
    j,
    spec_fixture,
)

pytestmark = pytest.mark.anyio

ATTRS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


def _payload(data_type: str, n: int) -> dict[str, Any]:
    if data_type == "custom_events":
        return {"name": f"e{n}", "time": "2026-04-01T10:00:00Z"}
    return {"product_id": f"p{n}", "currency": "EUR", "price": 3, "time": "2026-04-01T10:00:00Z"}


async def _items(spec: Spec, data_type: str, user: str) -> list[str]:
    prof = await spec.profile(external_id=user)
    assert prof is not None
    if data_type == "custom_events":
        return sorted(e["name"] for e in await spec.events(prof["id"]))
    return sorted(p["product_id"] for p in await spec.purchases(prof["id"]))


@pytest.mark.parametrize("data_type", ["custom_events", "purchases"])
@pytest.mark.parametrize(
    "column, address, spelled",
    [
        ("EMAIL", "shared@example.com", " Shared@Example.COM "),
        ("PHONE", "+15550100001", "+1 (555) 010-0001"),
    ],
    ids=["email", "phone"],
)
async def test_a_replayed_row_matched_by_address_stays_on_the_profile_it_went_to(
    spec: Spec, data_type: str, column: str, address: str, spelled: str
) -> None:
    key = column.lower()
    spec.warehouse.create("attrs", ATTRS, [("2026-04-01 09:00:00", "a", j({key: address}))])
    attrs_id = await spec.ready("user_attributes", "attrs")
    assert (await spec.run(attrs_id))["status"] == "success"
    rows = [
        ("2026-04-01 10:00:00", spelled, j(_payload(data_type, 1))),
        ("2026-04-01 10:00:00", spelled, j(_payload(data_type, 1))),  # two real copies
        ("2026-04-01 10:05:00", address, j(_payload(data_type, 2))),
    ]
    spec.warehouse.create("items", {"UPDATED_AT": "ts", column: "text", "PAYLOAD": "text"}, rows)
    items_id = await spec.ready(data_type, "items")
    assert (await spec.run(items_id))["rows_delivered"] == 3
    before = await _items(spec, data_type, "a")
    assert before in (["e1", "e1", "e2"], ["p1", "p1", "p2"])
    # Profile b takes the address later: it is now the most recently updated holder.
    spec.warehouse.insert("attrs", ATTRS, [("2026-04-01 11:00:00", "b", j({key: address}))])
    assert (await spec.run(attrs_id))["status"] == "success"
    holder = await spec.profile(**{key: address})
    assert holder is not None and holder["external_id"] == "b"

    resp = await spec.post(f"/v1/syncs/{items_id}/watermark/reset", json={"to": None})
    assert resp.status_code == 200, resp.text
    replay = await spec.run(items_id)
    assert (replay["status"], replay["rows_errored"]) == ("success", 0), replay
    # Each copy stays where it went: nothing added to a, nothing new on b.
    assert await _items(spec, data_type, "a") == before
    assert await _items(spec, data_type, "b") == []
    # A row that is new (never delivered) goes to today's holder, as usual.
    spec.warehouse.insert("items", {"UPDATED_AT": "ts", column: "text", "PAYLOAD": "text"}, [
        ("2026-04-01 12:00:00", address, j(_payload(data_type, 3))),
    ])  # fmt: skip
    assert (await spec.run(items_id))["rows_delivered"] == 1
    assert await _items(spec, data_type, "a") == before
    assert len(await _items(spec, data_type, "b")) == 1
