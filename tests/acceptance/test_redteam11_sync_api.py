"""Red-team round 11: sync definitions over HTTP and the CLI's error body.

A refused request changes nothing (the sync is read back after each refusal), and the CLI
prints the API's error body exactly (all five keys).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.acceptance.conftest import Api
from tests.acceptance.redteam import ERROR_KEYS, assert_refused
from tests.acceptance.test_sync_api import duckdb_source
from tests.acceptance.test_sync_cli import setup_workspace

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
ZEROCOPY = str(ROOT / ".venv" / "bin" / "zerocopy")


async def _sync(api: Api, **extra: Any) -> dict[str, Any]:
    source_id = await duckdb_source(api)
    body = {
        "name": "attrs",
        "data_type": "user_attributes",
        "source_id": source_id,
        "table": "users_attributes_sync",
        **extra,
    }
    resp = await api.post("/v1/syncs", json=body)
    assert resp.status_code == 201, resp.text
    sync: dict[str, Any] = resp.json()
    return sync


async def test_patch_cannot_blank_the_table(api: Api) -> None:
    sync = await _sync(api)
    assert (await api.post(f"/v1/syncs/{sync['id']}/test")).status_code == 200
    assert (await api.post(f"/v1/syncs/{sync['id']}/activate")).json()["status"] == "active"
    before = (await api.get(f"/v1/syncs/{sync['id']}")).json()
    for table in ("", "   "):
        resp = await api.patch(f"/v1/syncs/{sync['id']}", json={"table": table, "name": "x"})
        assert_refused(resp, 400, "validation_error", "table")
        # Nothing half-written: same table, name and status (not put back to draft).
        assert (await api.get(f"/v1/syncs/{sync['id']}")).json() == before


async def test_webhook_url_must_be_http(api: Api) -> None:
    sync = await _sync(api, notifications={"webhook_url": "https://hooks.example.com/zc"})
    assert sync["notifications"] == {"webhook_url": "https://hooks.example.com/zc"}
    source_id = sync["source_id"]
    for url in ("ftp://hooks.example.com/x", "hooks.example.com/x", "https://", "javascript:x"):
        resp = await api.post(
            "/v1/syncs",
            json={
                "name": "hooked",
                "data_type": "custom_events",
                "source_id": source_id,
                "table": "app_events",
                "notifications": {"webhook_url": url},
            },
        )
        err = assert_refused(resp, 400, "validation_error", "notifications")
        assert "webhook_url" in err["message"]
        resp = await api.patch(
            f"/v1/syncs/{sync['id']}", json={"notifications": {"webhook_url": url}}
        )
        assert_refused(resp, 400, "validation_error", "notifications")
    assert [s["name"] for s in (await api.get("/v1/syncs")).json()] == ["attrs"]
    kept = (await api.get(f"/v1/syncs/{sync['id']}")).json()["notifications"]
    assert kept == {"webhook_url": "https://hooks.example.com/zc"}


async def test_contact_longer_than_smtp_allows_is_refused(api: Api) -> None:
    sync = await _sync(api, contacts=["ops@example.com"])
    for address in ("x" * 65 + "@example.com", "a@" + "b" * 250 + ".com"):
        resp = await api.patch(f"/v1/syncs/{sync['id']}", json={"contacts": [address]})
        assert_refused(resp, 400, "validation_error", "contacts")
    assert (await api.get(f"/v1/syncs/{sync['id']}")).json()["contacts"] == ["ops@example.com"]
    edge = "x" * 64 + "@example.com"
    resp = await api.patch(f"/v1/syncs/{sync['id']}", json={"contacts": [edge]})
    assert resp.status_code == 200 and resp.json()["contacts"] == [edge], resp.text


# ------------------------------------------------------------------------------ CLI
def _zc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ZEROCOPY, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_cli_errors_are_the_api_error_body(tmp_path: Path) -> None:
    env, source_id = setup_workspace(tmp_path)  # an active DuckDB source
    proc = _zc(
        env, "sync", "create", "--name", "a", "--data-type", "user_attributes",
        "--source", source_id, "--table", "users_attributes_sync", "--frequency", "7h",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    err = json.loads(proc.stderr.strip().splitlines()[-1])["error"]
    assert set(err) == ERROR_KEYS
    assert err["code"] == "validation_error" and err["line"] is None and err["column"] is None
    assert err["details"] == {"field": "frequency", "reason": "unknown_frequency"}
    # An error without details still has the key, as in the API ({}).
    proc = _zc(env, "sync", "show", "nope")
    assert proc.returncode == 1
    err = json.loads(proc.stderr.strip().splitlines()[-1])["error"]
    assert set(err) == ERROR_KEYS and err["code"] == "not_found"
    assert _zc(env, "sync", "list").stdout.strip() == "[]"


def test_cli_workspace_create_refusal_is_json(tmp_path: Path) -> None:
    env, _ = setup_workspace(tmp_path)  # an active DuckDB source
    proc = _zc(env, "workspace", "create", "Other", "--time-zone", "Mars/Base")
    assert proc.returncode == 2 and "api key" not in proc.stdout
    err = json.loads(proc.stderr.strip().splitlines()[-1])["error"]
    assert set(err) == ERROR_KEYS and err["code"] == "validation_error"
    assert err["details"] == {"field": "time_zone", "reason": "unknown_time_zone"}
    listed = json.loads(_zc(env, "workspace", "list").stdout)
    assert [w["name"] for w in listed] == ["cli"]


def test_cli_segment_schedule_usage_names_set(tmp_path: Path) -> None:
    env, source_id = setup_workspace(tmp_path)  # an active DuckDB source
    proc = _zc(
        env, "segment", "create", "--source", source_id, "--name", "all",
        "--sql", "SELECT external_user_id FROM users",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    segment_id = json.loads(proc.stdout)["id"]
    proc = _zc(env, "segment", "schedule", segment_id, "--set", "{bad")
    assert proc.returncode == 2 and "--set is not valid JSON" in proc.stderr, proc.stderr
    proc = _zc(env, "segment", "schedule", segment_id, "--contact", "ops@example.com")
    assert proc.returncode == 2 and "--contact goes with --set" in proc.stderr, proc.stderr
    proc = _zc(env, "segment", "schedule", segment_id, "--set", "[1]")
    assert proc.returncode == 2 and "--set must be a JSON object" in proc.stderr, proc.stderr
    view = json.loads(_zc(env, "segment", "schedule", segment_id).stdout)
    assert view["status"] == "manual" and view["contacts"] == []


async def test_http_destination_unconfigured_fails_the_test(api: Api) -> None:
    """Without ZEROCOPY_HTTP_DESTINATION_URL/KEY every run would end ``error`` at once: the
    test says so and the sync cannot be activated."""
    sync = await _sync(api, destination="http")
    resp = await api.post(f"/v1/syncs/{sync['id']}/test")
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["code"] == "validation_error" and "ZEROCOPY_HTTP_DESTINATION_URL" in err["message"]
    assert err["details"]["sync_id"] == sync["id"]
    shown = (await api.get(f"/v1/syncs/{sync['id']}")).json()
    assert shown["status"] == "draft" and shown["last_test_error"]["code"] == "validation_error"
    resp = await api.post(f"/v1/syncs/{sync['id']}/activate")
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "conflict"
    assert (await api.get(f"/v1/syncs/{sync['id']}/runs")).json() == []


def test_cli_sync_limits_and_output_as_the_api(tmp_path: Path) -> None:
    env, source_id = setup_workspace(tmp_path)  # an active DuckDB source
    proc = _zc(
        env, "sync", "create", "--name", "a", "--data-type", "user_attributes",
        "--source", source_id, "--table", "users_attributes_sync",
    )  # fmt: skip
    sync_id = json.loads(proc.stdout)["id"]
    assert _zc(env, "sync", "test", sync_id).returncode == 0
    assert _zc(env, "sync", "activate", sync_id).returncode == 0
    run = json.loads(_zc(env, "sync", "run", sync_id).stdout)
    # The API refuses limit 0 and limits above its maximum: so does the CLI (usage, exit 2).
    for args in (
        ("runs", sync_id, "--limit", "0"),
        ("runs", sync_id, "--limit", "501"),
        ("errors", run["id"], "--limit", "0"),
        ("errors", run["id"], "--limit", "1001"),
    ):
        proc = _zc(env, "sync", *args)
        assert proc.returncode == 2 and proc.stdout == "", (args, proc.stderr)
    errors = json.loads(_zc(env, "sync", "errors", run["id"], "--limit", "1000").stdout)
    assert len(errors) == run["rows_errored"] > 0
    # An export to a path that cannot be written is a usage error, not a traceback.
    target = tmp_path / "missing" / "rows.csv"
    proc = _zc(env, "sync", "export", run["id"], "--format", "csv", "--output", str(target))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "cannot write --output" in proc.stderr and not target.exists()
    target = tmp_path / "rows.csv"
    proc = _zc(env, "sync", "export", run["id"], "--format", "csv", "--output", str(target))
    assert proc.returncode == 0, proc.stderr
    assert len(target.read_text().splitlines()) == 1 + run["rows_errored"]


async def test_cli_sync_schedule_is_the_api_view(api: Api, tmp_path: Path) -> None:
    """``zerocopy sync schedule`` prints ``GET /v1/syncs/{id}/schedule`` (same state)."""
    await api.patch("/v1/workspace", json={"time_zone": "Europe/Paris"})
    sync = await _sync(api, frequency="weekly")
    env = {
        "ZEROCOPY_DATA_DIR": str(api.settings.data_dir),
        "ZEROCOPY_DATABASE_URL": api.settings.database_url,
        "ZEROCOPY_LOG_LEVEL": "warning",
        "ZEROCOPY_WORKSPACE": api.workspace_id,
    }

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        resp = await api.get(f"/v1/syncs/{sync['id']}/schedule")
        assert resp.status_code == 200, resp.text
        proc = await anyio.to_thread.run_sync(lambda: _zc(env, "sync", "schedule", sync["id"]))
        assert proc.returncode == 0, proc.stderr
        return resp.json(), json.loads(proc.stdout)

    http, cli = await both()
    assert cli == http and http["status"] == "draft" and http["next_runs"] == []
    assert http["frequency"] == "1w" and http["time_zone"] == "Europe/Paris"
    assert (await api.post(f"/v1/syncs/{sync['id']}/test")).status_code == 200
    assert (await api.post(f"/v1/syncs/{sync['id']}/activate")).status_code == 200
    http, cli = await both()
    assert cli == http and http["status"] == "active" and len(http["next_runs"]) == 5
    # Mondays at 00:00 Paris time.
    assert all(t.endswith(("T00:00:00+01:00", "T00:00:00+02:00")) for t in http["next_runs"])
    proc = await anyio.to_thread.run_sync(lambda: _zc(env, "sync", "schedule", "nope"))
    assert proc.returncode == 1
    err = json.loads(proc.stderr.strip().splitlines()[-1])["error"]
    assert set(err) == ERROR_KEYS and err["code"] == "not_found"


def test_cli_segment_update_refused_contact_changes_nothing(tmp_path: Path) -> None:
    env, source_id = setup_workspace(tmp_path)  # an active DuckDB source
    proc = _zc(
        env, "segment", "create", "--source", source_id, "--name", "all",
        "--sql", "SELECT external_user_id FROM users",
    )  # fmt: skip
    segment_id = json.loads(proc.stdout)["id"]
    before = json.loads(_zc(env, "segment", "show", segment_id).stdout)
    proc = _zc(
        env, "segment", "update", segment_id, "--name", "renamed",
        "--sql", "SELECT external_user_id FROM users WHERE country = 'US'",
        "--schedule", '{"frequency": "daily"}', "--contact", "not-an-address",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    err = json.loads(proc.stderr.strip().splitlines()[-1])["error"]
    assert err["code"] == "validation_error" and err["details"]["field"] == "contacts"
    # One command, one outcome: the name and SQL did not change, nor the schedule.
    assert json.loads(_zc(env, "segment", "show", segment_id).stdout) == before
    view = json.loads(_zc(env, "segment", "schedule", segment_id).stdout)
    assert view["status"] == "manual" and view["contacts"] == []


async def test_file_sync_refuses_a_warehouse_credential_when_created(api: Api) -> None:
    """``credential_kind_mismatch`` at create, not a draft that can never pass its test."""
    resp = await api.post(
        "/v1/credentials",
        json={"name": "dw", "kind": "duckdb", "settings": {"path": str(api.warehouse)}},
    )
    duck = resp.json()["id"]
    body = {"name": "files", "data_type": "custom_events", "credential_id": duck}
    resp = await api.post("/v1/syncs", json={**body, "source_settings": {"bucket": "zc-in"}})
    assert resp.status_code == 422, resp.text
    err = resp.json()["error"]
    assert set(err) == ERROR_KEYS and err["code"] == "credential_kind_mismatch"
    assert err["details"]["field"] == "credential_id"
    resp = await api.post(
        "/v1/credentials",
        json={
            "name": "files",
            "kind": "s3",
            "settings": {"region": "eu-west-1"},
            "secrets": {"access_key_id": "AKIA1", "secret_access_key": "s3-canary-77"},
        },
    )
    s3 = resp.json()["id"]
    resp = await api.post(
        "/v1/syncs",
        json={**body, "credential_id": s3, "source_settings": {"bucket": "zc-in", "format": "xml"}},
    )
    err = assert_refused(resp, 400, "validation_error", "source_settings")
    assert "'xml'" in err["message"] and "s3-canary-77" not in resp.text
    assert (await api.get("/v1/syncs")).json() == []
    resp = await api.post(
        "/v1/syncs",
        json={**body, "credential_id": s3, "source_settings": {"bucket": "zc-in", "format": "CSV"}},
    )
    assert resp.status_code == 201, resp.text


async def test_sync_settings_and_catalog_name_are_checked(api: Api) -> None:
    """``account_fields`` given as one string was read as its letters (every field dropped);
    unknown settings were ignored; a 500-character or slashed catalog name was kept."""
    source_id = await duckdb_source(api)
    accounts = {"name": "accs", "data_type": "accounts", "source_id": source_id, "table": "t"}
    for settings in (
        {"account_fields": "plan"},
        {"account_fields": ["plan", 5]},
        {"acount_fields": ["plan"]},
        {"http": {"batch_rows": 0}},
        {"http": {"batch_rows": 2.5}},
        {"http": {"retries": 3}},
    ):
        resp = await api.post("/v1/syncs", json={**accounts, "settings": settings})
        assert_refused(resp, 400, "validation_error", "settings")
    catalog = {**accounts, "data_type": "catalog_items", "name": "cat"}
    for name in ("x" * 201, "a/b", "tab\there"):
        resp = await api.post("/v1/syncs", json={**catalog, "catalog_name": name})
        assert_refused(resp, 400, "validation_error", "catalog_name")
    assert (await api.get("/v1/syncs")).json() == []
    ok = {"account_fields": ["plan", "seats"], "http": {"batch_rows": 10, "timeout_s": 2.5}}
    resp = await api.post("/v1/syncs", json={**accounts, "settings": ok})
    assert resp.status_code == 201, resp.text
    resp = await api.post("/v1/syncs", json={**catalog, "catalog_name": " Products "})
    assert resp.status_code == 201 and resp.json()["catalog_name"] == "Products", resp.text


async def test_text_the_state_cannot_hold_is_a_validation_error(api: Api) -> None:
    """On PostgreSQL state a table over 400 characters or any NUL (table, contact, webhook,
    settings) was a 500 ``internal_error``; on both stores it is ``validation_error``."""
    sync = await _sync(api)
    source_id = sync["source_id"]
    base = {"name": "n", "data_type": "custom_events", "source_id": source_id}
    refusals: list[tuple[dict[str, Any], str]] = [
        ({**base, "table": "t" * 401}, "table"),
        ({**base, "table": "app\x00events"}, "table"),
        ({**base, "table": "app_events", "contacts": ["a\x00@example.com"]}, "contacts"),
        (
            {**base, "table": "app_events", "notifications": {"webhook_url": "https://h.io/\x00"}},
            "notifications",
        ),
        ({**base, "table": "app_events", "settings": {"http": {"\x00": 1}}}, "settings"),
    ]
    for body, field in refusals:
        assert_refused(await api.post("/v1/syncs", json=body), 400, "validation_error", field)
    before = (await api.get(f"/v1/syncs/{sync['id']}")).json()
    for table in ("u" * 401, "users\x00"):
        resp = await api.patch(f"/v1/syncs/{sync['id']}", json={"table": table})
        assert_refused(resp, 400, "validation_error", "table")
    assert (await api.get(f"/v1/syncs/{sync['id']}")).json() == before
    assert [s["id"] for s in (await api.get("/v1/syncs")).json()] == [sync["id"]]
    resp = await api.patch(f"/v1/syncs/{sync['id']}", json={"table": " " + "v" * 400 + " "})
    assert resp.status_code == 200 and resp.json()["table"] == "v" * 400, resp.text
