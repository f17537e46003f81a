"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
"""Aware UTC timestamps (``timestamptz`` on PostgreSQL; naive UTC text on SQLite)."""

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

ID_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
"""Byte-wise ordering of member ids on both databases, as Arrow sorts them."""

ACTIVE_RUN = sa.text("status IN ('queued', 'running')")
"""Partial unique index predicate: one queued-or-running refresh per segment, across processes."""


def upgrade() -> None:
    op.create_table(
        "workspace",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "api_key",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prefix"),
    )
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_key_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "credential",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=True),
        sa.Column("public_key", sa.Text(), nullable=True),
        sa.Column("pending_public_key", sa.Text(), nullable=True),
        sa.Column("key_fingerprint", sa.String(length=128), nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "name"),
    )
    with op.batch_alter_table("credential", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credential_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "source",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("credential_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=400), nullable=False),
        sa.Column("max_runtime_s", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_test_at", TS, nullable=True),
        sa.Column("last_test_error", JSON, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["credential_id"], ["credential.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "name"),
    )
    with op.batch_alter_table("source", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_source_credential_id"), ["credential_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_source_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "catalog_table",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("source_id", sa.String(length=36), nullable=False),
        sa.Column("schema", sa.String(length=400), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("columns", JSON, nullable=False),
        sa.Column("fetched_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["source.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_id", "schema", "name"),
    )
    with op.batch_alter_table("catalog_table", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_table_source_id"), ["source_id"], unique=False)

    op.create_table(
        "segment",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("source_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("sql", sa.Text(), nullable=False),
        sa.Column("dialect", sa.String(length=32), nullable=False),
        sa.Column("id_column", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("membership_version", sa.String(length=36), nullable=True),
        sa.Column("last_run_id", sa.String(length=36), nullable=True),
        sa.Column("last_refreshed_at", TS, nullable=True),
        sa.Column("schedule", JSON, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["source.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "name"),
    )
    with op.batch_alter_table("segment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_segment_source_id"), ["source_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_segment_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "refresh_run",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("segment_id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("source_id", sa.String(length=36), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("max_runtime_s", sa.Double(), nullable=False),
        sa.Column("temp_table", sa.String(length=200), nullable=True),
        sa.Column("temp_table_dropped", sa.Boolean(), nullable=True),
        sa.Column("query_id", sa.String(length=200), nullable=True),
        sa.Column("member_count", sa.Integer(), nullable=True),
        sa.Column("added", sa.Integer(), nullable=True),
        sa.Column("removed", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_details", JSON, nullable=True),
        sa.Column("cancel_requested_at", TS, nullable=True),
        sa.Column("heartbeat_at", TS, nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("timings", JSON, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["segment_id"], ["segment.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["source_id"], ["source.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("refresh_run", schema=None) as batch_op:
        batch_op.create_index(
            "ix_refresh_run_segment_created", ["segment_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_refresh_run_source_id"), ["source_id"], unique=False)
        batch_op.create_index("ix_refresh_run_status", ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_refresh_run_workspace_id"), ["workspace_id"], unique=False
        )
        batch_op.create_index(
            "uq_refresh_run_active_segment",
            ["segment_id"],
            unique=True,
            sqlite_where=ACTIVE_RUN,
            postgresql_where=ACTIVE_RUN,
        )

    op.create_table(
        "segment_member_chunk",
        sa.Column("segment_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("first_id", ID_TEXT, nullable=False),
        sa.Column("last_id", ID_TEXT, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("ids", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["segment_id"], ["segment.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("segment_id", "version", "seq"),
    )
    with op.batch_alter_table("segment_member_chunk", schema=None) as batch_op:
        batch_op.create_index(
            "ix_segment_member_chunk_last_id", ["segment_id", "version", "last_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("segment_member_chunk", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_member_chunk_last_id")

    op.drop_table("segment_member_chunk")
    with op.batch_alter_table("refresh_run", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_refresh_run_active_segment", sqlite_where=ACTIVE_RUN, postgresql_where=ACTIVE_RUN
        )
        batch_op.drop_index(batch_op.f("ix_refresh_run_workspace_id"))
        batch_op.drop_index("ix_refresh_run_status")
        batch_op.drop_index(batch_op.f("ix_refresh_run_source_id"))
        batch_op.drop_index("ix_refresh_run_segment_created")

    op.drop_table("refresh_run")
    with op.batch_alter_table("segment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_segment_source_id"))

    op.drop_table("segment")
    with op.batch_alter_table("catalog_table", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_table_source_id"))

    op.drop_table("catalog_table")
    with op.batch_alter_table("source", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_source_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_source_credential_id"))

    op.drop_table("source")
    with op.batch_alter_table("credential", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credential_workspace_id"))

    op.drop_table("credential")
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_key_workspace_id"))

    op.drop_table("api_key")
    op.drop_table("workspace")
