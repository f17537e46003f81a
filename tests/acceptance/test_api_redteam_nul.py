"""Red team, NUL and control characters on both state backends: PostgreSQL refuses NUL in
text, so anything that reaches a query with one would answer 500 there. Each is refused (or
answered) by the API itself, naming the field, with nothing written."""

from __future__ import annotations

import pytest

from tests.acceptance.conftest import SCHEMA, Api
from tests.acceptance.test_api_flow import PAID, assert_error, connected_source

pytestmark = pytest.mark.anyio

NUL = "\x00"


async def test_nul_in_names_ids_settings_cursors_and_member_ids(api: Api) -> None:
    err = assert_error(
        await api.post(
            "/v1/credentials",
            {"name": f"a{NUL}b", "kind": "duckdb", "settings": {"path": str(api.warehouse)}},
        ),
        400,
        "validation_error",
    )
    assert err["details"]["field"] == "name"
    err = assert_error(
        await api.post(
            "/v1/credentials",
            {"name": "W", "kind": "duckdb", "settings": {"path": f"{api.warehouse}{NUL}"}},
        ),
        422,
        "invalid_credential",
    )
    assert err["details"]["field"] == "path"
    err = assert_error(
        await api.post(
            "/v1/credentials",
            {
                "name": "PG",
                "kind": "postgres",
                "settings": {"host": "h", "database": "d", "user": "u"},
                "secrets": {"password": f"pw{NUL}canary-91ab"},
            },
        ),
        422,
        "invalid_credential",
    )
    assert err["details"]["field"] == "password" and "canary-91ab" not in str(err)
    assert (await api.get("/v1/credentials")).json() == []

    source_id = await connected_source(api)
    cred_id = (await api.get("/v1/credentials")).json()[0]["id"]
    err = assert_error(
        await api.post(
            "/v1/sources", {"name": "S", "credential_id": cred_id, "scope": f"{SCHEMA}{NUL}"}
        ),
        400,
        "validation_error",
    )
    assert err["details"]["field"] == "scope"
    err = assert_error(
        await api.post(
            "/v1/sources", {"name": "S", "credential_id": f"{cred_id}{NUL}", "scope": SCHEMA}
        ),
        404,
        "not_found",
    )
    assert err["details"]["field"] == "credential_id"
    for path in (f"/v1/sources/{source_id}%00", "/v1/segments/%00", "/v1/runs/a%00b"):
        assert_error(await api.get(path), 404, "not_found")
    seg = await api.post("/v1/segments", {"name": "Paid", "source_id": source_id, "sql": PAID})
    assert seg.status_code == 201, seg.text
    segment_id = seg.json()["id"]
    done = await api.wait_run((await api.post(f"/v1/segments/{segment_id}/refresh")).json()["id"])
    assert done["status"] == "succeeded", done
    err = assert_error(
        await api.get(f"/v1/segments/{segment_id}/members", params={"cursor": f"u{NUL}"}),
        400,
        "validation_error",
    )
    assert err["details"]["field"] == "cursor"
    resp = await api.get(f"/v1/segments/{segment_id}/members/u00000001%00")
    assert resp.status_code == 200 and resp.json()["member"] is False
    err = assert_error(
        await api.patch(f"/v1/segments/{segment_id}", {"description": f"x{NUL}"}),
        400,
        "validation_error",
    )
    assert err["details"]["field"] == "description"
    resp = await api.get(f"/v1/sources/{source_id}/tables", params={"search": NUL})
    assert resp.status_code == 200 and resp.json() == []


async def test_profile_lookups_with_odd_ids(api: Api) -> None:
    for params in ({"external_id": f"u{NUL}"}, {"email": f"a{NUL}@x.io"}, {"braze_id": NUL}):
        err = assert_error(await api.get("/v1/profiles", params=params), 404, "not_found")
        assert NUL not in err["message"]
    for profile_id in ("%00", "x" * 500, "nope"):
        err = assert_error(await api.get(f"/v1/profiles/{profile_id}"), 404, "not_found")
        assert len(err["message"]) < 200 and err["details"]["kind"] == "profile"
        assert_error(await api.get(f"/v1/profiles/{profile_id}/events"), 404, "not_found")
    err = assert_error(await api.get("/v1/profiles"), 400, "validation_error")
    assert err["details"]["reason"] == "exactly_one"
