"""Catalog items and accounts through the API on every combination (issue 8, second round).

``DELETED`` in every spelling a warehouse or a CSV export writes, re-creation after a delete,
field merge (``null`` removes), the catalog name, ids with case and blanks, and duplicate ids in
one batch and across the watermark boundary.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture  # noqa: F401

pytestmark = pytest.mark.anyio

CATALOG_TEXT = {"UPDATED_AT": "ts", "ID": "text", "PAYLOAD": "text", "DELETED": "text"}
CATALOG = {"UPDATED_AT": "ts", "ID": "text", "PAYLOAD": "text", "DELETED": "bool"}
ACCOUNTS = {"UPDATED_AT": "ts", "ID": "text", "NAME": "text", "PAYLOAD": "text", "DELETED": "bool"}


def at(second: int, minute: int = 0) -> str:
    return f"2026-04-01 00:{minute:02d}:{second:02d}"


def fields(items: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {k: v["fields"] for k, v in items.items()}


TRUE_SPELLINGS = ["true", "TRUE", "True", " t ", "1", "yes", "Y", "on"]
FALSE_SPELLINGS = ["false", "FALSE", "f", "0", "no", "N", "off", ""]


async def test_deleted_in_every_accepted_spelling(spec: Spec) -> None:
    n = len(TRUE_SPELLINGS) + len(FALSE_SPELLINGS)
    spec.warehouse.create(
        "items", CATALOG_TEXT, [(at(i), f"k{i}", j({"n": i}), None) for i in range(n)]
    )
    sync_id = await spec.ready("catalog_items", "items", catalog_name="shop")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", n), run
    spellings = TRUE_SPELLINGS + FALSE_SPELLINGS
    spec.warehouse.insert(
        "items",
        CATALOG_TEXT,
        [(at(i, minute=1), f"k{i}", j({"m": i}), s) for i, s in enumerate(spellings)]
        + [(at(59, minute=1), "k0", j({"x": 1}), "maybe")],
    )
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == (
        "partial_success",
        n,
        1,
    ), run
    assert await spec.codes(run["id"]) == ["invalid_field"]
    items = fields(await spec.catalog("shop"))
    kept = {f"k{i}" for i in range(len(TRUE_SPELLINGS), n)}
    assert set(items) == kept
    for key in kept:
        i = int(key[1:])
        assert items[key] == {"n": i, "m": i}


async def test_catalog_recreate_merge_and_null_removes(spec: Spec) -> None:
    spec.warehouse.create(
        "items",
        CATALOG,
        [
            (at(0), "sku", j({"title": "Mug", "price": 9, "color": "red"}), False),
            (at(1), "sku", j({"price": 10, "color": None}), False),
        ],
    )
    sync_id = await spec.ready("catalog_items", "items", catalog_name="products")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 2), run
    assert fields(await spec.catalog("products")) == {"sku": {"title": "Mug", "price": 10}}
    # Deleted, then re-created: the new item starts empty (no fields from before the delete).
    spec.warehouse.insert(
        "items",
        CATALOG,
        [(at(2), "sku", None, True), (at(3), "sku", j({"title": "New mug"}), False)],
    )
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 2), run
    assert fields(await spec.catalog("products")) == {"sku": {"title": "New mug"}}
    # Re-created in a later run after a delete in its own run.
    spec.warehouse.insert("items", CATALOG, [(at(4), "sku", None, True)])
    assert (await spec.run(sync_id))["status"] == "success"
    assert await spec.catalog("products") == {}
    spec.warehouse.insert("items", CATALOG, [(at(5), "sku", j({"price": 1}), False)])
    assert (await spec.run(sync_id))["status"] == "success"
    assert fields(await spec.catalog("products")) == {"sku": {"price": 1}}
    # Deleting an item that does not exist is a quiet no-op.
    spec.warehouse.insert("items", CATALOG, [(at(6), "ghost", None, True)])
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_errored"]) == ("success", 0), run
    assert sorted(await spec.catalog("products")) == ["sku"]


async def test_catalog_ids_keep_case_and_lose_surrounding_blanks(spec: Spec) -> None:
    spec.warehouse.create(
        "items",
        CATALOG,
        [
            (at(0), "SKU-1", j({"a": 1}), False),
            (at(1), "sku-1", j({"a": 2}), False),
            (at(2), "  SKU-1\t", j({"b": 3}), False),
            (at(3), "   ", j({"c": 1}), False),
        ],
    )
    run = await spec.run(await spec.ready("catalog_items", "items", catalog_name="Shop_2"))
    assert (run["rows_delivered"], run["rows_errored"]) == (3, 1), run
    assert await spec.codes(run["id"]) == ["missing_field"]
    assert fields(await spec.catalog("Shop_2")) == {"SKU-1": {"a": 1, "b": 3}, "sku-1": {"a": 2}}


async def test_catalog_duplicates_in_one_batch_and_across_the_boundary(spec: Spec) -> None:
    spec.warehouse.create(
        "items",
        CATALOG,
        [
            (at(0), "d", j({"v": 0, "keep": True}), False),
            (at(1), "d", j({"v": 1}), False),
            (at(2), "d", j({"v": 2}), False),
            (at(2), "e", j({"v": 2}), False),
        ],
    )
    sync_id = await spec.ready("catalog_items", "items", catalog_name="dups")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 4), run
    assert fields(await spec.catalog("dups")) == {
        "d": {"v": 2, "keep": True},
        "e": {"v": 2},
    }
    # A row at the watermark's timestamp committed after the run: picked up, the boundary
    # rows already delivered are not applied again (their re-application would undo "w").
    spec.warehouse.insert("items", CATALOG, [(at(2), "d", j({"w": 1}), False)])
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 1), run
    assert fields(await spec.catalog("dups"))["d"] == {"v": 2, "keep": True, "w": 1}
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 0), run


async def test_two_catalogs_hold_the_same_id_apart(spec: Spec) -> None:
    spec.warehouse.create("items", CATALOG, [(at(0), "x", j({"a": 1}), False)])
    spec.warehouse.create("dels", CATALOG, [(at(0), "x", None, True)])
    assert (await spec.run(await spec.ready("catalog_items", "items", catalog_name="one")))[
        "status"
    ] == "success"
    assert (await spec.run(await spec.ready("catalog_items", "items", catalog_name="two")))[
        "status"
    ] == "success"
    assert (await spec.run(await spec.ready("catalog_items", "dels", catalog_name="one")))[
        "status"
    ] == "success"
    assert await spec.catalog("one") == {}
    assert fields(await spec.catalog("two")) == {"x": {"a": 1}}


# --------------------------------------------------------------------------- accounts
async def test_accounts_name_schema_delete_recreate_and_duplicates(spec: Spec) -> None:
    spec.warehouse.create(
        "accs",
        ACCOUNTS,
        [
            (at(0), "a1", "Acme", j({"plan": "pro", "secret": "x"}), False),
            (at(1), "a1", "Acme Inc", j({"seats": 3, "other": 1}), None),
            (at(2), "a2", "", j({"plan": "free"}), False),
            (at(3), "a3", "  ", j({"plan": "free"}), False),
            (at(4), "a4", "Four", j({"plan": "x"}), False),
            (at(5), "a4", None, None, True),
        ],
    )
    sync_id = await spec.ready("accounts", "accs", settings={"account_fields": ["plan", "seats"]})
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == (
        "partial_success",
        4,
        2,
    ), run
    assert await spec.codes(run["id"]) == ["missing_field", "missing_field"]
    logs = await spec.rows(run["id"], errors_only=False)
    warned = {r["position"]: r["message"] for r in logs if r["code"] == "unknown_field"}
    assert sorted(warned) == [0, 1]
    assert "secret" in warned[0] and "other" in warned[1]
    accounts = await spec.accounts()
    assert {k: (v["name"], v["fields"]) for k, v in accounts.items()} == {
        "a1": ("Acme Inc", {"plan": "pro", "seats": 3}),
    }
    # Re-created after its delete: a fresh account.
    spec.warehouse.insert("accs", ACCOUNTS, [(at(10), "a4", "Four again", j({"seats": 1}), False)])
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 1), run
    accounts = await spec.accounts()
    assert (accounts["a4"]["name"], accounts["a4"]["fields"]) == ("Four again", {"seats": 1})
    # Deleting an unknown account is a quiet no-op.
    spec.warehouse.insert("accs", ACCOUNTS, [(at(11), "nobody", None, None, True)])
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_errored"]) == ("success", 0), run
    assert sorted(await spec.accounts()) == ["a1", "a4"]
