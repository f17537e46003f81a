"""Notifications over real SMTP (aiosmtpd) and real HTTP (a local webhook receiver).

A sync's run history goes through ``notify_run`` (``decide`` then ``send_notifications``, the
two steps the sync runner's ``notify_after_run`` takes with the state stored in between): one
mail per state change and one on recovery, not one per failing run; the webhook gets the same
events as JSON.
"""

from __future__ import annotations

import email
import json
import threading
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support import free_port
from zerocopy import errors
from zerocopy.connections import AdapterFactory
from zerocopy.errors import ZerocopyError
from zerocopy.notify import (
    AlertState,
    NotificationSettings,
    RunOutcome,
    SmtpSettings,
    notify_after_run,
    notify_run,
    send_email,
    smtp_settings_from_env,
)
from zerocopy.notify.decision import Event, Notification
from zerocopy.secrets import SecretBox
from zerocopy.state.db import Database
from zerocopy.state.models import Credential, Source, SourceStatus, Workspace
from zerocopy.state.sync_models import Sync
from zerocopy.sync.engine import SyncEngine

pytestmark = pytest.mark.anyio

SMTP_USER = "mailer"
SMTP_PASSWORD = "smtp-pass-8d2f71"


class Inbox:
    """aiosmtpd handler keeping every accepted message."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    # handled=False: aiosmtpd then answers 535 itself (the default stays silent).
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """An aiosmtpd server on a free port (no auth)."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def smtp_auth_server() -> Iterator[tuple[Inbox, int]]:
    """An aiosmtpd server that requires LOGIN/PLAIN auth (allowed without TLS: loopback test)."""
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


class Hooks:
    """Webhook receiver state."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail_next = 0


@pytest.fixture
def webhook() -> Iterator[tuple[Hooks, str]]:
    """A local HTTP server recording JSON POSTs; ``fail_next`` answers 503 that many times."""
    hooks = Hooks()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if hooks.fail_next:
                hooks.fail_next -= 1
                self.send_response(503)
            else:
                hooks.bodies.append(json.loads(body))
                self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hooks, f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def outcome(n: int, status: str, **kw: Any) -> RunOutcome:
    return RunOutcome(sync_id="s1", sync_name="users", run_id=f"run-{n}", status=status, **kw)


async def test_one_mail_per_state_change_and_one_on_recovery(
    smtp_server: tuple[Inbox, int], webhook: tuple[Hooks, str]
) -> None:
    inbox, port = smtp_server
    hooks, url = webhook
    smtp = SmtpSettings(host="127.0.0.1", port=port, from_address="zc@example.com")
    settings = NotificationSettings(
        contacts=("ops@example.com", "data@example.com"), webhook_url=url
    )
    history = [
        outcome(1, "success", rows_read=10, rows_delivered=10),
        outcome(2, "error", error_code="auth_failed", error_message="bad password"),
        outcome(3, "error", error_code="auth_failed", error_message="bad password"),
        outcome(4, "error", error_code="auth_failed", error_message="bad password"),
        outcome(5, "cancelled"),
        outcome(6, "error", error_code="unknown_table", error_message="USERS is gone"),
        outcome(7, "success", rows_read=3, rows_delivered=3),
        outcome(8, "success", rows_read=4, rows_delivered=4),
    ]
    state = AlertState()
    for run in history:
        state = await notify_run(state, run, settings, smtp)
    assert state == AlertState()
    subjects = [msg["Subject"] for _, msg in inbox.messages]
    assert subjects == [
        "[zerocopy] Sync users is failing: auth_failed",
        "[zerocopy] Sync users is failing: unknown_table",
        "[zerocopy] Sync users recovered",
    ]
    rcpts, first = inbox.messages[0]
    assert sorted(rcpts) == ["data@example.com", "ops@example.com"]
    assert first["From"] == "zc@example.com" and first["X-Zerocopy-Event"] == "sync_failing"
    assert "bad password" in first.get_payload()
    assert [(b["event"], b["run_id"]) for b in hooks.bodies] == [
        ("sync_failing", "run-2"),
        ("sync_failing", "run-6"),
        ("sync_recovered", "run-7"),
    ]
    assert hooks.bodies[1]["previous_error_code"] == "auth_failed"


async def test_row_error_alert_and_success_even_if_no_rows(
    smtp_server: tuple[Inbox, int], webhook: tuple[Hooks, str]
) -> None:
    inbox, port = smtp_server
    hooks, url = webhook
    smtp = SmtpSettings(host="127.0.0.1", port=port)
    settings = NotificationSettings(
        contacts=("ops@example.com",),
        row_error_threshold_pct=20,
        notify_on_success=True,
        success_even_if_no_rows=True,
        webhook_url=url,
    )
    state = await notify_run(
        AlertState(),
        outcome(1, "partial_success", rows_read=10, rows_delivered=7, row_errors=3),
        settings,
        smtp,
    )
    state = await notify_run(state, outcome(2, "success"), settings, smtp)
    events = [msg["X-Zerocopy-Event"] for _, msg in inbox.messages]
    assert events == ["row_errors_above_threshold", "sync_succeeded", "sync_succeeded"]
    assert [b["event"] for b in hooks.bodies] == events
    assert hooks.bodies[0]["row_error_pct"] == 30.0
    assert state == AlertState(row_errors_alerted=True)  # an empty run has no percentage


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_login_over_smtp_and_wrong_password(smtp_auth_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_auth_server
    note = Notification(Event.SYNC_FAILING, "subject", "body", {})
    good = smtp_settings_from_env(
        {
            "ZEROCOPY_SMTP_HOST": "127.0.0.1",
            "ZEROCOPY_SMTP_PORT": str(port),
            "ZEROCOPY_SMTP_USERNAME": SMTP_USER,
            "ZEROCOPY_SMTP_PASSWORD": SMTP_PASSWORD,
        }
    )
    assert good is not None and SMTP_PASSWORD not in repr(good)
    await send_email(good, note, ["ops@example.com"])
    assert len(inbox.messages) == 1
    bad = SmtpSettings(host="127.0.0.1", port=port, username=SMTP_USER, password="nope-nope")
    with pytest.raises(ZerocopyError) as info:
        await send_email(bad, note, ["ops@example.com"])
    assert info.value.code == errors.NOTIFICATION_FAILED
    assert "nope-nope" not in info.value.message
    assert len(inbox.messages) == 1


async def test_unreachable_channels_never_fail_the_run_and_state_advances(
    webhook: tuple[Hooks, str],
) -> None:
    hooks, url = webhook
    hooks.fail_next = 1  # the webhook answers 503 once, then 204: retried
    smtp = SmtpSettings(host="127.0.0.1", port=free_port())  # nothing listens
    settings = NotificationSettings(contacts=("ops@example.com",), webhook_url=url)
    state = await notify_run(
        AlertState(), outcome(1, "error", error_code="unreachable"), settings, smtp
    )
    assert state == AlertState("unreachable")
    assert [b["event"] for b in hooks.bodies] == ["sync_failing"]


def test_no_smtp_host_means_no_mail() -> None:
    assert smtp_settings_from_env({}) is None
    with pytest.raises(ZerocopyError) as info:
        smtp_settings_from_env({"ZEROCOPY_SMTP_HOST": "h", "ZEROCOPY_SMTP_PORT": "x"})
    assert info.value.code == errors.VALIDATION_ERROR


# ---------------------------------------------------------------- after real sync runs
async def test_real_sync_runs_mail_once_on_failure_and_once_on_recovery(
    smtp_server: tuple[Inbox, int], webhook: tuple[Hooks, str], tmp_path: Path
) -> None:
    """A DuckDB sync whose table is missing fails twice (one mail), then recovers (one mail)."""
    import duckdb

    inbox, port = smtp_server
    hooks, url = webhook
    duck = tmp_path / "wh.duckdb"
    duckdb.connect(str(duck)).close()
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'state.sqlite3'}")
    await db.upgrade()
    try:
        async with db.transaction() as s:
            ws = Workspace(name="acme")
            s.add(ws)
            await s.flush()
            cred = Credential(
                workspace_id=ws.id, name="wh", kind="duckdb", settings={"path": str(duck)}
            )
            s.add(cred)
            await s.flush()
            src = Source(
                workspace_id=ws.id,
                credential_id=cred.id,
                name="wh",
                kind="duckdb",
                scope="main",
                max_runtime_s=60,
                status=SourceStatus.ACTIVE,
            )
            s.add(src)
            await s.flush()
            sync = Sync(
                workspace_id=ws.id,
                name="users",
                source_id=src.id,
                table_name="users",
                data_type="user_attributes",
                status="active",
                contacts=["ops@example.com"],
                notifications={"webhook_url": url},
            )
            s.add(sync)
            await s.flush()
            sync_id = sync.id
        engine = SyncEngine(db, AdapterFactory(SecretBox([SecretBox.generate_key()])))
        smtp = SmtpSettings(host="127.0.0.1", port=port)
        statuses = []
        for _ in range(2):
            run = await engine.run(sync_id)
            statuses.append((run.status, run.error_code))
            await notify_after_run(db, run.id, smtp)
        await notify_after_run(db, run.id, smtp)  # a second call for one run sends nothing
        with duckdb.connect(str(duck)) as con:
            con.execute(
                "CREATE TABLE users AS SELECT TIMESTAMP '2026-01-01' AS updated_at, "
                "'u1' AS external_id, '{\"a\": 1}' AS payload"
            )
        run = await engine.run(sync_id)
        statuses.append((run.status, run.error_code))
        await notify_after_run(db, run.id, smtp)
    finally:
        await db.dispose()
    failing_code = statuses[0][1]
    assert statuses == [("error", failing_code), ("error", failing_code), ("success", None)]
    assert failing_code is not None and failing_code != errors.INTERNAL_ERROR
    assert [msg["X-Zerocopy-Event"] for _, msg in inbox.messages] == [
        "sync_failing",
        "sync_recovered",
    ]
    assert [b["event"] for b in hooks.bodies] == ["sync_failing", "sync_recovered"]
    assert hooks.bodies[1]["rows_delivered"] == 1
