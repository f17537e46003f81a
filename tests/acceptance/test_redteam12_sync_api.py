"""Red-team round 12: what a sync definition says must be what it does.

* A file-storage sync's bucket (in ``source_settings`` or its credential) is checked against
  S3's naming rules when the sync is created: a malformed or missing bucket was accepted and
  only failed at the first test or run. Whether the bucket exists stays the test's job.
* ``source_id`` and ``credential_id`` together: the credential was silently ignored (the
  source's own credential reads the table). Refused, like ``source_settings`` on a warehouse
  sync and a ``table`` on a file sync (both were stored and never used).
* A schedule's ``"time"`` is ``H:MM`` or ``HH:MM`` in ASCII digits, stored as hour and
  minute (``"9:00"`` is 09:00; re-sending it as ``"09:00"`` is the same schedule and does not
  move the plan); a time in Arabic-Indic digits was read as 09:00 and is refused, as is a
  sync frequency written with them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.acceptance.conftest import Api
from tests.acceptance.redteam import assert_refused as refused
from tests.acceptance.redteam import state_url  # noqa: F401  (SQLite state: rules only)
from tests.acceptance.test_sync_api import duckdb_source

pytestmark = pytest.mark.anyio


async def s3_credential(api: Api, **settings: Any) -> str:
    resp = await api.post(
        "/v1/credentials",
        json={
            "name": f"files-{len(settings)}-{settings.get('bucket', '')}",
            "kind": "s3",
            "settings": {"region": "eu-west-1", **settings},
            "secrets": {"access_key_id": "AKIA1", "secret_access_key": "s3-canary-12"},
        },
    )
    assert resp.status_code == 201, resp.text
    cred_id: str = resp.json()["id"]
    return cred_id


@pytest.mark.parametrize(
    "bucket",
    [
        "My_Bucket",  # upper case, underscore
        "ab",  # too short
        "a" * 64,  # too long
        "-zc-in",  # must start with a letter or digit
        "zc-in-",  # and end with one
        "zc..in",  # two dots
        "192.168.5.4",  # an IP address
        "xn--zc-in",  # reserved prefix
        "zc-in-s3alias",  # reserved suffix
        "zc in",  # blank
        "s3://zc-in",  # a URL is not a bucket name
    ],
)
async def test_a_malformed_bucket_is_refused_at_create(api: Api, bucket: str) -> None:
    cred = await s3_credential(api)
    body = {"name": "files", "data_type": "custom_events", "credential_id": cred}
    resp = await api.post("/v1/syncs", json={**body, "source_settings": {"bucket": bucket}})
    err = refused(resp, 400, "validation_error", "source_settings")
    assert err["details"]["setting"] == "bucket", err
    assert "bucket" in err["message"] and "s3-canary-12" not in resp.text
    assert (await api.get("/v1/syncs")).json() == []  # nothing written


async def test_a_file_sync_needs_a_bucket_from_itself_or_its_credential(api: Api) -> None:
    cred = await s3_credential(api)
    body = {"name": "files", "data_type": "custom_events", "credential_id": cred}
    for settings in (None, {}, {"prefix": "in/"}, {"bucket": ""}, {"bucket": None}):
        resp = await api.post("/v1/syncs", json={**body, "source_settings": settings})
        err = refused(resp, 400, "validation_error", "source_settings")
        assert err["details"]["setting"] == "bucket", (settings, err)
    # A credential that names the bucket is enough (the sync's own bucket would win).
    named = await s3_credential(api, bucket="zc-from-credential")
    resp = await api.post("/v1/syncs", json={**body, "credential_id": named})
    assert resp.status_code == 201, resp.text
    # A well-formed name is enough at create: whether it exists is for the test.
    resp = await api.post(
        "/v1/syncs",
        json={**body, "name": "f2", "source_settings": {"bucket": "zc.in-2026", "prefix": "a/"}},
    )
    assert resp.status_code == 201, resp.text


async def test_file_sync_settings_are_checked_by_name(api: Api) -> None:
    cred = await s3_credential(api)
    body = {"name": "files", "data_type": "custom_events", "credential_id": cred}
    for settings, setting in (
        ({"bucket": "zc-in", "buckt": "x"}, "buckt"),  # a typo was ignored
        ({"bucket": "zc-in", "prefix": "in/\x01"}, "prefix"),
        ({"bucket": "zc-in", "prefix": 5}, "prefix"),
        ({"bucket": ["zc-in"]}, "bucket"),
        ({"bucket": "zc-in", "format": "parquet"}, "format"),
        ({"bucket": "zc-in", "endpoint_url": "ftp://s3.local"}, "endpoint_url"),
    ):
        resp = await api.post("/v1/syncs", json={**body, "source_settings": settings})
        err = refused(resp, 400, "validation_error", "source_settings")
        assert err["details"]["setting"] == setting, (settings, err)
        assert setting in err["message"], err
    assert (await api.get("/v1/syncs")).json() == []


async def test_source_and_credential_together_are_refused(api: Api) -> None:
    """The credential was dropped without a word: a user who meant a file sync got a
    warehouse sync, one who meant another login got the source's."""
    source_id = await duckdb_source(api)
    cred = await s3_credential(api)
    source_cred = (await api.get(f"/v1/sources/{source_id}")).json()["credential_id"]
    body = {"name": "attrs", "data_type": "user_attributes", "source_id": source_id}
    body["table"] = "users_attributes_sync"
    for other in (cred, source_cred):  # even the source's own credential: say one thing
        resp = await api.post("/v1/syncs", json={**body, "credential_id": other})
        err = refused(resp, 400, "validation_error", "credential_id")
        assert "source_id" in err["message"], err
    resp = await api.post("/v1/syncs", json={**body, "source_settings": {"bucket": "zc-in"}})
    refused(resp, 400, "validation_error", "source_settings")
    assert (await api.get("/v1/syncs")).json() == []
    resp = await api.post("/v1/syncs", json={**body, "source_settings": {}})
    assert resp.status_code == 201, resp.text  # an empty object says nothing
    assert resp.json()["credential_id"] is None and resp.json()["source_id"] == source_id


async def test_a_file_sync_refuses_a_table(api: Api) -> None:
    cred = await s3_credential(api)
    body = {
        "name": "files",
        "data_type": "custom_events",
        "credential_id": cred,
        "source_settings": {"bucket": "zc-in"},
    }
    resp = await api.post("/v1/syncs", json={**body, "table": "events"})
    refused(resp, 400, "validation_error", "table")
    resp = await api.post("/v1/syncs", json=body)
    assert resp.status_code == 201 and resp.json()["table"] is None, resp.text


async def _segment(api: Api) -> str:
    source_id = await duckdb_source(api)
    resp = await api.post(
        "/v1/segments",
        json={"name": "all", "source_id": source_id, "sql": "SELECT external_user_id FROM users"},
    )
    assert resp.status_code == 201, resp.text
    segment_id: str = resp.json()["id"]
    return segment_id


async def test_schedule_time_one_digit_hour_is_that_hour_and_the_same_plan(api: Api) -> None:
    base = f"/v1/segments/{await _segment(api)}/schedule"
    resp = await api.client.put(
        base, json={"schedule": {"frequency": "daily", "time": "9:00"}}, headers=api.auth
    )
    assert resp.status_code == 200, resp.text
    first = resp.json()
    assert first["schedule"] == {"frequency": "daily", "minute": 0, "hour": 9}
    assert all(t[11:19] == "09:00:00" for t in first["next_runs"]), first["next_runs"]
    for same in ({"time": "09:00"}, {"hour": 9}, {"time": " 9:00 "}):
        resp = await api.client.put(
            base, json={"schedule": {"frequency": "daily", **same}}, headers=api.auth
        )
        assert resp.status_code == 200, resp.text
        again = resp.json()
        assert (again["schedule"], again["next_runs"]) == (first["schedule"], first["next_runs"])
    resp = await api.client.put(
        base,
        json={"schedule": {"frequency": "monthly", "day": 31, "time": "6:05"}},
        headers=api.auth,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["schedule"] == {"frequency": "monthly", "minute": 5, "hour": 6, "day": 31}


@pytest.mark.parametrize(
    ("time", "reason"),
    [
        ("\u0669:\u0660\u0660", "invalid_value"),  # Arabic-Indic 9:00
        ("\uff19:00", "invalid_value"),  # full-width 9
        ("9:00:00", "invalid_value"),
        ("9h00", "invalid_value"),
        ("9:0", "invalid_value"),
        ("24:00", "out_of_range"),
        ("9:60", "out_of_range"),
        (900, "invalid_type"),
    ],
)
async def test_schedule_time_other_spellings_are_refused(api: Api, time: Any, reason: str) -> None:
    base = f"/v1/segments/{await _segment(api)}/schedule"
    resp = await api.client.put(
        base, json={"schedule": {"frequency": "daily", "time": time}}, headers=api.auth
    )
    err = refused(resp, 400, "validation_error", "time")
    assert err["details"]["reason"] == reason, err
    view = (await api.get(base)).json()
    assert view["status"] == "manual", view  # nothing planned


async def test_sync_frequency_in_other_digits_is_refused(api: Api) -> None:
    source_id = await duckdb_source(api)
    body = {
        "name": "attrs",
        "data_type": "user_attributes",
        "source_id": source_id,
        "table": "users_attributes_sync",
    }
    for frequency in ("\u0661h", "\u0663\u0660m", "every \u0661 hour"):
        resp = await api.post("/v1/syncs", json={**body, "frequency": frequency})
        refused(resp, 400, "validation_error", "frequency")
    resp = await api.post("/v1/syncs", json={**body, "frequency": "every 1 hour"})
    assert resp.status_code == 201 and resp.json()["frequency"] == "1h", resp.text


async def test_a_file_sync_cannot_be_patched_into_a_warehouse_sync(api: Api) -> None:
    """It kept its s3 credential (``credential_in_use``) and file records next to a source,
    and with ``source_id`` alone it had no table at all."""
    source_id = await duckdb_source(api)
    cred = await s3_credential(api)
    resp = await api.post(
        "/v1/syncs",
        json={
            "name": "files",
            "data_type": "user_attributes",
            "credential_id": cred,
            "source_settings": {"bucket": "zc-in"},
        },
    )
    assert resp.status_code == 201, resp.text
    before = resp.json()
    for body in (
        {"source_id": source_id},
        {"source_id": source_id, "table": "users_attributes_sync"},
    ):
        resp = await api.patch(f"/v1/syncs/{before['id']}", json=body)
        refused(resp, 400, "validation_error", "source_id")
        assert (await api.get(f"/v1/syncs/{before['id']}")).json() == before
    resp = await api.delete(f"/v1/credentials/{cred}")
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "credential_in_use"
