"""Warehouse sessions kept between refreshes (PostgreSQL): reused, bounded, never after a cancel.

A refresh's CTAS runs on a session of its own; the engine keeps the source's adapter, so the
next refresh borrows the same backend instead of logging in again. A session whose statement
was cancelled (or timed out) is closed, never handed to the next run, and a kept session
carries no ``statement_timeout`` into the next run.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import anyio
import psycopg
import pytest

from dialects.postgres import PostgresAdapter
from tests.integration.refresh_fixtures import LONG_SQL
from tests.integration.test_refresh_postgres_warehouse import (  # noqa: F401 (fixture)
    set_sql,
    setup,
)
from zerocopy import errors
from zerocopy.connections import connection_config
from zerocopy.errors import ZerocopyError
from zerocopy.refresh import RefreshEngine
from zerocopy.secrets import SecretBox
from zerocopy.state.db import Database
from zerocopy.state.models import Credential, RunStatus, Segment, Source

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

SMALL = "SELECT external_user_id FROM users WHERE external_user_id <= 100"


def ctas_pids(url: str) -> list[int]:
    """This test's running CTAS statements (its own database: the server is shared)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'active' AND query ILIKE '%CREATE TABLE%zc_tmp_%' "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(r[0]) for r in rows]


def zerocopy_sessions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'zerocopy'"
        ).fetchall()
    return sorted(int(r[0]) for r in rows)


async def test_sessions_are_reused_bounded_and_dropped_after_cancel(
    setup: dict[str, object],  # noqa: F811
) -> None:
    db, engine = setup["db"], setup["engine"]
    seg_id, url = str(setup["segment_id"]), str(setup["url"])
    assert isinstance(db, Database) and isinstance(engine, RefreshEngine)

    first = await engine.refresh(seg_id)
    second = await engine.refresh(seg_id)
    assert first.status == second.status == RunStatus.SUCCEEDED
    assert first.query_id and second.query_id == first.query_id  # same backend, no new login
    kept = zerocopy_sessions(url)
    assert int(first.query_id) in kept and 1 <= len(kept) <= 4

    # Requests at once (one refresh per segment: the others are refused), then still at most
    # the pool's size kept.
    async def attempt() -> None:
        try:
            await engine.refresh(seg_id)
        except ZerocopyError as exc:
            assert exc.code == errors.REFRESH_IN_PROGRESS

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(attempt)
    assert len(zerocopy_sessions(url)) <= 4

    # A timed-out CTAS: its session is closed; the next run has no leftover timeout.
    await set_sql(db, seg_id, LONG_SQL)
    timed_out = await engine.refresh(seg_id, max_runtime_s=2)
    assert timed_out.status == RunStatus.TIMED_OUT, timed_out.error_message

    # A cancelled CTAS: its backend is never handed to the next run.
    queued = await engine.request(seg_id, max_runtime_s=60)
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.execute, queued.id)
        with anyio.fail_after(10):
            while not (pids := ctas_pids(url)):  # noqa: ASYNC110 (polling another server)
                await anyio.sleep(0.05)
        await RefreshEngine(db, SecretBox([SecretBox.generate_key()])).request_cancel(queued.id)
        with anyio.fail_after(5):
            while (final := await engine.get(queued.id)).status == RunStatus.RUNNING:  # noqa: ASYNC110
                await anyio.sleep(0.05)
    assert final.status == RunStatus.CANCELLED
    assert not set(pids) & set(zerocopy_sessions(url))

    await set_sql(db, seg_id, SMALL)
    started = time.monotonic()
    after = await engine.refresh(seg_id)
    assert after.status == RunStatus.SUCCEEDED, after.error_message
    assert after.query_id and int(after.query_id) not in pids
    assert time.monotonic() - started < 10

    await engine.aclose()
    with anyio.fail_after(5):
        while zerocopy_sessions(url):  # noqa: ASYNC110 (the server notices closes at once)
            await anyio.sleep(0.05)


class _CountingCursor(psycopg.Cursor):  # type: ignore[type-arg]
    """Records every query the adapter sends (the driver's cursor; our code runs as is)."""

    sent: ClassVar[list[str]] = []

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        type(self).sent.append(str(query))
        return super().execute(query, params, **kwargs)


class _CountingPostgres(PostgresAdapter):
    def _driver_connect(self, host: str, port: int) -> Any:
        conn = super()._driver_connect(host, port)
        conn.cursor_factory = _CountingCursor
        return conn


async def test_a_refresh_on_a_kept_session_is_three_warehouse_statements(
    setup: dict[str, object],  # noqa: F811
) -> None:
    """The CTAS goes with its ``SET``/``RESET statement_timeout`` in one message, and a kept
    session's pid and privilege check serve the next run: CTAS, read, drop."""
    db, kept = setup["db"], setup["engine"]
    seg_id = str(setup["segment_id"])
    assert isinstance(db, Database) and isinstance(kept, RefreshEngine)
    box = kept.adapter_factory.box  # type: ignore[attr-defined]

    def factory(source: Any, credential: Any, *, max_runtime_s: float | None = None) -> Any:
        return _CountingPostgres(
            connection_config(source, credential, box, max_runtime_s=max_runtime_s)
        )

    engine = RefreshEngine(db, factory)
    try:
        first = await engine.refresh(seg_id)
        assert first.status == RunStatus.SUCCEEDED, first.error_message
        _CountingCursor.sent.clear()
        second = await engine.refresh(seg_id)
        assert second.status == RunStatus.SUCCEEDED, second.error_message
        sent = list(_CountingCursor.sent)
        assert len(sent) == 3, sent
        ctas, read, drop = sent
        assert ctas.startswith("SET statement_timeout = ") and "CREATE TABLE" in ctas
        assert ctas.rstrip().endswith("RESET statement_timeout")
        assert read.startswith("SELECT") and drop.startswith("DROP TABLE")
        assert second.member_count == first.member_count == 100

        # The kept sessions carry no timeout into whatever borrows them next.
        adapter = engine.adapters.acquire(factory, *await _source_and_credential(db, seg_id))
        try:
            for _ in range(2):
                with adapter._session() as conn:  # type: ignore[attr-defined]
                    assert conn.execute("SHOW statement_timeout").fetchone()[0] == "0"
        finally:
            await engine.adapters.release(adapter)
    finally:
        await engine.aclose()


async def _source_and_credential(db: Database, segment_id: str) -> tuple[Any, Any]:
    async with db.session() as s:
        segment = await s.get(Segment, segment_id)
        assert segment is not None
        source = await s.get(Source, segment.source_id)
        assert source is not None
        credential = await s.get(Credential, source.credential_id)
        return source, credential
