"""The SQL-check tests that run queries on PostgreSQL (``pg`` fixtures over ``postgres_url``)
load the fixture warehouse into a ``marketing`` schema of their own, made anew per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import RecycledDatabases


@pytest.fixture(scope="session")
def _empty_postgres_databases(postgres_server: str) -> Iterator[RecycledDatabases]:
    databases = RecycledDatabases(postgres_server)
    yield databases
    databases.close()


@pytest.fixture
def postgres_url(_empty_postgres_databases: RecycledDatabases) -> Iterator[str]:
    """An empty database for one test, as the root conftest's, but reused within the worker:
    after a test its new schemas are dropped and it is kept only if it then dumps exactly as
    an empty database (:class:`RecycledDatabases`); a CREATE/DROP DATABASE cost more than
    the test."""
    with _empty_postgres_databases.database() as url:
        yield url
