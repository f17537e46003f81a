"""store_event / store_purchase: ``by_address`` and a partial ``(workspace_id, row_hash)`` index

A replay after a watermark reset inserts an event or purchase identified by e-mail or phone
only when the store does not hold that copy yet, on *any* profile of the workspace (the
address may have moved since): that lookup by ``(workspace_id, row_hash)`` scanned the
whole table. The index is partial — only rows identified by an address (``by_address``) —
so the rows identified by external id, alias or braze id (looked up by profile) do not pay
for it when they are inserted. Rows stored before this revision have no known origin and
count as identified by an address (``server_default`` true: no rewrite of existing rows).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = ("store_event", "store_purchase")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("by_address", sa.Boolean(), nullable=False, server_default=sa.true())
            )
        op.create_index(
            f"ix_{table}_address_row_hash",
            table,
            ["workspace_id", "row_hash"],
            sqlite_where=sa.text("by_address = 1"),
            postgresql_where=sa.text("by_address"),
        )


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_address_row_hash", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("by_address")
