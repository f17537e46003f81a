"""Sync scenarios, fifth round: row rules of the keyed and user types, and the error report.

* accounts: an empty ``NAME`` on a row of an account the store holds keeps its name (Braze's
  account sync creates *or updates* by ``ID``; a name is needed only to create), and a new
  account without a name is ``missing_field`` — also when the account was deleted earlier in
  the same run;
* ``DELETED`` read from DECIMAL and DOUBLE columns (``1.0`` / ``0.0``) like from integers;
* purchases at the edges of ``currency``, ``price`` and ``quantity``;
* event ``time`` in the spellings people write (Braze's own ``yyyy-MM-dd'T'HH:mm:ss:SSSZ``,
  offsets without a colon, nanoseconds) and the ones refused;
* user deletes of ids nobody has are quiet no-ops;
* the errors-only export holds the rows applied with a warning, not only refused rows.

The expected values come from issue 8 and the README, never from the code.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from tests.integration.test_sync_spec_harness import (  # noqa: F401
    Spec,
    j,
    spec_fixture,
    ts,
)

pytestmark = pytest.mark.anyio

ACCOUNTS = {"UPDATED_AT": "ts", "ID": "text", "NAME": "text", "PAYLOAD": "text", "DELETED": "bool"}
EVENTS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


def at(second: int, minute: int = 0) -> str:
    return f"2026-07-01 10:{minute:02d}:{second:02d}"


def counts(run: dict[str, Any]) -> tuple[int, int, int, int]:
    got = (run["rows_read"], run["rows_delivered"], run["rows_skipped"], run["rows_errored"])
    assert got[0] == got[1] + got[2] + got[3], run
    return got


# --------------------------------------------------------------------------- accounts
async def test_an_empty_account_name_keeps_the_name_and_a_new_account_needs_one(
    spec: Spec,
) -> None:
    spec.warehouse.create(
        "accs",
        ACCOUNTS,
        [
            (at(0), "a1", "Acme", j({"plan": "pro"}), False),
            (at(1), "a1", None, j({"seats": 3}), False),  # same run: keeps "Acme"
            (at(2), "a2", None, j({"plan": "free"}), False),  # new, no name: refused
            (at(3), "a3", "Three", j({}), False),
            (at(4), "a3", None, None, True),
            (at(5), "a3", "  ", j({"plan": "x"}), False),  # deleted just before: new again
            (at(6), "a4", "Four", j({"plan": "x"}), False),
        ],
    )
    sync_id = await spec.ready("accounts", "accs")
    first = await spec.run(sync_id)
    assert first["status"] == "partial_success", first
    assert counts(first) == (7, 5, 0, 2), first
    errors = await spec.rows(first["id"])
    assert [(e["position"], e["code"]) for e in errors] == [
        (2, "missing_field"),
        (5, "missing_field"),
    ]
    assert all("NAME" in (e["message"] or "") for e in errors)
    accounts = await spec.accounts()
    assert {k: (v["name"], v["fields"]) for k, v in accounts.items()} == {
        "a1": ("Acme", {"plan": "pro", "seats": 3}),
        "a4": ("Four", {"plan": "x"}),
    }
    # Later runs: an empty name on an existing account keeps it, whatever the batch.
    spec.warehouse.insert(
        "accs",
        ACCOUNTS,
        [
            (at(0, 1), "a4", None, j({"plan": None, "seats": 9}), None),
            (at(1, 1), "a2", "Two", j({"plan": "free"}), False),
            (at(2, 1), "a1", "Acme Corp", j({}), False),
        ],
    )
    second = await spec.run(sync_id)
    assert (second["status"], counts(second)) == ("success", (4, 3, 1, 0)), second
    accounts = await spec.accounts()
    assert {k: (v["name"], v["fields"]) for k, v in accounts.items()} == {
        "a1": ("Acme Corp", {"plan": "pro", "seats": 3}),
        "a2": ("Two", {"plan": "free"}),
        "a4": ("Four", {"seats": 9}),
    }


@pytest.mark.parametrize("kind", ["DECIMAL(3,1)", "DOUBLE PRECISION"])
async def test_deleted_from_decimal_and_double_columns(spec: Spec, kind: str) -> None:
    spec.warehouse.execute(
        f'CREATE TABLE marketing."items" ("UPDATED_AT" TIMESTAMP, "ID" VARCHAR(20), '
        f'"PAYLOAD" VARCHAR(200), "DELETED" {kind})',
        f"""INSERT INTO marketing."items" VALUES
            ('2026-07-01 10:00:00', 'keep', '{j({"p": 1})}', 0.0),
            ('2026-07-01 10:00:01', 'gone', '{j({"p": 2})}', NULL),
            ('2026-07-01 10:00:02', 'gone', '{{}}', 1.0),
            ('2026-07-01 10:00:03', 'odd', '{j({"p": 3})}', 2.0),
            ('2026-07-01 10:00:04', 'half', '{j({"p": 4})}', 0.5)""",
    )
    run = await spec.run(await spec.ready("catalog_items", "items", catalog_name="c"))
    assert counts(run) == (5, 3, 0, 2), run
    assert await spec.codes(run["id"]) == ["invalid_field", "invalid_field"]
    assert {k: v["fields"] for k, v in (await spec.catalog("c")).items()} == {"keep": {"p": 1}}


async def test_deleted_as_decimal_text(spec: Spec) -> None:
    """A text DELETED of 1.0 / 0.00 (a DOUBLE column written to CSV or kept as VARCHAR)
    means what the number means; other numbers and exponents stay invalid_field."""
    spec.warehouse.execute(
        'CREATE TABLE marketing."items" ("UPDATED_AT" TIMESTAMP, "ID" VARCHAR(20), '
        '"PAYLOAD" VARCHAR(200), "DELETED" VARCHAR(20))',
        f"""INSERT INTO marketing."items" VALUES
            ('2026-07-01 10:00:00', 'keep', '{j({"p": 1})}', '0.0'),
            ('2026-07-01 10:00:01', 'also', '{j({"p": 5})}', ' 0.00 '),
            ('2026-07-01 10:00:02', 'gone', '{j({"p": 2})}', NULL),
            ('2026-07-01 10:00:03', 'gone', '{{}}', '1.0'),
            ('2026-07-01 10:00:04', 'odd', '{j({"p": 3})}', '2.0'),
            ('2026-07-01 10:00:05', 'half', '{j({"p": 4})}', '0.5'),
            ('2026-07-01 10:00:06', 'exp', '{j({"p": 6})}', '1e0')""",
    )
    run = await spec.run(await spec.ready("catalog_items", "items", catalog_name="c"))
    assert counts(run) == (7, 4, 0, 3), run
    assert await spec.codes(run["id"]) == ["invalid_field"] * 3
    assert {k: v["fields"] for k, v in (await spec.catalog("c")).items()} == {
        "keep": {"p": 1},
        "also": {"p": 5},
    }


# --------------------------------------------------------------------------- purchases
PURCHASE_CASES: list[tuple[dict[str, Any], str | None]] = [
    ({"currency": "eUr"}, None),  # any case: upper-cased
    ({"currency": "EURO"}, "invalid_field"),
    ({"currency": 978}, "invalid_field"),  # the numeric ISO code is not the code
    ({"currency": ""}, "invalid_field"),
    ({"currency": None}, "missing_field"),
    ({"price": "9.99"}, "invalid_field"),
    ({"price": 1e2}, None),
    ({"price": -4.5}, None),  # a refund
    ({"price": 0}, None),
    ({"price": None}, "missing_field"),
    ({"price": True}, "invalid_field"),
    ({"quantity": 2147483647}, None),
    ({"quantity": 2147483648}, "invalid_field"),
    ({"quantity": 0}, "invalid_field"),
    ({"quantity": -1}, "invalid_field"),
    ({"quantity": "3"}, "invalid_field"),
    ({"quantity": True}, "invalid_field"),
    ({"quantity": 3.0}, None),
    ({"product_id": ""}, "invalid_field"),
    ({"product_id": 7}, "invalid_field"),
    ({"properties": ["a"]}, "invalid_field"),
]


async def test_purchase_currency_price_and_quantity_edges(spec: Spec) -> None:
    base = {"product_id": "sku", "currency": "EUR", "price": 10, "time": "2026-07-01T00:00:00Z"}
    rows = [(at(i), f"u{i}", j({**base, **change})) for i, (change, _) in enumerate(PURCHASE_CASES)]
    spec.warehouse.create("buys", EVENTS, rows)
    run = await spec.run(await spec.ready("purchases", "buys"))
    refused = [(i, code) for i, (_, code) in enumerate(PURCHASE_CASES) if code is not None]
    assert counts(run) == (len(rows), len(rows) - len(refused), 0, len(refused)), run
    errors = await spec.rows(run["id"])
    assert [(e["position"], e["code"]) for e in errors] == refused
    stored: dict[int, dict[str, Any]] = {}
    for i, (_, code) in enumerate(PURCHASE_CASES):
        prof = await spec.profile(external_id=f"u{i}")
        if code is not None:
            assert prof is None, PURCHASE_CASES[i]
            continue
        assert prof is not None
        [stored[i]] = await spec.purchases(prof["id"])
    assert stored[0]["currency"] == "EUR"
    assert (stored[6]["price"], stored[7]["price"], stored[8]["price"]) == (100, -4.5, 0)
    assert (stored[11]["quantity"], stored[17]["quantity"]) == (2147483647, 3)


# --------------------------------------------------------------------------- event times
TIMES: list[tuple[Any, str | None]] = [
    ("2026-07-01T10:00:00:123+0000", "2026-07-01T10:00:00.123000+00:00"),  # Braze's format
    ("2026-07-01T12:00:00:000+0200", "2026-07-01T10:00:00+00:00"),
    ("2026-07-01T10:00:00+0000", "2026-07-01T10:00:00+00:00"),
    ("2026-07-01 05:00:00 -05:00", "2026-07-01T10:00:00+00:00"),
    ("2026-07-01T10:00:00.123456789Z", "2026-07-01T10:00:00.123456+00:00"),
    ("2026-07-01T10:00:00 UTC", "2026-07-01T10:00:00+00:00"),
    ("2026-07-01", "2026-07-01T00:00:00+00:00"),
    (1782900000, None),  # epoch seconds: not ISO 8601
    ("1782900000", None),
    ("01/07/2026 10:00", None),
    ("", None),
    ("2026-02-30T10:00:00Z", None),
]


async def test_event_times_people_write_and_the_ones_refused(spec: Spec) -> None:
    rows = [
        (at(i), f"u{i}", j({"name": "seen", "time": when})) for i, (when, _) in enumerate(TIMES)
    ]
    rows.append((at(30), "u99", j({"name": "no-time"})))
    spec.warehouse.create("evs", EVENTS, rows)
    run = await spec.run(await spec.ready("custom_events", "evs"))
    refused = [i for i, (_, want) in enumerate(TIMES) if want is None]
    assert counts(run) == (len(rows), len(TIMES) - len(refused), 0, len(refused) + 1), run
    errors = await spec.rows(run["id"])
    assert [(e["position"], e["code"]) for e in errors] == [
        *((i, "invalid_field") for i in refused),
        (len(TIMES), "missing_field"),
    ]
    for i, (when, want) in enumerate(TIMES):
        if want is None:
            continue
        prof = await spec.profile(external_id=f"u{i}")
        assert prof is not None, when
        [event] = await spec.events(prof["id"])
        assert ts(event["time"]) == ts(want), when


# --------------------------------------------------------------------------- deletes
async def test_user_deletes_of_ids_nobody_has_are_quiet_no_ops(spec: Spec) -> None:
    cols = {
        "UPDATED_AT": "ts",
        "EXTERNAL_ID": "text",
        "ALIAS_NAME": "text",
        "ALIAS_LABEL": "text",
        "BRAZE_ID": "text",
    }
    spec.warehouse.create("attrs", EVENTS, [(at(0), "known", j({"plan": "gold"}))])
    spec.warehouse.create(
        "dels",
        cols,
        [
            (at(1), "nobody", None, None, None),
            (at(2), None, "ghost", "crm", None),
            (at(3), None, None, None, "0123456789abcdef0123456789abcdef"),
            (at(4), None, None, None, "not-a-braze-id"),
            (at(5), "nobody", None, None, None),  # the same unknown id twice
        ],
    )
    await spec.run(await spec.ready("user_attributes", "attrs"))
    sync_id = await spec.ready("user_deletes", "dels")
    run = await spec.run(sync_id)
    assert (run["status"], counts(run)) == ("success", (5, 5, 0, 0)), run
    assert await spec.rows(run["id"]) == []
    assert await spec.profile(external_id="nobody") is None
    assert await spec.profile(alias_name="ghost", alias_label="crm") is None
    known = await spec.profile(external_id="known")
    assert known is not None and known["attributes"] == {"plan": "gold"}
    assert counts(await spec.run(sync_id)) == (1, 0, 1, 0)


# --------------------------------------------------------------------------- error report
async def test_the_errors_only_export_holds_rows_applied_with_a_warning(spec: Spec) -> None:
    spec.warehouse.create(
        "accs",
        ACCOUNTS,
        [
            (at(0), "a1", "Acme", j({"plan": "pro", "color": "red"}), False),
            (at(1), "a2", None, j({"plan": "free"}), False),
            (at(2), "a3", "Three", j({"plan": "free"}), False),
        ],
    )
    sync_id = await spec.ready("accounts", "accs", settings={"account_fields": ["plan"]})
    run = await spec.run(sync_id)
    assert counts(run) == (3, 2, 0, 1), run
    # The listing's errors_only is the refused rows (rows_errored of them) ...
    assert [(r["position"], r["verdict"]) for r in await spec.rows(run["id"])] == [(1, "error")]
    # ... the errors-only export is the report to act on: refused rows and dropped fields.
    base = f"/v1/sync-runs/{run['id']}/rows/export"
    resp = await spec.get(base, params={"format": "jsonl"})
    assert resp.status_code == 200, resp.text
    lines = [json.loads(x) for x in resp.text.splitlines()]
    assert [(x["position"], x["verdict"], x["code"]) for x in lines] == [
        (0, "warning", "unknown_field"),
        (1, "error", "missing_field"),
    ]
    assert "color" in lines[0]["message"]
    assert lines[0]["row"]["payload"] == {"plan": "pro"}
    resp = await spec.get(base, params={"format": "csv"})
    table = list(csv.DictReader(io.StringIO(resp.text)))
    assert [(r["position"], r["verdict"], r["code"]) for r in table] == [
        ("0", "warning", "unknown_field"),
        ("1", "error", "missing_field"),
    ]
    # All rows: the delivered one too.
    resp = await spec.get(base, params={"format": "jsonl", "errors_only": "false"})
    verdicts = [json.loads(x)["verdict"] for x in resp.text.splitlines()]
    assert verdicts == ["warning", "error", "delivered"]
