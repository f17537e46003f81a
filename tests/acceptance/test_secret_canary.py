"""No secret ever reaches a log line or an API response: canaries seeded through the API.

For each warehouse kind, canary secrets (passwords, generated private keys, access tokens,
service-account JSON keys, Fabric client secrets, the workspace API key) go in through the API; the test then drives
connection tests, validation, refreshes and rotations, including failing paths (a wrong
password or token → ``auth_failed``, a closed port → ``unreachable``, a refused password field
→ ``invalid_credential``). Everything logged is captured (structlog at DEBUG into a buffer,
and the stdlib root logger at DEBUG, which is where the drivers log) together with every
response body, and no canary (nor any line of a private key's PEM/OpenSSH body) may appear.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from tests.acceptance.conftest import Api
from tests.acceptance.test_warehouse_flows import credential_body, segment_flow, source_flow
from tests.conformance.target import ConformanceTarget
from tests.conformance.targets.bigquery import bigquery_target  # noqa: F401
from tests.conformance.targets.databricks import databricks_target  # noqa: F401
from tests.conformance.targets.fabric import fabric_target  # noqa: F401
from tests.conformance.targets.postgres import postgres_target  # noqa: F401
from tests.conformance.targets.redshift import redshift_target  # noqa: F401
from tests.conformance.targets.snowflake import snowflake_target  # noqa: F401
from tests.peers.tds.launch import CLIENTS
from tests.support import free_port
from zerocopy.logging import configure_logging
from zerocopy.services import workspaces
from zerocopy.settings import load_settings
from zerocopy.state.models import Credential

pytestmark = pytest.mark.anyio


def canary(label: str) -> str:
    """A unique secret-looking value that must never be seen again."""
    return f"zc-canary-{label}-{uuid.uuid4().hex}"


def key_lines(text: str) -> list[str]:
    """The body lines of a PEM/OpenSSH private key (headers are not secret)."""
    lines = [ln.strip() for ln in text.replace("\\n", "\n").splitlines()]
    return [ln for ln in lines if len(ln) >= 16 and not ln.startswith("-----")]


@dataclass
class RecordingApi(Api):
    """The API client, keeping every response body it received."""

    bodies: list[str] = field(default_factory=list)

    def _keep(self, resp: httpx.Response) -> httpx.Response:
        self.bodies.append(f"{resp.request.method} {resp.request.url.path} -> {resp.text}")
        return resp

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return self._keep(await super().get(path, **kw))

    async def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self._keep(await super().post(path, json, **kw))

    async def patch(self, path: str, json: Any) -> httpx.Response:
        return self._keep(await super().patch(path, json))

    async def delete(self, path: str) -> httpx.Response:
        return self._keep(await super().delete(path))

    async def stored_secrets(self, credential_id: str) -> dict[str, str]:
        """What the store holds for a credential (decrypted here, in the test, only)."""
        runtime = self.app.state.runtime
        async with runtime.db.session() as session:
            cred = await session.get(Credential, credential_id)
            assert cred is not None
            return dict(runtime.secret_box.decrypt(cred.secret_ciphertext))


@dataclass
class Captured:
    structlog: io.StringIO
    stdlib: io.StringIO

    def text(self) -> str:
        return self.structlog.getvalue() + "\n" + self.stdlib.getvalue()


@pytest.fixture
def captured_logs() -> Iterator[Captured]:
    """Every stdlib log record at DEBUG (drivers, asyncio, httpx …), with tracebacks."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield Captured(io.StringIO(), buf)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        configure_logging("warning", "json")


@pytest.fixture
async def api(tmp_path: Path, captured_logs: Captured) -> AsyncIterator[RecordingApi]:
    settings = load_settings(
        {
            "ZEROCOPY_DATA_DIR": str(tmp_path / "data"),
            "ZEROCOPY_DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite3'}",
            "ZEROCOPY_LOG_LEVEL": "debug",
        }
    )
    app = create_app(settings)
    # The app's own structlog setup, at DEBUG, writing into the capture buffer.
    configure_logging("debug", "json", stream=captured_logs.structlog)
    async with AsyncTestClient(app) as client:
        async with app.state.runtime.db.session() as session:
            ws, key = await workspaces.create_workspace(session, name="Canary")
        yield RecordingApi(client, key, ws.id, settings, tmp_path / "unused.duckdb", app)


def assert_error(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code, resp.text


async def flow(api: RecordingApi, target: ConformanceTarget, body: dict[str, Any]) -> str:
    """The whole happy path; returns the credential id."""
    resp = await api.post("/v1/credentials", body)
    assert resp.status_code == 201, resp.text
    cred_id: str = resp.json()["id"]
    check = await source_flow(api, target, cred_id)
    await segment_flow(api, target, check["source_id"])
    await api.get(f"/v1/credentials/{cred_id}")
    await api.get("/v1/credentials")
    return cred_id


async def failing_test(
    api: RecordingApi, target: ConformanceTarget, body: dict[str, Any], status: int, code: str
) -> None:
    """A credential the warehouse refuses: the connection test fails with ``code``."""
    scope = str(body.pop("scope", target.config.scope))
    resp = await api.post("/v1/credentials", body)
    assert resp.status_code == 201, resp.text
    resp = await api.post(
        "/v1/sources",
        {
            "name": f"broken {uuid.uuid4().hex[:6]}",
            "credential_id": resp.json()["id"],
            "scope": scope,
        },
    )
    assert resp.status_code == 201, resp.text
    source_id = resp.json()["id"]
    assert_error(await api.post(f"/v1/sources/{source_id}/test"), status, code)
    resp = await api.get(f"/v1/sources/{source_id}")
    assert resp.json()["last_error"]["code"] == code


async def pglike_scenario(api: RecordingApi, target: ConformanceTarget) -> list[str]:
    good, bad, stale = canary("pw-good"), canary("pw-bad"), canary("pw-stale")
    body = credential_body(target, "good")
    body["secrets"] = {"password": good}
    cred_id = await flow(api, target, body)

    # A wrong password on the password-checking cluster: auth_failed.
    broken = target.broken["auth_failed"]
    await failing_test(
        api,
        target,
        {
            "name": "wrong password",
            "kind": target.kind,
            "settings": dict(broken.settings),
            "secrets": {"password": bad},
            "scope": str(broken.scope),
        },
        422,
        "auth_failed",
    )

    # The good credential moved onto that cluster with another wrong password: its source
    # fails the test, and refreshes of its segment are refused until it passes again.
    resp = await api.patch(
        f"/v1/credentials/{cred_id}",
        {"settings": dict(broken.settings), "secrets": {"password": stale}},
    )
    assert resp.status_code == 200, resp.text
    sources = (await api.get("/v1/sources")).json()
    source = next(s for s in sources if s["credential_id"] == cred_id)
    assert_error(await api.post(f"/v1/sources/{source['id']}/test"), 422, "auth_failed")
    segments = (await api.get("/v1/segments")).json()
    resp = await api.post(f"/v1/segments/{segments[0]['id']}/refresh")
    assert resp.status_code in (202, 409), resp.text
    if resp.status_code == 202:
        run = await api.wait_run(resp.json()["id"], timeout=60)
        assert run["status"] == "failed", run

    # An SSH tunnel to a closed bastion port: the generated key is stored, the test fails.
    tunnelled = credential_body(
        target, "tunnelled", ssh_tunnel={"host": "127.0.0.1", "port": free_port(), "user": "zc"}
    )
    tunnelled["secrets"] = {"password": canary("pw-tunnel")}
    secrets_sent = [good, bad, stale, tunnelled["secrets"]["password"]]
    resp = await api.post("/v1/credentials", tunnelled)
    assert resp.status_code == 201, resp.text
    ssh_key = (await api.stored_secrets(resp.json()["id"]))["ssh_private_key"]
    resp = await api.post(
        "/v1/sources",
        {"name": "via ssh", "credential_id": resp.json()["id"], "scope": "mart"},
    )
    assert_error(await api.post(f"/v1/sources/{resp.json()['id']}/test"), 502, "unreachable")
    return [*secrets_sent, *key_lines(ssh_key)]


async def snowflake_scenario(api: RecordingApi, target: ConformanceTarget) -> list[str]:
    refused = canary("sf-password")
    body = credential_body(target, "snowflake")
    resp = await api.post("/v1/credentials", dict(body, secrets={"password": refused}))
    assert_error(resp, 422, "invalid_credential")
    resp = await api.post(
        "/v1/credentials",
        dict(body, name="sent key", secrets={"private_key": f"-----BEGIN {refused}"}),
    )
    assert_error(resp, 422, "invalid_credential")

    cred_id = await flow(api, target, body)
    keys = [(await api.stored_secrets(cred_id))["private_key"]]
    # A rotation: the pending key is stored next to the current one, then promoted.
    resp = await api.post(f"/v1/credentials/{cred_id}/key/rotation")
    assert resp.status_code == 200, resp.text
    keys.append((await api.stored_secrets(cred_id))["pending_private_key"])
    resp = await api.post(f"/v1/credentials/{cred_id}/key/rotation/test")
    assert resp.status_code == 200, resp.text
    await api.get(f"/v1/credentials/{cred_id}/key")
    await api.get(f"/v1/credentials/{cred_id}/setup-sql")
    resp = await api.post(f"/v1/credentials/{cred_id}/key/rotation/finish")
    assert resp.status_code == 200, resp.text

    # Unreachable account endpoint (closed port): the test fails, the key stays hidden.
    closed = target.broken["unreachable"]
    resp = await api.post(
        "/v1/credentials",
        {"name": "closed", "kind": "snowflake", "settings": dict(closed.settings)},
    )
    assert resp.status_code == 201, resp.text
    keys.append((await api.stored_secrets(resp.json()["id"]))["private_key"])
    resp = await api.post(
        "/v1/sources",
        {"name": "closed", "credential_id": resp.json()["id"], "scope": str(closed.scope)},
    )
    assert_error(await api.post(f"/v1/sources/{resp.json()['id']}/test"), 502, "unreachable")
    return [refused, *(line for key in keys for line in key_lines(key))]


def _service_account_canaries(key_json: str) -> list[str]:
    data = json.loads(key_json)
    return [str(data["private_key_id"]), *key_lines(str(data["private_key"]))]


async def bigquery_scenario(api: RecordingApi, target: ConformanceTarget) -> list[str]:
    good = target.config.secrets["service_account_json"]
    stranger = target.broken["auth_failed"].secrets["service_account_json"]
    await flow(api, target, credential_body(target, "sa"))
    await failing_test(
        api,
        target,
        {
            "name": "unknown key",
            "kind": "bigquery",
            "settings": dict(target.config.settings),
            "secrets": {"service_account_json": stranger},
        },
        422,
        "auth_failed",
    )
    # A malformed key is refused at upload without echoing it.
    bogus = canary("sa-private")
    resp = await api.post(
        "/v1/credentials",
        {
            "name": "bogus",
            "kind": "bigquery",
            "settings": dict(target.config.settings),
            "secrets": {
                "service_account_json": json.dumps(
                    {"type": "service_account", "private_key": bogus, "project_id": "p"}
                )
            },
        },
    )
    assert_error(resp, 422, "invalid_credential")
    return [*_service_account_canaries(good), *_service_account_canaries(stranger), bogus]


async def databricks_scenario(api: RecordingApi, target: ConformanceTarget) -> list[str]:
    good = target.config.secrets["access_token"]
    bad = canary("dapi")
    await flow(api, target, credential_body(target, "token"))
    body = credential_body(target, "wrong token")
    body["secrets"] = {"access_token": bad}
    await failing_test(api, target, body, 422, "auth_failed")
    return [good, bad]


FABRIC_SEGMENT_SQL = "SELECT TOP 1000 external_user_id FROM users WHERE [plan] <> 'free'"


async def fabric_scenario(api: RecordingApi, target: ConformanceTarget) -> list[str]:
    """Service-principal client secrets: good, wrong, expired, misplaced, replaced."""
    good = target.config.secrets["client_secret"]
    body = credential_body(target, "sp")
    body["expires_at"] = "2099-01-01T00:00:00Z"
    resp = await api.post("/v1/credentials", body)
    assert resp.status_code == 201, resp.text
    cred_id = resp.json()["id"]
    resp = await api.post(
        "/v1/sources",
        {"name": "fabric", "credential_id": cred_id, "scope": str(target.config.scope)},
    )
    source_id = resp.json()["id"]
    resp = await api.post(f"/v1/sources/{source_id}/test")
    assert resp.status_code == 200, resp.text
    resp = await api.post(
        "/v1/segments/validate", {"source_id": source_id, "sql": FABRIC_SEGMENT_SQL}
    )
    assert resp.json()["valid"] is True, resp.text
    resp = await api.post(
        "/v1/segments", {"name": "paying", "source_id": source_id, "sql": FABRIC_SEGMENT_SQL}
    )
    resp = await api.post(f"/v1/segments/{resp.json()['id']}/refresh")
    assert resp.status_code == 202, resp.text
    run = await api.wait_run(resp.json()["id"], timeout=120)
    assert run["status"] == "succeeded", run
    await api.get(f"/v1/credentials/{cred_id}")
    await api.get("/v1/credentials")

    # A wrong secret: Entra's AADSTS7000215 → auth_failed.
    wrong = canary("fabric-secret")
    await failing_test(
        api,
        target,
        {
            "name": "wrong secret",
            "kind": "fabric",
            "settings": dict(target.config.settings),
            "secrets": {"client_secret": wrong},
        },
        422,
        "auth_failed",
    )
    # An expired secret (the peer's expired client, AADSTS7000222), its date in the past.
    expired = CLIENTS["app-expired"][0]
    await failing_test(
        api,
        target,
        {
            "name": "expired secret",
            "kind": "fabric",
            "settings": {**target.config.settings, "client_id": "app-expired"},
            "secrets": {"client_secret": expired},
            "expires_at": "2020-01-01T00:00:00Z",
        },
        422,
        "auth_failed",
    )
    # A secret sent as a setting is refused without echoing it.
    misplaced = canary("fabric-in-settings")
    resp = await api.post(
        "/v1/credentials",
        {
            "name": "misplaced",
            "kind": "fabric",
            "settings": {**target.config.settings, "client_secret": misplaced},
            "secrets": {"client_secret": canary("fabric-unused")},
        },
    )
    assert_error(resp, 422, "invalid_credential")
    # The good credential's secret replaced by a wrong one: the source's test fails.
    replaced = canary("fabric-replaced")
    resp = await api.patch(f"/v1/credentials/{cred_id}", {"secrets": {"client_secret": replaced}})
    assert resp.status_code == 200, resp.text
    assert_error(await api.post(f"/v1/sources/{source_id}/test"), 422, "auth_failed")
    return [good, wrong, expired, misplaced, replaced]


SCENARIOS = {
    "postgres": pglike_scenario,
    "redshift": pglike_scenario,
    "snowflake": snowflake_scenario,
    "bigquery": bigquery_scenario,
    "databricks": databricks_scenario,
    "fabric": fabric_scenario,
}


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.xdist_group("postgres")]),
        pytest.param("redshift", marks=[pytest.mark.postgres, pytest.mark.xdist_group("redshift")]),
        *(
            pytest.param(k, marks=pytest.mark.xdist_group(k))
            for k in ("snowflake", "bigquery", "databricks", "fabric")
        ),
    ],
)
async def test_no_canary_in_logs_or_responses(
    api: RecordingApi, captured_logs: Captured, kind: str, request: pytest.FixtureRequest
) -> None:
    target: ConformanceTarget = request.getfixturevalue(f"{kind}_target")
    canaries = await SCENARIOS[kind](api, target)
    canaries.append(api.key)  # the workspace API key is a secret too
    logs = captured_logs.text()
    # The capture works: the app and the drivers did log (at DEBUG) during the scenario.
    assert '"event"' in captured_logs.structlog.getvalue()
    assert captured_logs.stdlib.getvalue().strip()
    assert len(canaries) >= 3 and all(len(c) >= 16 for c in canaries)
    for secret in canaries:
        for where, text in [("logs", logs), *(("response", body) for body in api.bodies)]:
            at = text.find(secret)
            assert at < 0, f"a secret leaked into the {where}: …{text[max(0, at - 200) : at]}"
