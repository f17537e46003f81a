"""Contact e-mail addresses (sync and schedule contacts): what can be stored and mailed."""

from __future__ import annotations

from typing import Any

from zerocopy import errors
from zerocopy.errors import ZerocopyError

MAX_EMAIL_LENGTH = 254
MAX_EMAIL_LOCAL_LENGTH = 64
"""RFC 5321's limits (a path of 256 octets, a local part of 64): a longer address cannot be
mailed, so it is refused when saved rather than failing every notification."""


MAX_CONTACTS = 20
"""Contacts per sync or schedule: each notification is one mail to all of them."""


def check_contacts(values: list[Any]) -> None:
    """``validation_error`` (``details.field`` ``contacts``) for more than
    :data:`MAX_CONTACTS` addresses, an address with a control character (a NUL cannot even
    be stored in PostgreSQL text) or one longer than SMTP allows. The address syntax itself
    is checked by the caller's own rule."""
    if len(values) > MAX_CONTACTS:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"contacts must be a list of at most {MAX_CONTACTS} e-mail addresses",
            details={"field": "contacts", "reason": "out_of_range"},
        )
    for value in values:
        if not isinstance(value, str):
            continue
        address = value.strip()
        if any(ord(c) < 32 or ord(c) == 127 for c in address):
            problem = "it contains a control character"
        elif len(address) > MAX_EMAIL_LENGTH:
            problem = f"at most {MAX_EMAIL_LENGTH} characters"
        elif len(address.rpartition("@")[0]) > MAX_EMAIL_LOCAL_LENGTH:
            problem = f"at most {MAX_EMAIL_LOCAL_LENGTH} characters before the @"
        else:
            continue
        shown = address[:60] + ("…" if len(address) > 60 else "")
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"contacts: {shown!r} is not an e-mail address ({problem})",
            details={"field": "contacts", "reason": "invalid_value"},
        )
