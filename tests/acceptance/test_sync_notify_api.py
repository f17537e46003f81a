"""Sync-level failures notify the contacts once per state change and once on recovery (API runs)."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import duckdb
import pytest

from tests.acceptance.conftest import SCHEMA, Api
from tests.acceptance.test_sync_api import duckdb_source, ready_sync, run_now
from tests.integration.test_notify import Hooks, Inbox, smtp_server, webhook

pytestmark = pytest.mark.anyio

__all__ = ["smtp_server", "webhook"]


def sql(api: Api, statement: str) -> None:
    con = duckdb.connect(str(api.warehouse))
    try:
        con.execute(f"SET schema = '{SCHEMA}'")
        con.execute(statement)
    finally:
        con.close()


async def _until(count: Callable[[], int], n: int, within_s: float = 20.0) -> None:
    """Notifications go out after the run is recorded (a run_now answer can come first)."""
    until = time.monotonic() + within_s
    while count() < n and time.monotonic() < until:  # noqa: ASYNC110 (another thread appends)
        await anyio.sleep(0.05)


async def test_failing_sync_mails_once_and_on_recovery(
    api: Api,
    smtp_server: tuple[Inbox, int],
    webhook: tuple[Hooks, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp_server
    hooks, url = webhook
    monkeypatch.setenv("ZEROCOPY_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ZEROCOPY_SMTP_PORT", str(port))
    sql(api, "CREATE TABLE crm_attrs AS SELECT * FROM users_attributes_sync LIMIT 20")
    source_id = await duckdb_source(api)
    sync, _ = await ready_sync(
        api,
        name="crm",
        data_type="user_attributes",
        source_id=source_id,
        table="crm_attrs",
        contacts=["ops@example.com"],
        notifications={"webhook_url": url, "notify_on_success": False},
    )
    sql(api, "ALTER TABLE crm_attrs RENAME TO crm_attrs_gone")  # the table disappears
    first = await run_now(api, sync["id"])
    second = await run_now(api, sync["id"])
    assert (first["status"], second["status"]) == ("error", "error")
    assert first["error"]["code"] == "unknown_table"
    await _until(lambda: len(inbox.messages), 1)
    await _until(lambda: len(hooks.bodies), 1)
    sql(api, "ALTER TABLE crm_attrs_gone RENAME TO crm_attrs")  # and comes back
    third = await run_now(api, sync["id"])
    assert third["status"] == "partial_success" and third["rows_delivered"] > 0
    await _until(lambda: len(inbox.messages), 2)
    await _until(lambda: len(hooks.bodies), 2)
    await anyio.sleep(0.5)  # nothing more arrives
    events = [msg["X-Zerocopy-Event"] for _, msg in inbox.messages]
    assert events == ["sync_failing", "sync_recovered"]
    assert inbox.messages[0][0] == ["ops@example.com"]
    assert [b["event"] for b in hooks.bodies] == ["sync_failing", "sync_recovered"]
