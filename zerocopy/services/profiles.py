"""Read access to the built-in profile store: profiles by any identifier, events, catalogs, accounts."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.services._common import MAX_ID_LENGTH, shown_id
from zerocopy.state.sync_models import (
    StoreAccount,
    StoreAlias,
    StoreCatalogItem,
    StoreEvent,
    StoreProfile,
    StorePurchase,
    profile_id_of_braze,
    profile_id_of_external,
)
from zerocopy.sync.validate import normalize_phone

MAX_LIMIT = 1000


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ZerocopyError(
            errors.VALIDATION_ERROR, f"limit must be 1-{MAX_LIMIT}", details={"field": "limit"}
        )
    return limit


async def find_profile(
    session: AsyncSession,
    workspace_id: str,
    *,
    external_id: str | None = None,
    braze_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    alias_name: str | None = None,
    alias_label: str | None = None,
) -> dict[str, Any]:
    """The profile one identifier designates (e-mail/phone: the most recently updated one)."""
    given = {
        k: v
        for k, v in {
            "external_id": external_id,
            "braze_id": braze_id,
            "email": email.strip().lower() if email else None,
            "phone": normalize_phone(phone) if phone else None,
        }.items()
        if v
    }
    alias = alias_name is not None or alias_label is not None
    if len(given) + int(alias) != 1 or (alias and not (alias_name and alias_label)):
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            "look a profile up by exactly one of external_id, braze_id, email, phone or "
            "alias_name+alias_label",
            details={
                "reason": "exactly_one",
                "allowed": ["external_id", "braze_id", "email", "phone", "alias_name+alias_label"],
            },
        )
    if any("\x00" in str(v) for v in [*given.values(), alias_name or "", alias_label or ""]):
        # No stored identifier holds NUL (PostgreSQL text cannot): nothing to look up.
        raise ZerocopyError(errors.NOT_FOUND, "no profile has this identifier")
    stmt = sa.select(StoreProfile).where(StoreProfile.workspace_id == workspace_id)
    if alias:
        stmt = stmt.join(StoreAlias, StoreAlias.profile_id == StoreProfile.id).where(
            StoreAlias.alias_name == alias_name, StoreAlias.alias_label == alias_label
        )
    else:
        ((key, value),) = given.items()
        # Neither is indexed: a braze id is its profile's id without dashes, an external id's
        # profile has the id derived from it. By primary key (and the identifier itself).
        if key == "braze_id":
            stmt = stmt.where(StoreProfile.id == (profile_id_of_braze(value) or ""))
        elif key == "external_id":
            stmt = stmt.where(StoreProfile.id == profile_id_of_external(workspace_id, value))
        stmt = stmt.where(getattr(StoreProfile, key) == value)
    stmt = stmt.order_by(StoreProfile.updated_at.desc(), StoreProfile.id).limit(1)
    profile = await session.scalar(stmt)
    if profile is None:
        raise ZerocopyError(errors.NOT_FOUND, "no profile has this identifier")
    return await profile_dict(session, profile)


async def profile_dict(session: AsyncSession, profile: StoreProfile) -> dict[str, Any]:
    aliases = (
        await session.execute(
            sa.select(StoreAlias.alias_label, StoreAlias.alias_name)
            .where(StoreAlias.profile_id == profile.id)
            .order_by(StoreAlias.alias_label, StoreAlias.alias_name)
        )
    ).all()
    return {
        "id": profile.id,
        "external_id": profile.external_id,
        "braze_id": profile.braze_id,
        "email": profile.email,
        "phone": profile.phone,
        "aliases": [{"alias_label": a[0], "alias_name": a[1]} for a in aliases],
        "attributes": profile.attributes or {},
        "updated_at": profile.updated_at,
    }


async def _profile(session: AsyncSession, workspace_id: str, profile_id: str) -> StoreProfile:
    plausible = 0 < len(profile_id) <= MAX_ID_LENGTH and profile_id.isprintable()
    profile = await session.get(StoreProfile, profile_id) if plausible else None
    if profile is None or profile.workspace_id != workspace_id:
        shown = shown_id(profile_id)
        raise ZerocopyError(
            errors.NOT_FOUND,
            f"profile {shown} not found",
            details={"id": shown, "kind": "profile"},
        )
    return profile


async def get_profile(session: AsyncSession, workspace_id: str, profile_id: str) -> dict[str, Any]:
    return await profile_dict(session, await _profile(session, workspace_id, profile_id))


async def list_events(
    session: AsyncSession, workspace_id: str, profile_id: str, *, limit: int = 100
) -> list[dict[str, Any]]:
    """Events of a profile, oldest first."""
    await _profile(session, workspace_id, profile_id)
    rows = await session.scalars(
        sa.select(StoreEvent)
        .where(StoreEvent.profile_id == profile_id)
        .order_by(StoreEvent.time, StoreEvent.id)
        .limit(_limit(limit))
    )
    return [{"name": e.name, "time": e.time, "properties": e.properties} for e in rows]


async def list_purchases(
    session: AsyncSession, workspace_id: str, profile_id: str, *, limit: int = 100
) -> list[dict[str, Any]]:
    """Purchases of a profile, oldest first."""
    await _profile(session, workspace_id, profile_id)
    rows = await session.scalars(
        sa.select(StorePurchase)
        .where(StorePurchase.profile_id == profile_id)
        .order_by(StorePurchase.time, StorePurchase.id)
        .limit(_limit(limit))
    )
    return [
        {
            "product_id": p.product_id,
            "currency": p.currency,
            "price": p.price,
            "quantity": p.quantity,
            "time": p.time,
            "properties": p.properties,
        }
        for p in rows
    ]


async def list_catalog_items(
    session: AsyncSession, workspace_id: str, catalog: str, *, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """Items of a catalog by id (none for a name no catalog can have: over the store's 200
    characters, or with a NUL, which PostgreSQL text refuses)."""
    if len(catalog) > 200 or "\x00" in catalog:
        return []
    rows = await session.scalars(
        sa.select(StoreCatalogItem)
        .where(StoreCatalogItem.workspace_id == workspace_id, StoreCatalogItem.catalog == catalog)
        .order_by(StoreCatalogItem.item_id)
        .limit(_limit(limit))
        .offset(offset)
    )
    return [{"id": i.item_id, "fields": i.fields, "updated_at": i.updated_at} for i in rows]


async def list_accounts(
    session: AsyncSession, workspace_id: str, *, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """Accounts by id."""
    rows = await session.scalars(
        sa.select(StoreAccount)
        .where(StoreAccount.workspace_id == workspace_id)
        .order_by(StoreAccount.account_id)
        .limit(_limit(limit))
        .offset(offset)
    )
    return [
        {"id": a.account_id, "name": a.name, "fields": a.fields, "updated_at": a.updated_at}
        for a in rows
    ]
