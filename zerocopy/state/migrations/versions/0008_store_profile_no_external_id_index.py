"""store_profile: no unique index on ``(workspace_id, external_id)``

A profile created by an external id gets the id :func:`zerocopy.destinations.builtin.profile_id`
derives from the workspace and that external id (a UUIDv5 of both), and no code ever sets
``external_id`` on a profile other than when creating it. So the primary key already keeps
one profile per (workspace, external id), and a lookup by external id goes through the
primary key with the derived id. The second unique btree (random-looking keys, like the
primary key's) cost as much as the primary key on every new profile: a first load spent
most of the server's COPY time maintaining the two.

Deleting a workspace now finds its profiles without an index (as it already did for its
events and purchases): a rare administrative operation.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_EXTERNAL = "store_profile_workspace_id_external_id_key"


def _profile_table(*, with_external_unique: bool) -> sa.Table:
    """store_profile as SQLite batch mode rebuilds it (its constraints are unnamed there)."""
    meta = sa.MetaData()
    extra: list[sa.schema.SchemaItem] = []
    if with_external_unique:
        extra = [sa.UniqueConstraint("workspace_id", "external_id")]
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
            copy_from=_profile_table(with_external_unique=False),
        ):
            pass
        return
    op.drop_constraint(_EXTERNAL, "store_profile", type_="unique")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "store_profile",
            recreate="always",
            copy_from=_profile_table(with_external_unique=True),
        ):
            pass
        return
    op.create_unique_constraint(_EXTERNAL, "store_profile", ["workspace_id", "external_id"])
