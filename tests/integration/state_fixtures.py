"""Fixtures shared by the state and refresh integration tests: one state DB per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from zerocopy.state.db import Database
from zerocopy.state.models import Credential, Segment, Source, SourceStatus, Workspace

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(name="db", params=BACKENDS)
async def db_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated state database on SQLite (file) or PostgreSQL (fresh database).

    Each is a copy of the session's migrated template (conftest.py), so ``upgrade()`` here
    finds the newest revision; the migrations themselves run once per session and worker."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{request.getfixturevalue('migrated_sqlite_path')}"
    else:
        url = request.getfixturevalue("migrated_postgres_url")
    database = Database(url)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


async def make_segment(
    db: Database,
    *,
    sql: str = "SELECT external_user_id FROM users",
    kind: str = "duckdb",
    settings: dict[str, object] | None = None,
    scope: str = "main",
    max_runtime_s: int = 300,
) -> Segment:
    """Workspace → credential → active source → segment, committed."""
    async with db.transaction() as s:
        ws = Workspace(name="acme")
        s.add(ws)
        await s.flush()
        cred = Credential(workspace_id=ws.id, name="wh", kind=kind, settings=settings or {})
        s.add(cred)
        await s.flush()
        src = Source(
            workspace_id=ws.id,
            credential_id=cred.id,
            name="wh",
            kind=kind,
            scope=scope,
            max_runtime_s=max_runtime_s,
            status=SourceStatus.ACTIVE,
        )
        s.add(src)
        await s.flush()
        seg = Segment(workspace_id=ws.id, source_id=src.id, name="seg", sql=sql, dialect=kind)
        s.add(seg)
    return seg
