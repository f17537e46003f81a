"""The API flow over HTTP for each warehouse kind, against the conformance suite's real peers.

credential → source (draft) → test (active, tables listed) → validate → segment → refresh →
members, for postgres, redshift (PostgreSQL behind the Redshift proxy), snowflake (fakesnow;
the credential shows its generated public key, rotation and setup SQL) and bigquery
(bqemulator behind its IAM gate; validate shows the dry-run bytes estimate). Expected members
come from querying each peer directly (``target.admin``), never from zerocopy. Each test joins
its kind's xdist group, so it runs on the worker that already started that peer. Databricks has
its own flow test in tests/integration/test_databricks_adapter.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from tests.acceptance.conftest import Api
from tests.conformance.target import ConformanceTarget
from tests.conformance.targets.bigquery import bigquery_target  # noqa: F401
from tests.conformance.targets.postgres import postgres_target  # noqa: F401
from tests.conformance.targets.redshift import redshift_target  # noqa: F401
from tests.conformance.targets.snowflake import snowflake_target  # noqa: F401
from tests.support import REPO, free_port, unavailable, wait_for_port
from zerocopy.services import workspaces
from zerocopy.settings import load_settings

pytestmark = pytest.mark.anyio

SSHD_PYTHON = REPO / ".peers" / "sshd" / "bin" / "python"
SSHD_SERVER = REPO / "tests" / "peers" / "sshd" / "server.py"

SEGMENT_SQL = {
    "postgres": "SELECT external_user_id FROM users WHERE plan <> 'free'",
    "redshift": "SELECT external_user_id FROM users WHERE plan <> 'free'",
    # Unquoted: the SQL check resolves the catalog's lower-case names case-insensitively.
    "snowflake": "SELECT external_user_id FROM users WHERE plan <> 'free'",
    "bigquery": "SELECT external_user_id FROM users WHERE plan <> 'free'",
    "databricks": "SELECT external_user_id FROM users WHERE plan <> 'free'",
}


def truth_sql(target: ConformanceTarget) -> str:
    """The same segment, fully qualified, run on the peer by the test itself."""
    scope = target.config.scope
    if target.kind == "snowflake":
        return (
            f'SELECT "external_user_id" FROM "{scope.database}"."{scope.schema}"."users" '
            "WHERE \"plan\" <> 'free'"
        )
    if target.kind == "databricks":
        return (
            f"SELECT external_user_id FROM `{scope.database}`.`{scope.schema}`.`users` "
            "WHERE plan <> 'free'"
        )
    if target.kind == "bigquery":
        return (
            f"SELECT external_user_id FROM `{scope.database}`.`{scope.schema}`.`users` "
            "WHERE plan <> 'free'"
        )
    return f'SELECT external_user_id FROM "{scope.schema}"."users" WHERE plan <> \'free\''


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The app on SQLite state (the state backends are covered by test_api_flow)."""
    settings = load_settings(
        {
            "ZEROCOPY_DATA_DIR": str(tmp_path / "data"),
            "ZEROCOPY_DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite3'}",
            "ZEROCOPY_LOG_LEVEL": "warning",
        }
    )
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        async with app.state.runtime.db.session() as session:
            ws, key = await workspaces.create_workspace(session, name="Acme")
        yield Api(client, key, ws.id, settings, tmp_path / "unused.duckdb", app)


def credential_body(target: ConformanceTarget, name: str, **extra: Any) -> dict[str, Any]:
    """The target's working login as an API credential; generated keys are zerocopy's to make."""
    secrets = {k: v for k, v in target.config.secrets.items() if k != "private_key"}
    return {
        "name": name,
        "kind": target.kind,
        "settings": {**target.config.settings, **extra},
        "secrets": secrets,
    }


async def source_flow(api: Api, target: ConformanceTarget, credential_id: str) -> dict[str, Any]:
    """source (draft) → test (active, exactly the peer's tables) → validate; returns validate."""
    resp = await api.post(
        "/v1/sources",
        {
            "name": f"{target.kind} source",
            "credential_id": credential_id,
            "scope": str(target.config.scope),
        },
    )
    assert resp.status_code == 201, resp.text
    source = resp.json()
    assert source["status"] == "draft" and source["kind"] == target.kind

    resp = await api.post(f"/v1/sources/{source['id']}/test")
    assert resp.status_code == 200, resp.text
    tested = resp.json()
    assert tested["source"]["status"] == "active"
    assert {t["name"] for t in tested["tables"]} == target.expected_tables
    users = next(t for t in tested["tables"] if t["name"] == "users")
    assert users["column_count"] == len(target.warehouse.table("users").columns)

    resp = await api.post(
        "/v1/segments/validate", {"source_id": source["id"], "sql": SEGMENT_SQL[target.kind]}
    )
    assert resp.status_code == 200, resp.text
    check: dict[str, Any] = resp.json()
    assert check["valid"] is True, check
    assert check["target"] == target.adapter().SQLGLOT_DIALECT
    check["source_id"] = source["id"]
    return check


async def segment_flow(api: Api, target: ConformanceTarget, source_id: str) -> None:
    """segment → refresh (202, then succeeded) → members equal to the peer's own answer."""
    expected = {str(row[0]) for row in target.admin(truth_sql(target))}
    assert 0 < len(expected) < target.warehouse.table("users").data.num_rows
    resp = await api.post(
        "/v1/segments",
        {"name": f"Paying {target.kind}", "source_id": source_id, "sql": SEGMENT_SQL[target.kind]},
    )
    assert resp.status_code == 201, resp.text
    segment = resp.json()
    resp = await api.post(f"/v1/segments/{segment['id']}/refresh")
    assert resp.status_code == 202, resp.text
    run = await api.wait_run(resp.json()["id"], timeout=120)
    assert run["status"] == "succeeded", run
    assert run["member_count"] == len(expected) and run["added"] == len(expected)
    members: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 50, **({"cursor": cursor} if cursor else {})}
        resp = await api.get(f"/v1/segments/{segment['id']}/members", params=params)
        assert resp.status_code == 200, resp.text
        members += resp.json()["items"]
        cursor = resp.json()["next_cursor"]
        if cursor is None:
            break
    assert set(members) == expected and len(members) == len(expected)
    # The temporary result table is gone from the warehouse.
    assert run["temp_table"]
    async with target.adapter() as adapter:
        assert run["temp_table"] not in await adapter.list_temp_tables()


# --------------------------------------------------------------------------- postgres, redshift
@pytest.mark.postgres
@pytest.mark.parametrize(
    "kind", [pytest.param(k, marks=pytest.mark.xdist_group(k)) for k in ("postgres", "redshift")]
)
async def test_pglike_flow_end_to_end(api: Api, kind: str, request: pytest.FixtureRequest) -> None:
    target: ConformanceTarget = request.getfixturevalue(f"{kind}_target")
    resp = await api.post("/v1/credentials", credential_body(target, f"{kind} login"))
    assert resp.status_code == 201, resp.text
    cred = resp.json()
    # No SSH tunnel: nothing generated, the password is write-only.
    assert cred["secret_fields"] == ["password"] and cred["public_key"] is None
    assert cred["key"] is None
    assert "unused-on-trust" not in resp.text
    check = await source_flow(api, target, cred["id"])
    assert check["estimated_bytes"] is None  # no dry run on PostgreSQL/Redshift
    await segment_flow(api, target, check["source_id"])


@contextmanager
def bastion_for(public_key_line: str, base: Path, user: str) -> Iterator[tuple[int, str]]:
    """A real SSH server (tests/peers/sshd) accepting exactly ``public_key_line``."""
    if not SSHD_PYTHON.exists():
        unavailable("SSH bastion peer not installed: run `make peers` (tests/peers/sshd)")
    (base / "authorized_keys").write_text(public_key_line + "\n")
    port = free_port()
    with (base / "sshd.log").open("w") as out:
        proc = subprocess.Popen(
            [
                str(SSHD_PYTHON),
                str(SSHD_SERVER),
                "--port",
                str(port),
                "--user",
                user,
                "--authorized-keys",
                str(base / "authorized_keys"),
                "--host-key-out",
                str(base / "host_key.pub"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, timeout=20)
        yield port, (base / "host_key.pub").read_text().strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.postgres
@pytest.mark.xdist_group("redshift")
async def test_redshift_through_ssh_tunnel_with_the_generated_key(
    api: Api, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The credential shows an ed25519 public key; installed on the bastion, the source works."""
    target: ConformanceTarget = request.getfixturevalue("redshift_target")
    port = free_port()  # the bastion's, chosen before the credential names it
    tunnel = {"host": "127.0.0.1", "port": port, "user": "zc-tunnel"}
    body = credential_body(target, "via bastion", ssh_tunnel=tunnel)

    sent_key = dict(body, secrets={**body["secrets"], "ssh_private_key": "-----BEGIN nope"})
    resp = await api.post("/v1/credentials", sent_key)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "invalid_credential"
    assert resp.json()["error"]["details"]["field"] == "ssh_private_key"

    resp = await api.post("/v1/credentials", body)
    assert resp.status_code == 201, resp.text
    cred = resp.json()
    assert cred["public_key"].startswith("ssh-ed25519 AAAA")
    assert cred["key"]["algorithm"] == "ed25519" and cred["key"]["fingerprint"].startswith(
        "SHA256:"
    )
    assert cred["secret_fields"] == ["password", "ssh_private_key"]
    assert "PRIVATE KEY" not in resp.text

    # Before the key is installed anywhere the tunnel cannot open: a clear unreachable.
    src = await api.post(
        "/v1/sources",
        {"name": "tunnelled", "credential_id": cred["id"], "scope": "mart"},
    )
    assert src.status_code == 201, src.text
    resp = await api.post(f"/v1/sources/{src.json()['id']}/test")
    assert resp.status_code == 502 and resp.json()["error"]["code"] == "unreachable", resp.text

    with bastion_for(cred["public_key"], tmp_path, "zc-tunnel") as (ssh_port, host_key):
        # Point the credential at the running bastion and pin its host key; the key stays.
        resp = await api.patch(
            f"/v1/credentials/{cred['id']}",
            {
                "settings": {
                    **body["settings"],
                    "ssh_tunnel": {**tunnel, "port": ssh_port, "host_key": host_key},
                }
            },
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["public_key"] == cred["public_key"]
        resp = await api.post(f"/v1/sources/{src.json()['id']}/test")
        assert resp.status_code == 200, resp.text
        assert {t["name"] for t in resp.json()["tables"]} == target.expected_tables
        forwards = (tmp_path / "sshd.log").read_text()
        assert "allowed" in forwards


# --------------------------------------------------------------------------- snowflake
@pytest.mark.xdist_group("snowflake")
async def test_snowflake_flow_with_generated_key_rotation_and_setup_sql(
    api: Api, request: pytest.FixtureRequest
) -> None:
    target: ConformanceTarget = request.getfixturevalue("snowflake_target")
    body = credential_body(target, "snowflake login")

    # The client never sends a private key or a password.
    resp = await api.post(
        "/v1/credentials", dict(body, secrets={"private_key": "-----BEGIN PRIVATE KEY-----"})
    )
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_credential"
    resp = await api.post("/v1/credentials", dict(body, secrets={"password": "hunter2-canary"}))
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_credential"

    resp = await api.post("/v1/credentials", body)
    assert resp.status_code == 201, resp.text
    cred = resp.json()
    assert cred["secret_fields"] == ["private_key"]
    assert "PRIVATE KEY" not in resp.text
    key = cred["key"]
    assert key["algorithm"] == "rsa" and key["public_key"] == cred["public_key"]
    assert key["fingerprint"].startswith("SHA256:")
    assert key["statements"] == [
        f"ALTER USER ZEROCOPY SET RSA_PUBLIC_KEY = '{cred['public_key']}';"
    ]
    assert key["rotation"]["phase"] == "idle"
    assert key["rotation"]["current"]["slot"] == "RSA_PUBLIC_KEY"

    # Another workspace may not use the same Snowflake user (account + user, any case).
    other = await api.new_workspace("Globex")
    resp = await api.client.post(
        "/v1/credentials",
        json=dict(body, settings={**body["settings"], "user": "zerocopy"}),
        headers={"Authorization": f"Bearer {other}"},
    )
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"]["code"] == "conflict"
    assert "another workspace" in resp.json()["error"]["message"]

    check = await source_flow(api, target, cred["id"])
    assert check["estimated_bytes"] is None
    await segment_flow(api, target, check["source_id"])

    # Setup SQL for the user's own names, with the credential's public key.
    resp = await api.get(f"/v1/credentials/{cred['id']}/setup-sql")
    assert resp.status_code == 200, resp.text
    sql = resp.json()["sql"]
    assert "CREATE ROLE IF NOT EXISTS ZEROCOPY_ROLE;" in sql
    assert "GRANT USAGE ON WAREHOUSE ZEROCOPY_WH TO ROLE ZEROCOPY_ROLE;" in sql
    assert "GRANT CREATE TABLE ON SCHEMA ZC.ANALYTICS TO ROLE ZEROCOPY_ROLE;" in sql
    assert f"RSA_PUBLIC_KEY = '{cred['public_key']}'" in sql
    resp = await api.get(
        f"/v1/credentials/{cred['id']}/setup-sql", params={"database": "raw", "schema": "Events"}
    )
    assert 'GRANT CREATE TABLE ON SCHEMA RAW."Events" TO ROLE ZEROCOPY_ROLE;' in resp.json()["sql"]

    # Rotation: the new key is shown for the free slot; logins keep the current key until a
    # test with the new one succeeds (fakesnow accepts any key, so the test succeeds here).
    resp = await api.post(f"/v1/credentials/{cred['id']}/key/rotation")
    assert resp.status_code == 200, resp.text
    started = resp.json()
    pending = started["rotation"]["pending"]
    assert started["rotation"]["phase"] == "pending" and pending["slot"] == "RSA_PUBLIC_KEY_2"
    assert started["public_key"] == cred["public_key"]  # still the current key
    assert started["statements"] == [
        f"ALTER USER ZEROCOPY SET RSA_PUBLIC_KEY_2 = '{pending['public_key']}';"
    ]
    resp = await api.post(f"/v1/credentials/{cred['id']}/key/rotation")
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "conflict"
    resp = await api.post(f"/v1/credentials/{cred['id']}/key/rotation/finish")
    assert resp.status_code == 409, resp.text

    resp = await api.post(f"/v1/credentials/{cred['id']}/key/rotation/test", {})
    assert resp.status_code == 200, resp.text
    promoted = resp.json()
    assert promoted["rotation"]["phase"] == "retiring"
    assert promoted["public_key"] == pending["public_key"]
    assert promoted["fingerprint"] == pending["fingerprint"]
    assert promoted["statements"] == ["ALTER USER ZEROCOPY UNSET RSA_PUBLIC_KEY;"]
    assert (await api.get(f"/v1/credentials/{cred['id']}")).json()["secret_fields"] == [
        "private_key",
        "retired_private_key",
    ]
    resp = await api.post(f"/v1/credentials/{cred['id']}/key/rotation/finish")
    assert resp.status_code == 200, resp.text
    assert resp.json()["rotation"]["phase"] == "idle"
    assert resp.json()["statements"] == [
        f"ALTER USER ZEROCOPY SET RSA_PUBLIC_KEY_2 = '{pending['public_key']}';"
    ]
    assert (await api.get(f"/v1/credentials/{cred['id']}")).json()["secret_fields"] == [
        "private_key"
    ]

    # The next rotation uses the freed slot; abort shows the UNSET that clears it.
    resp = await api.post(f"/v1/credentials/{cred['id']}/key/rotation")
    assert resp.json()["rotation"]["pending"]["slot"] == "RSA_PUBLIC_KEY"
    resp = await api.post(f"/v1/credentials/{cred['id']}/key/rotation/abort")
    assert resp.status_code == 200, resp.text
    assert resp.json()["statements"] == ["ALTER USER ZEROCOPY UNSET RSA_PUBLIC_KEY;"]
    assert resp.json()["rotation"]["phase"] == "idle"
    assert resp.json()["public_key"] == pending["public_key"]

    # Refreshes still work with the rotated key.
    segments = (await api.get("/v1/segments")).json()
    resp = await api.post(f"/v1/segments/{segments[0]['id']}/refresh")
    assert resp.status_code == 202, resp.text
    assert (await api.wait_run(resp.json()["id"], timeout=120))["status"] == "succeeded"


# --------------------------------------------------------------------------- bigquery
@pytest.mark.xdist_group("bigquery")
async def test_bigquery_flow_with_dry_run_estimate(
    api: Api, request: pytest.FixtureRequest
) -> None:
    target: ConformanceTarget = request.getfixturevalue("bigquery_target")
    resp = await api.post("/v1/credentials", credential_body(target, "bigquery sa"))
    assert resp.status_code == 201, resp.text
    cred = resp.json()
    assert cred["secret_fields"] == ["service_account_json"] and cred["key"] is None
    assert "PRIVATE KEY" not in resp.text
    check = await source_flow(api, target, cred["id"])
    # The dry run's own figure (an int, where other kinds show null): what the adapter's dry
    # run reports for the same SQL. The emulator's dry runs report 0 bytes (PEERS.md), so the
    # size itself is checked only against real BigQuery; the job config is checked in
    # tests/integration/test_bigquery_adapter.py.
    async with target.adapter() as adapter:
        expected = await adapter.estimate_bytes(check["ids_sql"])
    assert isinstance(check["estimated_bytes"], int) and "estimate_error" not in check
    assert check["estimated_bytes"] == expected
    # Invalid SQL: no dry run, no estimate.
    resp = await api.post(
        "/v1/segments/validate", {"source_id": check["source_id"], "sql": "SELECT nope FROM users"}
    )
    assert resp.json()["valid"] is False and resp.json()["estimated_bytes"] is None
    await segment_flow(api, target, check["source_id"])


@pytest.mark.xdist_group("snowflake")
async def test_snowflake_rotation_keeps_the_current_key_when_the_test_fails(
    api: Api, request: pytest.FixtureRequest
) -> None:
    """A failed test with the pending key changes nothing but ``last_error``.

    fakesnow accepts any key, so the failure here is a closed port (the peer cannot refuse a
    key); the state machine's handling of a refused key is the same call
    (``keyrotation.record_test(ok=False)``, unit-tested in test_snowflake_setup.py).
    """
    target: ConformanceTarget = request.getfixturevalue("snowflake_target")
    closed = target.broken["unreachable"]
    resp = await api.post(
        "/v1/credentials",
        {"name": "closed", "kind": "snowflake", "settings": dict(closed.settings)},
    )
    assert resp.status_code == 201, resp.text
    cred = resp.json()
    resp = await api.post(
        "/v1/sources", {"name": "closed", "credential_id": cred["id"], "scope": str(closed.scope)}
    )
    assert resp.status_code == 201, resp.text
    started = (await api.post(f"/v1/credentials/{cred['id']}/key/rotation")).json()
    resp = await api.post(
        f"/v1/credentials/{cred['id']}/key/rotation/test", {"source_id": resp.json()["id"]}
    )
    assert resp.status_code == 502, resp.text
    error = resp.json()["error"]
    assert error["code"] == "unreachable" and error["details"]["phase"] == "pending"
    assert "current key stays in use" in error["message"]
    key = (await api.get(f"/v1/credentials/{cred['id']}/key")).json()
    assert key["rotation"]["phase"] == "pending"
    assert key["rotation"]["last_error"].startswith("unreachable: ")
    assert key["public_key"] == cred["public_key"]  # logins still use the first key
    assert key["statements"] == started["statements"]
    fields = (await api.get(f"/v1/credentials/{cred['id']}")).json()["secret_fields"]
    assert fields == ["pending_private_key", "private_key"]
    # Without a source the pending key cannot be tested: a clear validation error.
    resp = await api.post(
        "/v1/credentials",
        {
            "name": "no source",
            "kind": "snowflake",
            "settings": {**dict(closed.settings), "user": "OTHER"},
        },
    )
    other = resp.json()["id"]
    await api.post(f"/v1/credentials/{other}/key/rotation")
    resp = await api.post(f"/v1/credentials/{other}/key/rotation/test")
    assert resp.status_code == 400 and "create a source" in resp.json()["error"]["message"]
