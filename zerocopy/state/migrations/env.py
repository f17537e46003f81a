"""Alembic environment: run by :meth:`zerocopy.state.db.Database.upgrade` on a live connection.

Standalone use (``alembic -x url=... upgrade head``) opens its own synchronous connection.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from zerocopy.state import sync_models  # noqa: F401  (sync + profile store tables)
from zerocopy.state.models import Base

target_metadata = Base.metadata
config = context.config


def _sync_url(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("give the database with -x url=... or use `zerocopy db upgrade`")
    engine = create_engine(_sync_url(url), poolclass=pool.NullPool)
    with engine.begin() as conn:
        _run(conn)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite can only ALTER tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
