"""Telling contacts that their schedule was paused: e-mail through :mod:`zerocopy.notify`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zerocopy.errors import ZerocopyError
from zerocopy.logging import get_logger
from zerocopy.scheduling.models import Notice
from zerocopy.state.db import Database

log = get_logger("zerocopy.scheduling.notices")

SCHEDULE_PAUSED = "schedule_paused"


@dataclass(frozen=True, slots=True)
class _Event:
    value: str


@dataclass(frozen=True, slots=True)
class PausedNotification:
    """Shaped like :class:`zerocopy.notify.decision.Notification` for ``send_email``."""

    subject: str
    body: str
    event: Any = _Event(SCHEDULE_PAUSED)


async def notify_paused(
    db: Database,
    owner_kind: str,
    owner_id: str,
    workspace_id: str,
    name: str,
    contacts: list[str],
    reason: str,
) -> Notice:
    """E-mail ``contacts`` (when SMTP is configured) and record the notice either way."""
    note = PausedNotification(
        subject=f"zerocopy: schedule of {owner_kind} {name!r} paused",
        body=f"The schedule of {owner_kind} {name!r} ({owner_id}) was {reason}.\n",
    )
    delivered, error = False, None
    if not contacts:
        error = "no contacts on this schedule"
    else:
        try:
            from zerocopy.notify.email import send_email, smtp_settings_from_env

            smtp = smtp_settings_from_env()
            if smtp is None:
                error = "e-mail is not configured (ZEROCOPY_SMTP_HOST)"
            else:
                await send_email(smtp, note, contacts)  # type: ignore[arg-type]
                delivered = True
        except ZerocopyError as exc:
            error = exc.message
        except ImportError:
            error = "zerocopy.notify is not available"
    notice = Notice(
        owner_kind=owner_kind,
        owner_id=owner_id,
        workspace_id=workspace_id,
        event=SCHEDULE_PAUSED,
        recipients=list(contacts),
        subject=note.subject,
        delivered=delivered,
        error=error,
    )
    async with db.transaction() as s:
        s.add(notice)
    log.info("schedule.notice", owner_id=owner_id, delivered=delivered, error=error)
    return notice
