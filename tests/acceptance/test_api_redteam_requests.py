"""Red team, request shape: malformed bodies, bad path ids, bad query parameters, bad auth.

Every refusal is our error shape with a documented code and the status its code maps to,
names the field (or id) at fault, and leaves nothing written. Expected results come from the
README and what a data engineer calling the API in production would expect, not from what
the code happened to do.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.acceptance.conftest import SCHEMA, Api
from tests.acceptance.redteam import UNKNOWN_UUID, create_credential, state_url  # noqa: F401 (fixture)
from tests.acceptance.test_api_flow import PAID, assert_error, connected_source

pytestmark = pytest.mark.anyio


async def _raw(api: Api, method: str, path: str, body: bytes) -> Any:
    return await api.client.request(
        method, path, content=body, headers={**api.auth, "content-type": "application/json"}
    )


def _field(err: dict[str, Any]) -> Any:
    return err["details"].get("field")


# --- malformed bodies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b"null", b"[]", b'"a string"', b"42", b'{"name": "x",}', b"\xff\xfe"],
)
async def test_a_body_that_is_not_a_json_object_is_validation_error(api: Api, body: bytes) -> None:
    for path in ("/v1/credentials", "/v1/sources", "/v1/segments", "/v1/segments/validate"):
        assert_error(await _raw(api, "POST", path, body), 400, "validation_error")
    assert (await api.get("/v1/credentials")).json() == []


async def test_wrong_types_name_the_field(api: Api) -> None:
    cred_id = await create_credential(api)
    base = {"name": "S", "credential_id": cred_id, "scope": SCHEMA}
    for field, value in (
        ("max_runtime_minutes", 5.5),
        ("max_runtime_minutes", True),
        ("max_runtime_minutes", None),
        ("name", 5),
        ("name", ["S"]),
        ("scope", {"schema": SCHEMA}),
        ("credential_id", 1),
    ):
        err = assert_error(
            await api.post("/v1/sources", {**base, field: value}), 400, "validation_error"
        )
        assert _field(err) == field, (field, value, err)
        assert err["details"]["reason"] in {"invalid_type", "invalid_value"}, err
        assert field in err["message"], err
    assert (await api.get("/v1/sources")).json() == []
    # Known leniency (Litestar decodes bodies with msgspec's lax mode): a numeric string is
    # read as the number it spells; anything else of the wrong type is refused above.
    resp = await api.post("/v1/sources", {**base, "max_runtime_minutes": "5"})
    assert resp.status_code == 201 and resp.json()["max_runtime_minutes"] == 5


async def test_unknown_and_missing_fields_are_named(api: Api) -> None:
    cred_id = await create_credential(api)
    err = assert_error(
        await api.post(
            "/v1/sources",
            {"name": "S", "credential_id": cred_id, "scope": SCHEMA, "max_runtime": 5},
        ),
        400,
        "validation_error",
    )
    assert err["details"]["field"] == "max_runtime" and err["details"]["reason"] == "unknown_field"
    for missing in ("name", "credential_id", "scope"):
        body = {"name": "S", "credential_id": cred_id, "scope": SCHEMA}
        del body[missing]
        err = assert_error(await api.post("/v1/sources", body), 400, "validation_error")
        assert err["details"] == {**err["details"], "field": missing, "reason": "required"}
    err = assert_error(await api.post("/v1/segments", {"name": "x"}), 400, "validation_error")
    assert err["details"]["reason"] == "required"
    err = assert_error(
        await api.post("/v1/credentials", {"name": "x", "kind": "duckdb", "setings": {}}),
        400,
        "validation_error",
    )
    assert err["details"]["field"] == "setings"


@pytest.mark.parametrize(
    "name", ["", "   ", "\t\n", "x" * 201, "x" * 1_000_000, "bad\x00name", "tab\x07bell"]
)
async def test_bad_names_are_refused_everywhere_and_nothing_is_written(api: Api, name: str) -> None:
    err = assert_error(
        await api.post(
            "/v1/credentials",
            {"name": name, "kind": "duckdb", "settings": {"path": str(api.warehouse)}},
        ),
        400,
        "validation_error",
    )
    assert _field(err) == "name"
    assert len(err["message"]) < 500  # a huge input is not echoed back
    cred_id = await create_credential(api)
    err = assert_error(
        await api.post("/v1/sources", {"name": name, "credential_id": cred_id, "scope": SCHEMA}),
        400,
        "validation_error",
    )
    assert _field(err) == "name" and len(err["message"]) < 500
    source_id = (
        await api.post("/v1/sources", {"name": "Ok", "credential_id": cred_id, "scope": SCHEMA})
    ).json()["id"]
    err = assert_error(
        await api.patch(f"/v1/sources/{source_id}", {"name": name}), 400, "validation_error"
    )
    assert _field(err) == "name"
    assert (await api.get(f"/v1/sources/{source_id}")).json()["name"] == "Ok"
    assert [c["name"] for c in (await api.get("/v1/credentials")).json()] == ["Warehouse"]


async def test_unicode_names_round_trip_and_200_characters_is_the_limit(api: Api) -> None:
    name = "Café 市场 🚀 «Ünïcödé»"
    resp = await api.post(
        "/v1/credentials",
        {"name": name, "kind": "duckdb", "settings": {"path": str(api.warehouse)}},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["name"] == name
    assert (await api.get(f"/v1/credentials/{resp.json()['id']}")).json()["name"] == name
    long_name = "é" * 200
    src = await api.post(
        "/v1/sources", {"name": long_name, "credential_id": resp.json()["id"], "scope": SCHEMA}
    )
    assert src.status_code == 201, src.text
    assert src.json()["name"] == long_name
    # Surrounding blanks are trimmed, so the same name with blanks is the same name.
    dup = await api.post(
        "/v1/sources",
        {"name": f"  {long_name} ", "credential_id": resp.json()["id"], "scope": SCHEMA},
    )
    assert_error(dup, 409, "conflict")


@pytest.mark.parametrize("scope", ["", " ", ".", "a.", ".b", "a.b.c", "a..b", "bad\x00scope"])
async def test_malformed_scopes_are_refused_naming_scope(api: Api, scope: str) -> None:
    cred_id = await create_credential(api)
    err = assert_error(
        await api.post("/v1/sources", {"name": "S", "credential_id": cred_id, "scope": scope}),
        400,
        "validation_error",
    )
    assert _field(err) == "scope", err
    assert (await api.get("/v1/sources")).json() == []


@pytest.mark.parametrize("minutes", [0, -1, 61, 10_000, 2**63])
async def test_max_runtime_outside_1_to_60_is_refused_on_create_and_update(
    api: Api, minutes: int
) -> None:
    cred_id = await create_credential(api)
    err = assert_error(
        await api.post(
            "/v1/sources",
            {
                "name": "S",
                "credential_id": cred_id,
                "scope": SCHEMA,
                "max_runtime_minutes": minutes,
            },
        ),
        400,
        "validation_error",
    )
    assert _field(err) == "max_runtime_minutes"
    src = await api.post(
        "/v1/sources",
        {"name": "S", "credential_id": cred_id, "scope": SCHEMA, "max_runtime_minutes": 7},
    )
    err = assert_error(
        await api.patch(f"/v1/sources/{src.json()['id']}", {"max_runtime_minutes": minutes}),
        400,
        "validation_error",
    )
    assert _field(err) == "max_runtime_minutes"
    assert (await api.get(f"/v1/sources/{src.json()['id']}")).json()["max_runtime_minutes"] == 7


async def test_max_runtime_bounds_1_and_60_are_accepted(api: Api) -> None:
    cred_id = await create_credential(api)
    for n, minutes in enumerate((1, 60)):
        src = await api.post(
            "/v1/sources",
            {
                "name": f"S{n}",
                "credential_id": cred_id,
                "scope": SCHEMA,
                "max_runtime_minutes": minutes,
            },
        )
        assert src.status_code == 201, src.text
        assert src.json()["max_runtime_minutes"] == minutes


async def test_credential_bodies_with_wrong_shapes(api: Api) -> None:
    for body, field in (
        ({"name": "X", "kind": "duckdb", "settings": ["path"]}, "settings"),
        ({"name": "X", "kind": "postgres", "settings": {}, "secrets": {"password": 5}}, "secrets"),
        ({"name": "X", "kind": "", "settings": {}}, "kind"),
        ({"name": "X", "kind": 5}, "kind"),
        ({"name": "X", "kind": "duckdb", "expires_at": "tomorrow"}, "expires_at"),
    ):
        resp = await api.post("/v1/credentials", body)
        assert resp.status_code in (400, 422), resp.text
        err = assert_error(
            resp,
            resp.status_code,
            "validation_error" if resp.status_code == 400 else "invalid_credential",
        )
        assert field in err["message"] or _field(err) == field, (body, err)
    assert (await api.get("/v1/credentials")).json() == []


async def test_segment_bodies_with_wrong_shapes(api: Api) -> None:
    source_id = await connected_source(api)
    for body, field in (
        ({"name": "S", "source_id": source_id, "sql": 5}, "sql"),
        ({"name": "S", "source_id": source_id, "sql": PAID, "description": 5}, "description"),
        ({"name": "S", "source_id": source_id, "sql": PAID, "owner": "me"}, "owner"),
        ({"name": "S", "source_id": [source_id], "sql": PAID}, "source_id"),
        ({"name": "", "source_id": source_id, "sql": PAID}, "name"),
        (
            {"name": "S", "source_id": source_id, "sql": PAID, "description": "d" * 100_001},
            "description",
        ),
    ):
        err = assert_error(await api.post("/v1/segments", body), 400, "validation_error")
        assert _field(err) == field, (body, err)
    assert (await api.get("/v1/segments")).json() == []
    # An empty or NUL-laden query is a SQL-check refusal with its own code.
    assert_error(
        await api.post("/v1/segments", {"name": "S", "source_id": source_id, "sql": ""}),
        422,
        "parse_error",
    )
    resp = await api.post(
        "/v1/segments/validate",
        {"source_id": source_id, "sql": "SELECT external_user_id\x00 FROM users"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["valid"] is False
    # A huge query is answered with the check's parse_error, not a crash.
    huge = "SELECT external_user_id FROM users WHERE " + " OR ".join(["plan = 'x'"] * 30_000)
    resp = await api.post("/v1/segments/validate", {"source_id": source_id, "sql": huge})
    assert resp.status_code == 200, resp.text[:500]
    assert [e["code"] for e in resp.json()["errors"]][:1] == ["parse_error"]
    assert len(resp.text) < 10_000  # the query is not echoed back


async def test_patch_bodies(api: Api) -> None:
    source_id = await connected_source(api)
    # An empty patch changes nothing and is fine.
    before = (await api.get(f"/v1/sources/{source_id}")).json()
    resp = await api.patch(f"/v1/sources/{source_id}", {})
    assert resp.status_code == 200 and resp.json() == before
    for body in (b"null", b"[]", b"{oops"):
        assert_error(
            await _raw(api, "PATCH", f"/v1/sources/{source_id}", body), 400, "validation_error"
        )
    # A refused part of a patch leaves every other part unwritten.
    err = assert_error(
        await api.patch(f"/v1/sources/{source_id}", {"name": "Renamed", "scope": "a.b.c"}),
        400,
        "validation_error",
    )
    assert _field(err) == "scope"
    assert (await api.get(f"/v1/sources/{source_id}")).json() == before
    assert_error(
        await api.patch(
            f"/v1/sources/{source_id}", {"name": "Renamed", "credential_id": UNKNOWN_UUID}
        ),
        404,
        "not_found",
    )
    assert (await api.get(f"/v1/sources/{source_id}")).json() == before


# --- bad path ids ----------------------------------------------------------------------------


BAD_IDS = [
    UNKNOWN_UUID,
    "not-a-uuid",
    "1",
    "x" * 5000,
    "%00",
    "%F0%9F%9A%80",
    "..%2F..%2Fetc",
    "' OR 1=1 --",
    UNKNOWN_UUID.upper(),
]


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_unknown_or_malformed_ids_are_not_found_naming_the_kind(api: Api, bad: str) -> None:
    for path in (
        f"/v1/credentials/{bad}",
        f"/v1/sources/{bad}",
        f"/v1/sources/{bad}/tables",
        f"/v1/sources/{bad}/tables/users",
        f"/v1/segments/{bad}",
        f"/v1/segments/{bad}/runs",
        f"/v1/segments/{bad}/members",
        f"/v1/segments/{bad}/members/u1",
        f"/v1/runs/{bad}",
    ):
        err = assert_error(await api.get(path), 404, "not_found")
        assert len(err["message"]) < 300, err  # an id of 5,000 characters is not echoed whole
    for path in (
        f"/v1/sources/{bad}/test",
        f"/v1/segments/{bad}/refresh",
        f"/v1/runs/{bad}/cancel",
    ):
        assert_error(await api.post(path), 404, "not_found")
    for path in (f"/v1/credentials/{bad}", f"/v1/sources/{bad}", f"/v1/segments/{bad}"):
        assert_error(await api.delete(path), 404, "not_found")
        assert_error(await api.patch(path, {"name": "x"}), 404, "not_found")


async def test_an_unknown_id_names_the_kind_and_the_id(api: Api) -> None:
    err = assert_error(await api.get(f"/v1/sources/{UNKNOWN_UUID}"), 404, "not_found")
    assert UNKNOWN_UUID in err["message"] and "source" in err["message"]
    assert err["details"]["id"] == UNKNOWN_UUID
    cred_id = await create_credential(api)
    err = assert_error(
        await api.post(
            "/v1/sources", {"name": "S", "credential_id": UNKNOWN_UUID, "scope": SCHEMA}
        ),
        404,
        "not_found",
    )
    assert err["details"]["id"] == UNKNOWN_UUID and "credential" in err["message"]
    assert err["details"].get("field") == "credential_id"
    assert cred_id
    err = assert_error(
        await api.post("/v1/segments/validate", {"source_id": UNKNOWN_UUID, "sql": PAID}),
        404,
        "not_found",
    )
    assert err["details"].get("field") == "source_id"


async def test_another_workspaces_objects_look_exactly_like_unknown_ones(api: Api) -> None:
    source_id = await connected_source(api)
    seg = await api.post("/v1/segments", {"name": "Paid", "source_id": source_id, "sql": PAID})
    segment_id = seg.json()["id"]
    cred_id = (await api.get("/v1/credentials")).json()[0]["id"]
    other_key = await api.new_workspace("Globex")
    other = {"Authorization": f"Bearer {other_key}"}

    async def as_other(method: str, path: str, json: Any = None) -> Any:
        return await api.client.request(method, path, json=json, headers=other)

    for method, path, body in (
        ("PATCH", f"/v1/credentials/{cred_id}", {"name": "Mine"}),
        ("PATCH", f"/v1/sources/{source_id}", {"name": "Mine"}),
        ("PATCH", f"/v1/segments/{segment_id}", {"name": "Mine"}),
        ("DELETE", f"/v1/sources/{source_id}", None),
        ("DELETE", f"/v1/segments/{segment_id}", None),
        ("POST", "/v1/segments", {"name": "S", "source_id": source_id, "sql": PAID}),
    ):
        theirs = assert_error(await as_other(method, path, body), 404, "not_found")
        # Same answer as for an id that never existed (no hint that it does).
        fake_path = path.replace(source_id, UNKNOWN_UUID).replace(segment_id, UNKNOWN_UUID)
        fake_path = fake_path.replace(cred_id, UNKNOWN_UUID)
        fake_body = (
            {k: (UNKNOWN_UUID if v == source_id else v) for k, v in body.items()} if body else None
        )
        unknown = assert_error(await as_other(method, fake_path, fake_body), 404, "not_found")
        assert (
            theirs["message"]
            .replace(source_id, UNKNOWN_UUID)
            .replace(segment_id, UNKNOWN_UUID)
            .replace(cred_id, UNKNOWN_UUID)
            == unknown["message"]
        )
        assert "Marketing" not in theirs["message"] and "Paid" not in theirs["message"]
    # A source of theirs on our credential is refused and nothing is created.
    resp = await as_other(
        "POST", "/v1/sources", {"name": "Steal", "credential_id": cred_id, "scope": SCHEMA}
    )
    assert_error(resp, 404, "not_found")
    # Our objects are untouched.
    assert (await api.get(f"/v1/sources/{source_id}")).json()["name"] == "Marketing"
    assert (await api.get(f"/v1/segments/{segment_id}")).json()["name"] == "Paid"
    assert (await api.get(f"/v1/credentials/{cred_id}")).json()["name"] == "Warehouse"
    assert (await as_other("GET", "/v1/sources")).json() == []


# --- query parameters ------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["0", "-1", "10001", "abc", "1.5", "", "99999999999999999999"])
async def test_bad_member_page_limits_are_validation_errors_naming_limit(
    api: Api, limit: str
) -> None:
    source_id = await connected_source(api)
    seg = await api.post("/v1/segments", {"name": "Paid", "source_id": source_id, "sql": PAID})
    segment_id = seg.json()["id"]
    err = assert_error(
        await api.get(f"/v1/segments/{segment_id}/members", params={"limit": limit}),
        400,
        "validation_error",
    )
    assert _field(err) == "limit", err
    assert "limit" in err["message"]
    err = assert_error(
        await api.get(f"/v1/segments/{segment_id}/runs", params={"limit": limit}),
        400,
        "validation_error",
    )
    assert _field(err) == "limit", err


async def test_member_page_limit_bounds_and_odd_cursors(api: Api) -> None:
    source_id = await connected_source(api)
    seg = await api.post("/v1/segments", {"name": "Paid", "source_id": source_id, "sql": PAID})
    segment_id = seg.json()["id"]
    run = await api.post(f"/v1/segments/{segment_id}/refresh")
    done = await api.wait_run(run.json()["id"])
    assert done["status"] == "succeeded", done
    total = done["member_count"]
    for limit in (1, 10_000):
        page = await api.get(f"/v1/segments/{segment_id}/members", params={"limit": limit})
        assert page.status_code == 200 and len(page.json()["items"]) == min(limit, total)
    assert (await api.get(f"/v1/segments/{segment_id}/runs?limit=200")).status_code == 200
    # A cursor past every id is an empty last page, not an error.
    for cursor in ("\uffff", "zzzz", "~"):
        page = await api.get(f"/v1/segments/{segment_id}/members", params={"cursor": cursor})
        assert page.status_code == 200 and page.json()["items"] == []
        assert page.json()["next_cursor"] is None and page.json()["total"] == total
    # A cursor before every id is the first page.
    first = await api.get(f"/v1/segments/{segment_id}/members", params={"limit": 3})
    page = await api.get(f"/v1/segments/{segment_id}/members", params={"limit": 3, "cursor": "!"})
    assert page.json()["items"] == first.json()["items"]


async def test_catalog_search_with_odd_text_is_literal(api: Api) -> None:
    source_id = await connected_source(api)
    every = (await api.get(f"/v1/sources/{source_id}/tables")).json()
    for search in ("", "   "):
        resp = await api.get(f"/v1/sources/{source_id}/tables", params={"search": search})
        assert resp.status_code == 200 and resp.json() == every
    for search in ("%", "*", ".*", "' OR 1=1 --", "\x00", "🚀", "x" * 10_000):
        resp = await api.get(f"/v1/sources/{source_id}/tables", params={"search": search})
        assert resp.status_code == 200, resp.text
        assert resp.json() == [], search


# --- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Basic dXNlcjpwYXNz",
        "Token zc_x",
        "Bearer zc_",
        "Bearer zc_000000000000_nope",
        "Bearer not-even-our-format",
        "Bearer " + "x" * 10_000,
    ],
)
async def test_missing_or_wrong_keys_are_401_with_a_challenge(api: Api, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    for method, path in (
        ("GET", "/v1/sources"),
        ("POST", "/v1/credentials"),
        ("GET", "/v1/workspace"),
    ):
        resp = await api.client.request(method, path, headers=headers, json={"name": "x"})
        err = assert_error(resp, 401, "unauthorized")
        assert resp.headers.get("www-authenticate", "").lower().startswith("bearer"), resp.headers
        assert api.key not in err["message"]
        if header:
            assert header[7:] not in err["message"] or len(header) < 12


async def test_auth_scheme_is_case_insensitive_and_blanks_are_trimmed(api: Api) -> None:
    for header in (f"bearer {api.key}", f"BEARER {api.key}", f"Bearer  {api.key}  "):
        resp = await api.client.get("/v1/workspace", headers={"Authorization": header})
        assert resp.status_code == 200, (header, resp.text)


async def test_auth_is_checked_before_the_body(api: Api) -> None:
    """A caller without a key learns nothing about the body's shape."""
    resp = await api.client.post(
        "/v1/sources", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(resp, 401, "unauthorized")
    resp = await api.client.get("/v1/segments/x/members?limit=0")
    assert_error(resp, 401, "unauthorized")


async def test_a_blank_id_column_is_refused_not_stored(api: Api) -> None:
    source_id = await connected_source(api)
    seg = await api.post("/v1/segments", {"name": "Paid", "source_id": source_id, "sql": PAID})
    segment_id = seg.json()["id"]
    before = (await api.get(f"/v1/segments/{segment_id}")).json()
    for blank in ("", "   ", "a\x00b"):
        err = assert_error(
            await api.patch(f"/v1/segments/{segment_id}", {"id_column": blank}),
            400,
            "validation_error",
        )
        assert _field(err) == "id_column"
        err = assert_error(
            await api.post(
                "/v1/segments",
                {"name": "Other", "source_id": source_id, "sql": PAID, "id_column": blank},
            ),
            400,
            "validation_error",
        )
        assert _field(err) == "id_column"
        err = assert_error(
            await api.post(
                "/v1/segments/validate", {"source_id": source_id, "sql": PAID, "id_column": blank}
            ),
            400,
            "validation_error",
        )
    assert (await api.get(f"/v1/segments/{segment_id}")).json() == before
    assert [s["id"] for s in (await api.get("/v1/segments")).json()] == [segment_id]


async def test_workspace_time_zone_refusals_name_the_field(api: Api) -> None:
    before = (await api.get("/v1/workspace")).json()
    for zone in ("Mars/Olympus", "", "UTC\x00", 5, None):
        resp = await api.patch("/v1/workspace", {"time_zone": zone})
        err = assert_error(resp, 400, "validation_error")
        assert _field(err) == "time_zone", (zone, err)
    assert_error(
        await api.patch("/v1/workspace", {"time_zone": "UTC", "name": "x"}), 400, "validation_error"
    )
    assert (await api.get("/v1/workspace")).json() == before


async def test_unknown_query_parameters_are_refused_not_ignored(api: Api) -> None:
    source_id = await connected_source(api)
    seg = await api.post("/v1/segments", {"name": "Paid", "source_id": source_id, "sql": PAID})
    segment_id = seg.json()["id"]
    for path, params, name in (
        (f"/v1/segments/{segment_id}/members", {"offset": "-1"}, "offset"),
        (f"/v1/segments/{segment_id}/members", {"limit": "5", "page": "2"}, "page"),
        (f"/v1/segments/{segment_id}/runs", {"sort": "bogus"}, "sort"),
        (f"/v1/sources/{source_id}/tables", {"q": "users"}, "q"),
        ("/v1/sources", {"limit": "10"}, "limit"),
        ("/v1/credentials", {"include_secrets": "true"}, "include_secrets"),
    ):
        err = assert_error(await api.get(path, params=params), 400, "validation_error")
        assert err["details"]["field"] == name and err["details"]["reason"] == "unknown_field"
        assert name in err["message"]
    # Declared parameters still work.
    resp = await api.get(f"/v1/sources/{source_id}/tables", params={"search": "users"})
    assert resp.status_code == 200
    resp = await api.get(f"/v1/segments/{segment_id}/members", params={"limit": 5})
    assert resp.status_code == 200


async def test_a_body_over_the_size_limit_is_413_validation_error_naming_the_limit(
    api: Api,
) -> None:
    body = b'{"name": "x", "kind": "duckdb", "settings": {"path": "' + b"a" * 11_000_000 + b'"}}'
    resp = await _raw(api, "POST", "/v1/credentials", body)
    err = assert_error(resp, 413, "validation_error")
    assert err["details"] == {"reason": "too_large", "limit_bytes": 10_000_000}
    assert "10,000,000" in err["message"] and len(resp.content) < 1000
    assert (await api.get("/v1/credentials")).json() == []


async def test_a_query_parameter_refusal_reads_plainly(api: Api) -> None:
    err = assert_error(
        await api.get("/v1/accounts", params={"limit": "0"}), 400, "validation_error"
    )
    assert err["message"].endswith("(field 'limit' in the query)"), err["message"]
    assert err["details"]["field"] == "limit"
