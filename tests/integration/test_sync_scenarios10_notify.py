"""Sync scenarios, round 16: notification mail to several contacts, some of them non-ASCII.

Contacts are stored as written, internationalised addresses included (``jörg@exämple.de``,
``ana@bücher.example``). A relay that offers SMTPUTF8 (RFC 6531) takes them as they are. One
that does not made smtplib refuse the whole message: one contact with a non-ASCII address
cost every contact of the sync its "failing" mail. Now the domains go in IDNA (the same
mailbox), only an address whose name before the ``@`` is not ASCII is left out, the others
are mailed, and the webhook gets the event as before. Real sync runs through the API, mails
over SMTP (aiosmtpd with and without SMTPUTF8); every store and source combination.

A mail that reached some contacts counts as sent: a schedule's pause notice, retried until
delivered, must not mail the contacts who have it again because one address could not be taken.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from aiosmtpd.controller import Controller

from tests.acceptance.test_schedule_redteam2_api import Clock, Ticker, _wired
from tests.integration.state_fixtures import db_fixture  # noqa: F401
from tests.integration.test_notify import Hooks, Inbox, webhook
from tests.integration.test_sync_scenarios9_notify import notified
from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture  # noqa: F401
from tests.support import free_port
from zerocopy.scheduling.schedules import schedule_view, set_schedule
from zerocopy.state.db import Database

__all__ = ["webhook"]

pytestmark = pytest.mark.anyio

COLS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}
CONTACTS = ["Jörg@Exämple.de", "ops@example.com", "ana@bücher.example"]
NAME = "Käufe täglich ünïcode"


def subject(msg: Any) -> str:
    """The Subject as read: RFC 2047 words, or raw UTF-8 (RFC 6532, over SMTPUTF8)."""
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    return str(parsed["Subject"])


def relay(smtputf8: bool) -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def ascii_relay() -> Iterator[tuple[Inbox, int]]:
    """An SMTP relay without SMTPUTF8 (many corporate relays)."""
    yield from relay(False)


@pytest.fixture
def utf8_relay() -> Iterator[tuple[Inbox, int]]:
    yield from relay(True)


async def failing_run(spec: Spec, port: int, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("ZEROCOPY_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ZEROCOPY_SMTP_PORT", str(port))
    spec.warehouse.create("gone", COLS, [("2026-03-01 00:00:00", "u1", j({"a": 1}))])
    sync_id = await spec.ready(
        "user_attributes",
        "gone",
        name=NAME,
        contacts=CONTACTS,
        notifications={"webhook_url": url},
    )
    assert (await spec.sync(sync_id))["contacts"] == CONTACTS
    spec.warehouse.execute('DROP TABLE marketing."gone"')
    run = await spec.run(sync_id)
    assert run["status"] == "error", run
    await notified(spec, sync_id, run["id"])


async def test_a_relay_without_smtputf8_still_mails_every_contact_it_can_take(
    spec: Spec,
    ascii_relay: tuple[Inbox, int],
    webhook: tuple[Hooks, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = ascii_relay
    hooks, url = webhook
    await failing_run(spec, port, monkeypatch, url)
    for _ in range(200):
        if inbox.messages and hooks.bodies:
            break
        await anyio.sleep(0.05)
    assert len(inbox.messages) == 1, inbox.messages
    rcpts, msg = inbox.messages[0]
    # The IDNA domain is the same mailbox; a non-ASCII name before the @ cannot be sent.
    assert rcpts == ["ops@example.com", "ana@xn--bcher-kva.example"], rcpts
    assert msg["X-Zerocopy-Event"] == "sync_failing"
    assert "ops@example.com" in str(msg["To"])
    assert NAME in subject(msg), subject(msg)
    body = msg.get_payload(decode=True)
    assert isinstance(body, bytes) and NAME in body.decode(msg.get_content_charset() or "utf-8")
    assert [b["event"] for b in hooks.bodies] == ["sync_failing"]


async def test_a_relay_with_smtputf8_mails_the_addresses_as_written(
    spec: Spec,
    utf8_relay: tuple[Inbox, int],
    webhook: tuple[Hooks, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = utf8_relay
    _, url = webhook
    await failing_run(spec, port, monkeypatch, url)
    for _ in range(200):
        if inbox.messages:
            break
        await anyio.sleep(0.05)
    assert len(inbox.messages) == 1, inbox.messages
    rcpts, msg = inbox.messages[0]
    assert rcpts == CONTACTS, rcpts
    assert msg["X-Zerocopy-Event"] == "sync_failing"
    assert NAME in subject(msg), subject(msg)


# --------------------------------------------------------------------------- pause notices
async def test_a_pause_mail_partly_sent_is_not_sent_again_to_the_others(
    db: Database,
    tmp_path: Path,
    ascii_relay: tuple[Inbox, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A schedule's pause notice is retried until delivered; delivered to every contact but
    one the relay cannot take, it is delivered: retrying would mail the others again and
    again."""
    inbox, port = ascii_relay
    monkeypatch.setenv("ZEROCOPY_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ZEROCOPY_SMTP_PORT", str(port))
    w, ws = await _wired(db, tmp_path)
    t0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    contacts = ["jörg@example.com", "o@example.com"]
    await set_schedule(db, ws, w.segment_id, {"frequency": "daily"}, contacts=contacts, now=t0)
    clock = Clock(t0 + timedelta(days=3, minutes=1))
    ticker = Ticker(w, clock, stale_days="3", n=1)
    _, paused = await ticker.tick()
    assert paused == [w.segment_id]
    for _ in range(4):
        clock.now += timedelta(hours=2)
        await ticker.tick()
    assert [rcpts for rcpts, _ in inbox.messages] == [["o@example.com"]], inbox.messages
    view = await schedule_view(db, ws, w.segment_id, now=clock.now)
    notice = view["paused"]["notice"]
    assert (notice["delivered"], notice["attempts"]) == (True, 1), notice


class Picky(Inbox):
    """A relay that refuses one mailbox (``550 no such user``) and takes the others."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("left@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def picky_relay() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Picky(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def test_a_contact_the_relay_refuses_is_reported_and_the_others_mailed(
    spec: Spec,
    picky_relay: tuple[Inbox, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A colleague who left: the relay refuses that mailbox. The others get the mail and the
    refusal is logged as ``notification_failed`` naming the address (it passed unseen)."""
    inbox, port = picky_relay
    monkeypatch.setenv("ZEROCOPY_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ZEROCOPY_SMTP_PORT", str(port))
    spec.warehouse.create("gone", COLS, [("2026-03-01 00:00:00", "u1", j({"a": 1}))])
    contacts = ["left@example.com", "ops@example.com"]
    sync_id = await spec.ready("user_attributes", "gone", contacts=contacts)
    spec.warehouse.execute('DROP TABLE marketing."gone"')
    with structlog.testing.capture_logs() as logs:
        run = await spec.run(sync_id)
        await notified(spec, sync_id, run["id"])
        for _ in range(200):
            if any(x.get("event") == "notification_failed" for x in logs):
                break
            await anyio.sleep(0.05)
    assert [rcpts for rcpts, _ in inbox.messages] == [["ops@example.com"]], inbox.messages
    failed = [x for x in logs if x.get("event") == "notification_failed"]
    assert len(failed) == 1 and "left@example.com" in failed[0]["error"], failed
    assert failed[0]["channel"] == "email" and failed[0]["code"] == "notification_failed"
