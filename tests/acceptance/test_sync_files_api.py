"""A file-storage sync on moto's S3 over HTTP: create / test / activate / run / row errors."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from tests.acceptance.conftest import Api
from tests.peers.moto.fixtures import S3Peer, s3_peer
from zerocopy.state.models import Credential

pytestmark = pytest.mark.anyio

__all__ = ["s3_peer"]


async def s3_credential(api: Api, peer: S3Peer) -> str:
    """The object-storage credential, created through ``POST /v1/credentials`` (kind ``s3``)."""
    resp = await api.post(
        "/v1/credentials",
        json={
            "name": "bucket",
            "kind": "s3",
            "settings": {"endpoint_url": peer.endpoint_url, "region": peer.region},
            "secrets": {
                "access_key_id": peer.access_key_id,
                "secret_access_key": peer.secret_access_key,
            },
        },
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["kind"] == "s3" and body["secret_fields"] == ["access_key_id", "secret_access_key"]
    assert peer.secret_access_key not in resp.text
    cred_id: str = body["id"]
    return cred_id


async def test_file_sync_over_http(api: Api, s3_peer: S3Peer) -> None:
    bucket = f"zc-{uuid.uuid4().hex[:10]}"
    client = s3_peer.client()
    client.create_bucket(Bucket=bucket)
    client.put_object(
        Bucket=bucket,
        Key="in/a.jsonl",
        Body=b'{"external_id": "f1", "payload": {"plan": "pro"}}\n'
        b'{"email": "f2@example.com", "payload": {"plan": "free"}}\n'
        b'{"payload": {"plan": "none"}}\n',
    )
    client.put_object(Bucket=bucket, Key="in/bad.jsonl", Body=b'{"external_id": "x"\n')
    cred_id = await s3_credential(api, s3_peer)
    resp = await api.post(
        "/v1/syncs",
        json={
            "name": "files",
            "data_type": "user_attributes",
            "credential_id": cred_id,
            "source_settings": {"bucket": bucket, "prefix": "in/"},
        },
    )
    assert resp.status_code == 201, resp.text
    sync = resp.json()
    test = await api.post(f"/v1/syncs/{sync['id']}/test")
    assert test.status_code == 200, test.text
    assert [p["code"] for p in test.json()["preview"]] == [None, None, "no_identifier"]
    assert (await api.post(f"/v1/syncs/{sync['id']}/activate")).status_code == 200
    resp = await api.post(f"/v1/syncs/{sync['id']}/runs", params={"wait": "true"})
    assert resp.status_code == 200, resp.text
    run = resp.json()
    assert (run["status"], run["rows_delivered"]) == ("partial_success", 2), run
    rows = (await api.get(f"/v1/sync-runs/{run['id']}/rows")).json()
    assert sorted(r["code"] for r in rows) == ["file_invalid", "no_identifier"]
    prof = await api.get("/v1/profiles", params={"email": "f2@example.com"})
    assert prof.status_code == 200 and prof.json()["attributes"] == {"plan": "free"}
    # Each file once: a second run has nothing to do.
    again = (await api.post(f"/v1/syncs/{sync['id']}/runs", params={"wait": "true"})).json()
    assert (again["status"], again["rows_read"], again["rows_delivered"]) == ("success", 0, 0)
    # The credential is in use by the sync.
    resp = await api.delete(f"/v1/credentials/{cred_id}")
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "credential_in_use"
    async with api.app.state.runtime.db.session() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(Credential)) == 1


async def test_s3_credential_fields_are_checked(api: Api) -> None:
    body = {"name": "s3", "kind": "s3", "settings": {"region": "eu-west-1"}}
    secret = "zc-s3-secret-not-echoed-1234"
    refusals = [
        ({"secrets": {"access_key_id": "AKIA1"}}, "secret_access_key"),
        ({"secrets": {"access_key_id": "AKIA1", "secret_access_key": secret, "x": "y"}}, "x"),
        (
            {
                "settings": {"secret_access_key": secret},
                "secrets": {"access_key_id": "AKIA1", "secret_access_key": secret},
            },
            "secret_access_key",
        ),
        (
            {
                "settings": {"endpoint_url": "ftp://x"},
                "secrets": {"access_key_id": "A", "secret_access_key": secret},
            },
            "endpoint_url",
        ),
        (
            {
                "settings": {"bucket": "Not_A_Bucket"},
                "secrets": {"access_key_id": "A", "secret_access_key": secret},
            },
            "bucket",
        ),
        (
            {
                "settings": {"warehouse": "x"},
                "secrets": {"access_key_id": "A", "secret_access_key": secret},
            },
            "warehouse",
        ),
    ]
    for extra, field in refusals:
        resp = await api.post("/v1/credentials", json={**body, **extra})
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["code"] == "invalid_credential", resp.text
        assert resp.json()["error"]["details"]["field"] == field, resp.text
        assert secret not in resp.text

    good = {"access_key_id": "AKIA1", "secret_access_key": secret, "session_token": "tok-123456"}
    resp = await api.post(
        "/v1/credentials",
        json={**body, "settings": {"bucket": "zc-files", "region": "eu-west-1"}, "secrets": good},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["secret_fields"] == sorted(good) and secret not in resp.text
    assert resp.json()["warnings"] == []
    # Not a warehouse: a source refuses it, naming what it is for.
    resp = await api.post(
        "/v1/sources", json={"name": "s", "credential_id": resp.json()["id"], "scope": "x"}
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "credential_kind_mismatch"
    assert "file-storage syncs" in resp.json()["error"]["message"]
    # Unknown kinds list the s3 kind with the warehouses.
    resp = await api.post("/v1/credentials", json={**body, "kind": "ftp"})
    assert resp.status_code == 400 and "s3" in resp.json()["error"]["message"], resp.text
