"""Credentials: warehouse logins, secrets encrypted at rest and never returned."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from zerocopy import errors
from zerocopy.credential_kinds import kind_class, secret_expires
from zerocopy.errors import ZerocopyError
from zerocopy.secrets import SecretBox
from zerocopy.services import warehouse_keys
from zerocopy.services._common import (
    check_name,
    ensure_unique_name,
    get_scoped,
    list_scoped,
    refuse_if_used,
)
from zerocopy.state.models import Credential, Source, SourceStatus


def secret_field_names(box: SecretBox, cred: Credential) -> list[str]:
    """Names (never values) of the secrets stored on ``cred``."""
    return sorted(k for k in open_secrets(box, cred) if k != warehouse_keys.ROTATION_FIELD)


def open_secrets(box: SecretBox, cred: Credential) -> dict[str, str]:
    """Decrypted secrets of ``cred`` (only for connecting; never log or return them)."""
    return box.decrypt(cred.secret_ciphertext)


def _check_fields(kind: str, settings: Any, secrets: Any) -> tuple[dict[str, Any], dict[str, str]]:
    if not isinstance(settings, dict):
        raise ZerocopyError(errors.VALIDATION_ERROR, "'settings' must be a JSON object")
    if not isinstance(secrets, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in secrets.items()
    ):
        raise ZerocopyError(
            errors.VALIDATION_ERROR, "'secrets' must be a JSON object of string values"
        )
    for field, value in [*_leaves(settings, ""), *secrets.items()]:
        if (isinstance(value, str) and "\x00" in value) or "\x00" in field:
            shown = field.replace("\x00", "\\u0000")  # the name only, never a value
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                f"credential field {shown!r} contains a NUL character, which no warehouse "
                "setting or secret can hold",
                details={"field": shown},
            )
    kind_class(kind).check_credential(settings, secrets)
    return settings, secrets


def _leaves(value: Any, path: str) -> list[tuple[str, Any]]:
    """``(dotted.path, value)`` of every scalar in nested settings."""
    if isinstance(value, dict):
        out: list[tuple[str, Any]] = []
        for key, inner in value.items():
            out.extend(_leaves(inner, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(value, list):
        return [leaf for i, inner in enumerate(value) for leaf in _leaves(inner, f"{path}[{i}]")]
    return [(path, value)]


EXPIRY_WARNING_DAYS = 30
"""A secret that expires within this many days gets a warning on every read."""


def _check_expiry(kind: str, expires_at: datetime | None) -> datetime | None:
    """``expires_at`` as aware UTC; refused for kinds whose secrets do not expire."""
    if expires_at is None:
        return None
    if not secret_expires(kind):
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"{kind} credentials have no secret that expires; omit 'expires_at'",
            details={"field": "expires_at"},
        )
    # A date without a zone is taken as UTC, like every naive timestamp in zerocopy.
    return expires_at.replace(tzinfo=UTC) if expires_at.tzinfo is None else expires_at


def credential_warnings(cred: Credential, now: datetime | None = None) -> list[str]:
    """What the user should act on: a secret that expires soon, has expired, or has no date."""
    kind = cred.kind
    try:
        if not secret_expires(kind):
            return []
    except ZerocopyError:
        return []
    if cred.expires_at is None:
        return [
            f"the {kind} secret's expiry date is not recorded: set 'expires_at' (PATCH "
            f"/v1/credentials/{cred.id}) so zerocopy warns {EXPIRY_WARNING_DAYS} days before"
        ]
    now = now or datetime.now(UTC)
    expires = cred.expires_at
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    left = (expires - now).total_seconds()
    when = expires.date().isoformat()
    if left <= 0:
        return [
            f"the {kind} secret expired on {when}: refreshes and syncs fail with auth_failed; "
            "create a new secret and update the credential's secret and 'expires_at'"
        ]
    days = math.ceil(left / 86400)
    if days <= EXPIRY_WARNING_DAYS:
        unit = "day" if days == 1 else "days"
        return [
            f"the {kind} secret expires in {days} {unit} (on {when}): create a new secret and "
            "update the credential's secret and 'expires_at' before then"
        ]
    return []


async def create_credential(
    session: AsyncSession,
    box: SecretBox,
    workspace_id: str,
    *,
    name: str,
    kind: str,
    settings: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    expires_at: datetime | None = None,
) -> Credential:
    """Validate the fields for ``kind`` and store them; secrets encrypted."""
    name = check_name(name, "credential")
    kind_class(kind)  # unknown kind: validation_error before anything else
    expires_at = _check_expiry(kind, expires_at)
    # Generated key pairs (Snowflake, SSH tunnels) and one-login-per-workspace: the adapter says.
    keys = await warehouse_keys.prepare_new(
        session, workspace_id, kind, settings or {}, secrets or {}
    )
    settings, secrets = _check_fields(kind, settings or {}, keys.secrets)
    await ensure_unique_name(session, Credential, workspace_id, name)
    cred = Credential(
        workspace_id=workspace_id,
        name=name,
        kind=kind,
        settings=settings,
        secret_ciphertext=box.encrypt(secrets) if secrets else None,
        expires_at=expires_at,
    )
    keys.apply(cred)
    session.add(cred)
    await session.commit()
    return cred


async def list_credentials(session: AsyncSession, workspace_id: str) -> list[Credential]:
    return await list_scoped(session, Credential, workspace_id, Credential.created_at)


async def get_credential(
    session: AsyncSession, workspace_id: str, credential_id: str
) -> Credential:
    return await get_scoped(session, Credential, workspace_id, credential_id)


async def update_credential(
    session: AsyncSession,
    box: SecretBox,
    workspace_id: str,
    credential_id: str,
    *,
    name: str | None = None,
    settings: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    expires_at: datetime | None = None,
) -> Credential:
    """Rename, replace settings, or merge new secrets over the stored ones.

    Sources using a changed credential go back to ``draft``: their last test no longer holds.
    A new secret of an expiring kind sent without ``expires_at`` clears the old date (it
    described the old secret); the read then asks for the new one.
    """
    cred = await get_scoped(session, Credential, workspace_id, credential_id)
    expires_at = _check_expiry(cred.kind, expires_at)
    if expires_at is not None:
        cred.expires_at = expires_at
    elif secrets and secret_expires(cred.kind):
        cred.expires_at = None
    if name is not None:
        name = check_name(name, "credential")
        await ensure_unique_name(session, Credential, workspace_id, name, exclude_id=cred.id)
        cred.name = name
    if settings is not None or secrets is not None:
        merged_secrets = {**open_secrets(box, cred), **(secrets or {})}
        merged_secrets = await warehouse_keys.prepare_update(
            session,
            cred,
            cred.settings if settings is None else settings,
            merged_secrets,
            sent=secrets or {},
        )
        new_settings, merged_secrets = _check_fields(
            cred.kind, cred.settings if settings is None else settings, merged_secrets
        )
        cred.settings = new_settings
        cred.secret_ciphertext = box.encrypt(merged_secrets) if merged_secrets else None
        await session.execute(
            sa.update(Source)
            .where(Source.credential_id == cred.id)
            .values(status=SourceStatus.DRAFT)
            .execution_options(synchronize_session=False)
        )
    await session.commit()
    return cred


async def delete_credential(session: AsyncSession, workspace_id: str, credential_id: str) -> None:
    """Delete a credential; ``credential_in_use`` while a source or sync uses it, naming them
    (``details.source_ids`` and ``details.sync_ids``, both always present)."""
    from zerocopy.state.sync_models import Sync  # file-storage syncs hold a credential directly

    cred = await get_scoped(session, Credential, workspace_id, credential_id)
    await refuse_if_used(
        session,
        errors.CREDENTIAL_IN_USE,
        "credential",
        cred.name,
        [
            ("source", Source.id, Source.credential_id == cred.id),
            ("sync", Sync.id, Sync.credential_id == cred.id),
        ],
    )
    await session.delete(cred)
    await session.commit()
