"""Telling contacts that their schedule was paused: durable e-mail through :mod:`zerocopy.notify`.

The pause and its notice are recorded together (``schedule_notice``, one transaction); the
e-mail is tried at the end of that tick, after its firings, and, when it fails (mail server
down, refused, not configured), tried again by the scheduler's later ticks with an
exponential backoff (:func:`retry_delay`) until it is delivered, :data:`MAX_ATTEMPTS`
attempts failed, or the schedule is no longer in that pause (resumed: the mail would be
wrong by then). Each attempt is claimed with a compare-and-set on ``attempts``, so several
schedulers ticking at once send it once. The notice (``delivered``, ``attempts``, ``error``,
``next_attempt_at``) is shown by the schedule view and logged at every attempt. A pause
without contacts records a notice with nothing to send (never retried).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from zerocopy.errors import ZerocopyError
from zerocopy.logging import get_logger
from zerocopy.scheduling.models import Notice, ScheduleState
from zerocopy.state.db import Database
from zerocopy.state.models import utcnow

log = get_logger("zerocopy.scheduling.notices")

SCHEDULE_PAUSED = "schedule_paused"

FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(hours=1)
MAX_ATTEMPTS = 30
"""1, 2, 4, … 32 minutes, then hourly: the last attempt comes about a day after the pause."""
RETRIES_PER_TICK = 10
"""Notices retried by one tick at most (one unreachable server costs a timeout each)."""

NO_CONTACTS = "no contacts on this schedule"
OUTDATED = " (not sent any more: the schedule was resumed before the mail got through)"


def retry_delay(attempts: int) -> timedelta:
    """How long after its ``attempts``-th failed attempt a notice is tried again."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), MAX_RETRY)


@dataclass(frozen=True, slots=True)
class _Event:
    value: str


@dataclass(frozen=True, slots=True)
class PausedNotification:
    """Shaped like :class:`zerocopy.notify.decision.Notification` for ``send_email``."""

    subject: str
    body: str
    event: Any = _Event(SCHEDULE_PAUSED)


async def _send(subject: str, body: str, recipients: list[str]) -> str | None:
    """Send the mail once: ``None`` when delivered, else why not."""
    try:
        from zerocopy.notify.email import send_email, smtp_settings_from_env

        smtp = smtp_settings_from_env()
        if smtp is None:
            return "e-mail is not configured (ZEROCOPY_SMTP_HOST)"
        unsent = await send_email(smtp, PausedNotification(subject, body), recipients)  # type: ignore[arg-type]
        if unsent:  # delivered to the others: not tried again (they would get it twice)
            log.warning("schedule.notice_partly_unsent", unsent=unsent)
    except ZerocopyError as exc:
        return exc.message
    except ImportError:
        return "zerocopy.notify is not available"
    return None


async def attempt_delivery(db: Database, notice_id: int, now: datetime | None = None) -> bool:
    """Try to deliver notice ``notice_id`` once if it is due and nobody else is trying it:
    whether this call made an attempt. The outcome is recorded on the notice."""
    now = now or utcnow()
    async with db.session() as s:
        notice = await s.get(Notice, notice_id)
        state = (
            await s.get(ScheduleState, (notice.owner_kind, notice.owner_id))
            if notice is not None
            else None
        )
    if (
        notice is None
        or notice.delivered
        or notice.next_attempt_at is None
        or notice.next_attempt_at > now
        or not notice.recipients
    ):
        return False
    if state is None or state.paused_reason is None or state.paused_at != notice.created_at:
        # Resumed (or deleted, or paused again: a newer notice) before the mail got through:
        # telling the contacts now would be wrong; the notice keeps the last error.
        async with db.transaction() as s:
            await s.execute(
                sa.update(Notice)
                .where(Notice.id == notice_id, Notice.attempts == notice.attempts)
                .values(next_attempt_at=None, error=(notice.error or "") + OUTDATED)
            )
        log.info("schedule.notice_outdated", owner_id=notice.owner_id, notice_id=notice_id)
        return False
    attempts = notice.attempts + 1
    async with db.transaction() as s:
        claimed = await s.execute(
            sa.update(Notice)
            .where(
                Notice.id == notice_id,
                Notice.attempts == notice.attempts,
                Notice.delivered.is_(False),
            )
            .values(
                attempts=attempts,
                last_attempt_at=now,
                # Taken: a process dying mid-send leaves it due again after the backoff.
                next_attempt_at=now + retry_delay(attempts),
            )
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return False  # another process is trying it
    body = notice.body or f"{notice.subject}\n"
    error = await _send(notice.subject, body, list(notice.recipients))
    given_up = error is not None and attempts >= MAX_ATTEMPTS
    values: dict[str, Any] = {"error": error}
    if error is None:
        values |= {"delivered": True, "delivered_at": utcnow(), "next_attempt_at": None}
    elif given_up:
        values["next_attempt_at"] = None
    async with db.transaction() as s:
        await s.execute(
            sa.update(Notice)
            .where(Notice.id == notice_id, Notice.attempts == attempts)
            .values(**values)
        )
    event = (
        "schedule.notice_delivered"
        if error is None
        else ("schedule.notice_given_up" if given_up else "schedule.notice_failed")
    )
    log.info(
        event,
        owner_id=notice.owner_id,
        notice_id=notice_id,
        attempts=attempts,
        error=error,
        next_attempt_at=None
        if error is None or given_up
        else (now + retry_delay(attempts)).isoformat(),
    )
    return True


async def retry_due_notices(
    db: Database, now: datetime | None = None, limit: int = RETRIES_PER_TICK
) -> int:
    """Try again the notices whose e-mail failed and whose backoff is over; attempts made."""
    now = now or utcnow()
    async with db.session() as s:
        due = (
            await s.scalars(
                sa.select(Notice.id)
                .where(Notice.delivered.is_(False), Notice.next_attempt_at <= now)
                .order_by(Notice.next_attempt_at, Notice.id)
                .limit(limit)
            )
        ).all()
    made = 0
    for notice_id in due:
        made += await attempt_delivery(db, notice_id, now)
    return made


def paused_notice(
    owner_kind: str,
    owner_id: str,
    workspace_id: str,
    name: str,
    contacts: list[str],
    reason: str,
    now: datetime,
) -> Notice:
    """The notice of a pause, due for its first attempt at ``now`` (add it in the pause's
    transaction: a pause is never recorded without its notice)."""
    return Notice(
        owner_kind=owner_kind,
        owner_id=owner_id,
        workspace_id=workspace_id,
        event=SCHEDULE_PAUSED,
        recipients=list(contacts),
        subject=f"zerocopy: schedule of {owner_kind} {name!r} paused",
        body=f"The schedule of {owner_kind} {name!r} ({owner_id}) was {reason}.\n",
        delivered=False,
        attempts=0,
        error=None if contacts else NO_CONTACTS,
        next_attempt_at=now if contacts else None,
        created_at=now,
    )


def notice_view(notice: Notice | None) -> dict[str, Any] | None:
    """How the schedule view shows a pause's notice."""
    if notice is None:
        return None
    # Imported here: scheduler.py imports this module at load time.
    from zerocopy.scheduling.scheduler import iso

    return {
        "event": notice.event,
        "recipients": list(notice.recipients or []),
        "delivered": notice.delivered,
        "delivered_at": iso(notice.delivered_at),
        "attempts": notice.attempts,
        "error": notice.error,
        "next_attempt_at": iso(notice.next_attempt_at),
        "created_at": iso(notice.created_at),
    }
