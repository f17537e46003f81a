"""Purchases and user deletes through the API on every combination (issue 8, second round).

Purchases: ``quantity`` defaults to 1, a price of 0 or below is a number like any other (free
items, refunds), the currency code is case-insensitive and stored upper-case, a missing
``product_id`` and non-object ``properties`` are row errors, times with offsets are instants.
User deletes: by external id, alias and braze id; unknown ids are quiet no-ops; a profile
re-created after its delete starts empty.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture, ts  # noqa: F401

pytestmark = pytest.mark.anyio

USER = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}
DELETES = {
    "UPDATED_AT": "ts",
    "EXTERNAL_ID": "text",
    "ALIAS_NAME": "text",
    "ALIAS_LABEL": "text",
    "BRAZE_ID": "text",
}
ALIASED = {"UPDATED_AT": "ts", "ALIAS_NAME": "text", "ALIAS_LABEL": "text", "PAYLOAD": "text"}


def at(second: int, minute: int = 0) -> str:
    return f"2026-05-01 00:{minute:02d}:{second:02d}"


def buy(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "product_id": "p1",
        "currency": "USD",
        "price": 5,
        "time": "2026-05-01T10:00:00Z",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


async def test_purchase_fields(spec: Spec) -> None:
    cases: list[tuple[dict[str, Any], str | None]] = [
        (buy(product_id="default-qty"), None),
        (buy(product_id="free", price=0), None),
        (buy(product_id="refund", price=-12.5), None),
        (buy(product_id="lower", currency="eur"), None),
        (buy(product_id="mixed", currency="Gbp", quantity=3), None),
        (buy(product_id="padded", currency=" jpy "), "invalid_field"),
        ({**buy(product_id="null-qty"), "quantity": None, "properties": None}, None),
        (buy(product_id="offset", time="2026-05-01T10:00:00+02:00"), None),
        (buy(product_id="offset-neg", time="2026-05-01T10:00:00-07:00"), None),
        (buy(product_id="props", properties={"size": "L", "gift": {"wrap": True}}), None),
        (buy(product_id=None), "missing_field"),
        (buy(product_id=""), "invalid_field"),
        (buy(product_id="p-list", properties=["a"]), "invalid_field"),
        (buy(product_id="p-text", properties="size=L"), "invalid_field"),
        (buy(product_id="p-cur", currency="usdollar"), "invalid_field"),
        (buy(product_id="p-qty0", quantity=0), "invalid_field"),
        (buy(product_id="p-qtyf", quantity=1.5), "invalid_field"),
        (buy(product_id="p-price", price="5"), "invalid_field"),
    ]
    spec.warehouse.create("buys", USER, [(at(i), "buyer", j(p)) for i, (p, _) in enumerate(cases)])
    run = await spec.run(await spec.ready("purchases", "buys"))
    refused = [(i, c) for i, (_, c) in enumerate(cases) if c]
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == (
        "partial_success",
        len(cases) - len(refused),
        len(refused),
    ), run
    assert [(r["position"], r["code"]) for r in await spec.rows(run["id"])] == refused
    prof = await spec.profile(external_id="buyer")
    assert prof is not None
    got = {p["product_id"]: p for p in await spec.purchases(prof["id"])}
    assert sorted(got) == sorted(p["product_id"] for p, c in cases if not c)
    assert got["default-qty"]["quantity"] == 1
    assert got["mixed"]["quantity"] == 3
    assert got["null-qty"]["quantity"] == 1
    assert got["free"]["price"] == 0
    assert got["refund"]["price"] == -12.5
    assert (got["lower"]["currency"], got["mixed"]["currency"]) == ("EUR", "GBP")
    assert ts(got["offset"]["time"]) == ts("2026-05-01T08:00:00Z")
    assert ts(got["offset-neg"]["time"]) == ts("2026-05-01T17:00:00Z")
    assert got["props"]["properties"] == {"size": "L", "gift": {"wrap": True}}


async def test_user_deletes_by_every_identifier(spec: Spec) -> None:
    spec.warehouse.create(
        "attrs",
        USER,
        [(at(0), "by-ext", j({"a": 1})), (at(1), "by-braze", j({"a": 2})), (at(2), "kept", "{}")],
    )
    spec.warehouse.create("aliased", ALIASED, [(at(0), "crm", "c-1", j({"a": 3}))])
    await spec.run(await spec.ready("user_attributes", "attrs"))
    await spec.run(await spec.ready("user_attributes", "aliased"))
    braze = (await spec.profile(external_id="by-braze"))["braze_id"]  # type: ignore[index]
    assert await spec.profile(alias_name="crm", alias_label="c-1") is not None
    spec.warehouse.create(
        "dels",
        DELETES,
        [
            (at(0, 1), "by-ext", None, None, None),
            (at(1, 1), None, "crm", "c-1", None),
            (at(2, 1), None, None, None, braze),
            # Unknown ids of each kind, and a second delete of the same id: quiet no-ops.
            (at(3, 1), "nobody", None, None, None),
            (at(4, 1), None, "crm", "c-404", None),
            (at(5, 1), None, None, None, "no-such-braze-id"),
            (at(6, 1), "by-ext", None, None, None),
            # Rule breakers are row errors.
            (at(7, 1), None, "crm", None, None),
            (at(8, 1), "kept", None, None, braze),
            (at(9, 1), None, None, None, None),
        ],
    )
    run = await spec.run(await spec.ready("user_deletes", "dels"))
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == (
        "partial_success",
        7,
        3,
    ), run
    assert await spec.codes(run["id"]) == [
        "incomplete_alias",
        "multiple_identifiers",
        "no_identifier",
    ]
    assert await spec.profile(external_id="by-ext") is None
    assert await spec.profile(external_id="by-braze") is None
    assert await spec.profile(braze_id=braze) is None
    assert await spec.profile(alias_name="crm", alias_label="c-1") is None
    assert await spec.profile(external_id="kept") is not None


async def test_a_profile_recreated_after_its_delete_starts_empty(spec: Spec) -> None:
    spec.warehouse.create("attrs", USER, [(at(0), "phoenix", j({"old": 1, "tier": "gold"}))])
    spec.warehouse.create(
        "evs", USER, [(at(0), "phoenix", j({"name": "old", "time": "2026-05-01T00:00:00Z"}))]
    )
    attrs = await spec.ready("user_attributes", "attrs")
    await spec.run(attrs)
    await spec.run(await spec.ready("custom_events", "evs"))
    old = await spec.profile(external_id="phoenix")
    assert old is not None
    spec.warehouse.create("dels", {"UPDATED_AT": "ts", "EXTERNAL_ID": "text"}, [(at(5), "phoenix")])
    dels = await spec.ready("user_deletes", "dels")
    assert (await spec.run(dels))["status"] == "success"
    assert await spec.profile(external_id="phoenix") is None
    # Attributes updated after the delete re-create the profile, with nothing from before.
    spec.warehouse.insert("attrs", USER, [(at(10), "phoenix", j({"tier": "silver"}))])
    run = await spec.run(attrs)
    assert (run["status"], run["rows_delivered"]) == ("success", 1), run
    new = await spec.profile(external_id="phoenix")
    assert new is not None and new["attributes"] == {"tier": "silver"}
    # (Profile ids are derived from the identifier, so the id itself may come back; what
    # belonged to the deleted profile does not.)
    assert await spec.events(new["id"]) == []
    # The delete row is not re-applied by a later run of the deletes sync (boundary re-read).
    run = await spec.run(dels)
    assert (run["status"], run["rows_delivered"]) == ("success", 0), run
    assert await spec.profile(external_id="phoenix") is not None
