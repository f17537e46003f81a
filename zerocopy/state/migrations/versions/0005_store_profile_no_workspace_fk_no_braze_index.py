"""store_profile: no foreign key to workspace, no unique index on the braze id

Bulk profile writes paid a row-level RI trigger per new profile (``workspace_id`` →
``workspace``) and a second random-looking unique index (``workspace_id, braze_id``). The
braze id is always derived from the profile id (its 32 hex digits without dashes), so a braze
id lookup goes through the primary key; deleting a workspace deletes its store rows
explicitly (:func:`zerocopy.services.workspaces.delete_workspace`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FK = "store_profile_workspace_id_fkey"
_BRAZE = "store_profile_workspace_id_braze_id_key"


def _profile_table(*, with_fk_and_braze: bool) -> sa.Table:
    """store_profile as SQLite batch mode rebuilds it (its constraints are unnamed there)."""
    meta = sa.MetaData()
    sa.Table("workspace", meta, sa.Column("id", sa.String(36), primary_key=True))
    extra: list[sa.schema.SchemaItem] = []
    if with_fk_and_braze:
        extra = [
            sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"], ondelete="CASCADE"),
            sa.UniqueConstraint("workspace_id", "braze_id"),
        ]
    table = sa.Table(
        "store_profile",
        meta,
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("external_id", sa.String(length=400), nullable=True),
        sa.Column("braze_id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=400), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("attributes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "external_id"),
        *extra,
    )
    table.c.attributes.nullable = False
    for column in ("email", "phone"):
        where = sa.text(f"{column} IS NOT NULL")
        sa.Index(
            f"ix_store_profile_{column}",
            table.c.workspace_id,
            table.c[column],
            table.c.updated_at,
            sqlite_where=where,
            postgresql_where=where,
        )
    return table


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "store_profile",
            recreate="always",
            copy_from=_profile_table(with_fk_and_braze=False),
        ):
            pass
        return
    op.drop_constraint(_FK, "store_profile", type_="foreignkey")
    op.drop_constraint(_BRAZE, "store_profile", type_="unique")


def downgrade() -> None:
    # Profiles of workspaces deleted meanwhile would break the foreign key: drop them first.
    orphans = "SELECT id FROM store_profile WHERE workspace_id NOT IN (SELECT id FROM workspace)"
    for table in ("store_alias", "store_event", "store_purchase"):
        op.execute(f"DELETE FROM {table} WHERE profile_id IN ({orphans})")
    op.execute("DELETE FROM store_profile WHERE workspace_id NOT IN (SELECT id FROM workspace)")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "store_profile",
            recreate="always",
            copy_from=_profile_table(with_fk_and_braze=True),
        ):
            pass
        return
    op.create_unique_constraint(_BRAZE, "store_profile", ["workspace_id", "braze_id"])
    op.create_foreign_key(
        _FK, "store_profile", "workspace", ["workspace_id"], ["id"], ondelete="CASCADE"
    )
