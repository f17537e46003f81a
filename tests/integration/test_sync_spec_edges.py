"""Edges of the rules of issue 8 where a fast path is most likely to drift.

Sub-second watermarks, refused rows at the boundary, re-read deletes, JSON-typed payload
columns, aliases, catalogs and workspaces kept apart.
"""

from __future__ import annotations

import pytest

from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture, ts  # noqa: F401

pytestmark = pytest.mark.anyio

EVENTS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


def ev(updated_at: str, name: str, user: str | None = "w1") -> tuple[str, str | None, str]:
    return (updated_at, user, j({"name": name, "time": "2026-03-01T00:00:00Z"}))


async def names(spec: Spec, user: str = "w1") -> list[str]:
    prof = await spec.profile(external_id=user)
    return [] if prof is None else sorted(e["name"] for e in await spec.events(prof["id"]))


async def test_microsecond_watermarks_lose_nothing(spec: Spec) -> None:
    spec.warehouse.create(
        "evs",
        EVENTS,
        [ev("2026-03-01 00:00:00.123456", "a"), ev("2026-03-01 00:00:00.123456", "a-tie")],
    )
    sync_id = await spec.ready("custom_events", "evs")
    first = await spec.run(sync_id)
    assert first["rows_delivered"] == 2
    assert ts(first["watermark_after"]) == ts("2026-03-01T00:00:00.123456Z")
    spec.warehouse.insert(
        "evs",
        EVENTS,
        [
            ev("2026-03-01 00:00:00.123456", "b-tie-late"),
            ev("2026-03-01 00:00:00.123457", "c-next-us"),
            ev("2026-03-01 00:00:00.999999", "d"),
        ],
    )
    second = await spec.run(sync_id)
    assert (second["status"], second["rows_delivered"]) == ("success", 3), second
    assert ts(second["watermark_after"]) == ts("2026-03-01T00:00:00.999999Z")
    third = await spec.run(sync_id)
    assert third["rows_delivered"] == 0
    assert await names(spec) == ["a", "a-tie", "b-tie-late", "c-next-us", "d"]


async def test_a_refused_row_at_the_boundary_is_reported_once(spec: Spec) -> None:
    """The last row read is refused: the next run, with nothing new, has nothing to report."""
    spec.warehouse.create(
        "evs",
        EVENTS,
        [ev("2026-03-01 00:00:00", "ok"), ev("2026-03-01 00:00:01", "refused", user=None)],
    )
    sync_id = await spec.ready("custom_events", "evs")
    first = await spec.run(sync_id)
    assert (first["status"], first["rows_delivered"], first["rows_errored"]) == (
        "partial_success",
        1,
        1,
    )
    second = await spec.run(sync_id)
    assert (second["status"], second["rows_delivered"], second["rows_errored"]) == (
        "success",
        0,
        0,
    ), (second, await spec.rows(second["id"]))
    assert await names(spec) == ["ok"]


async def test_a_delete_reread_at_the_boundary_does_not_delete_again(spec: Spec) -> None:
    """Re-applying a delete after the user came back would lose the new profile."""
    attrs = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}
    spec.warehouse.create("a1", attrs, [("2026-03-01 00:00:00", "d1", j({"v": 1}))])
    spec.warehouse.create("dels", {"UPDATED_AT": "ts", "EXTERNAL_ID": "text"})
    attrs_id = await spec.ready("user_attributes", "a1")
    deletes_id = await spec.ready("user_deletes", "dels")
    await spec.run(attrs_id)
    spec.warehouse.insert(
        "dels", {"UPDATED_AT": "ts", "EXTERNAL_ID": "text"}, [("2026-03-02 00:00:00", "d1")]
    )
    assert (await spec.run(deletes_id))["rows_delivered"] == 1
    assert await spec.profile(external_id="d1") is None
    spec.warehouse.insert("a1", attrs, [("2026-03-03 00:00:00", "d1", j({"v": 2}))])
    await spec.run(attrs_id)  # the user comes back
    again = await spec.run(deletes_id)  # re-reads its boundary row
    assert again["rows_delivered"] == 0
    back = await spec.profile(external_id="d1")
    assert back is not None and back["attributes"] == {"v": 2}


async def test_json_typed_payload_columns(spec: Spec) -> None:
    kind = "JSON" if spec.warehouse.kind == "duckdb" else "jsonb"
    spec.warehouse.execute(
        f'CREATE TABLE marketing."jattrs" ("UPDATED_AT" TIMESTAMP, "EXTERNAL_ID" VARCHAR, '
        f'"PAYLOAD" {kind})'
    )
    spec.warehouse.execute(
        'INSERT INTO marketing."jattrs" VALUES '
        '(\'2026-03-01 00:00:00\', \'j1\', \'{"n": {"deep": [1, {"x": true}]}, "s": "é"}\'), '
        "('2026-03-01 00:00:01', 'j2', '[1]'), "
        "('2026-03-01 00:00:02', 'j3', 'null')"
    )
    run = await spec.run(await spec.ready("user_attributes", "jattrs"))
    assert run["rows_delivered"] == 1, run
    assert await spec.codes(run["id"]) == ["payload_not_object", "payload_not_object"]
    prof = await spec.profile(external_id="j1")
    assert prof is not None
    assert prof["attributes"] == {"n": {"deep": [1, {"x": True}]}, "s": "é"}


async def test_aliases_need_both_halves_to_match(spec: Spec) -> None:
    cols = {
        "UPDATED_AT": "ts",
        "ALIAS_NAME": "text",
        "ALIAS_LABEL": "text",
        "PAYLOAD": "text",
    }
    spec.warehouse.create(
        "al",
        cols,
        [
            ("2026-03-01 00:00:00", "same", "crm", j({"from": "crm"})),
            ("2026-03-01 00:00:01", "same", "shop", j({"from": "shop"})),
            ("2026-03-01 00:00:02", "same", "crm", j({"again": 1})),
        ],
    )
    run = await spec.run(await spec.ready("user_attributes", "al"))
    assert (run["status"], run["rows_delivered"]) == ("success", 3)
    crm = await spec.profile(alias_name="same", alias_label="crm")
    shop = await spec.profile(alias_name="same", alias_label="shop")
    assert crm is not None and shop is not None and crm["id"] != shop["id"]
    assert crm["attributes"] == {"from": "crm", "again": 1}
    assert shop["attributes"] == {"from": "shop"}


async def test_catalogs_and_workspaces_are_kept_apart(spec: Spec) -> None:
    cat = {"UPDATED_AT": "ts", "ID": "text", "PAYLOAD": "text"}
    spec.warehouse.create("c1", cat, [("2026-03-01 00:00:00", "same-id", j({"in": "one"}))])
    spec.warehouse.create("c2", cat, [("2026-03-01 00:00:00", "same-id", j({"in": "two"}))])
    await spec.run(await spec.ready("catalog_items", "c1", catalog_name="one"))
    await spec.run(await spec.ready("catalog_items", "c2", catalog_name="two"))
    assert (await spec.catalog("one"))["same-id"]["fields"] == {"in": "one"}
    assert (await spec.catalog("two"))["same-id"]["fields"] == {"in": "two"}
    spec.warehouse.create("evs", EVENTS, [ev("2026-03-01 00:00:00", "mine")])
    await spec.run(await spec.ready("custom_events", "evs"))
    mine = await spec.profile(external_id="w1")
    assert mine is not None
    from zerocopy.services import workspaces

    async with spec.app.state.runtime.db.session() as session:
        _, other_key = await workspaces.create_workspace(session, name="Other")
    other = {"Authorization": f"Bearer {other_key}"}
    resp = await spec.client.get("/v1/profiles", params={"external_id": "w1"}, headers=other)
    assert resp.status_code == 404
    resp = await spec.client.get(f"/v1/profiles/{mine['id']}/events", headers=other)
    assert resp.status_code == 404
    resp = await spec.client.get("/v1/catalogs/one/items", headers=other)
    assert resp.status_code == 200 and resp.json() == []


async def test_lookback_with_a_row_limit_delivers_everything_once(spec: Spec) -> None:
    rows = [ev(f"2026-03-01 00:{m:02d}:00", f"m{m:02d}") for m in range(0, 12)]
    spec.warehouse.create("evs", EVENTS, rows)
    sync_id = await spec.ready("custom_events", "evs", lookback_minutes=5, row_limit=4)
    statuses = []
    for _ in range(8):
        run = await spec.run(sync_id)
        statuses.append((run["status"], run["rows_delivered"]))
        if run["status"] == "success":
            break
    assert statuses == [("limit_exceeded", 4)] * 3 + [("success", 0)] or statuses == [
        ("limit_exceeded", 4)
    ] * 2 + [("success", 4)], statuses
    spec.warehouse.insert("evs", EVENTS, [ev("2026-03-01 00:09:30", "late")])
    late = await spec.run(sync_id)
    assert late["rows_delivered"] == 1, late
    assert await names(spec) == sorted([f"m{m:02d}" for m in range(12)] + ["late"])


async def test_row_limit_with_refused_rows_accounts_for_every_row_once(spec: Spec) -> None:
    rows = [
        ev("2026-03-01 00:00:00", "bad-0", user=None),
        ev("2026-03-01 00:00:01", "ok-1"),
        ev("2026-03-01 00:00:02", "bad-2", user=None),
        ev("2026-03-01 00:00:03", "ok-3"),
        ev("2026-03-01 00:00:04", "ok-4"),
        ev("2026-03-01 00:00:05", "bad-5", user=None),
    ]
    spec.warehouse.create("evs", EVENTS, rows)
    sync_id = await spec.ready("custom_events", "evs", row_limit=2)
    delivered, refused = [], []
    for _ in range(8):
        run = await spec.run(sync_id)
        assert run["status"] in ("limit_exceeded", "success", "partial_success"), run
        for log in await spec.rows(run["id"], errors_only=False):
            (refused if log["verdict"] == "error" else delivered).append(log["position"])
        if run["status"] != "limit_exceeded":
            break
    assert run["status"] != "limit_exceeded"
    last = await spec.run(sync_id)
    assert (last["status"], last["rows_delivered"], last["rows_errored"]) == ("success", 0, 0)
    assert await names(spec) == ["ok-1", "ok-3", "ok-4"]
    assert len(delivered) == 3
    assert len(refused) == 3, refused  # each refused row reported once


@pytest.mark.parametrize(("kind", "yes", "no"), [("int", 1, 0), ("text", "true", "false")])
async def test_deleted_as_a_number_or_text_column(
    spec: Spec, kind: str, yes: object, no: object
) -> None:
    cols = {"UPDATED_AT": "ts", "ID": "text", "PAYLOAD": "text", "DELETED": kind}
    spec.warehouse.create(
        "items",
        cols,
        [
            ("2026-03-01 00:00:00", "keep", j({"t": 1}), no),
            ("2026-03-01 00:00:01", "drop", j({"t": 2}), no),
            ("2026-03-01 00:00:02", "drop", j({}), yes),
            ("2026-03-01 00:00:03", "odd", j({"t": 3}), 7 if kind == "int" else "maybe"),
        ],
    )
    run = await spec.run(await spec.ready("catalog_items", "items", catalog_name="c"))
    assert (run["rows_delivered"], run["rows_errored"]) == (3, 1), run
    assert await spec.codes(run["id"]) == ["invalid_field"]
    assert sorted(await spec.catalog("c")) == ["keep"]
