"""Probes of the rules of issue 8 on inputs real warehouses produce.

Booleans are not numbers, ``null`` removes any attribute (subscription fields too), e-mail
identity ignores case, bad e-mail / phone values are refused, ``DATE`` columns are
``UPDATED_AT`` values, and two syncs of one workspace may run at the same time on the same
users (their schedules fire together).
"""

from __future__ import annotations

import anyio
import pytest

from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture, ts  # noqa: F401

pytestmark = pytest.mark.anyio

USER = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


def at(i: int) -> str:
    return f"2026-03-01 00:00:{i:02d}"


async def test_a_boolean_is_not_a_price(spec: Spec) -> None:
    base = {"product_id": "p", "currency": "USD", "time": "2026-03-01T00:00:00Z"}
    spec.warehouse.create(
        "buys",
        USER,
        [
            (at(0), "b1", j({**base, "price": 2.5})),
            (at(1), "b1", j({**base, "price": True})),
            (at(2), "b1", j({**base, "price": "2.5"})),
        ],
    )
    run = await spec.run(await spec.ready("purchases", "buys"))
    assert await spec.codes(run["id"]) == ["invalid_field", "invalid_field"], run
    prof = await spec.profile(external_id="b1")
    assert prof is not None
    assert [p["price"] for p in await spec.purchases(prof["id"])] == [2.5]


async def test_null_removes_subscription_fields_too(spec: Spec) -> None:
    spec.warehouse.create(
        "attrs",
        USER,
        [(at(0), "s1", j({"email_subscribe": "opted_in", "push_subscribe": "subscribed"}))],
    )
    sync_id = await spec.ready("user_attributes", "attrs")
    assert (await spec.run(sync_id))["status"] == "success"
    spec.warehouse.insert(
        "attrs",
        USER,
        [(at(1), "s1", j({"email_subscribe": None, "subscription_groups": None}))],
    )
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 1), await spec.rows(run["id"])
    prof = await spec.profile(external_id="s1")
    assert prof is not None and prof["attributes"] == {"push_subscribe": "subscribed"}


async def test_email_identity_ignores_case(spec: Spec) -> None:
    cols = {"UPDATED_AT": "ts", "EMAIL": "text", "PAYLOAD": "text"}
    spec.warehouse.create(
        "attrs",
        cols,
        [
            (at(0), "Mixed.Case@Example.COM", j({"a": 1})),
            (at(1), "mixed.case@example.com", j({"b": 2})),
        ],
    )
    run = await spec.run(await spec.ready("user_attributes", "attrs"))
    assert (run["status"], run["rows_delivered"]) == ("success", 2)
    prof = await spec.profile(email="MIXED.case@example.com")
    assert prof is not None and prof["attributes"] == {"a": 1, "b": 2}


async def test_malformed_email_and_phone_are_refused(spec: Spec) -> None:
    cols = {"UPDATED_AT": "ts", "EMAIL": "text", "PHONE": "text", "PAYLOAD": "text"}
    spec.warehouse.create(
        "attrs",
        cols,
        [
            (at(0), "not-an-email", None, j({"a": 1})),
            (at(1), None, "call me", j({"a": 1})),
            (at(2), "ok@example.com", None, j({"a": 1})),
        ],
    )
    run = await spec.run(await spec.ready("user_attributes", "attrs"))
    assert (run["rows_delivered"], run["rows_errored"]) == (1, 2), run
    errors = await spec.rows(run["id"])
    assert [e["position"] for e in errors] == [0, 1]
    assert all(e["code"] and e["message"] for e in errors)
    assert await spec.profile(email="not-an-email") is None


async def test_a_date_column_is_an_updated_at(spec: Spec) -> None:
    kind = "DATE"
    spec.warehouse.execute(
        f'CREATE TABLE marketing."dated" ("UPDATED_AT" {kind}, "EXTERNAL_ID" VARCHAR, '
        '"PAYLOAD" VARCHAR)'
    )
    spec.warehouse.execute(
        "INSERT INTO marketing.\"dated\" VALUES ('2026-03-01', 'd1', '{\"v\": 1}'), "
        "('2026-03-02', 'd2', '{\"v\": 2}')"
    )
    sync_id = await spec.ready("user_attributes", "dated")
    first = await spec.run(sync_id)
    assert (first["status"], first["rows_delivered"]) == ("success", 2), first
    assert ts(first["watermark_after"]) == ts("2026-03-02T00:00:00Z")
    spec.warehouse.execute(
        "INSERT INTO marketing.\"dated\" VALUES ('2026-03-02', 'd3', '{\"v\": 3}'), "
        "('2026-03-03', 'd4', '{\"v\": 4}')"
    )
    second = await spec.run(sync_id)
    assert (second["status"], second["rows_delivered"]) == ("success", 2), second
    for user in ("d1", "d2", "d3", "d4"):
        assert await spec.profile(external_id=user) is not None


async def test_two_syncs_on_the_same_new_users_at_the_same_time(spec: Spec) -> None:
    """Attributes and events of the same new users, run together (as their schedules fire):
    the two walk the users in opposite orders, so they meet whichever is faster."""
    users = 3000

    def stamp(i: int) -> str:
        return f"2026-03-01 {i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}"

    spec.warehouse.create("attrs", USER, [(stamp(i), f"c{i}", j({"i": i})) for i in range(users)])
    spec.warehouse.create(
        "evs",
        USER,
        [
            (stamp(i), f"c{users - 1 - i}", j({"name": "signup", "time": "2026-03-01T00:00:00Z"}))
            for i in range(users)
        ],
    )
    attrs = await spec.ready("user_attributes", "attrs")
    events = await spec.ready("custom_events", "evs")
    engine = spec.engine
    runs = [await engine.request(attrs), await engine.request(events)]

    async def execute(run_id: str) -> None:
        await engine.execute(run_id)

    async with anyio.create_task_group() as tg:
        for run in runs:
            tg.start_soon(execute, run.id)
    finals = [(await spec.get(f"/v1/sync-runs/{run.id}")).json() for run in runs]
    assert [(f["status"], f["rows_delivered"], f["error"]) for f in finals] == [
        ("success", users, None),
        ("success", users, None),
    ]
    for i in (0, users // 2, users - 1):
        prof = await spec.profile(external_id=f"c{i}")
        assert prof is not None and prof["attributes"] == {"i": i}
        assert [e["name"] for e in await spec.events(prof["id"])] == ["signup"]


AWKWARD = [
    {"nul": "a\u0000b"},
    {"big": 9007199254740993},
    {"nested": {"nul": "\u0000"}},
    {"fine": "ok"},
]
"""Valid JSON that some stores cannot keep as is (PostgreSQL ``jsonb`` refuses ``\\u0000``,
integers past 2**53 must not become doubles): a row is stored or refused, the run never
dies."""


async def check_awkward(spec: Spec, run: dict[str, object], count: int) -> list[int]:
    """Every row is delivered or a row error with a code; the delivered positions."""
    assert run["status"] in ("success", "partial_success"), run["error"]
    assert run["rows_read"] == count, run
    assert run["rows_delivered"] + run["rows_errored"] == count, run  # type: ignore[operator]
    errors = await spec.rows(str(run["id"]))
    assert all(e["code"] for e in errors)
    bad = {e["position"] for e in errors}
    assert 3 not in bad  # the plain row always goes through
    return [i for i in range(count) if i not in bad]


async def test_awkward_json_in_attributes(spec: Spec) -> None:
    spec.warehouse.create("attrs", USER, [(at(i), f"k{i}", j(p)) for i, p in enumerate(AWKWARD)])
    run = await spec.run(await spec.ready("user_attributes", "attrs"))
    for i in await check_awkward(spec, run, len(AWKWARD)):
        prof = await spec.profile(external_id=f"k{i}")
        assert prof is not None and prof["attributes"] == AWKWARD[i]


async def test_awkward_json_in_event_properties(spec: Spec) -> None:
    spec.warehouse.create(
        "evs",
        USER,
        [
            (at(i), f"k{i}", j({"name": "e", "time": "2026-03-01T00:00:00Z", "properties": p}))
            for i, p in enumerate(AWKWARD)
        ],
    )
    run = await spec.run(await spec.ready("custom_events", "evs"))
    for i in await check_awkward(spec, run, len(AWKWARD)):
        prof = await spec.profile(external_id=f"k{i}")
        assert prof is not None
        assert [e["properties"] for e in await spec.events(prof["id"])] == [AWKWARD[i]]


async def test_awkward_json_in_catalog_items(spec: Spec) -> None:
    spec.warehouse.create(
        "items",
        {"UPDATED_AT": "ts", "ID": "text", "PAYLOAD": "text"},
        [(at(i), f"k{i}", j(p)) for i, p in enumerate(AWKWARD)],
    )
    run = await spec.run(await spec.ready("catalog_items", "items", catalog_name="aw"))
    items = await spec.catalog("aw")
    for i in await check_awkward(spec, run, len(AWKWARD)):
        assert items[f"k{i}"]["fields"] == AWKWARD[i]


async def test_an_infinite_updated_at_is_a_row_error(spec: Spec) -> None:
    """Both warehouses accept ``'infinity'`` timestamps; no driver can hand one to Python."""
    event = j({"name": "e", "time": "2026-03-01T00:00:00Z"})
    spec.warehouse.create("evs", USER, [(at(0), "i1", event)])
    sync_id = await spec.ready("custom_events", "evs")
    assert (await spec.run(sync_id))["rows_delivered"] == 1
    spec.warehouse.execute(
        f"INSERT INTO marketing.\"evs\" VALUES ('infinity', 'i2', '{event}'), "
        f"('-infinity', 'i3', '{event}'), ('2026-03-01 00:00:01', 'i4', '{event}')"
    )
    run = await spec.run(sync_id)
    assert run["status"] == "partial_success", run["error"]
    assert (run["rows_delivered"], run["rows_errored"]) == (1, 1)  # -infinity is before it
    assert await spec.codes(run["id"]) == ["invalid_updated_at"]
    assert ts(run["watermark_after"]) == ts("2026-03-01T00:00:01Z")
    assert await spec.profile(external_id="i4") is not None
    # The preview of a new sync on the same table shows the verdicts too.
    other = await spec.create_sync("custom_events", "evs")
    preview = (await spec.test_sync(other["id"]))["preview"]
    assert sorted(p["code"] or "" for p in preview) == [
        "",
        "",
        "invalid_updated_at",
        "invalid_updated_at",
    ]


async def test_a_numeric_external_id_column(spec: Spec) -> None:
    cols = {"UPDATED_AT": "ts", "EXTERNAL_ID": "int", "PAYLOAD": "text"}
    spec.warehouse.create("attrs", cols, [(at(0), 1234567, j({"n": 1})), (at(1), 42, j({"n": 2}))])
    run = await spec.run(await spec.ready("user_attributes", "attrs"))
    assert (run["status"], run["rows_delivered"]) == ("success", 2), run
    prof = await spec.profile(external_id="1234567")
    assert prof is not None and prof["external_id"] == "1234567"
    assert prof["attributes"] == {"n": 1}


async def test_huge_purchase_quantities_are_stored_or_refused(
    spec: Spec, request: pytest.FixtureRequest
) -> None:
    """``quantity`` is "a positive integer": one past 32 or 64 bits is stored or refused."""
    base = {"product_id": "p", "currency": "USD", "price": 1, "time": "2026-03-01T00:00:00Z"}
    quantities = [3_000_000_000, 10**30, 2]
    spec.warehouse.create(
        "buys",
        USER,
        [(at(i), "q1", j({**base, "quantity": q})) for i, q in enumerate(quantities)],
    )
    run = await spec.run(await spec.ready("purchases", "buys"))
    assert run["status"] in ("success", "partial_success"), run["error"]
    assert run["rows_delivered"] + run["rows_errored"] == 3
    refused = {e["position"] for e in await spec.rows(run["id"])}
    assert 2 not in refused
    prof = await spec.profile(external_id="q1")
    assert prof is not None
    stored = sorted(p["quantity"] for p in await spec.purchases(prof["id"]))
    assert stored == sorted(q for i, q in enumerate(quantities) if i not in refused)


LONG = "x" * 500
"""Longer than any sized text column of the store (400 characters at most)."""


async def test_values_longer_than_the_store_holds_are_row_errors(spec: Spec) -> None:
    """Both stores refuse the same over-long values (``invalid_field``), never cut them, and
    the run goes on (findings-sync #7: PostgreSQL used to fail the whole run)."""
    event = {"time": "2026-03-01T00:00:00Z"}
    spec.warehouse.create(
        "evs",
        USER,
        [
            (at(0), LONG, j({**event, "name": "e"})),
            (at(1), "short", j({**event, "name": LONG})),
            (at(2), "short", j({**event, "name": "plain"})),
        ],
    )
    buy = {"currency": "USD", "price": 1, "time": "2026-03-01T00:00:00Z"}
    spec.warehouse.create("buys", USER, [(at(0), "short", j({**buy, "product_id": LONG}))])
    spec.warehouse.create(
        "accs",
        {"UPDATED_AT": "ts", "ID": "text", "NAME": "text", "PAYLOAD": "text"},
        [
            (at(0), LONG, "Acme", j({})),
            (at(1), "acc-1", LONG, j({})),
            (at(2), "acc-2", "Ok", j({})),
        ],
    )
    spec.warehouse.create("attrs", USER, [(at(0), LONG, j({"plan": "gold"}))])
    for data_type, table, delivered, errored in (
        ("custom_events", "evs", 1, 2),
        ("purchases", "buys", 0, 1),
        ("accounts", "accs", 1, 2),
        ("user_attributes", "attrs", 0, 1),
    ):
        run = await spec.run(await spec.ready(data_type, table))
        assert run["status"] == "partial_success", (table, run["error"])
        assert (run["rows_delivered"], run["rows_errored"]) == (delivered, errored), run
        codes = {e["code"] for e in await spec.rows(run["id"])}
        assert codes == {"invalid_field"}, (table, codes)
    prof = await spec.profile(external_id="short")
    assert prof is not None
    assert [e["name"] for e in await spec.events(prof["id"])] == ["plain"]
    assert await spec.profile(external_id=LONG) is None
    assert set(await spec.accounts()) == {"acc-2"}


async def test_awkward_json_in_accounts_and_purchase_properties(spec: Spec) -> None:
    spec.warehouse.create(
        "accs",
        {"UPDATED_AT": "ts", "ID": "text", "NAME": "text", "PAYLOAD": "text"},
        [(at(i), f"k{i}", "Acme", j(p)) for i, p in enumerate(AWKWARD)],
    )
    run = await spec.run(await spec.ready("accounts", "accs"))
    accounts = await spec.accounts()
    for i in await check_awkward(spec, run, len(AWKWARD)):
        assert accounts[f"k{i}"]["fields"] == AWKWARD[i]
    buy = {"product_id": "p", "currency": "USD", "price": 1, "time": "2026-03-01T00:00:00Z"}
    spec.warehouse.create(
        "buys",
        USER,
        [(at(i), f"k{i}", j({**buy, "properties": p})) for i, p in enumerate(AWKWARD)],
    )
    run = await spec.run(await spec.ready("purchases", "buys"))
    for i in await check_awkward(spec, run, len(AWKWARD)):
        prof = await spec.profile(external_id=f"k{i}")
        assert prof is not None
        assert [p["properties"] for p in await spec.purchases(prof["id"])] == [AWKWARD[i]]
