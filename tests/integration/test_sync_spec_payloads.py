"""Payload rules per data type (issue 8, "Data types and their columns"), read back by the API.

attributes: JSON object, nested objects and arrays of objects, subscription fields checked,
``null`` removes; events: ``name``, ``time`` (ISO 8601), optional ``properties`` object;
purchases: ``product_id``, ISO 4217 ``currency``, ``price``, ``time``, ``quantity`` positive
integer (default 1), ``properties``; user deletes; catalog items with ``DELETED``; accounts
with ``NAME`` and ``DELETED``, fields outside the account schema dropped and reported.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture, ts  # noqa: F401

pytestmark = pytest.mark.anyio

USER = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


def at(minute: int, day: int = 1) -> str:
    return f"2026-03-{day:02d} 00:{minute:02d}:00"


async def check_verdicts(
    spec: Spec, run: dict[str, Any], cases: list[tuple[Any, str | None]]
) -> None:
    """The run's counts and row-error codes (by position) are the expected verdicts."""
    refused = [(i, code) for i, (_, code) in enumerate(cases) if code]
    assert run["rows_read"] == len(cases), run
    assert (run["rows_delivered"], run["rows_errored"]) == (
        len(cases) - len(refused),
        len(refused),
    ), run
    assert run["status"] == ("partial_success" if refused else "success"), run
    got = [(e["position"], e["code"]) for e in await spec.rows(run["id"])]
    assert got == refused


# --------------------------------------------------------------------------- attributes
ATTRIBUTE_CASES: list[tuple[dict[str, Any] | str, str | None]] = [
    ({"address": {"city": "Paris", "geo": {"lat": 48.85}}}, None),
    ({"pets": [{"name": "rex", "age": 3}, {"name": "tom"}]}, None),
    ({"email_subscribe": "opted_in", "push_subscribe": "unsubscribed"}, None),
    (
        {
            "subscription_groups": [
                {"subscription_group_id": "g1", "subscription_state": "subscribed"}
            ]
        },
        None,
    ),
    ({"email_subscribe": "maybe"}, "invalid_field"),
    ({"push_subscribe": True}, "invalid_field"),
    (
        {
            "subscription_groups": [
                {"subscription_group_id": "g1", "subscription_state": "opted_in"}
            ]
        },
        "invalid_field",
    ),
    ({"subscription_groups": [{"subscription_state": "subscribed"}]}, "invalid_field"),
    ({"subscription_groups": "g1"}, "invalid_field"),
    ({}, None),
]


async def test_attribute_payloads(spec: Spec) -> None:
    spec.warehouse.create(
        "attrs",
        USER,
        [(at(i), f"u{i}", j(p)) for i, (p, _) in enumerate(ATTRIBUTE_CASES)],
    )
    sync_id = await spec.ready("user_attributes", "attrs")
    await check_verdicts(spec, await spec.run(sync_id), ATTRIBUTE_CASES)
    for i, (payload, code) in enumerate(ATTRIBUTE_CASES):
        prof = await spec.profile(external_id=f"u{i}")
        if code:
            assert prof is None, (i, prof)
        else:
            assert prof is not None and prof["attributes"] == payload, (i, prof)


async def test_attributes_merge_and_null_removes(spec: Spec) -> None:
    spec.warehouse.create("attrs", USER, [(at(0), "m1", j({"a": 1, "b": "two", "c": {"d": 4}}))])
    sync_id = await spec.ready("user_attributes", "attrs")
    assert (await spec.run(sync_id))["status"] == "success"
    spec.warehouse.insert(
        "attrs",
        USER,
        [(at(1), "m1", j({"b": None, "e": [{"f": 1}]})), (at(2), "m1", j({"c": None}))],
    )
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 2)
    prof = await spec.profile(external_id="m1")
    assert prof is not None and prof["attributes"] == {"a": 1, "e": [{"f": 1}]}


# --------------------------------------------------------------------------- events
EVENT_CASES: list[tuple[dict[str, Any] | str, str | None]] = [
    (
        {"name": "login", "time": "2026-03-01T10:00:00Z", "properties": {"app": "ios", "n": [1]}},
        None,
    ),
    ({"name": "logout", "time": "2026-03-01T12:00:00+02:00"}, None),
    ({"name": "ping", "time": "2026-03-01T10:30:00.250Z", "properties": {}}, None),
    ({"time": "2026-03-01T10:00:00Z"}, "missing_field"),
    ({"name": "x"}, "missing_field"),
    ({"name": "x", "time": "yesterday"}, "invalid_field"),
    ({"name": "x", "time": "2026-13-45T99:00:00Z"}, "invalid_field"),
    ({"name": "x", "time": "2026-03-01T10:00:00Z", "properties": [1, 2]}, "invalid_field"),
    ({"name": "x", "time": "2026-03-01T10:00:00Z", "properties": "p"}, "invalid_field"),
    ({"name": 42, "time": "2026-03-01T10:00:00Z"}, "invalid_field"),
    ({"name": "x", "time": 1767225600}, "invalid_field"),
]


async def test_event_payloads(spec: Spec) -> None:
    spec.warehouse.create(
        "evs", USER, [(at(i), "ev-user", j(p)) for i, (p, _) in enumerate(EVENT_CASES)]
    )
    sync_id = await spec.ready("custom_events", "evs")
    await check_verdicts(spec, await spec.run(sync_id), EVENT_CASES)
    prof = await spec.profile(external_id="ev-user")
    assert prof is not None
    got = [(e["name"], ts(e["time"]), e["properties"]) for e in await spec.events(prof["id"])]
    assert sorted(got, key=repr) == sorted(
        [
            ("login", ts("2026-03-01T10:00:00Z"), {"app": "ios", "n": [1]}),
            ("logout", ts("2026-03-01T10:00:00Z"), {}),  # 12:00+02:00 is 10:00 UTC
            ("ping", ts("2026-03-01T10:30:00.250Z"), {}),
        ],
        key=repr,
    )


# --------------------------------------------------------------------------- purchases
def buy(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "product_id": "sku-1",
        "currency": "EUR",
        "price": 9.5,
        "time": "2026-03-01T10:00:00Z",
    }
    return {k: v for k, v in {**base, **fields}.items() if v is not ...}


PURCHASE_CASES: list[tuple[dict[str, Any], str | None]] = [
    (buy(), None),  # quantity defaults to 1
    (buy(product_id="sku-2", currency="USD", price=3, quantity=2, properties={"size": "L"}), None),
    (buy(product_id=..., time="2026-03-01T10:01:00Z"), "missing_field"),
    (buy(currency=...), "missing_field"),
    (buy(price=...), "missing_field"),
    (buy(time=...), "missing_field"),
    (buy(currency="XXQ"), "invalid_field"),
    (buy(currency="EURO"), "invalid_field"),
    (buy(currency=978), "invalid_field"),
    (buy(price="cheap"), "invalid_field"),
    (buy(time="not a time"), "invalid_field"),
    (buy(quantity=0), "invalid_field"),
    (buy(quantity=-1), "invalid_field"),
    (buy(quantity=1.5), "invalid_field"),
    (buy(quantity="2"), "invalid_field"),
    (buy(quantity=True), "invalid_field"),
    (buy(properties=["a"]), "invalid_field"),
]


async def test_purchase_payloads(spec: Spec) -> None:
    spec.warehouse.create(
        "buys", USER, [(at(i), "buyer", j(p)) for i, (p, _) in enumerate(PURCHASE_CASES)]
    )
    sync_id = await spec.ready("purchases", "buys")
    await check_verdicts(spec, await spec.run(sync_id), PURCHASE_CASES)
    prof = await spec.profile(external_id="buyer")
    assert prof is not None
    got = [
        (p["product_id"], p["currency"], p["price"], p["quantity"], p["properties"])
        for p in await spec.purchases(prof["id"])
    ]
    assert sorted(got) == [
        ("sku-1", "EUR", 9.5, 1, {}),
        ("sku-2", "USD", 3, 2, {"size": "L"}),
    ]


# --------------------------------------------------------------------------- user deletes
async def test_user_deletes_remove_the_profile_with_its_events_and_purchases(spec: Spec) -> None:
    spec.warehouse.create(
        "evs",
        USER,
        [
            (at(0), "gone", j({"name": "visit", "time": "2026-03-01T10:00:00Z"})),
            (at(1), "stays", j({"name": "visit", "time": "2026-03-01T10:00:00Z"})),
        ],
    )
    spec.warehouse.create("buys", USER, [(at(0), "gone", j(buy()))])
    await spec.run(await spec.ready("custom_events", "evs"))
    await spec.run(await spec.ready("purchases", "buys"))
    gone = await spec.profile(external_id="gone")
    assert gone is not None and len(await spec.events(gone["id"])) == 1
    spec.warehouse.create(
        "dels",
        {"UPDATED_AT": "ts", "EXTERNAL_ID": "text"},
        [(at(0, day=2), "gone"), (at(1, day=2), "never-existed")],
    )
    run = await spec.run(await spec.ready("user_deletes", "dels"))
    assert run["rows_errored"] == 0 and run["status"] == "success", run
    assert await spec.profile(external_id="gone") is None
    resp = await spec.get(f"/v1/profiles/{gone['id']}/events")
    assert resp.status_code == 404
    stays = await spec.profile(external_id="stays")
    assert stays is not None and len(await spec.events(stays["id"])) == 1


# --------------------------------------------------------------------------- catalog items
CATALOG = {"UPDATED_AT": "ts", "ID": "text", "PAYLOAD": "text", "DELETED": "bool"}


async def test_catalog_items_upsert_and_delete(spec: Spec) -> None:
    spec.warehouse.create(
        "items",
        CATALOG,
        [
            (at(0), "sku-1", j({"title": "Mug", "price": 9.5}), False),
            (at(1), "sku-2", j({"title": "Cap", "tags": [{"t": "hat"}]}), None),
            (at(2), "sku-3", j({"title": "Pen"}), False),
            (at(3), None, j({"title": "no id"}), False),
            (at(4), "sku-4", '"text"', False),
            (at(5), "sku-5", "{broken", False),
        ],
    )
    sync_id = await spec.ready("catalog_items", "items", catalog_name="products")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == ("partial_success", 3, 3)
    assert await spec.codes(run["id"]) == ["missing_field", "payload_not_object", "invalid_json"]
    items = await spec.catalog("products")
    assert {k: v["fields"] for k, v in items.items()} == {
        "sku-1": {"title": "Mug", "price": 9.5},
        "sku-2": {"title": "Cap", "tags": [{"t": "hat"}]},
        "sku-3": {"title": "Pen"},
    }
    spec.warehouse.insert(
        "items",
        CATALOG,
        [(at(10), "sku-2", j({}), True), (at(11), "sku-1", j({"price": 10}), False)],
    )
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 2)
    items = await spec.catalog("products")
    assert sorted(items) == ["sku-1", "sku-3"]
    assert items["sku-1"]["fields"]["price"] == 10
    assert await spec.catalog("other") == {}


async def test_catalog_items_without_a_deleted_column(spec: Spec) -> None:
    spec.warehouse.create(
        "items",
        {"updated_at": "ts", "id": "text", "payload": "text"},
        [(at(0), "sku-9", j({"title": "Lamp"}))],
    )
    run = await spec.run(await spec.ready("catalog_items", "items", catalog_name="shop"))
    assert (run["status"], run["rows_delivered"]) == ("success", 1)
    assert (await spec.catalog("shop"))["sku-9"]["fields"] == {"title": "Lamp"}


# --------------------------------------------------------------------------- accounts
ACCOUNTS = {"UPDATED_AT": "ts", "ID": "text", "NAME": "text", "PAYLOAD": "text", "DELETED": "bool"}


async def test_accounts_name_deleted_and_fields_outside_the_schema(spec: Spec) -> None:
    spec.warehouse.create(
        "accs",
        ACCOUNTS,
        [
            (at(0), "acc-1", "Acme", j({"plan": "pro", "seats": 10, "color": "red"}), False),
            (at(1), "acc-2", "Globex", j({"plan": "basic"}), False),
            (at(2), "acc-3", None, j({"plan": "basic"}), False),
            (at(3), None, "No Id", j({"plan": "basic"}), False),
            (at(4), "acc-4", "Initech", "[1]", False),
        ],
    )
    sync_id = await spec.ready("accounts", "accs", settings={"account_fields": ["plan", "seats"]})
    run = await spec.run(sync_id)
    assert run["rows_read"] == 5
    assert (run["rows_delivered"], run["rows_errored"]) == (2, 3), run
    assert run["status"] == "partial_success"
    assert await spec.codes(run["id"]) == ["missing_field", "missing_field", "payload_not_object"]
    # The field outside the schema is dropped, the row applied, and the drop reported.
    logs = await spec.rows(run["id"], errors_only=False)
    warned = [r for r in logs if r["code"] == "unknown_field"]
    assert [r["position"] for r in warned] == [0]
    assert "color" in (warned[0]["message"] or "")
    accounts = await spec.accounts()
    assert {k: (v["name"], v["fields"]) for k, v in accounts.items()} == {
        "acc-1": ("Acme", {"plan": "pro", "seats": 10}),
        "acc-2": ("Globex", {"plan": "basic"}),
    }
    spec.warehouse.insert(
        "accs",
        ACCOUNTS,
        [
            (at(10), "acc-2", "Globex", j({}), True),
            (at(11), "acc-1", "Acme Corp", j({"seats": 12}), None),
        ],
    )
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 2), run
    accounts = await spec.accounts()
    assert sorted(accounts) == ["acc-1"]
    assert accounts["acc-1"]["name"] == "Acme Corp"
    assert accounts["acc-1"]["fields"]["seats"] == 12
