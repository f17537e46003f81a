"""Sync notifications: a pure decision (what to tell whom) and the SMTP / webhook senders."""

from zerocopy.notify.decision import (
    AlertState,
    Decision,
    Event,
    Notification,
    NotificationSettings,
    RunOutcome,
    decide,
)
from zerocopy.notify.dispatch import DeliveryFailure, notify_run, send_notifications
from zerocopy.notify.email import SmtpSettings, send_email, smtp_settings_from_env
from zerocopy.notify.runs import notify_after_run, outcome_of
from zerocopy.notify.webhook import send_webhook

__all__ = [
    "AlertState",
    "Decision",
    "DeliveryFailure",
    "Event",
    "Notification",
    "NotificationSettings",
    "RunOutcome",
    "SmtpSettings",
    "decide",
    "notify_after_run",
    "notify_run",
    "outcome_of",
    "send_email",
    "send_notifications",
    "send_webhook",
    "smtp_settings_from_env",
]
