"""syncs and profile store

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 20:45:07.854076
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
RUNNING = sa.text("status = 'running'")

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_account",
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=400), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "account_id"),
    )
    op.create_table(
        "store_catalog_item",
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("catalog", sa.String(length=200), nullable=False),
        sa.Column("item_id", sa.String(length=400), nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "catalog", "item_id"),
    )
    op.create_table(
        "store_profile",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("external_id", sa.String(length=400), nullable=True),
        sa.Column("braze_id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=400), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "braze_id"),
        sa.UniqueConstraint("workspace_id", "external_id"),
    )
    with op.batch_alter_table("store_profile", schema=None) as batch_op:
        batch_op.create_index(
            "ix_store_profile_email", ["workspace_id", "email", "updated_at"], unique=False
        )
        batch_op.create_index(
            "ix_store_profile_phone", ["workspace_id", "phone", "updated_at"], unique=False
        )

    op.create_table(
        "store_alias",
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("alias_label", sa.String(length=200), nullable=False),
        sa.Column("alias_name", sa.String(length=400), nullable=False),
        sa.Column("profile_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["profile_id"], ["store_profile.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "alias_label", "alias_name"),
    )
    with op.batch_alter_table("store_alias", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_store_alias_profile_id"), ["profile_id"], unique=False)

    op.create_table(
        "store_event",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("profile_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("time", TS, nullable=False),
        sa.Column("properties", JSON, nullable=False),
        sa.Column("row_hash", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["profile_id"], ["store_profile.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("store_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_store_event_profile_id"), ["profile_id"], unique=False)

    op.create_table(
        "store_purchase",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("profile_id", sa.String(length=36), nullable=False),
        sa.Column("product_id", sa.String(length=400), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("time", TS, nullable=False),
        sa.Column("properties", JSON, nullable=False),
        sa.Column("row_hash", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["profile_id"], ["store_profile.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("store_purchase", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_store_purchase_profile_id"), ["profile_id"], unique=False
        )

    op.create_table(
        "sync",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("source_id", sa.String(length=36), nullable=True),
        sa.Column("credential_id", sa.String(length=36), nullable=True),
        sa.Column("table_name", sa.String(length=400), nullable=True),
        sa.Column("source_settings", JSON, nullable=False),
        sa.Column("data_type", sa.String(length=32), nullable=False),
        sa.Column("catalog_name", sa.String(length=200), nullable=True),
        sa.Column("frequency", sa.String(length=16), nullable=False),
        sa.Column("contacts", JSON, nullable=False),
        sa.Column("notifications", JSON, nullable=False),
        sa.Column("row_limit", sa.Integer(), nullable=True),
        sa.Column("lookback_s", sa.Integer(), nullable=False),
        sa.Column("row_log", sa.String(length=16), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("destination", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("watermark", JSON, nullable=True),
        sa.Column("last_test_at", TS, nullable=True),
        sa.Column("last_test_ok", sa.Boolean(), nullable=True),
        sa.Column("last_test_error", JSON, nullable=True),
        sa.Column("last_run_id", sa.String(length=36), nullable=True),
        sa.Column("notify_state", JSON, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["credential_id"], ["credential.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["source_id"], ["source.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "name"),
    )
    with op.batch_alter_table("sync", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_credential_id"), ["credential_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sync_source_id"), ["source_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sync_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "sync_file",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("sync_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column("etag", sa.String(length=200), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("processed_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["sync_id"], ["sync.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sync_id", "key", "etag"),
    )
    with op.batch_alter_table("sync_file", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_file_sync_id"), ["sync_id"], unique=False)

    op.create_table(
        "sync_run",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("sync_id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("max_runtime_s", sa.Double(), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_skipped", sa.Integer(), nullable=False),
        sa.Column("rows_delivered", sa.Integer(), nullable=False),
        sa.Column("rows_errored", sa.Integer(), nullable=False),
        sa.Column("watermark_before", JSON, nullable=True),
        sa.Column("watermark_after", JSON, nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("cancel_requested_at", TS, nullable=True),
        sa.Column("heartbeat_at", TS, nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["sync_id"], ["sync.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_run_created_at"), ["created_at"], unique=False)
        batch_op.create_index("ix_sync_run_sync_created", ["sync_id", "created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_sync_run_workspace_id"), ["workspace_id"], unique=False
        )
        batch_op.create_index(
            "uq_sync_run_running_sync",
            ["sync_id"],
            unique=True,
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        )

    op.create_table(
        "sync_row_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("sync_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("payload", JSON, nullable=True),
        sa.Column("row_updated_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["sync_run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sync_row_log", schema=None) as batch_op:
        batch_op.create_index("ix_sync_row_log_created", ["created_at"], unique=False)
        batch_op.create_index("ix_sync_row_log_run_pos", ["run_id", "position"], unique=False)
        batch_op.create_index(batch_op.f("ix_sync_row_log_sync_id"), ["sync_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sync_row_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_row_log_sync_id"))
        batch_op.drop_index("ix_sync_row_log_run_pos")
        batch_op.drop_index("ix_sync_row_log_created")

    op.drop_table("sync_row_log")
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_sync_run_running_sync",
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        )
        batch_op.drop_index(batch_op.f("ix_sync_run_workspace_id"))
        batch_op.drop_index("ix_sync_run_sync_created")
        batch_op.drop_index(batch_op.f("ix_sync_run_created_at"))

    op.drop_table("sync_run")
    with op.batch_alter_table("sync_file", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_file_sync_id"))

    op.drop_table("sync_file")
    with op.batch_alter_table("sync", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_sync_source_id"))
        batch_op.drop_index(batch_op.f("ix_sync_credential_id"))

    op.drop_table("sync")
    with op.batch_alter_table("store_purchase", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_store_purchase_profile_id"))

    op.drop_table("store_purchase")
    with op.batch_alter_table("store_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_store_event_profile_id"))

    op.drop_table("store_event")
    with op.batch_alter_table("store_alias", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_store_alias_profile_id"))

    op.drop_table("store_alias")
    with op.batch_alter_table("store_profile", schema=None) as batch_op:
        batch_op.drop_index("ix_store_profile_phone")
        batch_op.drop_index("ix_store_profile_email")

    op.drop_table("store_profile")
    op.drop_table("store_catalog_item")
    op.drop_table("store_account")
