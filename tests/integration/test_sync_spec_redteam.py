"""Red-team scenarios of issue 8's ingestion syncs: new ground the other spec files leave.

Identifier spellings (phone formats, e-mail case and spaces, blank halves), payload shapes
(nested objects replace, non-object JSON), event times in ISO 8601 forms, purchase fields,
``DELETED`` spellings, watermark edges (rows changed in place at the boundary, a dropped
column, an emptied table) and run outcomes. Expected values come from issue 8 and the
README; where the spec is silent, the choice a data engineer would expect (noted per test).
"""

from __future__ import annotations

import pytest

from tests.integration.test_sync_spec_harness import (  # noqa: F401
    COMBOS,
    Spec,
    j,
    spec_fixture,
    ts,
)

pytestmark = pytest.mark.anyio

# Two of the four combinations (DuckDB source + SQLite state, PostgreSQL + PostgreSQL state):
# every store and every source kind, at half the time; rules decided before the store sees a
# row (identifier spelling, time parsing) run on the first one only.
BOTH = pytest.mark.parametrize("spec", [COMBOS[0], COMBOS[3]], indirect=True)
FIRST = pytest.mark.parametrize("spec", [COMBOS[0]], indirect=True)

ID_COLS = {
    "UPDATED_AT": "ts",
    "EXTERNAL_ID": "text",
    "ALIAS_NAME": "text",
    "ALIAS_LABEL": "text",
    "EMAIL": "text",
    "PHONE": "text",
    "PAYLOAD": "text",
}
USER = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


def at(minute: int) -> str:
    return f"2026-03-01 00:{minute:02d}:00"


@BOTH
async def test_phone_spellings_designate_one_profile(spec: Spec) -> None:
    """Decision (spec silent): a phone is compared on its digits and leading '+' only, so
    '+1 (555) 010-0001' and '+15550100001' are one person, as a CRM export would expect."""
    spec.warehouse.create(
        "ph",
        ID_COLS,
        [
            (at(0), None, None, None, None, "+1 (555) 010-0001", j({"a": 1})),
            (at(1), None, None, None, None, "+15550100001", j({"b": 2})),
            (at(2), None, None, None, None, "+1.555.010.0001", j({"c": 3})),
        ],
    )
    sync_id = await spec.ready("user_attributes", "ph")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 3), run
    prof = await spec.profile(phone="+15550100001")
    assert prof is not None and prof["attributes"] == {"a": 1, "b": 2, "c": 3}
    assert prof["phone"] == "+15550100001"
    same = await spec.profile(phone="+1 555 010 0001")
    assert same is not None and same["id"] == prof["id"]


@BOTH
async def test_email_with_spaces_and_case_and_phone_together(spec: Spec) -> None:
    spec.warehouse.create(
        "em",
        ID_COLS,
        [
            (at(0), None, None, None, "  Ann@Example.COM ", "+15550200002", j({"a": 1})),
            (at(1), None, None, None, "ann@example.com", None, j({"b": 2})),
            (at(2), "", "  ", "", "ann@example.com", "", j({"c": 3})),
        ],
    )
    sync_id = await spec.ready("user_attributes", "em")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 3), await spec.rows(run["id"])
    prof = await spec.profile(email="ANN@example.com")
    assert prof is not None and prof["attributes"] == {"a": 1, "b": 2, "c": 3}
    assert prof["email"] == "ann@example.com" and prof["phone"] == "+15550200002"
    by_phone = await spec.profile(phone="+15550200002")
    assert by_phone is not None and by_phone["id"] == prof["id"]


@FIRST
async def test_blank_identifier_values_count_as_absent(spec: Spec) -> None:
    spec.warehouse.create(
        "bl",
        ID_COLS,
        [
            (at(0), "", None, None, None, None, j({"a": 1})),
            (at(1), "   ", "al", "  ", None, None, j({"a": 1})),
            (at(2), "u1", "", "", "  ", "", j({"a": 1})),
            (at(3), None, "al", "crm", None, None, j({"a": 2})),
        ],
    )
    sync_id = await spec.ready("user_attributes", "bl")
    run = await spec.run(sync_id)
    assert run["status"] == "partial_success", run
    assert sorted(await spec.codes(run["id"])) == ["incomplete_alias", "no_identifier"]
    assert (await spec.profile(external_id="u1"))["attributes"] == {"a": 1}  # type: ignore[index]
    prof = await spec.profile(alias_name="al", alias_label="crm")
    assert prof is not None and prof["attributes"] == {"a": 2}


@BOTH
async def test_nested_objects_replace_and_arrays_of_objects_are_kept(spec: Spec) -> None:
    """Top-level merge: a nested object sent again replaces the stored one (Braze's default
    without ``_merge_objects``); ``null`` removes; arrays of objects are kept whole."""
    spec.warehouse.create(
        "nest",
        USER,
        [
            (at(0), "u1", j({"car": {"make": "VW", "year": 2010}, "pets": [{"n": "a"}], "x": 1})),
            (at(1), "u1", j({"car": {"make": "BMW"}, "pets": [{"n": "b"}, {"n": "c"}]})),
            (at(2), "u1", j({"x": None, "missing": None})),
        ],
    )
    sync_id = await spec.ready("user_attributes", "nest")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 3), run
    prof = await spec.profile(external_id="u1")
    assert prof is not None
    assert prof["attributes"] == {"car": {"make": "BMW"}, "pets": [{"n": "b"}, {"n": "c"}]}


@BOTH
async def test_a_row_changed_in_place_at_the_boundary_is_applied(spec: Spec) -> None:
    """Same UPDATED_AT, new payload: a new content hash, so it is delivered as an update."""
    spec.warehouse.create("inplace", USER, [(at(5), "u1", j({"tier": "silver"}))])
    sync_id = await spec.ready("user_attributes", "inplace")
    first = await spec.run(sync_id)
    assert first["rows_delivered"] == 1
    spec.warehouse.execute(f'UPDATE marketing."inplace" SET "PAYLOAD" = \'{j({"tier": "gold"})}\'')
    second = await spec.run(sync_id)
    assert (second["status"], second["rows_delivered"]) == ("success", 1), second
    assert (await spec.profile(external_id="u1"))["attributes"] == {"tier": "gold"}  # type: ignore[index]
    third = await spec.run(sync_id)
    assert third["rows_delivered"] == 0


EVENT_TIMES = [
    ("2026-03-01T10:00:00Z", "2026-03-01T10:00:00+00:00"),
    ("2026-03-01T12:00:00+02:00", "2026-03-01T10:00:00+00:00"),
    ("2026-03-01T10:00:00", "2026-03-01T10:00:00+00:00"),
    ("2026-03-01T10:00:00.123456Z", "2026-03-01T10:00:00.123456+00:00"),
    ("2026-03-01 10:00:00", "2026-03-01T10:00:00+00:00"),
    ("2026-03-01", "2026-03-01T00:00:00+00:00"),
]


@BOTH
async def test_event_times_in_iso_8601_forms(spec: Spec) -> None:
    rows = [
        (at(i), "u1", j({"name": f"e{i}", "time": given}))
        for i, (given, _) in enumerate(EVENT_TIMES)
    ]
    bad = ["not a time", "2026-13-01T00:00:00Z", "", "1772323200", "2026-02-30"]
    rows += [(at(20 + i), "u1", j({"name": f"bad{i}", "time": b})) for i, b in enumerate(bad)]
    rows.append((at(30), "u1", j({"name": "num", "time": 1772323200})))
    spec.warehouse.create("evt", USER, rows)
    sync_id = await spec.ready("custom_events", "evt")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("partial_success", len(EVENT_TIMES)), run
    assert await spec.codes(run["id"]) == ["invalid_field"] * (len(bad) + 1)
    prof = await spec.profile(external_id="u1")
    assert prof is not None
    got = {e["name"]: ts(e["time"]) for e in await spec.events(prof["id"])}
    assert got == {f"e{i}": ts(want) for i, (_, want) in enumerate(EVENT_TIMES)}


def buy(minute: int, **fields: object) -> tuple[str, str, str]:
    base: dict[str, object] = {
        "product_id": "sku",
        "currency": "USD",
        "price": 1.5,
        "time": "2026-03-01T00:00:00Z",
    }
    base.update(fields)
    return (at(minute), "u1", j({k: v for k, v in base.items() if v is not ...}))


@BOTH
async def test_purchase_fields_at_their_edges(spec: Spec) -> None:
    """``currency`` is case-insensitive ISO 4217 (stored upper-case); a price is a JSON number
    (zero and negative -- a refund -- allowed; text refused); ``quantity`` a positive integer."""
    cases = [
        (buy(0, currency="usd"), None),
        (buy(1, price=0), None),
        (buy(2, price=-3.5), None),
        (buy(3, price="9.99"), "invalid_field"),
        (buy(4, quantity=0), "invalid_field"),
        (buy(5, quantity=1.5), "invalid_field"),
        (buy(6, quantity="2"), "invalid_field"),
        (buy(7, quantity=-1), "invalid_field"),
        (buy(8, quantity=3), None),
        (buy(9, currency="XYZ"), "invalid_field"),
        (buy(10, currency=" eur "), "invalid_field"),
        (buy(11, product_id=""), "invalid_field"),
        (buy(12, price=...), "missing_field"),
        (buy(13, quantity=2**31), "invalid_field"),
        (buy(14, properties=[1]), "invalid_field"),
    ]
    spec.warehouse.create("buys", USER, [r for r, _ in cases])
    sync_id = await spec.ready("purchases", "buys")
    run = await spec.run(sync_id)
    want_errors = [c for _, c in cases if c]
    assert run["rows_errored"] == len(want_errors), await spec.rows(run["id"])
    assert run["rows_delivered"] == len(cases) - len(want_errors)
    assert await spec.codes(run["id"]) == want_errors
    prof = await spec.profile(external_id="u1")
    assert prof is not None
    got = sorted(
        (p["currency"], p["price"], p["quantity"]) for p in await spec.purchases(prof["id"])
    )
    assert got == sorted([("USD", 1.5, 1), ("USD", 0, 1), ("USD", -3.5, 1), ("USD", 1.5, 3)])


CATALOG = {"UPDATED_AT": "ts", "ID": "text", "PAYLOAD": "text", "DELETED": "text"}


@BOTH
async def test_catalog_deleted_spellings_missing_items_and_recreation(spec: Spec) -> None:
    spec.warehouse.create(
        "cat",
        CATALOG,
        [
            (at(0), "a", j({"p": 1}), None),
            (at(1), "b", j({"p": 2}), "false"),
            (at(2), "c", j({"p": 3}), "FALSE"),
            (at(3), "a", None, "TRUE"),
            (at(4), "ghost", None, "true"),
            (at(5), "b", j({}), "1"),
            (at(6), "b", j({"q": 9}), "0"),
            (at(7), "c", j({"p": 4}), "maybe"),
        ],
    )
    sync_id = await spec.ready("catalog_items", "cat", catalog_name="shop")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == (
        "partial_success",
        7,
        1,
    ), await spec.rows(run["id"])
    assert await spec.codes(run["id"]) == ["invalid_field"]
    items = await spec.catalog("shop")
    assert {k: v["fields"] for k, v in items.items()} == {"b": {"q": 9}, "c": {"p": 3}}


ACCOUNTS = {
    "UPDATED_AT": "ts",
    "ID": "text",
    "NAME": "text",
    "PAYLOAD": "text",
    "DELETED": "bool",
}


@BOTH
async def test_accounts_reported_fields_and_deletes(spec: Spec) -> None:
    """Dropped fields are reported (``unknown_field``) on a delivered row: the run is a
    success -- no row was refused -- and the report is listed and exported."""
    spec.warehouse.create(
        "acc",
        ACCOUNTS,
        [
            (at(0), "a1", "Acme", j({"plan": "pro", "secret": 1}), None),
            (at(1), "a2", "Beta", j({"plan": "free"}), False),
            (at(2), "a2", "Beta", None, True),
            (at(3), "a3", "Gone", None, True),
        ],
    )
    sync_id = await spec.ready("accounts", "acc", settings={"account_fields": ["plan"]})
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == ("success", 4, 0), run
    logs = await spec.rows(run["id"], errors_only=False)
    assert [r["code"] for r in logs if r["code"]] == ["unknown_field"]
    accounts = await spec.accounts()
    assert {k: (v["name"], v["fields"]) for k, v in accounts.items()} == {
        "a1": ("Acme", {"plan": "pro"})
    }


@BOTH
async def test_a_dropped_column_fails_the_run_and_keeps_the_watermark(spec: Spec) -> None:
    spec.warehouse.create("drop", USER, [(at(0), "u1", j({"a": 1}))])
    sync_id = await spec.ready("user_attributes", "drop")
    first = await spec.run(sync_id)
    assert first["status"] == "success"
    spec.warehouse.execute('ALTER TABLE marketing."drop" DROP COLUMN "PAYLOAD"')
    second = await spec.run(sync_id)
    assert second["status"] == "error" and second["error"]["code"], second
    assert "PAYLOAD" in second["error"]["message"]
    assert ts(second["watermark_after"]) == ts(first["watermark_after"])
    spec.warehouse.execute('ALTER TABLE marketing."drop" ADD COLUMN "PAYLOAD" VARCHAR')
    spec.warehouse.insert("drop", USER, [(at(1), "u1", j({"b": 2}))])
    third = await spec.run(sync_id)
    # The boundary row now reads with a null PAYLOAD: changed content, so it is reported.
    assert (third["status"], third["rows_delivered"]) == ("partial_success", 1), third
    assert await spec.codes(third["id"]) == ["missing_field"]
    assert (await spec.profile(external_id="u1"))["attributes"] == {"a": 1, "b": 2}  # type: ignore[index]


@FIRST
async def test_an_emptied_table_keeps_the_watermark_and_the_store(spec: Spec) -> None:
    spec.warehouse.create("gone", USER, [(at(0), "u1", j({"a": 1}))])
    sync_id = await spec.ready("user_attributes", "gone")
    first = await spec.run(sync_id)
    spec.warehouse.execute('DELETE FROM marketing."gone"')
    second = await spec.run(sync_id)
    assert (second["status"], second["rows_read"], second["rows_delivered"]) == ("success", 0, 0)
    assert ts(second["watermark_after"]) == ts(first["watermark_after"])
    assert (await spec.profile(external_id="u1"))["attributes"] == {"a": 1}  # type: ignore[index]


@BOTH
async def test_payload_json_oddities(spec: Spec) -> None:
    """Duplicate keys: the last one wins (as JSON parsers and Braze do); non-object JSON and
    ``null`` payload texts are refused with their codes."""
    spec.warehouse.create(
        "odd",
        USER,
        [
            (at(0), "u1", '{"a": 1, "a": 2}'),
            (at(1), "u2", '[{"a": 1}]'),
            (at(2), "u2", "42"),
            (at(3), "u2", "null"),
            (at(4), "u2", "  "),
            (at(5), "u2", None),
            (at(6), "u2", '{"a": 1} {"b": 2}'),
            (at(7), "u3", '{"big": ' + j("x" * 200_000) + "}"),
        ],
    )
    sync_id = await spec.ready("user_attributes", "odd")
    run = await spec.run(sync_id)
    codes = await spec.codes(run["id"])
    assert codes == [
        "payload_not_object",
        "payload_not_object",
        "payload_not_object",
        "invalid_json",
        "missing_field",
        "invalid_json",
    ], await spec.rows(run["id"])
    assert (await spec.profile(external_id="u1"))["attributes"] == {"a": 2}  # type: ignore[index]
    big = await spec.profile(external_id="u3")
    assert big is not None and len(big["attributes"]["big"]) == 200_000
    assert await spec.profile(external_id="u2") is None


INT_IDS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "int", "PAYLOAD": "text"}


@BOTH
async def test_a_deleted_profile_s_braze_id_no_longer_updates(spec: Spec) -> None:
    spec.warehouse.create("mk", USER, [(at(0), "u1", j({"a": 1}))])
    make = await spec.ready("user_attributes", "mk")
    await spec.run(make)
    braze = (await spec.profile(external_id="u1"))["braze_id"]  # type: ignore[index]
    spec.warehouse.create("del", {"UPDATED_AT": "ts", "EXTERNAL_ID": "text"}, [(at(1), "u1")])
    dele = await spec.ready("user_deletes", "del")
    assert (await spec.run(dele))["rows_delivered"] == 1
    spec.warehouse.create(
        "upd",
        {"UPDATED_AT": "ts", "BRAZE_ID": "text", "PAYLOAD": "text"},
        [(at(2), braze, j({"b": 2}))],
    )
    upd = await spec.ready("user_attributes", "upd")
    run = await spec.run(upd)
    assert await spec.codes(run["id"]) == ["unknown_braze_id"]
    assert await spec.profile(braze_id=braze) is None


@BOTH
async def test_time_zone_added_to_updated_at_between_runs_applies_nothing_twice(
    spec: Spec,
) -> None:
    """The column goes from ``timestamp`` to ``timestamptz`` (same instants): the rows at the
    boundary are the same rows, so no event is appended a second time."""
    spec.warehouse.create(
        "tzc",
        USER,
        [
            (at(0), "u1", j({"name": "a", "time": "2026-03-01T00:00:00Z"})),
            (at(1), "u1", j({"name": "b", "time": "2026-03-01T00:00:00Z"})),
        ],
    )
    sync_id = await spec.ready("custom_events", "tzc")
    first = await spec.run(sync_id)
    assert first["rows_delivered"] == 2
    if spec.warehouse.kind == "duckdb":
        spec.warehouse.execute(
            "SET TimeZone = 'UTC'",
            'ALTER TABLE marketing."tzc" ALTER "UPDATED_AT" TYPE TIMESTAMPTZ',
        )
    else:
        spec.warehouse.execute(
            'ALTER TABLE marketing."tzc" ALTER "UPDATED_AT" TYPE timestamptz '
            "USING \"UPDATED_AT\" AT TIME ZONE 'UTC'"
        )
    spec.warehouse.insert(
        "tzc",
        {**USER, "UPDATED_AT": "tstz"},
        [("2026-03-01 00:02:00+00", "u1", j({"name": "c", "time": "2026-03-01T00:00:00Z"}))],
    )
    second = await spec.run(sync_id)
    assert (second["status"], second["rows_delivered"]) == ("success", 1), second
    prof = await spec.profile(external_id="u1")
    assert prof is not None
    assert sorted(e["name"] for e in await spec.events(prof["id"])) == ["a", "b", "c"]


@BOTH
async def test_a_row_changed_inside_the_lookback_is_applied_once(spec: Spec) -> None:
    spec.warehouse.create(
        "lb",
        USER,
        [(at(0), "u1", j({"tier": "silver"})), (at(5), "u2", j({"tier": "gold"}))],
    )
    sync_id = await spec.ready("user_attributes", "lb", lookback_minutes=10)
    assert (await spec.run(sync_id))["rows_delivered"] == 2
    spec.warehouse.execute(
        f'UPDATE marketing."lb" SET "PAYLOAD" = \'{j({"tier": "platinum"})}\' '
        "WHERE \"EXTERNAL_ID\" = 'u1'"
    )
    second = await spec.run(sync_id)
    assert (second["status"], second["rows_delivered"], second["rows_skipped"]) == (
        "success",
        1,
        1,
    ), second
    assert (await spec.profile(external_id="u1"))["attributes"] == {"tier": "platinum"}  # type: ignore[index]
    assert (await spec.run(sync_id))["rows_delivered"] == 0


@FIRST
async def test_event_times_in_rfc_3339_lower_case(spec: Spec) -> None:
    """RFC 3339 (the ISO 8601 profile JSON uses) allows a lower-case ``t`` and ``z``."""
    spec.warehouse.create(
        "lc", USER, [(at(0), "u1", j({"name": "e", "time": "2026-03-01t10:00:00z"}))]
    )
    sync_id = await spec.ready("custom_events", "lc")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 1), await spec.rows(run["id"])
    prof = await spec.profile(external_id="u1")
    assert prof is not None
    assert [ts(e["time"]) for e in await spec.events(prof["id"])] == [ts("2026-03-01T10:00:00Z")]


@BOTH
async def test_integral_numeric_ids_read_as_integers(spec: Spec) -> None:
    """An EXTERNAL_ID in a DOUBLE / NUMERIC column: 42.0 is the user "42" (the same user a
    BIGINT or text column names); a fractional value stays as it is."""
    num = "DOUBLE" if spec.warehouse.kind == "duckdb" else "numeric(12,2)"
    spec.warehouse.execute(
        f'CREATE TABLE marketing."num" ("UPDATED_AT" TIMESTAMP, "EXTERNAL_ID" {num}, '
        '"PAYLOAD" VARCHAR)',
        f"INSERT INTO marketing.\"num\" VALUES ('{at(0)}', 42, '{j({'a': 1})}'), "
        f"('{at(1)}', 7.5, '{j({'b': 2})}')",
    )
    sync_id = await spec.ready("user_attributes", "num")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 2), await spec.rows(run["id"])
    assert (await spec.profile(external_id="42"))["attributes"] == {"a": 1}  # type: ignore[index]
    assert (await spec.profile(external_id="7.5"))["attributes"] == {"b": 2}  # type: ignore[index]


@BOTH
async def test_a_new_empty_identifier_column_applies_nothing_twice(spec: Spec) -> None:
    spec.warehouse.create(
        "addc", USER, [(at(0), "u1", j({"name": "a", "time": "2026-03-01T00:00:00Z"}))]
    )
    sync_id = await spec.ready("custom_events", "addc")
    assert (await spec.run(sync_id))["rows_delivered"] == 1
    spec.warehouse.execute('ALTER TABLE marketing."addc" ADD COLUMN "EMAIL" VARCHAR')
    second = await spec.run(sync_id)
    assert (second["status"], second["rows_delivered"], second["rows_skipped"]) == (
        "success",
        0,
        1,
    ), second
    prof = await spec.profile(external_id="u1")
    assert prof is not None and len(await spec.events(prof["id"])) == 1


@FIRST
async def test_identifiers_of_separator_characters_only_are_blank(spec: Spec) -> None:
    """Characters Python counts as white space but Arrow's trim keeps (U+001C-U+001F, U+0085):
    an identifier made only of them is blank, a row error or the other identifier -- never a
    crash of the run."""
    spec.warehouse.create(
        "sep",
        ID_COLS,
        [
            (at(0), "\x1f", None, None, None, None, j({"a": 1})),
            (at(1), "\x85 ", None, None, "sep@example.com", None, j({"b": 2})),
            (at(2), None, "\x1c", "crm", None, None, j({"c": 3})),
            (at(3), "u1", None, None, None, None, j({"d": 4})),
        ],
    )
    sync_id = await spec.ready("user_attributes", "sep")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("partial_success", 2), run
    assert await spec.codes(run["id"]) == ["no_identifier", "incomplete_alias"]
    assert (await spec.profile(email="sep@example.com"))["attributes"] == {"b": 2}  # type: ignore[index]


@BOTH
async def test_a_row_changed_back_at_the_boundary_is_applied_again(spec: Spec) -> None:
    """silver → gold → silver, all at the same UPDATED_AT: the last content read wins. The
    first silver's hash must not make the third run skip the row as already delivered."""
    spec.warehouse.create("flip", USER, [(at(5), "u1", j({"tier": "silver"}))])
    sync_id = await spec.ready("user_attributes", "flip")
    assert (await spec.run(sync_id))["rows_delivered"] == 1
    for tier in ("gold", "silver"):
        spec.warehouse.execute(f'UPDATE marketing."flip" SET "PAYLOAD" = \'{j({"tier": tier})}\'')
        run = await spec.run(sync_id)
        assert (run["status"], run["rows_delivered"]) == ("success", 1), (tier, run)
        assert (await spec.profile(external_id="u1"))["attributes"] == {"tier": tier}  # type: ignore[index]
    assert (await spec.run(sync_id))["rows_delivered"] == 0


@BOTH
async def test_identical_rows_split_by_a_run_are_each_delivered(spec: Spec) -> None:
    """Two identical event rows are two events. Split by the row limit, or the second one
    committed at the same UPDATED_AT after a run read the first: each is delivered once."""
    same = (at(0), "u1", j({"name": "click", "time": "2026-03-01T00:00:00Z"}))
    spec.warehouse.create("dup", USER, [same, same])
    sync_id = await spec.ready("custom_events", "dup", row_limit=1)
    first = await spec.run(sync_id)
    assert (first["status"], first["rows_delivered"]) == ("limit_exceeded", 1), first
    second = await spec.run(sync_id)
    assert (second["rows_delivered"], second["rows_skipped"]) == (1, 1), second
    spec.warehouse.insert("dup", USER, [same])  # a third one, late, at the same UPDATED_AT
    third = await spec.run(sync_id)
    assert (third["rows_delivered"], third["rows_skipped"]) == (1, 2), third
    fourth = await spec.run(sync_id)
    assert (fourth["rows_delivered"], fourth["rows_skipped"]) == (0, 3), fourth
    prof = await spec.profile(external_id="u1")
    assert prof is not None and len(await spec.events(prof["id"])) == 3


@BOTH
async def test_identical_rows_removed_then_added_again_are_delivered(spec: Spec) -> None:
    same = (at(0), "u1", j({"name": "click", "time": "2026-03-01T00:00:00Z"}))
    spec.warehouse.create("dup2", USER, [same, same])
    sync_id = await spec.ready("custom_events", "dup2")
    assert (await spec.run(sync_id))["rows_delivered"] == 2
    spec.warehouse.execute('DELETE FROM marketing."dup2"')
    spec.warehouse.insert("dup2", USER, [same])
    assert (await spec.run(sync_id))["rows_delivered"] == 0  # one of the two was removed
    spec.warehouse.insert("dup2", USER, [same])  # ... and a new identical one arrives
    third = await spec.run(sync_id)
    assert (third["rows_delivered"], third["rows_skipped"]) == (1, 1), third
    prof = await spec.profile(external_id="u1")
    assert prof is not None and len(await spec.events(prof["id"])) == 3
