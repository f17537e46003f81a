"""The process runtime the API and the CLI share: state database, secret box, engine, runner."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from zerocopy.secrets import SecretBox
from zerocopy.settings import Settings
from zerocopy.state import Database
from zerocopy.state.membership import MembershipStore
from zerocopy.state.models import Credential, Source


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """The state database, migrated to the newest revision; disposed on exit."""
    db = Database(settings.database_url)
    try:
        await db.upgrade()
        yield db
    finally:
        await db.dispose()


class Runtime:
    """Everything a request or a CLI command needs beyond its session."""

    def __init__(self, settings: Settings, db: Database, secret_box: SecretBox) -> None:
        self.settings = settings
        self.db = db
        self.secret_box = secret_box
        self.members = MembershipStore(db)
        self.engine: Any = None
        self.runner: Any = None
        # source id -> (catalog version, mapping); the version is the last test's time.
        self._catalogs: dict[str, tuple[Any, Any]] = {}

    def adapter_for(
        self, source: Source, credential: Credential
    ) -> AbstractAsyncContextManager[Any]:
        """A connected adapter for ``source`` (closed on exit)."""
        from zerocopy.connections import adapter_for

        return adapter_for(source, credential, self.secret_box)  # type: ignore[no-any-return]

    async def sql_catalog(self, source: Source, load: Callable[[], Awaitable[Any]]) -> Any:
        """The source's catalog for the SQL check, cached until the next successful test."""
        version = source.last_test_at
        cached = self._catalogs.get(source.id)
        if cached is not None and cached[0] == version:
            return cached[1]
        from zerocopy.sql import SqlCatalog

        catalog = SqlCatalog(await load())
        self._catalogs[source.id] = (version, catalog)
        return catalog

    def forget_catalog(self, source_id: str) -> None:
        self._catalogs.pop(source_id, None)

    async def health(self) -> dict[str, Any]:
        """Readiness: the state database answers."""
        try:
            await self.db.ping()
        except Exception as exc:
            return {"status": "degraded", "database": f"unreachable: {type(exc).__name__}"}
        return {"status": "ok", "database": "ok"}


@asynccontextmanager
async def open_runtime(settings: Settings, *, start_runner: bool = True) -> AsyncIterator[Runtime]:
    """Migrate, build the engine and (optionally) start the in-process runner; stop on exit."""
    from zerocopy.refresh import RefreshEngine
    from zerocopy.runner import InProcessRunner

    async with open_database(settings) as db:
        runtime = Runtime(settings, db, SecretBox(settings.secret_keys))
        runtime.engine = RefreshEngine(db, runtime.secret_box, settings, members=runtime.members)
        runner = InProcessRunner(runtime.engine, max_concurrent=settings.max_concurrent_refreshes)
        runtime.runner = runner
        if start_runner:
            async with runner:
                yield runtime
        else:
            yield runtime
