"""Identity scenarios of issue 8 the spec suites leave out, through the API on every combination.

"Email and phone match the most recently updated profile": profiles get their e-mail and
phone not only from an ``EMAIL``/``PHONE`` identifier but also from the standard ``email`` /
``phone`` attributes of their payload (as in Braze), so several profiles can share one
address; an e-mail or phone row then goes to the most recently updated of them. User deletes
by each identifier kind; row-error exports with awkward payloads.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.integration.test_sync_spec_harness import USER_ID_COLS as COLS
from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture  # noqa: F401
from tests.integration.test_sync_spec_harness import user_row as row

pytestmark = pytest.mark.anyio


async def test_email_attribute_makes_profiles_share_an_address_and_the_latest_wins(
    spec: Spec,
) -> None:
    spec.warehouse.create(
        "attrs",
        COLS,
        [
            row(0, {"email": "Shared@Example.com", "who": "u1"}, ext="u1"),
            row(1, {"email": "shared@example.com", "who": "u2"}, ext="u2"),
        ],
    )
    sync_id = await spec.ready("user_attributes", "attrs")
    assert (await spec.run(sync_id))["status"] == "success"
    u1 = await spec.profile(external_id="u1")
    u2 = await spec.profile(external_id="u2")
    assert u1 is not None and u2 is not None
    assert u1["email"] == u2["email"] == "shared@example.com"
    # The lookup and an e-mail row both designate u2, the most recently updated.
    assert (await spec.profile(email="shared@example.com"))["id"] == u2["id"]  # type: ignore[index]
    spec.warehouse.insert("attrs", COLS, [row(2, {"via": "mail"}, email="shared@example.com")])
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 1)
    assert (await spec.profile(external_id="u2"))["attributes"]["via"] == "mail"  # type: ignore[index]
    assert "via" not in (await spec.profile(external_id="u1"))["attributes"]  # type: ignore[index]
    # u1 is touched later: e-mail now designates u1; no profile was created by e-mail.
    spec.warehouse.insert(
        "attrs",
        COLS,
        [row(3, {"touch": 1}, ext="u1"), row(4, {"via": "mail-2"}, email="shared@example.com")],
    )
    assert (await spec.run(sync_id))["status"] == "success"
    assert (await spec.profile(external_id="u1"))["attributes"]["via"] == "mail-2"  # type: ignore[index]
    assert (await spec.profile(external_id="u2"))["attributes"]["via"] == "mail"  # type: ignore[index]


async def test_email_attribute_changed_or_removed_moves_the_address(spec: Spec) -> None:
    spec.warehouse.create(
        "attrs",
        COLS,
        [
            row(0, {"email": "old@example.com"}, ext="u1"),
            row(1, {"email": "new@example.com"}, ext="u1"),
        ],
    )
    sync_id = await spec.ready("user_attributes", "attrs")
    assert (await spec.run(sync_id))["status"] == "success"
    u1 = await spec.profile(external_id="u1")
    assert u1 is not None and u1["email"] == "new@example.com"
    assert await spec.profile(email="old@example.com") is None
    assert (await spec.profile(email="new@example.com"))["id"] == u1["id"]  # type: ignore[index]
    # null removes the attribute, and with it the address.
    spec.warehouse.insert("attrs", COLS, [row(2, {"email": None}, ext="u1")])
    assert (await spec.run(sync_id))["status"] == "success"
    assert await spec.profile(email="new@example.com") is None
    after = await spec.profile(external_id="u1")
    assert after is not None and after["email"] is None and "email" not in after["attributes"]


async def test_phone_attribute_is_matched_on_its_digits(spec: Spec) -> None:
    spec.warehouse.create(
        "attrs",
        COLS,
        [row(0, {"phone": "+1 (555) 010-0001"}, ext="u1")],
    )
    sync_id = await spec.ready("user_attributes", "attrs")
    assert (await spec.run(sync_id))["status"] == "success"
    u1 = await spec.profile(external_id="u1")
    assert u1 is not None and u1["phone"] == "+15550100001"
    spec.warehouse.insert("attrs", COLS, [row(1, {"via": "phone"}, phone="+15550100001")])
    assert (await spec.run(sync_id))["rows_delivered"] == 1
    assert (await spec.profile(external_id="u1"))["attributes"]["via"] == "phone"  # type: ignore[index]


async def test_events_by_email_go_to_the_most_recently_updated_profile(spec: Spec) -> None:
    spec.warehouse.create(
        "attrs",
        COLS,
        [
            row(0, {"email": "fam@example.com"}, ext="parent"),
            row(1, {"email": "fam@example.com"}, ext="child"),
            row(2, {"email": "fam@example.com"}, ext="parent"),
        ],
    )
    spec.warehouse.create(
        "evs",
        COLS,
        [row(5, {"name": "login", "time": "2026-03-01T10:00:00Z"}, email="FAM@example.com")],
    )
    assert (await spec.run(await spec.ready("user_attributes", "attrs")))["status"] == "success"
    run = await spec.run(await spec.ready("custom_events", "evs"))
    assert (run["status"], run["rows_delivered"]) == ("success", 1)
    parent = await spec.profile(external_id="parent")
    child = await spec.profile(external_id="child")
    assert parent is not None and child is not None
    assert [e["name"] for e in await spec.events(parent["id"])] == ["login"]
    assert await spec.events(child["id"]) == []


async def test_an_invalid_email_attribute_is_refused(spec: Spec) -> None:
    spec.warehouse.create(
        "attrs",
        COLS,
        [
            row(0, {"email": "not-an-address"}, ext="u1"),
            row(1, {"email": 42}, ext="u2"),
            row(2, {"phone": "call me"}, ext="u3"),
            row(3, {"email": "ok@example.com"}, ext="u4"),
            row(4, {"email": "ok@example.com"}, ext="u5"),
            # Decision (spec silent): a blank address, as warehouses write an unknown value,
            # is no address -- the row is delivered and u5 no longer holds ok@example.com.
            row(5, {"email": " ", "phone": ""}, ext="u5"),
        ],
    )
    run = await spec.run(await spec.ready("user_attributes", "attrs"))
    assert (run["status"], run["rows_delivered"]) == ("partial_success", 3), run
    assert await spec.codes(run["id"]) == ["invalid_field"] * 3
    assert await spec.profile(external_id="u1") is None
    u5 = await spec.profile(external_id="u5")
    assert u5 is not None and (u5["email"], u5["phone"]) == (None, None)
    assert u5["attributes"] == {"email": " ", "phone": ""}
    assert (await spec.profile(email="ok@example.com"))["external_id"] == "u4"  # type: ignore[index]


async def test_user_deletes_by_each_identifier_kind(spec: Spec) -> None:
    spec.warehouse.create(
        "attrs",
        COLS,
        [
            row(0, {"k": 1}, ext="by-ext"),
            row(1, {"k": 2}, alias=("al", "crm")),
            row(2, {"k": 3}, ext="by-braze"),
            row(3, {"k": 4}, ext="keep"),
        ],
    )
    assert (await spec.run(await spec.ready("user_attributes", "attrs")))["status"] == "success"
    braze = (await spec.profile(external_id="by-braze"))["braze_id"]  # type: ignore[index]
    spec.warehouse.create(
        "dels",
        COLS,
        [
            row(10, None, ext="by-ext"),
            row(11, None, alias=("al", "crm")),
            row(12, None, braze=braze),
            row(13, None, ext="nobody"),  # nothing to delete: not an error
            row(14, None, email="keep@example.com"),  # deletes take no e-mail
            row(15, None, alias=("al", None)),
        ],
    )
    run = await spec.run(await spec.ready("user_deletes", "dels"))
    assert (run["rows_delivered"], run["rows_errored"]) == (4, 2), await spec.rows(run["id"])
    assert await spec.codes(run["id"]) == ["invalid_identifier", "incomplete_alias"]
    assert await spec.profile(external_id="by-ext") is None
    assert await spec.profile(alias_name="al", alias_label="crm") is None
    assert await spec.profile(braze_id=braze) is None
    assert await spec.profile(external_id="by-braze") is None
    assert await spec.profile(external_id="keep") is not None


AWKWARD = 'a,b;"quoted" \\ back\nnew line\r\ncrlf\ttab é ✓ 🎉'


async def test_row_error_export_keeps_awkward_payloads_exactly(spec: Spec) -> None:
    payload = j({"name": AWKWARD, "time": "never"})
    spec.warehouse.create(
        "evs",
        {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"},
        [
            ("2026-03-01 00:00:00", "u,1", payload),
            ("2026-03-01 00:00:01", 'u"2', '{broken, "json"\n}'),
        ],
    )
    run = await spec.run(await spec.ready("custom_events", "evs"))
    assert run["rows_errored"] == 2
    base = f"/v1/sync-runs/{run['id']}/rows/export"
    resp = await spec.get(base, params={"format": "csv"})
    assert resp.status_code == 200, resp.text
    table = list(csv.DictReader(io.StringIO(resp.text, newline="")))
    assert [r["code"] for r in table] == ["invalid_field", "invalid_json"]
    first = json.loads(table[0]["row"])
    assert {k.upper(): v for k, v in first.items()}["PAYLOAD"] == payload
    assert {k.upper(): v for k, v in first.items()}["EXTERNAL_ID"] == "u,1"
    second = {k.upper(): v for k, v in json.loads(table[1]["row"]).items()}
    assert second["PAYLOAD"] == '{broken, "json"\n}' and second["EXTERNAL_ID"] == 'u"2'
    resp = await spec.get(base, params={"format": "jsonl"})
    lines = [json.loads(line) for line in resp.text.splitlines() if line]
    assert len(lines) == 2
    assert {k.upper(): v for k, v in lines[0]["row"].items()}["PAYLOAD"] == payload


async def test_a_national_phone_with_its_area_code_in_parentheses(spec: Spec) -> None:
    """Decision (spec silent): ``(555) 010-0001``, the usual US spelling, is a phone number
    (matched on its digits, like the other spellings), not an ``invalid_identifier``."""
    spec.warehouse.create(
        "attrs",
        COLS,
        [
            row(0, {"a": 1}, phone="(555) 010-0001"),
            row(1, {"b": 2}, phone="555.010.0001"),
            row(2, {"c": 3}, phone="(((("),
        ],
    )
    run = await spec.run(await spec.ready("user_attributes", "attrs"))
    assert (run["rows_delivered"], run["rows_errored"]) == (2, 1), run
    assert await spec.codes(run["id"]) == ["invalid_identifier"]
    prof = await spec.profile(phone="555-010-0001")
    assert prof is not None and prof["attributes"] == {"a": 1, "b": 2}
    assert prof["phone"] == "5550100001"
