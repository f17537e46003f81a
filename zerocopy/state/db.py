"""The state database: async engine, session factory and programmatic Alembic upgrades.

SQLite (the embedded default) runs in WAL mode with a busy timeout and foreign keys on, so
an API process and a worker can share the file; PostgreSQL uses ``psycopg`` (async).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from zerocopy.settings import normalise_database_url, redact_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

MIGRATION_LOCK_KEY = 0x7A65726F636F7079  # "zerocopy"
"""PostgreSQL advisory lock key held while migrating."""

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another process's write lock before failing."""

SQLITE_CACHE_KIB = 16 * 1024
"""Page cache per SQLite connection (SQLite's default: 2 MiB). A sync's batch inserts profiles
at random places of ``store_profile``'s primary-key index; with 2 MiB each insert read its
index page back from the OS and spilled dirty pages mid-transaction (1M-row DuckDB → SQLite
sync: 2.5M ``pread`` and 2.2M ``pwrite`` calls). Filled only as pages are read. 16 MiB ran that
sync with the same CPU as 32 MiB (23.5-26 s, load ~1) and peaked 8-10 MB lower (470-478 MB
against 480-489), leaving room under the 500 MB target."""

PING_IDLE_S = 10.0
"""A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out.

Not every checkout (``pool_pre_ping``): a refresh checks a connection out about six times,
and a ping each time was a quarter of its state-database round trips. A connection in steady
use is not pinged; one that sat idle (where a server restart or an idle timeout strikes) is,
and a dead one is replaced before use. A connection that dies while in use fails its
statement, and SQLAlchemy then discards the whole pool, so the next checkout reconnects.
"""


class Database:
    """One state database: ``Database(url)``; share one instance per process.

    ``session()`` opens an :class:`AsyncSession` (``expire_on_commit=False`` so returned
    objects stay readable after commit); ``upgrade()`` applies the Alembic migrations.
    """

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        ping_idle_s: float | None = PING_IDLE_S,
        **engine_kwargs: Any,
    ) -> None:
        self.url = normalise_database_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
                # The most recently used connection first: in WAL mode a connection drops
                # its whole page cache when another connection has committed since its last
                # read, so handing connections out in turn emptied the store's cache at
                # every sync batch.
                engine_kwargs.setdefault("pool_use_lifo", True)
            engine_kwargs.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        self.engine: AsyncEngine = create_async_engine(self.url, echo=echo, **engine_kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_on_connect)
        elif ping_idle_s is not None and not engine_kwargs.get("pool_pre_ping"):
            _ping_when_idle(self.engine, ping_idle_s)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Database({redact_url(self.url)!r})"

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def session(self) -> AsyncSession:
        """A new session; use ``async with db.session() as s: ...``."""
        return self.sessionmaker()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction, committed on success, rolled back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def upgrade(self, revision: str = "head") -> None:
        """Apply the Alembic migrations up to ``revision`` (used by ``zerocopy db upgrade``).

        Safe when several processes start together (``serve`` and N workers): PostgreSQL
        takes a transaction-level advisory lock, SQLite an exclusive write lock, so one
        process migrates and the others then find the schema current.
        """
        async with self.engine.begin() as conn:
            await self._migration_lock(conn)
            await conn.run_sync(_run_alembic, "upgrade", revision)

    async def downgrade(self, revision: str) -> None:
        async with self.engine.begin() as conn:
            await self._migration_lock(conn)
            await conn.run_sync(_run_alembic, "downgrade", revision)

    async def _migration_lock(self, conn: AsyncConnection) -> None:
        if self.is_postgres:
            await conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        elif self.is_sqlite:
            # pysqlite opens transactions lazily; BEGIN IMMEDIATE takes the write lock now
            # (waiting up to the busy timeout) so Alembic reads the version under it.
            await conn.exec_driver_sql("BEGIN IMMEDIATE")

    async def current_revision(self) -> str | None:
        async with self.engine.connect() as conn:
            return await conn.run_sync(_current_revision)

    async def ping(self) -> None:
        """Raise when the database is unreachable (readiness checks)."""
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.dispose()


def _ping_when_idle(engine: AsyncEngine, idle_s: float) -> None:
    """Ping a pooled connection at checkout only if it was idle for more than ``idle_s``.

    A failed ping raises :class:`~sqlalchemy.exc.DisconnectionError`, which makes the pool
    drop that connection and hand out another (or a new one) instead.
    """
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["zerocopy_checkin"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get("zerocopy_checkin")
        if last is None or time.monotonic() - last <= idle_s:
            return  # new (just connected) or in recent use
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise sa_exc.DisconnectionError(f"idle connection is gone: {exc}") from exc


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers keep their snapshot while a refresh swaps memberships.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Durability is unchanged (WAL + NORMAL: a committed transaction survives a killed
        # process; a power loss may drop the last commits, never corrupt the file).
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    finally:
        cursor.close()


def alembic_config(connection: sa.Connection | None = None) -> Any:
    """An Alembic ``Config`` pointing at the migrations inside the package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _run_alembic(connection: sa.Connection, command_name: str, revision: str) -> None:
    from alembic import command

    getattr(command, command_name)(alembic_config(connection), revision)


def _current_revision(connection: sa.Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
