"""Field scenarios of issue 8 the spec suites leave out, through the API on every combination.

External ids are exact (case and Unicode kept); event and purchase times with odd offsets are
the instants they name; a purchase price may be any finite JSON number; the row limit counts
rows read; accounts and catalog items take ``DELETED`` from integer columns.
"""

from __future__ import annotations

import pytest

from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture, ts  # noqa: F401

pytestmark = pytest.mark.anyio

USER = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


def at(second: int) -> str:
    return f"2026-03-01 00:00:{second:02d}"


async def test_external_ids_are_exact_text(spec: Spec) -> None:
    ids = ["u1", "U1", " u1 ", "ü-1", "用户-1", "a😀"]
    spec.warehouse.create("attrs", USER, [(at(i), x, j({"n": i})) for i, x in enumerate(ids)])
    run = await spec.run(await spec.ready("user_attributes", "attrs"))
    assert (run["status"], run["rows_delivered"]) == ("success", 6), run
    # Blanks around an id are not part of it (" u1 " is u1); case and Unicode are.
    assert (await spec.profile(external_id="u1"))["attributes"] == {"n": 2}  # type: ignore[index]
    assert (await spec.profile(external_id="U1"))["attributes"] == {"n": 1}  # type: ignore[index]
    for i, x in list(enumerate(ids))[3:]:
        assert (await spec.profile(external_id=x))["attributes"] == {"n": i}  # type: ignore[index]


async def test_event_and_purchase_times_with_odd_offsets_are_instants(spec: Spec) -> None:
    spec.warehouse.create(
        "evs",
        USER,
        [
            (at(0), "u1", j({"name": "ktm", "time": "2026-03-01T10:00:00+05:45"})),
            (at(1), "u1", j({"name": "nfl", "time": "2026-03-01T10:00:00-03:30"})),
            (at(2), "u1", j({"name": "lhi", "time": "2026-03-01T10:00:00+10:30"})),
        ],
    )
    spec.warehouse.create(
        "buys",
        USER,
        [
            (
                at(0),
                "u1",
                j(
                    {
                        "product_id": "p",
                        "currency": "JPY",
                        "price": 100000000000,
                        "time": "2026-03-01T00:30:00+05:45",
                        "quantity": 100,
                    }
                ),
            ),
        ],
    )
    assert (await spec.run(await spec.ready("custom_events", "evs")))["status"] == "success"
    assert (await spec.run(await spec.ready("purchases", "buys")))["status"] == "success"
    prof = await spec.profile(external_id="u1")
    assert prof is not None
    got = {e["name"]: ts(e["time"]) for e in await spec.events(prof["id"])}
    assert got == {
        "ktm": ts("2026-03-01T04:15:00Z"),
        "nfl": ts("2026-03-01T13:30:00Z"),
        "lhi": ts("2026-02-28T23:30:00Z"),
    }
    (buy,) = await spec.purchases(prof["id"])
    assert ts(buy["time"]) == ts("2026-02-28T18:45:00Z")
    assert (buy["price"], buy["quantity"], buy["currency"]) == (100000000000, 100, "JPY")


async def test_a_row_limit_equal_to_the_rows_is_a_success(spec: Spec) -> None:
    spec.warehouse.create("attrs", USER, [(at(i), f"u{i}", j({"n": i})) for i in range(3)])
    sync_id = await spec.ready("user_attributes", "attrs", row_limit=3)
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_read"], run["rows_delivered"]) == ("success", 3, 3), run
    spec.warehouse.insert("attrs", USER, [(at(10 + i), f"v{i}", j({"n": i})) for i in range(4)])
    run = await spec.run(sync_id)
    # The boundary row re-read (already delivered) is not one of the 3 rows of the limit.
    assert (run["status"], run["rows_delivered"]) == ("limit_exceeded", 3), run
    assert ts(run["watermark_after"]) == ts("2026-03-01T00:00:12Z")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 1), run
    for i in range(4):
        assert await spec.profile(external_id=f"v{i}") is not None


ACCOUNTS = {"UPDATED_AT": "ts", "ID": "text", "NAME": "text", "PAYLOAD": "text", "DELETED": "int"}
CATALOG = {"UPDATED_AT": "ts", "ID": "int", "PAYLOAD": "text", "DELETED": "int"}


async def test_deleted_from_integer_columns(spec: Spec) -> None:
    spec.warehouse.create(
        "acc",
        ACCOUNTS,
        [
            (at(0), "a1", "Acme", j({"plan": "pro"}), 0),
            (at(1), "a2", "Beta", j({"plan": "free"}), None),
            (at(2), "a1", None, None, 1),
            (at(3), "a3", "Gamma", j({}), 2),
        ],
    )
    spec.warehouse.create(
        "cat",
        CATALOG,
        [
            (at(0), 7, j({"p": 1}), 0),
            (at(1), 8, j({"p": 2}), None),
            (at(2), 7, None, 1),
        ],
    )
    run = await spec.run(await spec.ready("accounts", "acc"))
    assert (run["rows_delivered"], run["rows_errored"]) == (3, 1), run
    assert await spec.codes(run["id"]) == ["invalid_field"]
    assert {k: v["name"] for k, v in (await spec.accounts()).items()} == {"a2": "Beta"}
    run = await spec.run(await spec.ready("catalog_items", "cat", catalog_name="c"))
    assert (run["status"], run["rows_delivered"]) == ("success", 3), run
    assert {k: v["fields"] for k, v in (await spec.catalog("c")).items()} == {"8": {"p": 2}}


async def test_a_table_name_qualified_by_the_source_schema(spec: Spec) -> None:
    """People paste ``schema.table`` from their SQL: the source's schema prefix is accepted
    (quoted or not, any case); another schema is not this source's table."""
    spec.warehouse.create("attrs", USER, [(at(0), "u1", j({"n": 1}))])
    for i, name in enumerate(["marketing.attrs", 'MARKETING."attrs"', '"marketing"."ATTRS"']):
        sync_id = await spec.ready("user_attributes", name, name=f"q{i}")
        run = await spec.run(sync_id)
        assert (run["status"], run["rows_delivered"]) == ("success", 1), (name, run)
    sync = await spec.create_sync("user_attributes", "sales.attrs")
    resp = await spec.post(f"/v1/syncs/{sync['id']}/test")
    assert resp.status_code != 200 and resp.json()["error"]["code"] == "unknown_table", resp.text


async def test_times_whose_utc_instant_leaves_years_1_to_9999_are_row_errors(spec: Spec) -> None:
    """``9999-12-31T23:59:59-01:00`` is valid ISO 8601 but its UTC instant is in year 10000:
    a row error (``invalid_field`` for an event time, ``invalid_updated_at`` for the column),
    never a failed run."""
    text_cols = {"UPDATED_AT": "text", "EXTERNAL_ID": "text", "PAYLOAD": "text"}
    far = "9999-12-31T23:59:59-01:00"
    early = "0001-01-01T00:00:00+01:00"
    spec.warehouse.create(
        "evs",
        text_cols,
        [
            ("2026-03-01T00:00:00Z", "u1", j({"name": "ok", "time": "2026-03-01T00:00:00Z"})),
            ("2026-03-01T00:00:01Z", "u1", j({"name": "far", "time": far})),
            ("2026-03-01T00:00:02Z", "u1", j({"name": "early", "time": early})),
            (far, "u1", j({"name": "x", "time": "2026-03-01T00:00:00Z"})),
        ],
    )
    run = await spec.run(await spec.ready("custom_events", "evs"))
    assert (run["status"], run["rows_delivered"]) == ("partial_success", 1), run
    assert sorted(await spec.codes(run["id"])) == [
        "invalid_field",
        "invalid_field",
        "invalid_updated_at",
    ]
