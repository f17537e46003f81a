"""Red team, lifecycles: source draft → test → active, credentials shared and refused, in-use
deletes, catalog search, segment validation, refreshes, cancels and member pages.

Expected results come from the issues (#3, #5) and the README, and from what a data engineer
would expect in production: a refusal names what is wrong and where, and nothing is lost or
half-written when a request is refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.acceptance.conftest import SCHEMA, Api
from tests.acceptance.redteam import create_credential, state_url  # noqa: F401 (fixture)
from tests.acceptance.test_api_flow import (
    PAID,
    SLOW,
    all_members,
    assert_error,
    connected_source,
    wait_for_abandoned_statements,
    warehouse_ids,
)

pytestmark = pytest.mark.anyio


async def _source(api: Api, cred_id: str, name: str, scope: str = SCHEMA) -> dict[str, Any]:
    resp = await api.post("/v1/sources", {"name": name, "credential_id": cred_id, "scope": scope})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


# --- sources ---------------------------------------------------------------------------------


async def test_a_draft_source_has_no_catalog_validation_or_segments(api: Api) -> None:
    cred_id = await create_credential(api)
    src = await _source(api, cred_id, "Draft")
    assert src["status"] == "draft" and src["last_tested_at"] is None and src["last_error"] is None
    source_id = src["id"]
    for path in (f"/v1/sources/{source_id}/tables", f"/v1/sources/{source_id}/tables/users"):
        err = assert_error(await api.get(path), 409, "source_not_active")
        assert err["details"]["source_id"] == source_id and err["details"]["status"] == "draft"
        assert f"/v1/sources/{source_id}/test" in err["message"]
    err = assert_error(
        await api.post("/v1/segments/validate", {"source_id": source_id, "sql": PAID}),
        409,
        "source_not_active",
    )
    assert err["details"]["source_id"] == source_id
    assert_error(
        await api.post("/v1/segments", {"name": "Paid", "source_id": source_id, "sql": PAID}),
        409,
        "source_not_active",
    )
    assert (await api.get("/v1/segments")).json() == []
    # The test activates it, and everything above works.
    test = await api.post(f"/v1/sources/{source_id}/test")
    assert test.status_code == 200, test.text
    assert test.json()["source"]["status"] == "active"
    assert (await api.get(f"/v1/sources/{source_id}/tables")).status_code == 200
    seg = await api.post("/v1/segments", {"name": "Paid", "source_id": source_id, "sql": PAID})
    assert seg.status_code == 201, seg.text


async def test_a_source_whose_tests_all_failed_has_no_catalog(api: Api) -> None:
    cred_id = await create_credential(api)
    src = await _source(api, cred_id, "Nowhere", scope="no_such_schema")
    err = assert_error(await api.post(f"/v1/sources/{src['id']}/test"), 422, "scope_not_found")
    assert err["details"]["source_id"] == src["id"]
    assert "no_such_schema" in err["message"]
    after = (await api.get(f"/v1/sources/{src['id']}")).json()
    # README: a failed test leaves the source `error` with the code (never `active`).
    assert after["status"] == "error" and after["last_error"]["code"] == "scope_not_found"
    assert err["details"]["status"] == "error"
    assert_error(await api.get(f"/v1/sources/{src['id']}/tables"), 409, "source_not_active")
    assert_error(
        await api.post("/v1/segments/validate", {"source_id": src["id"], "sql": PAID}),
        409,
        "source_not_active",
    )


async def test_a_failed_retest_keeps_the_last_good_catalog_and_refuses_refreshes(
    api: Api,
) -> None:
    source_id = await connected_source(api)
    seg = await api.post("/v1/segments", {"name": "Paid", "source_id": source_id, "sql": PAID})
    segment_id = seg.json()["id"]
    done = await api.wait_run((await api.post(f"/v1/segments/{segment_id}/refresh")).json()["id"])
    assert done["status"] == "succeeded"
    before = (await api.get(f"/v1/segments/{segment_id}/members?limit=10000")).json()
    # The credential now points at a file that does not exist: the re-test fails.
    cred_id = (await api.get(f"/v1/sources/{source_id}")).json()["credential_id"]
    missing = str(api.warehouse.parent / "gone.duckdb")
    resp = await api.patch(f"/v1/credentials/{cred_id}", {"settings": {"path": missing}})
    assert resp.status_code == 200, resp.text
    err = assert_error(await api.post(f"/v1/sources/{source_id}/test"), 422, "scope_not_found")
    assert err["details"]["source_id"] == source_id and "gone.duckdb" in err["message"]
    src = (await api.get(f"/v1/sources/{source_id}")).json()
    assert src["status"] == "error" and src["last_error"]["code"] == err["code"]
    err = assert_error(
        await api.post(f"/v1/segments/{segment_id}/refresh"), 409, "source_not_active"
    )
    assert err["details"]["source_id"] == source_id
    # The membership is still served as it was.
    assert (await api.get(f"/v1/segments/{segment_id}/members?limit=10000")).json() == before


async def test_credential_reuse_within_a_workspace_and_delete_in_use(api: Api) -> None:
    cred_id = await create_credential(api)
    one = await _source(api, cred_id, "One")
    two = await _source(api, cred_id, "Two")
    for src in (one, two):
        assert (await api.post(f"/v1/sources/{src['id']}/test")).status_code == 200
    err = assert_error(await api.delete(f"/v1/credentials/{cred_id}"), 409, "credential_in_use")
    assert sorted(err["details"]["source_ids"]) == sorted([one["id"], two["id"]])
    assert err["details"]["sync_ids"] == []
    assert "'One'" in err["message"] and "'Two'" in err["message"]
    assert (await api.get(f"/v1/credentials/{cred_id}")).status_code == 200
    # A source with a segment is in use, naming the segment.
    seg = await api.post("/v1/segments", {"name": "Paid", "source_id": one["id"], "sql": PAID})
    segment_id = seg.json()["id"]
    err = assert_error(await api.delete(f"/v1/sources/{one['id']}"), 409, "source_in_use")
    assert err["details"] == {"segment_ids": [segment_id], "sync_ids": []}
    assert "'Paid'" in err["message"]
    assert (await api.get(f"/v1/sources/{one['id']}/tables")).status_code == 200
    # Freed in order, each delete is 204 and the object is gone.
    assert (await api.delete(f"/v1/segments/{segment_id}")).status_code == 204
    assert_error(await api.get(f"/v1/segments/{segment_id}"), 404, "not_found")
    for src in (one, two):
        assert (await api.delete(f"/v1/sources/{src['id']}")).status_code == 204
    assert (await api.delete(f"/v1/credentials/{cred_id}")).status_code == 204
    assert_error(await api.delete(f"/v1/credentials/{cred_id}"), 404, "not_found")


async def test_credentials_are_refused_across_workspaces(api: Api) -> None:
    cred_id = await create_credential(api)
    src = await _source(api, cred_id, "Ours")
    other = {"Authorization": f"Bearer {await api.new_workspace('Globex')}"}
    theirs = await api.client.post(
        "/v1/credentials",
        json={"name": "Theirs", "kind": "duckdb", "settings": {"path": str(api.warehouse)}},
        headers=other,
    )
    assert theirs.status_code == 201
    their_cred = theirs.json()["id"]
    # Neither side can point a source at the other's credential.
    err = assert_error(
        await api.patch(f"/v1/sources/{src['id']}", {"credential_id": their_cred}),
        404,
        "not_found",
    )
    assert err["details"]["field"] == "credential_id" and "Theirs" not in err["message"]
    assert (await api.get(f"/v1/sources/{src['id']}")).json()["credential_id"] == cred_id
    err = assert_error(
        await api.client.post(
            "/v1/sources",
            json={"name": "Steal", "credential_id": cred_id, "scope": SCHEMA},
            headers=other,
        ),
        404,
        "not_found",
    )
    assert err["details"]["field"] == "credential_id"
    # Same name in two workspaces is fine (names are unique per workspace only).
    again = await api.client.post(
        "/v1/credentials",
        json={"name": "Warehouse", "kind": "duckdb", "settings": {"path": str(api.warehouse)}},
        headers=other,
    )
    assert again.status_code == 201, again.text


async def test_changing_credential_or_scope_puts_the_source_back_to_draft(api: Api) -> None:
    source_id = await connected_source(api)
    second = await create_credential(api, "Second")
    resp = await api.patch(f"/v1/sources/{source_id}", {"max_runtime_minutes": 3, "name": "M2"})
    assert resp.status_code == 200 and resp.json()["status"] == "active"
    assert resp.json()["max_runtime_minutes"] == 3
    resp = await api.patch(f"/v1/sources/{source_id}", {"credential_id": second})
    assert resp.status_code == 200 and resp.json()["status"] == "draft"
    assert_error(await api.get(f"/v1/sources/{source_id}/tables"), 409, "source_not_active")
    assert (await api.post(f"/v1/sources/{source_id}/test")).status_code == 200
    # A scope spelled differently but equal ("  marketing ") is no change.
    resp = await api.patch(f"/v1/sources/{source_id}", {"scope": f"  {SCHEMA} "})
    assert resp.status_code == 200 and resp.json()["status"] == "active", resp.text
    # An S3 credential does not fit a warehouse source.
    s3 = await api.post(
        "/v1/credentials",
        {
            "name": "Bucket",
            "kind": "s3",
            "settings": {"region": "us-east-1"},
            "secrets": {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3cr3t-canary"},
        },
    )
    assert s3.status_code == 201, s3.text
    err = assert_error(
        await api.patch(f"/v1/sources/{source_id}", {"credential_id": s3.json()["id"]}),
        422,
        "credential_kind_mismatch",
    )
    assert err["details"]["field"] == "credential_id"
    assert "s3cr3t-canary" not in str(err)
    err = assert_error(
        await api.post(
            "/v1/sources",
            {"name": "Files", "credential_id": s3.json()["id"], "scope": SCHEMA},
        ),
        422,
        "credential_kind_mismatch",
    )


# --- catalog ---------------------------------------------------------------------------------


async def test_catalog_search_is_case_insensitive_and_finds_columns(api: Api) -> None:
    source_id = await connected_source(api)
    every = (await api.get(f"/v1/sources/{source_id}/tables")).json()
    names = [t["name"] for t in every]
    assert names == sorted(names) and len(names) == len(set(names))
    for search in ("USERS", "users", "UsErS"):
        found = [
            t["name"]
            for t in (
                await api.get(f"/v1/sources/{source_id}/tables", params={"search": search})
            ).json()
        ]
        assert "users" in found, (search, found)
    # By column name only: lifetime_value is a column of users, not a table name.
    found = [
        t["name"]
        for t in (
            await api.get(f"/v1/sources/{source_id}/tables", params={"search": "LIFETIME_value"})
        ).json()
    ]
    assert "users" in found and all("lifetime" not in n for n in found)
    # Repeating a listing gives the same order (stable for clients that page on their side).
    assert (await api.get(f"/v1/sources/{source_id}/tables")).json() == every
    table = await api.get(f"/v1/sources/{source_id}/tables/USERS")
    assert table.status_code == 200 and table.json()["name"] == "users"
    assert (await api.get(f"/v1/sources/{source_id}/tables/{SCHEMA}.users")).json() == table.json()
    err = assert_error(await api.get(f"/v1/sources/{source_id}/tables/userz"), 404, "not_found")
    assert err["details"]["table"] == "userz" and "userz" in err["message"]


# --- segments --------------------------------------------------------------------------------


async def test_validate_reports_every_error_in_order_with_line_and_column(api: Api) -> None:
    source_id = await connected_source(api)
    sql = "SELECT u.email,\n       u.nope\nFROM users u\nJOIN nothing n ON 1 = 1"
    resp = await api.post("/v1/segments/validate", {"source_id": source_id, "sql": sql})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["valid"] is False and body["sql"] is None
    codes = [(e["code"], e["line"], e["column"]) for e in body["errors"]]
    # Every issue, in the README's order of codes, each with its position.
    assert codes == [
        ("unknown_table", 4, 6),
        ("unknown_column", 2, 8),
        ("missing_id_column", 1, 8),
    ], codes
    for error in body["errors"]:
        assert set(error) == {"code", "message", "line", "column"} and error["message"]
    # Within one code, by position.
    many = (
        "SELECT u.email,\n       u.nope, e.bad\nFROM users u JOIN events e"
        " ON e.external_user_id = u.external_user_id\nWHERE u.zzz = 1"
    )
    resp = await api.post("/v1/segments/validate", {"source_id": source_id, "sql": many})
    found = [(e["code"], e["line"], e["column"]) for e in resp.json()["errors"]]
    assert found == [
        ("unknown_column", 2, 8),
        ("unknown_column", 2, 16),
        ("unknown_column", 4, 7),
        ("missing_id_column", 1, 8),
    ], found
    code_names = [c for c, _, _ in codes]
    # Creating with the same SQL is refused with the first error, all of them in details.
    err = assert_error(
        await api.post("/v1/segments", {"name": "Bad", "source_id": source_id, "sql": sql}),
        422,
        code_names[0],
    )
    assert [e["code"] for e in err["details"]["errors"]] == code_names
    assert (await api.get("/v1/segments")).json() == []


async def test_updating_sql_revalidates_and_a_refused_patch_writes_nothing(api: Api) -> None:
    source_id = await connected_source(api)
    seg = await api.post(
        "/v1/segments",
        {"name": "Paid", "source_id": source_id, "sql": PAID, "description": "paying"},
    )
    segment_id = seg.json()["id"]
    before = (await api.get(f"/v1/segments/{segment_id}")).json()
    for body, code in (
        ({"name": "Renamed", "sql": "SELECT email FROM users"}, "missing_id_column"),
        ({"description": "new", "sql": "DELETE FROM users"}, "not_read_only"),
        ({"name": "Renamed", "id_column": "user_id"}, "missing_id_column"),
        ({"name": "Renamed", "dialect": "cobol"}, "unknown_dialect"),
    ):
        assert_error(await api.patch(f"/v1/segments/{segment_id}", body), 422, code)
        assert (await api.get(f"/v1/segments/{segment_id}")).json() == before
    err = assert_error(
        await api.patch(f"/v1/segments/{segment_id}", {"name": "Renamed", "description": "\x00"}),
        400,
        "validation_error",
    )
    assert err["details"]["field"] == "description"
    assert (await api.get(f"/v1/segments/{segment_id}")).json() == before
    resp = await api.patch(
        f"/v1/segments/{segment_id}",
        {"sql": "SELECT external_user_id FROM users WHERE plan = 'free'"},
    )
    assert resp.status_code == 200 and resp.json()["sql"].endswith("'free'")


async def test_refresh_in_progress_names_the_running_run_and_cancel_of_a_finished_run(
    api: Api,
) -> None:
    source_id = await connected_source(api)
    seg = await api.post("/v1/segments", {"name": "Slow", "source_id": source_id, "sql": SLOW})
    assert seg.status_code == 201, seg.text
    segment_id = seg.json()["id"]
    first = await api.post(f"/v1/segments/{segment_id}/refresh")
    assert first.status_code == 202, first.text
    run_id = first.json()["id"]
    try:
        err = assert_error(
            await api.post(f"/v1/segments/{segment_id}/refresh"), 409, "refresh_in_progress"
        )
        assert err["details"]["run_id"] == run_id and run_id in err["message"]
        err = assert_error(
            await api.delete(f"/v1/segments/{segment_id}"), 409, "refresh_in_progress"
        )
        assert err["details"]["run_id"] == run_id
        # The source cannot be deleted under it either.
        assert_error(await api.delete(f"/v1/sources/{source_id}"), 409, "source_in_use")
    finally:
        cancel = await api.post(f"/v1/runs/{run_id}/cancel")
        assert cancel.status_code in (202, 409), cancel.text
        done = await api.wait_run(run_id, timeout=60)
        assert await wait_for_abandoned_statements() == []
    assert done["status"] == "cancelled", done
    # Cancelling it again: the run is over; the answer says so and names its status.
    err = assert_error(await api.post(f"/v1/runs/{run_id}/cancel"), 409, "conflict")
    assert err["details"] == {"run_id": run_id, "status": "cancelled"}
    assert (await api.get(f"/v1/runs/{run_id}")).json()["status"] == "cancelled"
    # Nothing half-written: no members, and a new refresh may start.
    page = (await api.get(f"/v1/segments/{segment_id}/members")).json()
    assert page["items"] == [] and page["total"] == 0


async def test_members_pages_cover_the_membership_once_in_order(api: Api) -> None:
    source_id = await connected_source(api)
    sql = "SELECT external_user_id FROM users"
    seg = await api.post("/v1/segments", {"name": "All", "source_id": source_id, "sql": sql})
    segment_id = seg.json()["id"]
    # Before any refresh: an empty first page.
    page = (await api.get(f"/v1/segments/{segment_id}/members")).json()
    assert page == {"segment_id": segment_id, "items": [], "next_cursor": None, "total": 0}
    done = await api.wait_run((await api.post(f"/v1/segments/{segment_id}/refresh")).json()["id"])
    assert done["status"] == "succeeded", done
    expected = sorted(warehouse_ids(api.warehouse, sql))
    for limit in (1, 7, len(expected) - 1, len(expected), 10_000):
        got = await all_members(api, segment_id, limit)
        assert got == expected, limit
    page = (await api.get(f"/v1/segments/{segment_id}/members", params={"limit": 5})).json()
    assert page["total"] == len(expected) and page["next_cursor"] == expected[4]
    # The single-id check agrees with the pages, also for odd ids.
    for external_id, member in ((expected[0], True), ("nobody", False), ("%20 ü 🚀", False)):
        resp = await api.get(f"/v1/segments/{segment_id}/members/{external_id}")
        assert resp.status_code == 200 and resp.json()["member"] is member, resp.text


async def test_scope_formats_per_warehouse_kind_are_checked_when_set(api: Api) -> None:
    pg = await api.post(
        "/v1/credentials",
        {
            "name": "PG",
            "kind": "postgres",
            "settings": {"host": "127.0.0.1", "port": 1, "database": "dw", "user": "zc"},
            "secrets": {"password": "pw-canary-5e1d"},
        },
    )
    assert pg.status_code == 201, pg.text
    pg_id = pg.json()["id"]
    for scope in ("public", "dw.public"):
        resp = await api.post(
            "/v1/sources", {"name": f"PG {scope}", "credential_id": pg_id, "scope": scope}
        )
        assert resp.status_code == 201, resp.text
    err = assert_error(
        await api.post(
            "/v1/sources", {"name": "PG other", "credential_id": pg_id, "scope": "other.public"}
        ),
        400,
        "validation_error",
    )
    assert err["details"]["field"] == "scope" and "'dw'" in err["message"]
    source_id = resp.json()["id"]
    assert_error(
        await api.patch(f"/v1/sources/{source_id}", {"scope": "other.public"}),
        400,
        "validation_error",
    )
    assert (await api.get(f"/v1/sources/{source_id}")).json()["scope"] == "dw.public"
    sf = await api.post(
        "/v1/credentials",
        {
            "name": "SF",
            "kind": "snowflake",
            "settings": {"account": "acme-x1", "user": "ZC", "role": "ZC", "warehouse": "WH"},
        },
    )
    assert sf.status_code == 201, sf.text
    err = assert_error(
        await api.post(
            "/v1/sources", {"name": "SF", "credential_id": sf.json()["id"], "scope": "MARKETING"}
        ),
        400,
        "validation_error",
    )
    assert err["details"]["field"] == "scope" and "database.schema" in err["message"]
    resp = await api.post(
        "/v1/sources",
        {"name": "SF", "credential_id": sf.json()["id"], "scope": "ANALYTICS.MARKETING"},
    )
    assert resp.status_code == 201, resp.text
    # A credential of another warehouse kind is a kind mismatch before any scope rule.
    err = assert_error(
        await api.patch(f"/v1/sources/{resp.json()['id']}", {"credential_id": pg_id}),
        422,
        "credential_kind_mismatch",
    )
    assert "pw-canary-5e1d" not in str(err)
