"""Credential DTOs: ``secrets`` can be written, never read back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from api.schemas.credential_keys import CredentialKeyRead


class CredentialCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new credential. ``secrets`` (passwords, keys, tokens) are stored encrypted."""

    name: str
    kind: str
    settings: dict[str, Any] = msgspec.field(default_factory=dict)
    secrets: dict[str, str] = msgspec.field(default_factory=dict)
    expires_at: datetime | None = None
    """When the secret expires, for kinds whose secrets do (fabric); UTC when no zone."""


class CredentialUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Change a credential; omitted fields stay. ``secrets`` are merged over the stored ones."""

    name: str | None = None
    settings: dict[str, Any] | None = None
    secrets: dict[str, str] | None = None
    expires_at: datetime | None = None
    """A new expiry date; a new secret sent without one clears the old date."""


class CredentialRead(msgspec.Struct, kw_only=True):
    """A credential as the API shows it: the names of its secrets, never their values."""

    id: str
    name: str
    kind: str
    settings: dict[str, Any]
    secret_fields: list[str]
    public_key: str | None
    key: CredentialKeyRead | None = None
    """The generated key pair (public half, fingerprint, statements to run), if any."""
    created_at: datetime
    updated_at: datetime | None
    expires_at: datetime | None = None
    """When the secret expires (kinds whose secrets expire), as the user recorded it."""
    warnings: list[str] = msgspec.field(default_factory=list)
    """What to act on: the secret expires within 30 days, has expired, or has no date."""
