"""Session-wide fixtures and the CI rule: under CI=true a skipped test is a failed test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    IN_CI,
    RecycledDatabases,
    copy_sqlite_database,
    database_on,
    migrate_state_database,
    postgres_server_url,
    scratch_database,
    throwaway_postgres,
    unavailable,
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true (not allowed): {report.longrepr}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a PostgreSQL server for tests marked ``postgres``.

    Order: ``ZEROCOPY_TEST_POSTGRES_URL``; the server on 127.0.0.1:5432; a throwaway
    ``initdb`` cluster. Under ``CI=true`` finding none fails the run.
    """
    url = postgres_server_url()
    if url:
        yield url
        return
    try:
        with throwaway_postgres() as started:
            yield started
    except RuntimeError as exc:
        unavailable(f"no PostgreSQL server: {exc}")


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh database for one test (isolated across xdist workers)."""
    with scratch_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def migrated_postgres_template(postgres_server: str) -> Iterator[str]:
    """Name of a database on ``postgres_server`` migrated to the newest state revision, made
    once per session (per xdist worker) for :func:`migrated_postgres_url` to copy."""
    import psycopg

    name = f"zc_template_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate_state_database(database_on(postgres_server, name))
        yield name
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _migrated_postgres_databases(
    postgres_server: str, migrated_postgres_template: str
) -> Iterator[RecycledDatabases]:
    databases = RecycledDatabases(postgres_server, migrated_postgres_template)
    yield databases
    databases.close()


@pytest.fixture
def migrated_postgres_url(_migrated_postgres_databases: RecycledDatabases) -> Iterator[str]:
    """A database for one test, already at the newest state revision: a copy of the
    session's migrated template (the same schema as running the migrations, without their
    cost per test), or one a previous test used, emptied and checked to dump exactly as the
    template (:class:`RecycledDatabases`). Use :func:`postgres_url` for an empty one."""
    with _migrated_postgres_databases.database() as url:
        yield url


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite state file migrated to the newest revision once per session (per worker)."""
    path = tmp_path_factory.mktemp("state-template") / "state.sqlite3"
    migrate_state_database(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def migrated_sqlite_path(tmp_path: Path, migrated_sqlite_template: Path) -> Path:
    """``tmp_path / "state.sqlite3"``: a copy of the session's migrated SQLite state file."""
    path = tmp_path / "state.sqlite3"
    copy_sqlite_database(migrated_sqlite_template, path)
    return path


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio."""
    return "asyncio"
