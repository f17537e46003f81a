"""SMTP delivery of notifications (stdlib ``smtplib`` in a worker thread).

Settings come from ``ZEROCOPY_SMTP_*`` variables (see :func:`smtp_settings_from_env`); the
password is a secret: it is registered for log redaction and never appears in ``repr``.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import anyio

from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.logging import register_secret
from zerocopy.notify.decision import Notification

SMTP_TIMEOUT_S = 30.0
"""Socket timeout of one SMTP conversation."""


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where notification mails go out (no password in ``repr``)."""

    host: str
    port: int = 25
    from_address: str = "zerocopy@localhost"
    starttls: bool = False
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, from_address={self.from_address!r}, "
            f"starttls={self.starttls}, username={self.username!r}, "
            f"password={'***' if self.password else None})"
        )


def smtp_settings_from_env(env: Mapping[str, str] | None = None) -> SmtpSettings | None:
    """``ZEROCOPY_SMTP_HOST`` / ``_PORT`` / ``_FROM`` / ``_STARTTLS`` / ``_USERNAME`` / ``_PASSWORD``.

    Returns ``None`` when no host is configured (e-mail notifications are then off).
    """
    env = os.environ if env is None else env
    host = (env.get("ZEROCOPY_SMTP_HOST") or "").strip()
    if not host:
        return None
    raw_port = env.get("ZEROCOPY_SMTP_PORT") or "25"
    try:
        port = int(raw_port)
    except ValueError:
        raise ZerocopyError(
            errors.VALIDATION_ERROR, f"ZEROCOPY_SMTP_PORT must be an integer, got {raw_port!r}"
        ) from None
    password = env.get("ZEROCOPY_SMTP_PASSWORD") or None
    register_secret(password)
    username = env.get("ZEROCOPY_SMTP_USERNAME") or None
    if password and not username:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            "ZEROCOPY_SMTP_PASSWORD is set without ZEROCOPY_SMTP_USERNAME: set both to log in",
        )
    return SmtpSettings(
        host=host,
        port=port,
        from_address=env.get("ZEROCOPY_SMTP_FROM") or "zerocopy@localhost",
        starttls=(env.get("ZEROCOPY_SMTP_STARTTLS") or "").lower() in {"1", "true", "yes"},
        username=username,
        password=password,
    )


def build_message(
    notification: Notification, sender: str, recipients: Sequence[str]
) -> EmailMessage:
    """The RFC 5322 message for one notification."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = notification.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="zerocopy")
    msg["X-Zerocopy-Event"] = notification.event.value
    msg.set_content(notification.body)
    return msg


def _send_blocking(settings: SmtpSettings, msg: EmailMessage) -> None:
    with smtplib.SMTP(settings.host, settings.port, timeout=SMTP_TIMEOUT_S) as smtp:
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        smtp.send_message(msg)


async def send_email(
    settings: SmtpSettings, notification: Notification, recipients: Sequence[str]
) -> None:
    """Send one notification to ``recipients``; SMTP failures become ``notification_failed``."""
    if not recipients:
        return
    msg = build_message(notification, settings.from_address, recipients)
    try:
        await anyio.to_thread.run_sync(_send_blocking, settings, msg)
    except smtplib.SMTPAuthenticationError:
        raise ZerocopyError(
            errors.NOTIFICATION_FAILED,
            f"SMTP server {settings.host}:{settings.port} refused the login of "
            f"{settings.username!r}: check ZEROCOPY_SMTP_USERNAME / ZEROCOPY_SMTP_PASSWORD",
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise ZerocopyError(
            errors.NOTIFICATION_FAILED,
            f"could not send mail through {settings.host}:{settings.port}: "
            f"{type(exc).__name__}: {exc}; check ZEROCOPY_SMTP_HOST / ZEROCOPY_SMTP_PORT",
        ) from None
