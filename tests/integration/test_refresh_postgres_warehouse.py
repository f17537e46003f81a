"""The same engine against a PostgreSQL *warehouse* (real psycopg adapter, pg_cancel_backend).

Proves the engine is warehouse-generic: success and diff, timeout and cancel with the
temporary table gone and the previous membership kept, with secrets decrypted from the store.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import psycopg
import pytest
import sqlalchemy as sa

from tests.integration.refresh_fixtures import LONG_SQL, store_catalog
from tests.integration.state_fixtures import make_segment
from tests.support import postgres_credential_settings
from zerocopy import errors
from zerocopy.connections import AdapterFactory
from zerocopy.refresh import RefreshEngine
from zerocopy.secrets import SecretBox
from zerocopy.state.db import Database
from zerocopy.state.membership import MembershipStore
from zerocopy.state.models import Credential, RunStatus, Segment, Source

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
async def setup(postgres_url: str, tmp_path: Path) -> AsyncIterator[dict[str, object]]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA marketing")
        conn.execute(
            "CREATE TABLE marketing.users AS SELECT i AS external_user_id, "
            "CASE WHEN i % 2 = 0 THEN 'FR' ELSE 'US' END AS country "
            "FROM generate_series(1, 1000) AS t(i)"
        )
        conn.execute(
            "CREATE TABLE marketing.nums AS SELECT i AS n FROM generate_series(0, 2999) AS t(i)"
        )
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'state.sqlite3'}")
    await db.upgrade()
    box = SecretBox([SecretBox.generate_key()])
    seg = await make_segment(
        db,
        sql="SELECT external_user_id FROM users WHERE external_user_id <= 100",
        kind="postgres",
        settings=postgres_credential_settings(postgres_url),
        scope="marketing",
    )
    async with db.transaction() as s:
        source = await s.get(Source, seg.source_id)
        assert source is not None
        credential = await s.get(Credential, source.credential_id)
        assert credential is not None
        # Trust auth ignores it, but the engine must decrypt it to build the connection.
        credential.secret_ciphertext = box.encrypt({"password": "canary-not-needed"})
    await store_catalog(db, source, credential, box)
    factory = AdapterFactory(box)
    members = MembershipStore(db)
    yield {
        "db": db,
        "engine": RefreshEngine(db, factory, members=members),
        "members": members,
        "segment_id": seg.id,
        "url": postgres_url,
    }
    await db.dispose()


def temp_tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'marketing' AND table_name LIKE 'zc_tmp_%'"
        ).fetchall()
    return [r[0] for r in rows]


def running_queries(url: str) -> int:
    """This test's CTAS statements still running (in its own database: the server is shared
    with other tests, whose refreshes run CTAS statements of their own)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'active' AND query ILIKE '%CREATE TABLE%zc_tmp_%' "
            "AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


async def set_sql(db: Database, segment_id: str, sql: str) -> None:
    async with db.transaction() as s:
        await s.execute(sa.update(Segment).where(Segment.id == segment_id).values(sql=sql))


async def test_refresh_diff_timeout_and_cancel_on_postgres(setup: dict[str, object]) -> None:
    db, engine, members = setup["db"], setup["engine"], setup["members"]
    seg_id, url = str(setup["segment_id"]), str(setup["url"])
    assert isinstance(db, Database) and isinstance(engine, RefreshEngine)
    assert isinstance(members, MembershipStore)

    run = await engine.refresh(seg_id)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert (run.member_count, run.added, run.removed) == (100, 100, 0)
    assert run.query_id  # the backend pid, recorded for cancel
    await set_sql(
        db,
        seg_id,
        "SELECT external_user_id FROM users WHERE external_user_id > 90 AND external_user_id <= 120",
    )
    run = await engine.refresh(seg_id)
    assert (run.member_count, run.added, run.removed) == (30, 20, 90)
    assert temp_tables(url) == []

    await set_sql(db, seg_id, LONG_SQL)
    started = time.monotonic()
    run = await engine.refresh(seg_id, max_runtime_s=2)
    assert run.status == RunStatus.TIMED_OUT, run.error_message
    assert time.monotonic() - started < 4
    assert temp_tables(url) == []
    # The cancel is asynchronous on the server (a statement still in JIT compilation acts on
    # it only when that ends): the query must be gone shortly after the run ended.
    gone_by = time.monotonic() + 3
    while running_queries(url) and time.monotonic() < gone_by:  # noqa: ASYNC110 (another server)
        await anyio.sleep(0.05)
    assert running_queries(url) == 0
    assert await members.count(seg_id) == 30

    queued = await engine.request(seg_id, max_runtime_s=60)
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.execute, queued.id)
        with anyio.fail_after(10):
            while running_queries(url) == 0:  # noqa: ASYNC110 (polling another server)
                await anyio.sleep(0.05)
        asked = time.monotonic()
        await RefreshEngine(db, SecretBox([SecretBox.generate_key()])).request_cancel(queued.id)
        with anyio.fail_after(5):
            while (final := await engine.get(queued.id)).status == RunStatus.RUNNING:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        took = time.monotonic() - asked
    assert final.status == RunStatus.CANCELLED and final.error_code == errors.CANCELLED
    assert took < 2, took
    assert temp_tables(url) == []
    # The query is gone too, within the 2 s of the request: the backend reports itself idle
    # just after it answers the cancelled statement, which a loaded machine can delay.
    while running_queries(url) and time.monotonic() < asked + 2:  # noqa: ASYNC110 (another server)
        await anyio.sleep(0.05)
    assert running_queries(url) == 0
    assert await members.count(seg_id) == 30
