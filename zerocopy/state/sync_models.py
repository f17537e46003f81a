"""State models of ingestion syncs and of the built-in profile store.

Syncs: :class:`Sync` (definition + committed watermark), :class:`SyncRun` (one run; one
running run per sync, enforced by a partial unique index), :class:`SyncRowLog` (row verdicts
with payload and reason), :class:`SyncFile` (files already processed by a file-storage
source, by key and ETag). The profile store (``store_*`` tables) is the embedded default
destination; see :mod:`zerocopy.destinations.builtin`.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from zerocopy.state.models import Base, JSONType, new_id, utcnow


class Sync(Base):
    """An ingestion sync: source table, data type (immutable), schedule, contacts, watermark."""

    __tablename__ = "sync"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    source_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("source.id", ondelete="RESTRICT"), index=True
    )
    """Warehouse syncs: the source (credential + scope) the table is read from."""
    credential_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("credential.id", ondelete="RESTRICT"), index=True
    )
    """File-storage syncs: the object-storage credential (warehouse syncs: the source's)."""
    table_name: Mapped[str | None] = mapped_column(sa.String(400))
    source_settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    """File-storage syncs: bucket, prefix, format ... (see :mod:`zerocopy.sync.files`)."""
    data_type: Mapped[str] = mapped_column(sa.String(32))
    catalog_name: Mapped[str | None] = mapped_column(sa.String(200))
    frequency: Mapped[str] = mapped_column(sa.String(16), default="1d")
    contacts: Mapped[list[str]] = mapped_column(JSONType, default=list)
    notifications: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    row_limit: Mapped[int | None]
    lookback_s: Mapped[int] = mapped_column(default=0)
    row_log: Mapped[str] = mapped_column(sa.String(16), default="all")
    """``all``: every row's verdict is logged; ``errors``: only refused rows."""
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    """Type-specific options, e.g. ``account_fields`` (the account schema)."""
    destination: Mapped[str] = mapped_column(sa.String(32), default="builtin")
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")
    watermark: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    """Committed :class:`zerocopy.sync.watermark.WatermarkState` (``None``: never synced)."""
    last_test_at: Mapped[datetime | None]
    last_test_ok: Mapped[bool | None]
    last_test_error: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    last_run_id: Mapped[str | None] = mapped_column(sa.String(36))
    notify_state: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    """Last notified state (so one mail per state change); owned by :mod:`zerocopy.notify`."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SyncRun(Base):
    """One run of one sync: counts, watermark before/after, status, error."""

    __tablename__ = "sync_run"
    __table_args__ = (
        sa.Index(
            "uq_sync_run_running_sync",
            "sync_id",
            unique=True,
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        ),
        sa.Index("ix_sync_run_sync_created", "sync_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    sync_id: Mapped[str] = mapped_column(sa.ForeignKey("sync.id", ondelete="CASCADE"))
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    trigger: Mapped[str] = mapped_column(sa.String(32), default="api")
    status: Mapped[str] = mapped_column(sa.String(20), default="running")
    max_runtime_s: Mapped[float]
    rows_read: Mapped[int] = mapped_column(default=0)
    rows_skipped: Mapped[int] = mapped_column(default=0)
    """Rows read again at the boundary / in the lookback and recognised as already delivered."""
    rows_delivered: Mapped[int] = mapped_column(default=0)
    rows_errored: Mapped[int] = mapped_column(default=0)
    watermark_before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    watermark_after: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error_code: Mapped[str | None] = mapped_column(sa.String(64))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    cancel_requested_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class SyncRowLog(Base):
    """One row's verdict in one run: ``error`` (with code and reason), ``delivered`` or ``warning``."""

    __tablename__ = "sync_row_log"
    __table_args__ = (
        sa.Index("ix_sync_row_log_run_pos", "run_id", "position"),
        sa.Index("ix_sync_row_log_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str] = mapped_column(sa.ForeignKey("sync_run.id", ondelete="CASCADE"))
    sync_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    position: Mapped[int]
    verdict: Mapped[str] = mapped_column(sa.String(16))
    code: Mapped[str | None] = mapped_column(sa.String(64))
    message: Mapped[str | None] = mapped_column(sa.Text)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    """The source row as read (column → value, text-safe)."""
    row_updated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncFile(Base):
    """A file a file-storage sync has processed (each key + ETag once)."""

    __tablename__ = "sync_file"
    __table_args__ = (sa.UniqueConstraint("sync_id", "key", "etag"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    sync_id: Mapped[str] = mapped_column(sa.ForeignKey("sync.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(sa.String(1024))
    etag: Mapped[str] = mapped_column(sa.String(200))
    run_id: Mapped[str | None] = mapped_column(sa.String(36))
    status: Mapped[str] = mapped_column(sa.String(16), default="processed")
    error: Mapped[str | None] = mapped_column(sa.Text)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)


# ------------------------------------------------------------------ built-in profile store
class StoreProfile(Base):
    """A user profile: identifiers and merged attributes.

    A profile's id is derived from the workspace and the identifier that created it
    (:func:`zerocopy.destinations.builtin.profile_id`), and ``external_id`` is only ever set
    when a profile is created by it: the primary key keeps one profile per (workspace,
    external id) and a lookup by external id goes through it (:func:`profile_id_of_external`).
    No second unique index (each random-looking btree costs a bulk load as much as the key).
    """

    __tablename__ = "store_profile"
    __table_args__ = (
        sa.Index(
            "ix_store_profile_email",
            "workspace_id",
            "email",
            "updated_at",
            postgresql_where=sa.text("email IS NOT NULL"),
            sqlite_where=sa.text("email IS NOT NULL"),
        ),
        sa.Index(
            "ix_store_profile_phone",
            "workspace_id",
            "phone",
            "updated_at",
            postgresql_where=sa.text("phone IS NOT NULL"),
            sqlite_where=sa.text("phone IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(sa.String(36))
    """No foreign key: bulk syncs would pay a per-row check; deleting a workspace deletes its
    store rows explicitly (:func:`zerocopy.services.workspaces.delete_workspace`)."""
    external_id: Mapped[str | None] = mapped_column(sa.String(400))
    braze_id: Mapped[str] = mapped_column(sa.String(64))
    """Always the profile id's 32 hex digits (:func:`braze_id_of`); not indexed: a lookup by
    braze id goes through the primary key (:func:`profile_id_of_braze`)."""
    email: Mapped[str | None] = mapped_column(sa.String(400))
    phone: Mapped[str | None] = mapped_column(sa.String(64))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    updated_at: Mapped[datetime]
    """The ``UPDATED_AT`` of the last row applied (email/phone pick the most recent profile)."""


PROFILE_NAMESPACE = uuid.UUID("6f1c2a8e-2d4b-4c1e-9a57-0c6f3b1d9e21")
"""UUIDv5 namespace of the ids of the profiles an identifier creates."""


def derived_profile_id(workspace_id: str, kind: str, value: str, label: str | None = None) -> str:
    """Deterministic id of the profile identifier ``kind``/``value`` (/``label``) creates.

    ``uuid.uuid5`` spelled out (SHA-1 of namespace + name, version 5, RFC 4122 variant): the
    same ids, without the UUID object per row. The value is taken as is (external ids are
    case-sensitive and stored exactly as hashed).
    """
    key = f"{workspace_id}|{kind}|{value}|{label or ''}"
    digest = bytearray(hashlib.sha1(PROFILE_NAMESPACE.bytes + key.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def profile_id_of_external(workspace_id: str, external_id: str) -> str:
    """The id of the profile ``external_id`` designates in the workspace (whether it exists
    or not): the only profile whose ``external_id`` can be it (see :class:`StoreProfile`)."""
    return derived_profile_id(workspace_id, "external_id", external_id)


def braze_id_of(profile_id: str) -> str:
    """The braze id of a profile: its id without dashes."""
    return profile_id.replace("-", "")


def profile_id_of_braze(braze_id: str) -> str | None:
    """The id of the profile ``braze_id`` can belong to, or None when no profile can have it."""
    b = braze_id.lower()
    if len(b) != 32 or b != braze_id or any(c not in "0123456789abcdef" for c in b):
        return None
    return f"{b[:8]}-{b[8:12]}-{b[12:16]}-{b[16:20]}-{b[20:]}"


class StoreAlias(Base):
    __tablename__ = "store_alias"

    workspace_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    alias_label: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    alias_name: Mapped[str] = mapped_column(sa.String(400), primary_key=True)
    profile_id: Mapped[str] = mapped_column(
        sa.ForeignKey("store_profile.id", ondelete="CASCADE"), index=True
    )


class StoreEvent(Base):
    __tablename__ = "store_event"
    __table_args__ = (
        sa.Index(
            "ix_store_event_address_row_hash",
            "workspace_id",
            "row_hash",
            sqlite_where=sa.text("by_address = 1"),
            postgresql_where=sa.text("by_address"),
        ),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    workspace_id: Mapped[str] = mapped_column(sa.String(36))
    profile_id: Mapped[str] = mapped_column(
        sa.ForeignKey("store_profile.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(400))
    time: Mapped[datetime]
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    row_hash: Mapped[str] = mapped_column(sa.String(32))
    by_address: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    """Identified by e-mail or phone (the address may move to another profile later). A
    replay after a watermark reset counts such copies on every profile of the workspace,
    through the partial ``(workspace_id, row_hash)`` index. Rows of unknown origin (stored
    before this column) count as such."""


class StorePurchase(Base):
    __tablename__ = "store_purchase"
    __table_args__ = (
        sa.Index(
            "ix_store_purchase_address_row_hash",
            "workspace_id",
            "row_hash",
            sqlite_where=sa.text("by_address = 1"),
            postgresql_where=sa.text("by_address"),
        ),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    workspace_id: Mapped[str] = mapped_column(sa.String(36))
    profile_id: Mapped[str] = mapped_column(
        sa.ForeignKey("store_profile.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[str] = mapped_column(sa.String(400))
    currency: Mapped[str] = mapped_column(sa.String(3))
    price: Mapped[float]
    quantity: Mapped[int]
    time: Mapped[datetime]
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    row_hash: Mapped[str] = mapped_column(sa.String(32))
    by_address: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    """Identified by e-mail or phone (the address may move to another profile later). A
    replay after a watermark reset counts such copies on every profile of the workspace,
    through the partial ``(workspace_id, row_hash)`` index. Rows of unknown origin (stored
    before this column) count as such."""


class StoreCatalogItem(Base):
    __tablename__ = "store_catalog_item"

    workspace_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    catalog: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    item_id: Mapped[str] = mapped_column(sa.String(400), primary_key=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    updated_at: Mapped[datetime | None]


class StoreAccount(Base):
    __tablename__ = "store_account"

    workspace_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.String(400), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(400))
    fields: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    updated_at: Mapped[datetime | None]
