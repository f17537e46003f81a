"""Built-in profile store DTOs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class AliasRead(msgspec.Struct, kw_only=True):
    alias_label: str
    alias_name: str


class ProfileRead(msgspec.Struct, kw_only=True):
    id: str
    external_id: str | None
    braze_id: str
    email: str | None
    phone: str | None
    aliases: list[AliasRead]
    attributes: dict[str, Any]
    updated_at: datetime


class EventRead(msgspec.Struct, kw_only=True):
    name: str
    time: datetime
    properties: dict[str, Any]


class PurchaseRead(msgspec.Struct, kw_only=True):
    product_id: str
    currency: str
    price: float
    quantity: int
    time: datetime
    properties: dict[str, Any]


class CatalogItemRead(msgspec.Struct, kw_only=True):
    id: str
    fields: dict[str, Any]
    updated_at: datetime | None


class AccountRead(msgspec.Struct, kw_only=True):
    id: str
    name: str
    fields: dict[str, Any]
    updated_at: datetime | None
