"""scheduling: schedule plans, scheduled runs, source slots, leases, notices

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "schedule_state",
        sa.Column("owner_kind", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("next_due_at", TS, nullable=True),
        sa.Column("planned_time_zone", sa.String(64), nullable=True),
        sa.Column("planned_key", sa.String(200), nullable=True),
        sa.Column("paused_reason", sa.String(32), nullable=True),
        sa.Column("paused_at", TS, nullable=True),
        sa.Column("paused_details", JSON, nullable=True),
        sa.Column("resumed_at", TS, nullable=True),
        sa.Column("contacts", JSON, nullable=False),
        sa.Column("definition_hash", sa.String(64), nullable=True),
        sa.Column("last_changed_at", TS, nullable=True),
        sa.Column("last_member_read_at", TS, nullable=True),
        sa.Column("last_due_at", TS, nullable=True),
        sa.Column("last_fired_at", TS, nullable=True),
        sa.Column("last_run_id", sa.String(36), nullable=True),
        sa.Column("last_catch_up", sa.Boolean(), nullable=True),
        sa.Column("last_coalesced", sa.Integer(), nullable=True),
        sa.Column("misses", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("owner_kind", "owner_id"),
    )
    op.create_index("ix_schedule_state_workspace_id", "schedule_state", ["workspace_id"])
    op.create_index("ix_schedule_state_next_due_at", "schedule_state", ["next_due_at"])
    op.create_table(
        "scheduled_run",
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("owner_kind", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("catch_up", sa.Boolean(), nullable=False),
        sa.Column("coalesced", sa.Integer(), nullable=False),
        sa.Column("enqueued_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index("ix_scheduled_run_owner_id", "scheduled_run", ["owner_id"])
    op.create_table(
        "source_slot",
        sa.Column("source_id", sa.String(36), nullable=False),
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("run_kind", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("acquired_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("source_id", "slot"),
        sa.UniqueConstraint("run_id"),
    )
    op.create_table(
        "scheduling_lease",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("next_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "scheduling_counter",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "schedule_notice",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("owner_kind", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("recipients", JSON, nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_schedule_notice_owner_id", "schedule_notice", ["owner_id"])


def downgrade() -> None:
    op.drop_table("schedule_notice")
    op.drop_table("scheduling_counter")
    op.drop_table("scheduling_lease")
    op.drop_table("source_slot")
    op.drop_table("scheduled_run")
    op.drop_table("schedule_state")
