"""Session-wide fixtures and the CI rule: under CI=true a skipped test is a failed test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import (
    IN_CI,
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
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio."""
    return "asyncio"
