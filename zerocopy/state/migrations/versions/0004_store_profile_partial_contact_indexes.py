"""store_profile: e-mail and phone indexes only over profiles that have one

Most profiles are created by an external id and have neither; indexing their NULLs cost every
profile insert two index entries and served no lookup (lookups are ``email = ...`` /
``phone IN (...)``, which imply NOT NULL, so the partial indexes still answer them).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for column in ("email", "phone"):
        name = f"ix_store_profile_{column}"
        op.drop_index(name, table_name="store_profile")
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            name,
            "store_profile",
            ["workspace_id", column, "updated_at"],
            postgresql_where=where,
            sqlite_where=where,
        )


def downgrade() -> None:
    for column in ("email", "phone"):
        name = f"ix_store_profile_{column}"
        op.drop_index(name, table_name="store_profile")
        op.create_index(name, "store_profile", ["workspace_id", column, "updated_at"])
