"""Warehouse sessions kept between refreshes (PostgreSQL): reused, bounded, never after a cancel.

A refresh's CTAS runs on a session of its own; the engine keeps the source's adapter, so the
next refresh borrows the same backend instead of logging in again. A session whose statement
was cancelled (or timed out) is closed, never handed to the next run, and a kept session
carries no ``statement_timeout`` into the next run.
"""

from __future__ import annotations

import time

import anyio
import psycopg
import pytest

from tests.integration.refresh_fixtures import LONG_SQL
from tests.integration.test_refresh_postgres_warehouse import (  # noqa: F401 (fixture)
    set_sql,
    setup,
)
from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.refresh import RefreshEngine
from zerocopy.secrets import SecretBox
from zerocopy.state.db import Database
from zerocopy.state.models import RunStatus

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

SMALL = "SELECT external_user_id FROM users WHERE external_user_id <= 100"


def ctas_pids(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE state = 'active' "
            "AND query ILIKE '%CREATE TABLE%zc_tmp_%' AND pid <> pg_backend_pid()"
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
