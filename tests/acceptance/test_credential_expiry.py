"""Secrets that expire (Fabric service principals), over HTTP against the TDS peer.

The credential records the expiry date the user gives and every read warns 30 days before it
(and once it has passed); kinds whose secrets do not expire refuse a date. A refresh whose
secret has expired since the source was tested fails ``auth_failed`` "service principal secret
expired": the peer's token endpoint answers AADSTS7000222 for its expired client, as Entra does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.acceptance.conftest import Api
from tests.conformance.target import ConformanceTarget
from tests.conformance.targets.fabric import fabric_target  # noqa: F401
from tests.peers.tds.launch import CLIENTS
from zerocopy.state.models import Credential

pytestmark = pytest.mark.anyio

SEGMENT_SQL = "SELECT TOP 1000 external_user_id FROM users WHERE [plan] <> 'free'"


def fabric_body(target: ConformanceTarget, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "fabric",
        "settings": dict(target.config.settings),
        "secrets": dict(target.config.secrets),
        **extra,
    }


def in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def test_expiry_is_recorded_and_warned(api: Api) -> None:
    settings = {
        "server": "localhost,1433",
        "database": "wh",
        "tenant_id": "t",
        "client_id": "c",
    }
    body = {"kind": "fabric", "settings": settings, "secrets": {"client_secret": "s" * 20}}
    # Far away: the date is returned, nothing to warn about.
    resp = await api.post("/v1/credentials", {**body, "name": "far", "expires_at": in_days(200)})
    assert resp.status_code == 201, resp.text
    far = resp.json()
    assert far["expires_at"] is not None and far["warnings"] == []

    # Within 30 days: "expires in N days", on create and on every read.
    resp = await api.post("/v1/credentials", {**body, "name": "soon", "expires_at": in_days(10)})
    assert resp.status_code == 201, resp.text
    soon = resp.json()
    assert len(soon["warnings"]) == 1 and "expires in 10 days" in soon["warnings"][0]
    resp = await api.get(f"/v1/credentials/{soon['id']}")
    assert resp.json()["warnings"] == soon["warnings"]
    listed = {c["name"]: c for c in (await api.get("/v1/credentials")).json()}
    assert listed["soon"]["warnings"] == soon["warnings"] and listed["far"]["warnings"] == []

    # Past: "expired".
    resp = await api.patch(f"/v1/credentials/{far['id']}", {"expires_at": in_days(-1)})
    assert resp.status_code == 200, resp.text
    assert "expired on" in resp.json()["warnings"][0]

    # A naive date is UTC; a new secret without a date clears the old one (it was the old
    # secret's) and the read asks for the new date.
    naive = (datetime.now(UTC) + timedelta(days=5)).replace(tzinfo=None).isoformat()
    resp = await api.patch(f"/v1/credentials/{far['id']}", {"expires_at": naive})
    assert "expires in 5 days" in resp.json()["warnings"][0]
    resp = await api.patch(f"/v1/credentials/{far['id']}", {"secrets": {"client_secret": "n" * 20}})
    assert resp.json()["expires_at"] is None
    assert "expiry date is not recorded" in resp.json()["warnings"][0]

    # A kind whose secrets do not expire refuses a date.
    resp = await api.post(
        "/v1/credentials",
        {
            "name": "duck",
            "kind": "duckdb",
            "settings": {"path": str(api.warehouse)},
            "expires_at": in_days(10),
        },
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "validation_error"
    assert resp.json()["error"]["details"]["field"] == "expires_at"


@pytest.mark.xdist_group("fabric")
async def test_refresh_with_an_expired_secret_says_so(
    api: Api,
    fabric_target: ConformanceTarget,  # noqa: F811 (the fixture imported above)
) -> None:
    resp = await api.post(
        "/v1/credentials", fabric_body(fabric_target, "sp", expires_at=in_days(400))
    )
    assert resp.status_code == 201, resp.text
    cred_id = resp.json()["id"]
    resp = await api.post(
        "/v1/sources", {"name": "fabric", "credential_id": cred_id, "scope": "marketing"}
    )
    source_id = resp.json()["id"]
    resp = await api.post(f"/v1/sources/{source_id}/test")
    assert resp.status_code == 200, resp.text
    resp = await api.post(
        "/v1/segments", {"name": "paying", "source_id": source_id, "sql": SEGMENT_SQL}
    )
    assert resp.status_code == 201, resp.text
    segment_id = resp.json()["id"]

    # The secret expires after the source was tested: swap in the peer's expired client
    # behind the API's back (a PATCH would put the source back to draft, as it should).
    runtime = api.app.state.runtime
    expired_secret = CLIENTS["app-expired"][0]
    async with runtime.db.transaction() as session:
        cred = await session.get(Credential, cred_id)
        assert cred is not None
        cred.settings = {**cred.settings, "client_id": "app-expired"}
        cred.secret_ciphertext = runtime.secret_box.encrypt({"client_secret": expired_secret})

    resp = await api.post(f"/v1/segments/{segment_id}/refresh")
    assert resp.status_code == 202, resp.text
    run = await api.wait_run(resp.json()["id"], timeout=60)
    assert run["status"] == "failed", run
    assert run["error"]["code"] == "auth_failed"
    assert run["error"]["message"].startswith("service principal secret expired"), run
    assert expired_secret not in str(run)

    # The connection test says the same, and the source records it.
    resp = await api.post(f"/v1/sources/{source_id}/test")
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "auth_failed"
    assert "service principal secret expired" in resp.json()["error"]["message"]
    assert expired_secret not in resp.text
