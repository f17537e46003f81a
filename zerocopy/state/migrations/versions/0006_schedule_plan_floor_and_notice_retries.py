"""scheduling: the instant a schedule plan owes occurrences from; durable pause notices

* ``schedule_state.planned_from``: occurrences at or before this instant are never owed by
  the current plan (it was made, or last fired, then). A workspace time-zone change re-plans
  from it and from the local slot the old plan was waiting for, so it neither runs the same
  local slot twice nor skips one (:func:`zerocopy.scheduling.schedule.replan_in_zone`).
* ``schedule_notice``: a notice whose e-mail failed is retried with a backoff
  (``attempts``, ``next_attempt_at``; ``delivered_at`` once sent, ``last_attempt_at``; the
  mail's ``body`` is kept to send it again).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("schedule_state") as batch:
        batch.add_column(sa.Column("planned_from", TS, nullable=True))
    with op.batch_alter_table("schedule_notice") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_attempt_at", TS, nullable=True))
        batch.add_column(sa.Column("next_attempt_at", TS, nullable=True))
        batch.add_column(sa.Column("delivered_at", TS, nullable=True))
        batch.add_column(sa.Column("body", sa.Text(), nullable=True))
    op.create_index("ix_schedule_notice_next_attempt_at", "schedule_notice", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_schedule_notice_next_attempt_at", table_name="schedule_notice")
    with op.batch_alter_table("schedule_notice") as batch:
        batch.drop_column("body")
        batch.drop_column("delivered_at")
        batch.drop_column("next_attempt_at")
        batch.drop_column("last_attempt_at")
        batch.drop_column("attempts")
    with op.batch_alter_table("schedule_state") as batch:
        batch.drop_column("planned_from")
