"""Sync scenarios, round 16: the warehouse takes the sync's access away, then gives it back.

Issue 8 lists "permission removed" among the sync-level errors that mail the contacts once
per state change and once on recovery. A PostgreSQL source read by its own role: ``REVOKE
SELECT`` on the table (or ``USAGE`` on its schema) makes the next runs -- and the sync's
test -- fail with ``permission_denied`` (one mail, not one per run; the watermark and the
store untouched; a revoked table was ``unknown_table``, the catalog listing leaving it out),
``GRANT`` makes the next run deliver what was added meanwhile and mail the recovery. Real
runs through the API, mails over SMTP (aiosmtpd), both state stores.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import psycopg
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from tests.integration.test_notify import Inbox, smtp_server
from tests.integration.test_sync_scenarios9_notify import notified
from tests.integration.test_sync_spec_harness import Spec, Warehouse, j
from tests.support import scratch_database
from zerocopy.services import workspaces
from zerocopy.settings import load_settings

__all__ = ["smtp_server"]

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

COLS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


@pytest.fixture
def reader(spec: Spec, postgres_server: str) -> Iterator[tuple[str, str]]:
    """A login role of its own (name, password) for the warehouse of ``spec``, dropped
    afterwards (its grants first, before the warehouse database goes)."""
    name, password = f"zc_reader_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    with psycopg.connect(postgres_server, autocommit=True) as con:
        con.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
    try:
        yield name, password
    finally:
        spec.warehouse.execute(f"DROP OWNED BY {name}")
        with psycopg.connect(postgres_server, autocommit=True) as con:
            con.execute(f"DROP ROLE IF EXISTS {name}")


@pytest.fixture(params=["sqlite", "postgres"])
async def spec(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: str
) -> AsyncIterator[Spec]:
    with ExitStack() as stack:
        wh = Warehouse("postgres", url=stack.enter_context(scratch_database(postgres_server)))
        if request.param == "sqlite":
            state_url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
        else:
            state_url = stack.enter_context(scratch_database(postgres_server))
        settings = load_settings(
            {
                "ZEROCOPY_DATA_DIR": str(tmp_path / "data"),
                "ZEROCOPY_DATABASE_URL": state_url,
                "ZEROCOPY_LOG_LEVEL": "warning",
            }
        )
        app = create_app(settings)
        async with AsyncTestClient(app) as client:
            async with app.state.runtime.db.session() as session:
                ws, key = await workspaces.create_workspace(session, name="Access")
            yield Spec(client, key, ws.id, wh, app, "postgres", request.param)


async def as_role(spec: Spec, role: tuple[str, str]) -> None:
    """The source's credential logs in as ``role`` (not the warehouse's owner)."""
    assert spec.warehouse.url is not None
    parts = urlsplit(spec.warehouse.url)
    body: dict[str, Any] = {
        "name": "reader",
        "kind": "postgres",
        "settings": {
            "host": parts.hostname,
            "port": parts.port or 5432,
            "database": parts.path.lstrip("/"),
            "user": role[0],
        },
        "secrets": {"password": role[1]},
    }
    resp = await spec.post("/v1/credentials", json=body)
    assert resp.status_code == 201, resp.text
    spec._credential_id = resp.json()["id"]


@pytest.mark.parametrize("taken", ["table", "schema"])
async def test_select_revoked_then_granted_again_fails_once_and_recovers(
    spec: Spec,
    reader: tuple[str, str],
    smtp_server: tuple[Inbox, int],
    monkeypatch: pytest.MonkeyPatch,
    taken: str,
) -> None:
    inbox, port = smtp_server
    monkeypatch.setenv("ZEROCOPY_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ZEROCOPY_SMTP_PORT", str(port))
    role = reader[0]
    spec.warehouse.create("users", COLS, [("2026-03-01 00:00:00", "u1", j({"plan": "a"}))])
    spec.warehouse.execute(
        f"GRANT USAGE ON SCHEMA marketing TO {role}",
        f'GRANT SELECT ON marketing."users" TO {role}',
    )
    await as_role(spec, reader)
    sync_id = await spec.ready("user_attributes", "users", contacts=["ops@example.com"])
    first = await spec.run(sync_id)
    assert (first["status"], first["rows_delivered"]) == ("success", 1), first

    grant = 'SELECT ON marketing."users"' if taken == "table" else "USAGE ON SCHEMA marketing"
    spec.warehouse.execute(f"REVOKE {grant} FROM {role}")
    spec.warehouse.insert("users", COLS, [("2026-03-01 01:00:00", "u2", j({"plan": "b"}))])
    failed = []
    for _ in range(3):
        run = await spec.run(sync_id)
        await notified(spec, sync_id, run["id"])
        failed.append(run)
    for run in failed:
        assert (run["status"], run["error"]["code"]) == ("error", "permission_denied"), run
        assert run["watermark_after"] == first["watermark_after"], run
    assert ("users" if taken == "table" else "marketing") in failed[0]["error"]["message"]
    assert await spec.profile(external_id="u2") is None
    tested = await spec.post(f"/v1/syncs/{sync_id}/test")  # the test says the same
    assert "permission_denied" in tested.text, tested.text

    spec.warehouse.execute(f"GRANT {grant} TO {role}")
    back = await spec.run(sync_id)
    await notified(spec, sync_id, back["id"])
    assert (back["status"], back["rows_delivered"]) == ("success", 1), back
    prof = await spec.profile(external_id="u2")
    assert prof is not None and prof["attributes"] == {"plan": "b"}
    for _ in range(200):
        if len(inbox.messages) >= 2:
            break
        await anyio.sleep(0.05)
    await anyio.sleep(0.2)
    events = [msg["X-Zerocopy-Event"] for _, msg in inbox.messages]
    assert events == ["sync_failing", "sync_recovered"], events
    body = inbox.messages[0][1].get_payload(decode=True)
    assert isinstance(body, bytes) and b"permission_denied" in body, body
