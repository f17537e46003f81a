"""DTOs of generated key pairs: public keys, fingerprints, statements; never a private key."""

from __future__ import annotations

import msgspec


class RotationKeyRead(msgspec.Struct, kw_only=True):
    """One public key of a two-slot rotation and the user attribute (slot) that holds it."""

    public_key: str
    fingerprint: str
    slot: str


class KeyRotationRead(msgspec.Struct, kw_only=True):
    """Where a key rotation stands: ``idle``, ``pending`` (new key shown, not yet proven by a
    test) or ``retiring`` (new key in use; remove the old one, then finish)."""

    phase: str
    current: RotationKeyRead
    pending: RotationKeyRead | None
    retired: RotationKeyRead | None
    last_error: str | None


class CredentialKeyRead(msgspec.Struct, kw_only=True):
    """The key pair zerocopy generated for a credential: register ``public_key`` by running
    ``statements`` (Snowflake) or adding it to ``authorized_keys`` (SSH bastion)."""

    algorithm: str
    secret: str
    """Name of the secret that holds the private key (write-protected, never returned)."""
    public_key: str | None
    fingerprint: str | None
    installed_by: str
    statements: list[str]
    rotation: KeyRotationRead | None


class RotationTest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Test the pending key on a source of the credential (default: its oldest source)."""

    source_id: str | None = None


class SetupSqlRead(msgspec.Struct, kw_only=True):
    """The one-time setup script for the credential's warehouse user, role and public key."""

    credential_id: str
    kind: str
    sql: str
