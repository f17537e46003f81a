"""A small DuckDB warehouse and a wired refresh engine for the refresh integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from zerocopy.connections import AdapterFactory, build_adapter
from zerocopy.refresh import RefreshEngine
from zerocopy.secrets import SecretBox
from zerocopy.services.sources import replace_catalog
from zerocopy.state.db import Database
from zerocopy.state.membership import MembershipStore
from zerocopy.state.models import CatalogTable, Credential, Segment, Source

USERS = 1000

LONG_SQL = """
SELECT u.external_user_id
FROM users AS u
JOIN (
    SELECT count(*) AS c FROM nums AS a CROSS JOIN nums AS b CROSS JOIN nums AS c
    WHERE (a.n * 7 + b.n * 13 + c.n) % 1000003 = 17
) AS slow ON slow.c >= 0
"""
"""27 billion row combinations: runs for minutes, far past any test's max runtime."""


def make_warehouse(path: Path) -> Path:
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA marketing")
        con.execute(
            "CREATE TABLE marketing.users AS SELECT i AS external_user_id, "
            "CASE WHEN i % 2 = 0 THEN 'FR' ELSE 'US' END AS country FROM range(1, ?) t(i)",
            [USERS + 1],
        )
        con.execute("CREATE TABLE marketing.nums AS SELECT i AS n FROM range(3000) t(i)")
    finally:
        con.close()
    return path


@dataclass
class Wired:
    db: Database
    engine: RefreshEngine
    factory: AdapterFactory
    members: MembershipStore
    segment_id: str
    source: Source
    credential: Credential

    async def set_sql(self, sql: str) -> None:
        async with self.db.transaction() as s:
            await s.execute(sa.update(Segment).where(Segment.id == self.segment_id).values(sql=sql))

    async def temp_tables(self) -> list[str]:
        adapter = build_adapter(self.source, self.credential, self.factory.box)
        try:
            return await adapter.list_temp_tables()
        finally:
            await adapter.aclose()


async def store_catalog(
    db: Database, source: Source, credential: Credential, box: SecretBox
) -> list[CatalogTable]:
    """List the source's tables through the real adapter and store them as its catalog (the
    connection test's own `replace_catalog`); returns the stored rows."""
    adapter = build_adapter(source, credential, box)
    try:
        tables = await adapter.list_tables()
    finally:
        await adapter.aclose()
    async with db.transaction() as s:
        return await replace_catalog(s, source, tables)


async def wire(db: Database, tmp_path: Path, sql: str) -> Wired:
    """Workspace, DuckDB credential + source (catalog fetched from the warehouse), segment."""
    from tests.integration.state_fixtures import make_segment

    wh = make_warehouse(tmp_path / "warehouse.duckdb")
    seg = await make_segment(
        db, sql=sql, kind="duckdb", settings={"path": str(wh)}, scope="marketing"
    )
    box = SecretBox([SecretBox.generate_key()])
    factory = AdapterFactory(box)
    async with db.transaction() as s:
        source = await s.get(Source, seg.source_id)
        assert source is not None
        credential = await s.get(Credential, source.credential_id)
        assert credential is not None
    await store_catalog(db, source, credential, box)
    members = MembershipStore(db)
    engine = RefreshEngine(db, factory, members=members, heartbeat_s=0.5)
    return Wired(db, engine, factory, members, seg.id, source, credential)


@pytest.fixture(name="wired")
async def wired_fixture(db: Database, tmp_path: Path) -> AsyncIterator[Wired]:
    yield await wire(
        db, tmp_path, "SELECT external_user_id FROM users WHERE external_user_id <= 100"
    )
