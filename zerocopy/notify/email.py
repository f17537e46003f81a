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


def ascii_address(address: str) -> str | None:
    """``address`` as a server without SMTPUTF8 (RFC 6531) takes it: the domain in IDNA
    (``ana@bücher.example`` → ``ana@xn--bcher-kva.example``, the same mailbox), or None when
    the local part is not ASCII (no such server can take it)."""
    local, _, domain = address.strip().rpartition("@")
    if not local.isascii():
        return None
    if domain.isascii():
        return f"{local}@{domain}"
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return None


def _send_blocking(
    settings: SmtpSettings, notification: Notification, recipients: Sequence[str]
) -> list[str]:
    """Send one mail to ``recipients``; the addresses that could not be mailed (refused by
    the server, or needing SMTPUTF8 it does not offer), the others having been mailed."""
    with smtplib.SMTP(settings.host, settings.port, timeout=SMTP_TIMEOUT_S) as smtp:
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        smtp.ehlo_or_helo_if_needed()
        unsent: list[str] = []
        if smtp.has_extn("smtputf8"):
            to = list(recipients)
        else:
            # One contact with a non-ASCII address must not cost every contact the mail
            # (smtplib refuses the whole message): domains go in IDNA, the rest is skipped.
            to = []
            for address in recipients:
                plain = ascii_address(address)
                if plain is None:
                    unsent.append(address)
                else:
                    to.append(plain)
        if to:
            msg = build_message(notification, settings.from_address, to)
            try:
                refused = smtp.send_message(msg, to_addrs=to)
            except smtplib.SMTPRecipientsRefused as exc:
                refused = exc.recipients
            unsent.extend(refused)
        return unsent


async def send_email(
    settings: SmtpSettings, notification: Notification, recipients: Sequence[str]
) -> list[str]:
    """Send one notification to ``recipients``: the contacts it could not be sent to (refused
    by the server, or a non-ASCII name before the ``@`` while the server has no SMTPUTF8),
    the others having it -- see :func:`partly_unsent`. SMTP failures, and a mail that reached
    none of the contacts, raise ``notification_failed``."""
    if not recipients:
        return []
    try:
        unsent = await anyio.to_thread.run_sync(
            _send_blocking, settings, notification, list(recipients)
        )
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
    if len(unsent) >= len(recipients):
        raise partly_unsent(settings, unsent)
    return unsent


def partly_unsent(settings: SmtpSettings, unsent: Sequence[str]) -> ZerocopyError:
    """``notification_failed`` naming the contacts a mail did not reach (the others did: a
    caller retrying the mail would send it to them again)."""
    return ZerocopyError(
        errors.NOTIFICATION_FAILED,
        f"SMTP server {settings.host}:{settings.port} did not take the mail for "
        f"{', '.join(unsent)} (an address refused, or one with a non-ASCII name before the @ "
        "while the server does not offer SMTPUTF8)",
    )
