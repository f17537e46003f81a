"""SQLAlchemy 2 models of the state database (SQLite by default, PostgreSQL in production).

Ids are string UUIDs; timestamps are timezone-aware UTC on both databases (see
:class:`UTCDateTime`). The schema itself is owned by the Alembic migrations in
``zerocopy/state/migrations``; these models must stay in step with them.

Membership is stored columnar: :class:`SegmentMemberChunk` rows each hold a sorted slice of a
segment's ids as one Arrow IPC blob (see :mod:`zerocopy.state.membership`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

MIN_MAX_RUNTIME_S = 60
"""Smallest max runtime the product accepts for a source (validated by the service layer)."""

MAX_MAX_RUNTIME_S = 3600
"""Largest max runtime the product accepts for a source (validated by the service layer)."""

DEFAULT_MAX_RUNTIME_S = 300


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes everywhere: ``timestamptz`` on PostgreSQL, naive-UTC text on SQLite."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        value = value.astimezone(UTC)
        # SQLite has no time zones: store naive UTC so text comparisons stay ordered.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = sa.JSON().with_variant(JSONB(), "postgresql")

IdText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
"""Member ids compare byte-wise everywhere (SQLite's BINARY, PostgreSQL's ``C``), as Arrow sorts."""


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONType}


# --------------------------------------------------------------------------- statuses
class SourceStatus:
    DRAFT = "draft"
    ACTIVE = "active"
    ERROR = "error"


class SegmentStatus:
    ACTIVE = "active"
    PAUSED = "paused"


class RunStatus:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"

    ACTIVE = (QUEUED, RUNNING)
    """A segment may have at most one run in these statuses (enforced by a unique index)."""

    FINAL = (SUCCEEDED, FAILED, TIMED_OUT, CANCELLED)


class RunTrigger:
    API = "api"
    CLI = "cli"
    DEMO = "demo"
    SCHEDULE = "schedule"


# --------------------------------------------------------------------------- tables
class Workspace(Base):
    __tablename__ = "workspace"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(200))
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    """A workspace bearer key: only its lookup prefix and hash are stored, never the key."""

    __tablename__ = "api_key"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str | None] = mapped_column(sa.String(200))
    prefix: Mapped[str] = mapped_column(sa.String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    workspace: Mapped[Workspace] = relationship(lazy="raise")


class Credential(Base):
    """Connection settings (non-secret, JSON) and the encrypted secret fields of a warehouse login."""

    __tablename__ = "credential"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(32))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secret_ciphertext: Mapped[str | None] = mapped_column(sa.Text)
    """Fernet token of the JSON object of secret fields (see :mod:`zerocopy.secrets`)."""
    public_key: Mapped[str | None] = mapped_column(sa.Text)
    pending_public_key: Mapped[str | None] = mapped_column(sa.Text)
    """Public key of a generated key pair not yet confirmed (rotation in progress)."""
    key_fingerprint: Mapped[str | None] = mapped_column(sa.String(128))
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Source(Base):
    """A scope (schema) of a warehouse reached through a credential."""

    __tablename__ = "source"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    credential_id: Mapped[str] = mapped_column(
        sa.ForeignKey("credential.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(32))
    scope: Mapped[str] = mapped_column(sa.String(400))
    max_runtime_s: Mapped[int] = mapped_column(default=DEFAULT_MAX_RUNTIME_S)
    status: Mapped[str] = mapped_column(sa.String(16), default=SourceStatus.DRAFT)
    last_test_at: Mapped[datetime | None]
    last_test_error: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    credential: Mapped[Credential] = relationship(lazy="raise")


class CatalogTable(Base):
    """A table or view the source's credential can see, as of its last test/refresh of the catalog."""

    __tablename__ = "catalog_table"
    __table_args__ = (sa.UniqueConstraint("source_id", "schema", "name"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    source_id: Mapped[str] = mapped_column(
        sa.ForeignKey("source.id", ondelete="CASCADE"), index=True
    )
    schema: Mapped[str] = mapped_column(sa.String(400))
    name: Mapped[str] = mapped_column(sa.String(400))
    kind: Mapped[str] = mapped_column(sa.String(16), default="table")
    description: Mapped[str | None] = mapped_column(sa.Text)
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    """``[{"name", "data_type", "description", "nullable"}, ...]`` in warehouse order."""
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)


class Segment(Base):
    """A saved segment query and a pointer to its current membership."""

    __tablename__ = "segment"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    source_id: Mapped[str] = mapped_column(
        sa.ForeignKey("source.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    sql: Mapped[str] = mapped_column(sa.Text)
    dialect: Mapped[str] = mapped_column(sa.String(32))
    id_column: Mapped[str] = mapped_column(sa.String(200), default="external_user_id")
    status: Mapped[str] = mapped_column(sa.String(16), default=SegmentStatus.ACTIVE)
    member_count: Mapped[int] = mapped_column(default=0)
    membership_version: Mapped[str | None] = mapped_column(sa.String(36))
    """Id of the run whose membership is current (``None``: never refreshed)."""
    last_run_id: Mapped[str | None] = mapped_column(sa.String(36))
    last_refreshed_at: Mapped[datetime | None]
    schedule: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SegmentMemberChunk(Base):
    """A sorted, contiguous slice of one membership version: ids as one Arrow IPC blob."""

    __tablename__ = "segment_member_chunk"
    __table_args__ = (
        sa.Index("ix_segment_member_chunk_last_id", "segment_id", "version", "last_id"),
    )

    segment_id: Mapped[str] = mapped_column(
        sa.ForeignKey("segment.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    first_id: Mapped[str] = mapped_column(IdText)
    last_id: Mapped[str] = mapped_column(IdText)
    count: Mapped[int]
    ids: Mapped[bytes] = mapped_column(sa.LargeBinary)


class RefreshRun(Base):
    """One refresh of one segment: the run record the API shows and the engine drives."""

    __tablename__ = "refresh_run"
    __table_args__ = (
        # One queued-or-running refresh per segment, across every process sharing the database.
        sa.Index(
            "uq_refresh_run_active_segment",
            "segment_id",
            unique=True,
            sqlite_where=sa.text("status IN ('queued', 'running')"),
            postgresql_where=sa.text("status IN ('queued', 'running')"),
        ),
        sa.Index("ix_refresh_run_segment_created", "segment_id", "created_at"),
        sa.Index("ix_refresh_run_status", "status"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    segment_id: Mapped[str] = mapped_column(sa.ForeignKey("segment.id", ondelete="CASCADE"))
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    source_id: Mapped[str] = mapped_column(
        sa.ForeignKey("source.id", ondelete="CASCADE"), index=True
    )
    trigger: Mapped[str] = mapped_column(sa.String(32), default=RunTrigger.API)
    status: Mapped[str] = mapped_column(sa.String(16), default=RunStatus.QUEUED)
    max_runtime_s: Mapped[float]
    """Budget of the whole run, copied from the source when requested (tests may lower it)."""
    temp_table: Mapped[str | None] = mapped_column(sa.String(200))
    temp_table_dropped: Mapped[bool | None]
    query_id: Mapped[str | None] = mapped_column(sa.String(200))
    member_count: Mapped[int | None]
    added: Mapped[int | None]
    removed: Mapped[int | None]
    error_code: Mapped[str | None] = mapped_column(sa.String(64))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    error_details: Mapped[dict[str, Any] | None]
    cancel_requested_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(sa.String(200))
    timings: Mapped[dict[str, Any] | None]
    """Seconds per phase: check, materialize, read, diff, swap, drop, total."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    @property
    def is_final(self) -> bool:
        return self.status in RunStatus.FINAL

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
