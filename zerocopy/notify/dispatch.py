"""Decide and send: what the sync runner calls once a run has finished."""

from __future__ import annotations

from dataclasses import dataclass

from zerocopy.errors import ZerocopyError
from zerocopy.logging import get_logger
from zerocopy.notify.decision import (
    AlertState,
    Notification,
    NotificationSettings,
    RunOutcome,
    decide,
)
from zerocopy.notify.email import SmtpSettings, partly_unsent, send_email
from zerocopy.notify.webhook import send_webhook

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """A notification that could not be delivered on one channel."""

    channel: str
    event: str
    error: ZerocopyError


async def send_notifications(
    notifications: tuple[Notification, ...],
    settings: NotificationSettings,
    smtp: SmtpSettings | None,
) -> list[DeliveryFailure]:
    """Send each notification to the contacts and the webhook; failures are returned, logged."""
    failures: list[DeliveryFailure] = []
    for note in notifications:
        if settings.contacts and smtp is not None:
            try:
                unsent = await send_email(smtp, note, settings.contacts)
            except ZerocopyError as exc:
                failures.append(DeliveryFailure("email", note.event.value, exc))
            else:
                if unsent:  # the other contacts have it
                    failures.append(
                        DeliveryFailure("email", note.event.value, partly_unsent(smtp, unsent))
                    )
        if settings.webhook_url:
            try:
                await send_webhook(settings.webhook_url, note)
            except ZerocopyError as exc:
                failures.append(DeliveryFailure("webhook", note.event.value, exc))
    for failure in failures:
        log.warning(
            "notification_failed",
            channel=failure.channel,
            notification_event=failure.event,
            code=failure.error.code,
            error=failure.error.message,
        )
    return failures


async def notify_run(
    previous: AlertState,
    outcome: RunOutcome,
    settings: NotificationSettings,
    smtp: SmtpSettings | None,
) -> AlertState:
    """Send what ``outcome`` calls for and return the state to store with the sync.

    A notification that cannot be delivered never fails the run; it is logged with the code
    ``notification_failed``, and the state still advances so one broken mailbox does not turn
    into a mail storm once it works again.
    """
    decision = decide(previous, outcome, settings)
    await send_notifications(decision.notifications, settings, smtp)
    return decision.state
