"""Red team, the contract: every error is our shape with a documented code and the status the
README gives it, the OpenAPI document lists each operation's error responses and request
body, and real responses (successes and errors) validate against the documented schemas."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.acceptance.conftest import SCHEMA, Api
from tests.acceptance.redteam import UNKNOWN_UUID, state_url  # noqa: F401 (fixture)
from tests.acceptance.test_api_flow import (
    PAID,
    SLOW,
    connected_source,
    wait_for_abandoned_statements,
)

pytestmark = pytest.mark.anyio

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_statuses() -> dict[str, set[int]]:
    """code → HTTP statuses from the README's 'Warehouses and runs' error table."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Error codes") : text.index("## Warehouses\n")]
    found: dict[str, set[int]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[1] or not re.match(r"^[\d/—-]", cells[1]):
            continue
        codes = re.findall(r"`([a-z_]+)`", cells[0])
        statuses = [int(s) for s in re.findall(r"\d{3}", cells[1])]
        if len(statuses) == len(codes):
            for code, status in zip(codes, statuses, strict=True):
                found.setdefault(code, set()).add(status)
        else:
            for code in codes:
                found.setdefault(code, set()).update(statuses)
    # SQL check codes have no status column: the API answers them 422.
    sql_table = section[: section.index("**Warehouses and runs:**")]
    for code in re.findall(r"^\| `([a-z_]+)` \|", sql_table, flags=re.M):
        found.setdefault(code, set()).add(422)
    return found


class Contract:
    """The served OpenAPI document, and a check of real responses against it."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.documented = readme_statuses()
        self.seen: set[tuple[str, str, int]] = set()

    def operation(self, method: str, path: str) -> dict[str, Any]:
        for template, item in self.doc["paths"].items():
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            if re.match(pattern, path) and method.lower() in item:
                op: dict[str, Any] = item[method.lower()]
                return op
        raise AssertionError(f"{method} {path} is not in the OpenAPI document")

    def check(self, method: str, path: str, resp: Any) -> Any:
        """``resp`` matches the operation's documented response for its status."""
        op = self.operation(method, path)
        status = str(resp.status_code)
        assert status in op["responses"], (
            f"{op['operationId']} answered {status}, documented: {sorted(op['responses'])}"
        )
        self.seen.add((op["operationId"], method, resp.status_code))
        documented = op["responses"][status]
        if resp.status_code == 204:
            assert resp.content == b""
            return None
        schema = documented["content"]["application/json"]["schema"]
        body = resp.json()
        validator = Draft202012Validator({**schema, "components": self.doc["components"]})
        problems = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        assert not problems, (
            f"{op['operationId']} {status}: {[(list(p.path), p.message) for p in problems[:5]]}"
        )
        if resp.status_code >= 400:
            code = body["error"]["code"]
            assert code in self.documented, f"{code} is not in the README's error tables"
            assert resp.status_code in self.documented[code], (
                f"{code} answered {resp.status_code}; README: {self.documented[code]}"
            )
        return body


async def test_every_v1_operation_documents_errors_and_bodies(api: Api) -> None:
    doc = (await api.client.get("/schema/openapi.json")).json()
    missing: list[str] = []
    for path, item in doc["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, op in item.items():
            if method not in {"get", "post", "patch", "put", "delete"}:
                continue
            where = f"{method.upper()} {path} ({op['operationId']})"
            for status in ("400", "401", "404", "500"):
                spec = op["responses"].get(status)
                if spec is None:
                    missing.append(f"{where}: no {status}")
                    continue
                schema = spec["content"]["application/json"]["schema"]
                if schema != {"$ref": "#/components/schemas/ErrorResponse"}:
                    missing.append(f"{where}: {status} is not ErrorResponse")
            if method in {"post", "patch", "put"} and "requestBody" in op:
                content = op["requestBody"]["content"]["application/json"]["schema"]
                refs = [content, *content.get("oneOf", [])]
                if not any("$ref" in r for r in refs) and content.get("type") != "object":
                    missing.append(f"{where}: request body without a schema")
            success = [s for s in op["responses"] if s.startswith("2")]
            if len(success) != 1:
                missing.append(f"{where}: success statuses {success}")
    assert missing == [], "\n".join(missing)
    ops = {op["operationId"]: op for item in doc["paths"].values() for op in item.values()}
    # Operations that wait on the warehouse document its failures too.
    for op_id in ("testSource", "validateSegmentSql", "testKeyRotation"):
        assert {"502", "503", "504"} <= set(ops[op_id]["responses"]), op_id
    # The validate result is a documented shape, not a free-form object.
    schema = ops["validateSegmentSql"]["responses"]["200"]["content"]["application/json"]
    assert "$ref" in schema["schema"], schema
    # Request bodies forbid unknown fields, as the API does.
    comps = doc["components"]["schemas"]
    for name in (
        "SourceCreate",
        "SourceUpdate",
        "SegmentCreate",
        "SegmentUpdate",
        "SegmentValidate",
        "CredentialCreate",
        "CredentialUpdate",
    ):
        assert comps[name].get("additionalProperties") is False, name
    assert comps["SourceCreate"]["properties"]["max_runtime_minutes"]["minimum"] == 1
    assert comps["SourceCreate"]["properties"]["max_runtime_minutes"]["maximum"] == 60


async def test_real_responses_match_their_documented_schemas(api: Api) -> None:
    c = Contract((await api.client.get("/schema/openapi.json")).json())

    async def call(method: str, path: str, json: Any = None, headers: Any = None, **kw: Any) -> Any:
        resp = await api.client.request(
            method, path, json=json, headers=api.auth if headers is None else headers, **kw
        )
        return c.check(method, path.split("?")[0], resp), resp

    # Successes, through the whole walkthrough.
    await call("GET", "/v1/workspace")
    cred, _ = await call(
        "POST",
        "/v1/credentials",
        {"name": "Warehouse", "kind": "duckdb", "settings": {"path": str(api.warehouse)}},
    )
    await call("GET", "/v1/credentials")
    await call("GET", f"/v1/credentials/{cred['id']}")
    await call("PATCH", f"/v1/credentials/{cred['id']}", {"name": "Warehouse 2"})
    src, _ = await call(
        "POST", "/v1/sources", {"name": "Marketing", "credential_id": cred["id"], "scope": SCHEMA}
    )
    await call("GET", f"/v1/sources/{src['id']}/tables")  # 409 source_not_active
    await call("POST", "/v1/segments/validate", {"source_id": src["id"], "sql": PAID})  # 409
    await call("POST", f"/v1/sources/{src['id']}/test")
    await call("GET", "/v1/sources")
    await call("GET", f"/v1/sources/{src['id']}")
    await call("PATCH", f"/v1/sources/{src['id']}", {"max_runtime_minutes": 5})
    await call("GET", f"/v1/sources/{src['id']}/tables?search=user")
    await call("GET", f"/v1/sources/{src['id']}/tables/users")
    await call("POST", "/v1/segments/validate", {"source_id": src["id"], "sql": PAID})
    await call(
        "POST", "/v1/segments/validate", {"source_id": src["id"], "sql": "SELECT email FROM users"}
    )
    seg, _ = await call(
        "POST", "/v1/segments", {"name": "Paid", "source_id": src["id"], "sql": PAID}
    )
    await call("GET", "/v1/segments")
    await call("GET", f"/v1/segments/{seg['id']}")
    await call("PATCH", f"/v1/segments/{seg['id']}", {"description": "paying users"})
    run, _ = await call("POST", f"/v1/segments/{seg['id']}/refresh")
    await api.wait_run(run["id"])
    await call("GET", f"/v1/runs/{run['id']}")
    await call("GET", f"/v1/segments/{seg['id']}/runs")
    await call("GET", f"/v1/segments/{seg['id']}/members?limit=3")
    await call("GET", f"/v1/segments/{seg['id']}/members/u00000001")

    # Errors of every kind.
    await call("GET", "/v1/sources", headers={})  # 401
    await call("GET", f"/v1/sources/{UNKNOWN_UUID}")  # 404
    await call("POST", "/v1/sources", {"name": "S"})  # 400 missing fields
    await call("POST", "/v1/sources", {"name": "S", "credential_id": cred["id"], "scope": "a.b.c"})
    await call("GET", f"/v1/segments/{seg['id']}/members?limit=0")  # 400 query
    await call(
        "POST", "/v1/segments", {"name": "Bad", "source_id": src["id"], "sql": "DROP TABLE users"}
    )
    await call("POST", "/v1/segments", {"name": "Paid", "source_id": src["id"], "sql": PAID})  # 409
    await call("DELETE", f"/v1/sources/{src['id']}")  # 409 source_in_use
    await call("DELETE", f"/v1/credentials/{cred['id']}")  # 409 credential_in_use
    await call("POST", f"/v1/runs/{run['id']}/cancel")  # 409 already over
    slow, _ = await call(
        "POST", "/v1/segments", {"name": "Slow", "source_id": src["id"], "sql": SLOW}
    )
    slow_run, _ = await call("POST", f"/v1/segments/{slow['id']}/refresh")
    try:
        await call("POST", f"/v1/segments/{slow['id']}/refresh")  # 409 refresh_in_progress
        await call("POST", f"/v1/runs/{slow_run['id']}/cancel")
    finally:
        await api.wait_run(slow_run["id"], timeout=60)
        assert await wait_for_abandoned_statements() == []
    # A failing connection test (missing schema) and deletes.
    bad, _ = await call(
        "POST", "/v1/sources", {"name": "Nowhere", "credential_id": cred["id"], "scope": "nope"}
    )
    await call("POST", f"/v1/sources/{bad['id']}/test")  # 422 scope_not_found
    await call("GET", f"/v1/sources/{bad['id']}")  # last_error in the documented shape
    await call("DELETE", f"/v1/sources/{bad['id']}")
    await call("DELETE", f"/v1/segments/{slow['id']}")
    statuses = {status for _, _, status in c.seen}
    assert {200, 201, 202, 204, 400, 401, 404, 409, 422} <= statuses, statuses


async def test_every_refusal_in_the_redteam_uses_a_documented_code(api: Api) -> None:
    """Codes the services can answer with all appear in the README with the API's status."""
    from api.errors import STATUS_BY_CODE

    documented = readme_statuses()
    undocumented = {
        code: status
        for code, status in STATUS_BY_CODE.items()
        if code not in documented or (documented[code] != {422} and status not in documented[code])
    }
    # worker_lost is a run outcome (never an HTTP answer): the README shows "—".
    undocumented.pop("worker_lost", None)
    assert undocumented == {}, undocumented
    source_id = await connected_source(api)
    assert source_id
