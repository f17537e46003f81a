"""The procrastinate runner's deferral: fairness between workspaces and per-source lock lanes."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.refresh_fixtures import wire
from zerocopy.runner_procrastinate import ProcrastinateRunner, ensure_queue_schema
from zerocopy.state.db import Database
from zerocopy.state.models import Segment

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


async def test_workspaces_are_served_round_robin_and_sources_get_lanes(
    postgres_url: str, tmp_path: Path
) -> None:
    db = Database(postgres_url)
    await db.upgrade()
    await ensure_queue_schema(db)
    try:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        a = await wire(db, tmp_path / "a", "SELECT external_user_id FROM users")
        b = await wire(db, tmp_path / "b", "SELECT external_user_id FROM users")
        # More segments on each source (same workspace, same source as the wired one).
        extra: dict[str, list[str]] = {"a": [a.segment_id], "b": [b.segment_id]}
        async with db.transaction() as s:
            for name, w, n in (("a", a, 4), ("b", b, 1)):
                base = await s.get(Segment, w.segment_id)
                assert base is not None
                for i in range(n):
                    seg = Segment(
                        workspace_id=base.workspace_id,
                        source_id=base.source_id,
                        name=f"{name}{i}",
                        sql=base.sql,
                        dialect=base.dialect,
                    )
                    s.add(seg)
                    await s.flush()
                    extra[name].append(seg.id)
        workspace_of: dict[str, str] = {}
        async with ProcrastinateRunner(db, default_limit=4) as runner:
            # Workspace A floods the queue first, then B asks for two refreshes.
            for name in ("a", "b"):
                w = a if name == "a" else b
                for segment_id in extra[name]:
                    run = await w.engine.request(segment_id, "schedule")
                    workspace_of[run.id] = name
                    await runner.submit(run.id)
                    await runner.submit(run.id)  # a second submit is absorbed (queueing lock)
        async with db.session() as s:
            rows = (
                await s.execute(
                    sa.text(
                        "SELECT args->>'run_id', priority, lock FROM procrastinate_jobs "
                        "WHERE status = 'todo' ORDER BY priority DESC, id ASC"
                    )
                )
            ).all()
        assert len(rows) == 7
        order = [workspace_of[r[0]] for r in rows]
        # Fetch order alternates while both workspaces have work, instead of A's 5 first.
        assert order == ["a", "b", "a", "b", "a", "a", "a"]
        # DuckDB files take one process at a time: every job of a source shares one lock.
        assert {r[2] for r in rows if workspace_of[r[0]] == "a"} == {f"source:{a.source.id}:0"}
    finally:
        await db.dispose()
