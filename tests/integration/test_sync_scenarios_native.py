"""Native (non-text) PAYLOAD columns: a DuckDB STRUCT payload is an object like JSON text.

A STRUCT can carry what JSON cannot: NaN and infinite doubles. A purchase price must be a
finite number (issue 8: ``price``; a NaN price is no price), and an attribute that is NaN or
infinite cannot be stored as JSON: both are row errors, never a failed run or an unreadable
profile.
"""

from __future__ import annotations

import pytest

from tests.integration.test_sync_spec_harness import COMBOS, Spec, spec_fixture, ts  # noqa: F401

pytestmark = pytest.mark.anyio

DUCKDB = pytest.mark.parametrize("spec", [COMBOS[0], COMBOS[1]], indirect=True)


@DUCKDB
async def test_struct_purchases_with_nan_or_infinite_prices(spec: Spec) -> None:
    spec.warehouse.execute(
        'CREATE TABLE marketing."buys" ("UPDATED_AT" TIMESTAMP, "EXTERNAL_ID" VARCHAR, '
        '"PAYLOAD" STRUCT(product_id VARCHAR, currency VARCHAR, price DOUBLE, "time" VARCHAR))',
        'INSERT INTO marketing."buys" VALUES '
        "('2026-03-01 00:00:00', 'u1', {'product_id': 'a', 'currency': 'EUR', 'price': 2.5, "
        "'time': '2026-03-01T00:00:00Z'}), "
        "('2026-03-01 00:00:01', 'u1', {'product_id': 'b', 'currency': 'EUR', "
        "'price': 'nan'::DOUBLE, 'time': '2026-03-01T00:00:00Z'}), "
        "('2026-03-01 00:00:02', 'u1', {'product_id': 'c', 'currency': 'EUR', "
        "'price': 'inf'::DOUBLE, 'time': '2026-03-01T00:00:00Z'})",
    )
    run = await spec.run(await spec.ready("purchases", "buys"))
    assert (run["status"], run["rows_delivered"]) == ("partial_success", 1), run
    assert await spec.codes(run["id"]) == ["invalid_field", "invalid_field"]
    prof = await spec.profile(external_id="u1")
    assert prof is not None
    assert [(p["product_id"], p["price"]) for p in await spec.purchases(prof["id"])] == [("a", 2.5)]


@DUCKDB
async def test_struct_attributes_with_nan_values(spec: Spec) -> None:
    spec.warehouse.execute(
        'CREATE TABLE marketing."attrs" ("UPDATED_AT" TIMESTAMP, "EXTERNAL_ID" VARCHAR, '
        '"PAYLOAD" STRUCT(score DOUBLE, tier VARCHAR))',
        'INSERT INTO marketing."attrs" VALUES '
        "('2026-03-01 00:00:00', 'u1', {'score': 1.5, 'tier': 'gold'}), "
        "('2026-03-01 00:00:01', 'u2', {'score': 'nan'::DOUBLE, 'tier': 'x'}), "
        "('2026-03-01 00:00:02', 'u3', {'score': NULL, 'tier': 'y'})",
    )
    run = await spec.run(await spec.ready("user_attributes", "attrs"))
    assert (run["status"], run["rows_delivered"]) == ("partial_success", 2), run
    assert await spec.codes(run["id"]) == ["invalid_field"]
    assert (await spec.profile(external_id="u1"))["attributes"] == {"score": 1.5, "tier": "gold"}  # type: ignore[index]
    # A STRUCT's NULL field is a JSON null: it removes the attribute (none to remove here).
    assert (await spec.profile(external_id="u3"))["attributes"] == {"tier": "y"}  # type: ignore[index]
    assert await spec.profile(external_id="u2") is None


@DUCKDB
async def test_struct_decimals_and_times_become_json_values(spec: Spec) -> None:
    """A DECIMAL is a number (integral ones integers), a TIMESTAMP ISO 8601 text in UTC (naive
    = UTC), a DATE ISO text: the values JSON text would have carried."""
    spec.warehouse.execute(
        'CREATE TABLE marketing."attrs" ("UPDATED_AT" TIMESTAMP, "EXTERNAL_ID" VARCHAR, '
        '"PAYLOAD" STRUCT(amount DECIMAL(10, 2), n DECIMAL(12, 0), seen TIMESTAMP, d DATE, '
        "tags VARCHAR[]))",
        "INSERT INTO marketing.\"attrs\" VALUES ('2026-03-01 00:00:00', 'u1', "
        "{'amount': 2.50, 'n': 7, 'seen': TIMESTAMP '2026-03-01 10:00:00', "
        "'d': DATE '2026-03-01', 'tags': ['a', 'b']})",
    )
    spec.warehouse.execute(
        'CREATE TABLE marketing."buys" ("UPDATED_AT" TIMESTAMP, "EXTERNAL_ID" VARCHAR, '
        '"PAYLOAD" STRUCT(product_id VARCHAR, currency VARCHAR, price DECIMAL(10, 2), '
        'quantity DECIMAL(5, 0), "time" TIMESTAMPTZ))',
        "INSERT INTO marketing.\"buys\" VALUES ('2026-03-01 00:00:00', 'u1', "
        "{'product_id': 'p', 'currency': 'usd', 'price': 9.99, 'quantity': 2, "
        "'time': TIMESTAMPTZ '2026-03-01 10:00:00+00'})",
    )
    run = await spec.run(await spec.ready("user_attributes", "attrs"))
    assert (run["status"], run["rows_delivered"]) == ("success", 1), run
    prof = await spec.profile(external_id="u1")
    assert prof is not None
    attrs = prof["attributes"]
    assert (attrs["amount"], attrs["n"], attrs["d"], attrs["tags"]) == (
        2.5,
        7,
        "2026-03-01",
        ["a", "b"],
    )
    assert ts(attrs["seen"]) == ts("2026-03-01T10:00:00Z")
    run = await spec.run(await spec.ready("purchases", "buys"))
    assert (run["status"], run["rows_delivered"]) == ("success", 1), run
    (buy,) = await spec.purchases(prof["id"])
    assert (buy["price"], buy["quantity"], buy["currency"]) == (9.99, 2, "USD")
    assert ts(buy["time"]) == ts("2026-03-01T10:00:00Z")
