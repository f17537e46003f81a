"""API rules beyond the happy path: auth, workspace isolation, write-only secrets, validation
errors in our JSON shape, failed source tests, the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.acceptance.conftest import SCHEMA, Api
from tests.acceptance.test_api_flow import PAID, assert_error, connected_source

pytestmark = pytest.mark.anyio

CANARY = "canary-Pa55w0rd-7f3e9b1c"


@pytest.fixture(params=["sqlite"])
def state_url(request: pytest.FixtureRequest, migrated_sqlite_path: Any) -> str:
    """These rules do not depend on the state backend: SQLite only (the flow runs on both),
    a copy of the session's migrated state file."""
    return f"sqlite:///{migrated_sqlite_path}"


async def test_health_needs_no_key_and_everything_else_does(api: Api) -> None:
    resp = await api.client.get("/health")
    assert resp.status_code == 200 and resp.json()["status"] == "ok"
    assert_error(await api.client.get("/v1/sources"), 401, "unauthorized")
    bad = {"Authorization": "Bearer zc_000000000000_not-a-real-key"}
    assert_error(await api.client.get("/v1/sources", headers=bad), 401, "unauthorized")
    tampered = {"Authorization": f"Bearer {api.key[:-2]}xx"}
    assert_error(await api.client.get("/v1/sources", headers=tampered), 401, "unauthorized")
    assert_error(
        await api.client.get("/v1/sources", headers={"Authorization": "Basic abc"}),
        401,
        "unauthorized",
    )
    resp = await api.get("/v1/workspace")
    assert resp.status_code == 200 and resp.json()["id"] == api.workspace_id


async def test_a_workspace_never_sees_another_workspaces_objects(api: Api) -> None:
    source_id = await connected_source(api)
    seg = await api.post("/v1/segments", {"name": "Paid", "source_id": source_id, "sql": PAID})
    assert seg.status_code == 201
    segment_id = seg.json()["id"]
    run = await api.post(f"/v1/segments/{segment_id}/refresh")
    run_id = run.json()["id"]
    await api.wait_run(run_id)
    cred_id = (await api.get("/v1/credentials")).json()[0]["id"]

    other = {"Authorization": f"Bearer {await api.new_workspace('Globex')}"}
    for path in (
        f"/v1/credentials/{cred_id}",
        f"/v1/sources/{source_id}",
        f"/v1/sources/{source_id}/tables",
        f"/v1/sources/{source_id}/tables/users",
        f"/v1/segments/{segment_id}",
        f"/v1/segments/{segment_id}/runs",
        f"/v1/segments/{segment_id}/members",
        f"/v1/segments/{segment_id}/members/u00000001",
        f"/v1/runs/{run_id}",
    ):
        assert_error(await api.client.get(path, headers=other), 404, "not_found")
    for path in (
        f"/v1/sources/{source_id}/test",
        f"/v1/segments/{segment_id}/refresh",
        f"/v1/runs/{run_id}/cancel",
    ):
        assert_error(await api.client.post(path, headers=other), 404, "not_found")
    assert_error(
        await api.client.delete(f"/v1/credentials/{cred_id}", headers=other), 404, "not_found"
    )
    # Nor can it build on them.
    assert_error(
        await api.client.post(
            "/v1/sources",
            json={"name": "Steal", "credential_id": cred_id, "scope": SCHEMA},
            headers=other,
        ),
        404,
        "not_found",
    )
    assert_error(
        await api.client.post(
            "/v1/segments/validate", json={"source_id": source_id, "sql": PAID}, headers=other
        ),
        404,
        "not_found",
    )
    for listing in ("/v1/credentials", "/v1/sources", "/v1/segments"):
        resp = await api.client.get(listing, headers=other)
        assert resp.status_code == 200 and resp.json() == []


async def test_secrets_are_write_only(api: Api) -> None:
    resp = await api.post(
        "/v1/credentials",
        {
            "name": "Prod PG",
            "kind": "postgres",
            "settings": {"host": "127.0.0.1", "port": 1, "database": "dw", "user": "zerocopy"},
            "secrets": {"password": CANARY},
        },
    )
    assert resp.status_code == 201, resp.text
    cred = resp.json()
    assert cred["secret_fields"] == ["password"]
    seen = [resp.text]
    seen.append((await api.get("/v1/credentials")).text)
    seen.append((await api.get(f"/v1/credentials/{cred['id']}")).text)
    resp = await api.patch(f"/v1/credentials/{cred['id']}", {"secrets": {"password": CANARY * 2}})
    assert resp.status_code == 200 and resp.json()["secret_fields"] == ["password"]
    seen.append(resp.text)
    # A failed connection test (nothing listens on port 1) reports without the password.
    src = await api.post(
        "/v1/sources", {"name": "PG", "credential_id": cred["id"], "scope": "public"}
    )
    seen.append(src.text)
    test = await api.post(f"/v1/sources/{src.json()['id']}/test")
    seen.append(test.text)
    assert test.status_code >= 400
    assert all(CANARY not in text for text in seen)
    # Secrets sent as settings are refused, naming the field.
    err = assert_error(
        await api.post(
            "/v1/credentials",
            {
                "name": "Leaky",
                "kind": "postgres",
                "settings": {"host": "h", "database": "d", "user": "u", "password": CANARY},
            },
        ),
        422,
        "invalid_credential",
    )
    assert CANARY not in json.dumps(err)
    # The stored row holds ciphertext only.
    async with api.app.state.runtime.db.session() as session:
        from zerocopy.state.models import Credential

        row = await session.get(Credential, cred["id"])
        assert row is not None and row.secret_ciphertext
        assert CANARY not in row.secret_ciphertext and CANARY not in json.dumps(row.settings)


async def test_failed_test_sets_error_status_with_code(api: Api) -> None:
    cred = await api.post(
        "/v1/credentials",
        {"name": "Warehouse", "kind": "duckdb", "settings": {"path": str(api.warehouse)}},
    )
    src = await api.post(
        "/v1/sources",
        {"name": "Wrong schema", "credential_id": cred.json()["id"], "scope": "nope"},
    )
    source_id = src.json()["id"]
    err = assert_error(await api.post(f"/v1/sources/{source_id}/test"), 422, "scope_not_found")
    assert err["details"]["status"] == "error"
    source = (await api.get(f"/v1/sources/{source_id}")).json()
    assert source["status"] == "error"
    assert source["last_error"]["code"] == "scope_not_found"
    assert source["last_tested_at"] is not None
    # Fixing the scope puts it back to draft; a successful test makes it active.
    resp = await api.patch(f"/v1/sources/{source_id}", {"scope": SCHEMA})
    assert resp.json()["status"] == "draft"
    resp = await api.post(f"/v1/sources/{source_id}/test")
    assert resp.status_code == 200 and resp.json()["source"]["status"] == "active"
    assert resp.json()["source"]["last_error"] is None


async def test_request_validation_errors_use_our_shape(api: Api) -> None:
    cred = await api.post(
        "/v1/credentials",
        {"name": "Warehouse", "kind": "duckdb", "settings": {"path": str(api.warehouse)}},
    )
    cred_id = cred.json()["id"]
    err = assert_error(
        await api.post(
            "/v1/sources",
            {"name": "S", "credential_id": cred_id, "scope": SCHEMA, "max_runtime_minutes": 61},
        ),
        400,
        "validation_error",
    )
    assert "max_runtime_minutes" in err["message"]
    assert_error(
        await api.post(
            "/v1/sources",
            {"name": "S", "credential_id": cred_id, "scope": SCHEMA, "max_runtime_minutes": 0},
        ),
        400,
        "validation_error",
    )
    err = assert_error(
        await api.post("/v1/sources", {"name": "S", "credential_id": cred_id, "scop": SCHEMA}),
        400,
        "validation_error",
    )
    assert_error(
        await api.post("/v1/sources", {"name": "S", "credential_id": cred_id, "scope": "a.b.c"}),
        400,
        "validation_error",
    )
    resp = await api.client.post(
        "/v1/credentials",
        content=b"{not json",
        headers={**api.auth, "content-type": "application/json"},
    )
    assert_error(resp, 400, "validation_error")
    assert_error(
        await api.post("/v1/credentials", {"name": "X", "kind": "oracle"}),
        400,
        "validation_error",
    )
    assert_error(
        await api.post("/v1/credentials", {"name": "X", "kind": "duckdb", "settings": {}}),
        422,
        "invalid_credential",
    )
    assert_error(
        await api.post(
            "/v1/credentials",
            {"name": "Warehouse", "kind": "duckdb", "settings": {"path": str(api.warehouse)}},
        ),
        409,
        "conflict",
    )
    assert_error(await api.get("/v1/segments/nope/members?limit=0"), 400, "validation_error")
    assert_error(await api.get("/v1/nowhere"), 404, "not_found")
    assert_error(await api.client.put("/v1/sources", headers=api.auth), 405, "method_not_allowed")


async def test_segment_update_is_checked_and_dialect_is_honoured(api: Api) -> None:
    source_id = await connected_source(api)
    seg = await api.post("/v1/segments", {"name": "Paid", "source_id": source_id, "sql": PAID})
    segment_id = seg.json()["id"]
    err = assert_error(
        await api.patch(f"/v1/segments/{segment_id}", {"sql": "SELECT x FROM marketing.nope"}),
        422,
        "unknown_table",
    )
    assert err["line"] == 1
    err = assert_error(
        await api.patch(f"/v1/segments/{segment_id}", {"sql": "SELECT 1 FROM other.users"}),
        422,
        "out_of_scope",
    )
    assert (await api.get(f"/v1/segments/{segment_id}")).json()["sql"] == PAID
    # Snowflake-flavoured input is accepted and transpiled to the warehouse's dialect.
    snowflake_sql = (
        "SELECT external_user_id FROM users QUALIFY ROW_NUMBER() OVER "
        "(PARTITION BY country ORDER BY lifetime_value DESC) <= 2"
    )
    check = await api.post(
        "/v1/segments/validate",
        {"source_id": source_id, "sql": snowflake_sql, "dialect": "snowflake"},
    )
    assert check.json()["valid"] is True, check.text
    assert check.json()["dialect"] == "snowflake" and check.json()["target"] == "duckdb"
    resp = await api.patch(
        f"/v1/segments/{segment_id}", {"sql": snowflake_sql, "dialect": "snowflake"}
    )
    assert resp.status_code == 200 and resp.json()["dialect"] == "snowflake"
    run = await api.post(f"/v1/segments/{segment_id}/refresh")
    done = await api.wait_run(run.json()["id"])
    assert done["status"] == "succeeded", done
    # Two per country, and the fixture has ten distinct countries at most.
    assert 2 <= done["member_count"] <= 20
    check = await api.post(
        "/v1/segments/validate", {"source_id": source_id, "sql": PAID, "dialect": "cobol"}
    )
    assert check.status_code == 200
    assert [e["code"] for e in check.json()["errors"]] == ["unknown_dialect"]


async def test_openapi_document_is_valid_with_stable_operation_ids(api: Api) -> None:
    resp = await api.client.get("/schema/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    validate(doc)
    operations = {
        (path, method): op
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "patch", "put", "delete"}
    }
    ids = [op["operationId"] for op in operations.values()]
    assert len(ids) == len(set(ids))
    assert {
        "getHealth",
        "createCredential",
        "createSource",
        "testSource",
        "listSourceTables",
        "getSourceTable",
        "validateSegmentSql",
        "createSegment",
        "updateSegment",
        "refreshSegment",
        "listSegmentRuns",
        "listSegmentMembers",
        "checkSegmentMember",
        "getRun",
        "cancelRun",
    } <= set(ids)
    assert doc["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    assert operations[("/health", "get")]["security"] == [{}]  # anonymous allowed
    # Errors are documented in our shape, not Litestar's default.
    refresh = operations[("/v1/segments/{segment_id}/refresh", "post")]
    assert refresh["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"
    }
    assert "status_code" not in json.dumps(refresh["responses"])
    # Secrets are write-only: in the create schema, never in the read schema.
    schemas = doc["components"]["schemas"]
    assert "secrets" in schemas["CredentialCreate"]["properties"]
    assert "secrets" not in schemas["CredentialRead"]["properties"]


async def test_openapi_marks_optional_bodies_optional_and_the_rest_required(api: Api) -> None:
    doc = (await api.client.get("/schema/openapi.json")).json()
    required = {
        op["operationId"]: op["requestBody"].get("required")
        for item in doc["paths"].values()
        for method, op in item.items()
        if method in {"post", "patch", "put"} and "requestBody" in op
    }
    # Both may be called without a body (see their routes).
    assert required.pop("resetSyncWatermark") is False
    assert required.pop("testKeyRotation") is False
    # Every other body is required, as Litestar documents it.
    assert required and set(required.values()) == {True}, required
