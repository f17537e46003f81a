"""Identifier rules (issue 8, "Identifier rules"), one row per rule, read back through the API.

Exactly one of EXTERNAL_ID, ALIAS_NAME+ALIAS_LABEL, BRAZE_ID, EMAIL, PHONE -- except EMAIL +
PHONE, where the e-mail identifies; an alias needs both halves; a braze id only updates an
existing profile; e-mail and phone match the most recently updated profile; column names are
case-insensitive and a view works like a table. Refused rows are row errors with stable codes
and keep the row, and the run goes on.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.test_sync_spec_harness import USER_ID_COLS as ID_COLS
from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture  # noqa: F401
from tests.integration.test_sync_spec_harness import user_row as row

pytestmark = pytest.mark.anyio

# (row, expected verdict: None = delivered, else the row-error code)
CASES = [
    (row(0, {"k": "ext"}, ext="u1"), None),
    (row(1, {"k": "alias"}, alias=("al-1", "crm")), None),
    (row(2, {"k": "x"}, alias=("al-2", None)), "incomplete_alias"),
    (row(3, {"k": "x"}, alias=(None, "crm")), "incomplete_alias"),
    (row(4, {"k": "x"}), "no_identifier"),
    (row(5, {"k": "x"}, ext="u9", email="u9@example.com"), "multiple_identifiers"),
    (row(6, {"k": "x"}, ext="u9", braze="b-9"), "multiple_identifiers"),
    (row(7, {"k": "x"}, ext="u9", alias=("al-9", "crm")), "multiple_identifiers"),
    (row(8, {"k": "x"}, braze="b-9", phone="+15550009"), "multiple_identifiers"),
    (row(9, {"k": "x"}, alias=("al-9", "crm"), email="al9@example.com"), "multiple_identifiers"),
    (row(10, {"k": "x"}, braze="no-such-braze-id"), "unknown_braze_id"),
    (row(11, {"k": "mail+phone"}, email="both@example.com", phone="+15550011"), None),
    (row(12, {"k2": "mail only"}, email="both@example.com"), None),
    (row(13, None, ext="u2", raw="{not json"), "invalid_json"),
    (row(14, None, ext="u2", raw="[1, 2]"), "payload_not_object"),
    (row(15, None, ext="u2", raw='"just text"'), "payload_not_object"),
    (row(16, {"k": "phone"}, phone="+15550016"), None),
    (row(17, {"k": "mail"}, email="solo@example.com"), None),
]


async def test_every_identifier_rule_has_its_verdict(spec: Spec) -> None:
    spec.warehouse.create("ids", ID_COLS, [r for r, _ in CASES])
    sync_id = await spec.ready("user_attributes", "ids")
    run = await spec.run(sync_id)
    refused = [(i, code) for i, (_, code) in enumerate(CASES) if code]
    assert run["status"] == "partial_success"
    assert run["rows_read"] == len(CASES)
    assert run["rows_errored"] == len(refused)
    assert run["rows_delivered"] == len(CASES) - len(refused)
    errors = await spec.rows(run["id"])
    assert [(e["position"], e["code"]) for e in errors] == refused
    for err in errors:  # every refused row keeps its row and says why
        assert err["verdict"] == "error" and err["message"]
        raw = CASES[err["position"]][0][-1]
        assert raw in json.dumps(err["row"]) or json.loads(raw) == _payload_of(err["row"])

    # What was delivered is readable by its identifier.
    u1 = await spec.profile(external_id="u1")
    assert u1 is not None and u1["attributes"] == {"k": "ext"}
    aliased = await spec.profile(alias_name="al-1", alias_label="crm")
    assert aliased is not None and aliased["attributes"] == {"k": "alias"}
    assert {"alias_name": "al-1", "alias_label": "crm"} in aliased["aliases"]
    assert await spec.profile(external_id="u9") is None  # refused rows created nothing
    assert await spec.profile(external_id="u2") is None
    assert await spec.profile(alias_name="al-2", alias_label="crm") is None
    assert await spec.profile(email="u9@example.com") is None
    # E-mail + phone: the e-mail identifies; the e-mail-only row updated the same profile.
    both = await spec.profile(email="both@example.com")
    assert both is not None
    assert both["attributes"] == {"k": "mail+phone", "k2": "mail only"}
    by_phone = await spec.profile(phone="+15550016")
    assert by_phone is not None and by_phone["attributes"] == {"k": "phone"}
    solo = await spec.profile(email="solo@example.com")
    assert solo is not None and solo["attributes"] == {"k": "mail"}
    assert len({u1["id"], aliased["id"], both["id"], by_phone["id"], solo["id"]}) == 5


def _payload_of(raw_row: dict[str, object]) -> object:
    for key, value in raw_row.items():
        if key.upper() == "PAYLOAD":
            return json.loads(value) if isinstance(value, str) else value
    return None


async def test_a_braze_id_updates_an_existing_profile_and_never_creates_one(spec: Spec) -> None:
    spec.warehouse.create("ids", ID_COLS, [row(0, {"a": 1}, ext="u1")])
    sync_id = await spec.ready("user_attributes", "ids")
    assert (await spec.run(sync_id))["status"] == "success"
    u1 = await spec.profile(external_id="u1")
    assert u1 is not None and u1["braze_id"]
    assert (await spec.profile(braze_id=u1["braze_id"]))["id"] == u1["id"]  # type: ignore[index]
    spec.warehouse.insert(
        "ids",
        ID_COLS,
        [row(1, {"b": 2}, braze=u1["braze_id"]), row(2, {"c": 3}, braze="unknown-braze")],
    )
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == ("partial_success", 1, 1)
    assert await spec.codes(run["id"]) == ["unknown_braze_id"]
    after = await spec.profile(external_id="u1")
    assert after is not None and after["attributes"] == {"a": 1, "b": 2}
    assert await spec.profile(braze_id="unknown-braze") is None


async def test_phone_matches_the_most_recently_updated_profile(spec: Spec) -> None:
    shared = "+15550100"
    spec.warehouse.create(
        "ids",
        ID_COLS,
        [
            row(0, {"who": "p1"}, email="p1@example.com", phone=shared),
            row(1, {"who": "p2"}, email="p2@example.com", phone=shared),
        ],
    )
    sync_id = await spec.ready("user_attributes", "ids")
    assert (await spec.run(sync_id))["status"] == "success"
    p1 = await spec.profile(email="p1@example.com")
    p2 = await spec.profile(email="p2@example.com")
    assert p1 is not None and p2 is not None and p1["id"] != p2["id"]
    assert (await spec.profile(phone=shared))["id"] == p2["id"]  # type: ignore[index]
    # A phone-only row goes to p2 (the most recently updated one).
    spec.warehouse.insert("ids", ID_COLS, [row(2, {"via_phone": 1}, phone=shared)])
    assert (await spec.run(sync_id))["rows_delivered"] == 1
    assert (await spec.profile(email="p2@example.com"))["attributes"]["via_phone"] == 1  # type: ignore[index]
    assert "via_phone" not in (await spec.profile(email="p1@example.com"))["attributes"]  # type: ignore[index]
    # p1 is touched (by e-mail) later: now the phone designates p1.
    spec.warehouse.insert(
        "ids",
        ID_COLS,
        [row(3, {"touch": 1}, email="p1@example.com"), row(4, {"via_phone": 2}, phone=shared)],
    )
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 2)
    assert (await spec.profile(phone=shared))["id"] == p1["id"]  # type: ignore[index]
    p1_after = await spec.profile(email="p1@example.com")
    p2_after = await spec.profile(email="p2@example.com")
    assert p1_after is not None and p2_after is not None
    assert p1_after["attributes"] == {"who": "p1", "touch": 1, "via_phone": 2}
    assert p2_after["attributes"] == {"who": "p2", "via_phone": 1}


async def test_column_names_are_case_insensitive_and_a_view_works_like_a_table(
    spec: Spec,
) -> None:
    spec.warehouse.create(
        "lower_attrs",
        {"updated_at": "ts", "external_id": "text", "Payload": "text"},
        [("2026-03-01 00:00:00", "low-1", j({"case": "lower"}))],
    )
    spec.warehouse.create(
        "base_attrs",
        {"ts_col": "ts", "uid": "text", "body": "text"},
        [("2026-03-01 00:00:00", "view-1", j({"case": "view"}))],
    )
    spec.warehouse.execute(
        'CREATE VIEW marketing.attrs_v AS SELECT ts_col AS "Updated_At", uid AS "External_Id", '
        'body AS "PAYLOAD" FROM marketing.base_attrs'
    )
    lower = await spec.ready("user_attributes", "lower_attrs")
    view = await spec.ready("user_attributes", "attrs_v")
    for sync_id in (lower, view):
        run = await spec.run(sync_id)
        assert (run["status"], run["rows_delivered"]) == ("success", 1), run
    assert (await spec.profile(external_id="low-1"))["attributes"] == {"case": "lower"}  # type: ignore[index]
    assert (await spec.profile(external_id="view-1"))["attributes"] == {"case": "view"}  # type: ignore[index]
    # The view is read incrementally like a table: a new base row appears in the next run.
    spec.warehouse.insert(
        "base_attrs",
        {"ts_col": "ts", "uid": "text", "body": "text"},
        [("2026-03-01 00:01:00", "view-2", j({"case": "view later"}))],
    )
    run = await spec.run(view)
    assert (run["status"], run["rows_delivered"]) == ("success", 1)
    assert await spec.profile(external_id="view-2") is not None


async def test_identifiers_of_events_purchases_and_deletes(spec: Spec) -> None:
    """The same rules for the other user types; deletes take external id, alias or braze id."""
    ev_cols = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "EMAIL": "text", "PAYLOAD": "text"}
    event = j({"name": "visit", "time": "2026-03-01T00:00:00Z"})
    spec.warehouse.create(
        "evs",
        ev_cols,
        [
            ("2026-03-01 00:00:00", "e1", None, event),
            ("2026-03-01 00:01:00", None, "ev@example.com", event),
            ("2026-03-01 00:02:00", "e1", "ev@example.com", event),
            ("2026-03-01 00:03:00", None, None, event),
        ],
    )
    run = await spec.run(await spec.ready("custom_events", "evs"))
    assert (run["rows_delivered"], run["rows_errored"]) == (2, 2)
    assert await spec.codes(run["id"]) == ["multiple_identifiers", "no_identifier"]
    e1 = await spec.profile(external_id="e1")
    mail = await spec.profile(email="ev@example.com")
    assert e1 is not None and mail is not None
    assert [e["name"] for e in await spec.events(e1["id"])] == ["visit"]
    assert [e["name"] for e in await spec.events(mail["id"])] == ["visit"]

    del_cols = {
        "UPDATED_AT": "ts",
        "EXTERNAL_ID": "text",
        "ALIAS_NAME": "text",
        "ALIAS_LABEL": "text",
        "BRAZE_ID": "text",
    }
    spec.warehouse.create(
        "alias_src",
        ID_COLS,
        [row(0, {"x": 1}, alias=("al-del", "crm")), row(1, {"x": 1}, ext="by-braze")],
    )
    assert (await spec.run(await spec.ready("user_attributes", "alias_src")))["status"] == (
        "success"
    )
    braze = (await spec.profile(external_id="by-braze"))["braze_id"]  # type: ignore[index]
    spec.warehouse.create(
        "dels",
        del_cols,
        [
            ("2026-03-02 00:00:00", "e1", None, None, None),
            ("2026-03-02 00:01:00", None, "al-del", "crm", None),
            ("2026-03-02 00:02:00", None, None, None, braze),
            ("2026-03-02 00:03:00", None, "half", None, None),
            ("2026-03-02 00:04:00", None, None, None, None),
        ],
    )
    run = await spec.run(await spec.ready("user_deletes", "dels"))
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == (
        "partial_success",
        3,
        2,
    )
    assert await spec.codes(run["id"]) == ["incomplete_alias", "no_identifier"]
    assert await spec.profile(external_id="e1") is None
    assert await spec.profile(alias_name="al-del", alias_label="crm") is None
    assert await spec.profile(external_id="by-braze") is None
    assert await spec.profile(email="ev@example.com") is not None  # untouched


async def test_a_braze_id_never_creates_a_profile_for_events_or_purchases(spec: Spec) -> None:
    cols = {"UPDATED_AT": "ts", "BRAZE_ID": "text", "PAYLOAD": "text"}
    event = j({"name": "e", "time": "2026-03-01T00:00:00Z"})
    buy = j({"product_id": "p", "currency": "USD", "price": 1, "time": "2026-03-01T00:00:00Z"})
    spec.warehouse.create("evs", cols, [("2026-03-01 00:00:00", "ghost-1", event)])
    spec.warehouse.create("buys", cols, [("2026-03-01 00:00:00", "ghost-2", buy)])
    for data_type, table in (("custom_events", "evs"), ("purchases", "buys")):
        run = await spec.run(await spec.ready(data_type, table))
        assert (run["rows_delivered"], run["rows_errored"]) == (0, 1), run
        assert await spec.codes(run["id"]) == ["unknown_braze_id"]
    assert await spec.profile(braze_id="ghost-1") is None
    assert await spec.profile(braze_id="ghost-2") is None
