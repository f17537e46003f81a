"""Round 15: the row-error alert and runs that bring no new rows.

A sync with ``row_error_threshold_pct`` mails one alert when a run's row errors go above the
threshold, not again while the following runs stay above it, and re-arms after a run at or
below it. A run that brought no new row (an idle quarter-hour between two loads, which only
re-reads the rows at its inclusive watermark and skips them) has no percentage, yet it
re-armed the alert: a sync whose bad rows arrive once an hour was alerted once an hour. Such a
run now keeps the alert state, as a failed run does. Real sync runs through the API, mails over
SMTP (aiosmtpd) and the webhook receiver; every store and source combination.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from aiosmtpd.controller import Controller

from tests.integration.test_notify import Hooks, Inbox, smtp_server, webhook
from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture  # noqa: F401
from tests.support import free_port
from zerocopy.notify.runs import LAST_RUN_KEY
from zerocopy.state.sync_models import Sync

__all__ = ["smtp_server", "webhook"]

pytestmark = pytest.mark.anyio

COLS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


async def notified(spec: Spec, sync_id: str, run_id: str) -> None:
    """Wait until the notifier has handled ``run_id`` (it runs just after the run ends)."""
    for _ in range(600):
        async with spec.app.state.runtime.db.session() as session:
            sync = await session.get(Sync, sync_id)
            if sync is not None and (sync.notify_state or {}).get(LAST_RUN_KEY) == run_id:
                return
        await anyio.sleep(0.05)
    raise AssertionError(f"run {run_id} was never notified")


def load(hour: int, bad: int) -> list[tuple[Any, ...]]:
    """Ten rows at ``hour``:00, the first ``bad`` of them without an identifier."""
    return [
        (f"2026-03-01 {hour:02d}:00:{i:02d}", None if i < bad else f"u{hour}-{i}", j({"n": i}))
        for i in range(10)
    ]


async def test_a_run_without_new_rows_keeps_the_row_error_alert_state(
    spec: Spec,
    smtp_server: tuple[Inbox, int],
    webhook: tuple[Hooks, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp_server
    hooks, url = webhook
    monkeypatch.setenv("ZEROCOPY_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ZEROCOPY_SMTP_PORT", str(port))
    spec.warehouse.create("hourly", COLS, load(1, 3))
    sync_id = await spec.ready(
        "user_attributes",
        "hourly",
        contacts=["ops@example.com"],
        notifications={"row_error_threshold_pct": 20, "webhook_url": url},
    )
    statuses = []

    async def run() -> None:
        done = await spec.run(sync_id)
        await notified(spec, sync_id, done["id"])
        statuses.append((done["status"], done["rows_read"], done["rows_skipped"]))

    await run()  # 30 % refused: alert
    await run()  # nothing new: no percentage
    spec.warehouse.insert("hourly", COLS, load(2, 3))
    await run()  # 30 % again: still above, no second alert
    await run()  # nothing new
    spec.warehouse.insert("hourly", COLS, load(3, 0))
    await run()  # 0 %: re-armed
    spec.warehouse.insert("hourly", COLS, load(4, 5))
    await run()  # 50 %: alert
    assert [s[0] for s in statuses] == [
        "partial_success",
        "success",
        "partial_success",
        "success",
        "success",
        "partial_success",
    ], statuses
    assert statuses[1][1] == statuses[1][2] and statuses[3][1] == statuses[3][2], statuses
    # The state is stored before the mails go: wait for the last run's alert to arrive.
    for _ in range(600):
        if len(inbox.messages) >= 2 and len(hooks.bodies) >= 2:
            break
        await anyio.sleep(0.05)
    events = [msg["X-Zerocopy-Event"] for _, msg in inbox.messages]
    assert events == ["row_errors_above_threshold", "row_errors_above_threshold"], events
    assert [b["event"] for b in hooks.bodies] == events
    assert [b["row_error_pct"] for b in hooks.bodies] == [30.0, 50.0]


class SlowInbox(Inbox):
    """An SMTP server that takes its time to accept a message, as remote relays do."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(SMTP_DELAY_S)
        return await super().handle_DATA(server, session, envelope)


SMTP_DELAY_S = 3.0


@pytest.fixture
def slow_smtp() -> Iterator[tuple[SlowInbox, int]]:
    inbox, port = SlowInbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def test_a_run_finishing_while_the_last_mail_is_sent_does_not_mail_again(
    spec: Spec, slow_smtp: tuple[SlowInbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "Run now" answers once the run is final, its mail still on the way. A second run failing
    the same way at once read the state from before the first mail and mailed "failing" again;
    now the first run's state is committed before its mail goes, and the second says nothing."""
    inbox, port = slow_smtp
    monkeypatch.setenv("ZEROCOPY_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ZEROCOPY_SMTP_PORT", str(port))
    spec.warehouse.create("gone", COLS, load(1, 0))
    sync_id = await spec.ready("user_attributes", "gone", contacts=["ops@example.com"])
    spec.warehouse.execute('DROP TABLE marketing."gone"')
    first = await spec.run(sync_id)
    second = await spec.run(sync_id)
    assert (first["status"], second["status"]) == ("error", "error"), (first, second)
    await notified(spec, sync_id, second["id"])
    for _ in range(600):  # the first run's mail, still on its way
        if inbox.messages:
            break
        await anyio.sleep(0.05)
    events = [msg["X-Zerocopy-Event"] for _, msg in inbox.messages]
    assert events == ["sync_failing"], events
    spec.warehouse.create("gone", COLS, load(2, 0))
    third = await spec.run(sync_id)
    assert third["status"] == "success", third
    await notified(spec, sync_id, third["id"])
    for _ in range(600):
        if len(inbox.messages) > 1:
            break
        await anyio.sleep(0.05)
    events = [msg["X-Zerocopy-Event"] for _, msg in inbox.messages]
    assert events == ["sync_failing", "sync_recovered"], events
