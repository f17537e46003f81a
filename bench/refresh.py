"""End-to-end refresh of a ~1M-member segment on DuckDB, next to the bare CTAS + id read.

    .venv/bin/python bench/refresh.py [--users 1000000] [--state sqlite|URL]
    .venv/bin/python bench/refresh.py [--in-memory]   # --in-memory: RefreshEngine(stream=False)
    .venv/bin/python bench/refresh.py --warehouse redshift [--users N ...] [--batch-rows N] [--only ...]

Builds the fixture warehouse (``users`` only) in a DuckDB file, wires a workspace, credential,
source and segment in a fresh state database (SQLite by default) and then, in the same run:

1. bare: ``adapter.materialize(ids_sql)`` + ``adapter.read_column`` of every id + drop, i.e.
   the warehouse work with nothing of the engine around it;
2. the engine's refresh of the same segment (check, materialize, read, drop, normalise,
   diff, swap): first refresh (all members added), then two refreshes with ~1% churn.

Prints each figure and the ratio engine/bare, then one JSON line with all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialects.protocol import QueryTag
from fixtures.warehouse import build, load_duckdb
from zerocopy.connections import AdapterFactory, build_adapter
from zerocopy.logging import configure_logging
from zerocopy.refresh import RefreshEngine, catalog_mapping
from zerocopy.secrets import SecretBox
from zerocopy.services.sources import replace_catalog
from zerocopy.sql import check_segment_sql
from zerocopy.state.db import Database
from zerocopy.state.models import (
    Credential,
    RefreshRun,
    Segment,
    Source,
    SourceStatus,
    Workspace,
)

ALL = "SELECT external_user_id FROM users"
CHURN_1 = "SELECT external_user_id FROM users WHERE external_user_id NOT LIKE '%00'"
CHURN_2 = "SELECT external_user_id FROM users WHERE external_user_id NOT LIKE '%01'"


async def bare(factory: AdapterFactory, source: Source, credential: Credential, sql: str) -> float:
    """CTAS + read every id + drop through the adapter alone."""
    adapter = factory(source, credential)
    result = check_segment_sql(
        sql, dialect="duckdb", catalog=BENCH_CATALOG, scope=source.scope, target="duckdb"
    )
    assert result.valid and result.ids_sql, result.to_dict()
    table = "zc_tmp_bench_bare"
    try:
        started = time.perf_counter()
        await adapter.materialize(
            result.ids_sql,
            table,
            deadline=anyio.current_time() + 600,
            tag=QueryTag(run_id="bench"),
        )
        n = 0
        async for batch in adapter.read_column(table, "external_user_id"):
            n += len(batch)
        await adapter.drop_table(table)
        elapsed = time.perf_counter() - started
    finally:
        await adapter.aclose()
    assert n > 0
    return elapsed


BENCH_CATALOG: dict[str, Any] = {}


async def main(users: int, state_url: str | None, stream: bool = True) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="zc-bench-"))
    t = time.perf_counter()
    warehouse = build(users, only={"users"})
    wh_path = tmp / "warehouse.duckdb"
    load_duckdb(wh_path, "marketing", warehouse)
    print(f"fixture warehouse: {users:,} users in {time.perf_counter() - t:.1f} s")

    db = Database(state_url or f"sqlite+aiosqlite:///{tmp / 'state.sqlite3'}")
    await db.upgrade()
    box = SecretBox([SecretBox.generate_key()])
    factory = AdapterFactory(box)
    async with db.transaction() as s:
        ws = Workspace(name="bench")
        s.add(ws)
        await s.flush()
        cred = Credential(
            workspace_id=ws.id, name="wh", kind="duckdb", settings={"path": str(wh_path)}
        )
        s.add(cred)
        await s.flush()
        src = Source(
            workspace_id=ws.id,
            credential_id=cred.id,
            name="wh",
            kind="duckdb",
            scope="marketing",
            max_runtime_s=600,
            status=SourceStatus.ACTIVE,
        )
        s.add(src)
        await s.flush()
        seg = Segment(workspace_id=ws.id, source_id=src.id, name="all", sql=ALL, dialect="duckdb")
        s.add(seg)
    adapter = build_adapter(src, cred, box)
    try:
        tables = await adapter.list_tables()
    finally:
        await adapter.aclose()
    async with db.transaction() as s:
        rows = await replace_catalog(s, src, tables)
    BENCH_CATALOG.update(catalog_mapping(rows))

    engine = RefreshEngine(db, factory, stream=stream)
    out: dict[str, Any] = {"users": users, "state": db.dialect, "stream": stream}

    async def refresh(sql: str, label: str) -> RefreshRun:
        async with db.transaction() as s:
            segment = await s.get(Segment, seg.id)
            assert segment is not None
            segment.sql = sql
        started = time.perf_counter()
        run = await engine.refresh(seg.id, trigger="bench")
        elapsed = time.perf_counter() - started
        assert run.status == "succeeded", (run.error_code, run.error_message)
        bare_s = await bare(factory, src, cred, sql)
        ratio = elapsed / bare_s
        phases = ", ".join(f"{k} {v:.2f}" for k, v in (run.timings or {}).items())
        print(
            f"{label}: {run.member_count:,} members (+{run.added:,} / -{run.removed:,}) "
            f"refresh {elapsed:.2f} s vs bare CTAS+read {bare_s:.2f} s = {ratio:.1f}x  [{phases}]"
        )
        out[label] = {
            "members": run.member_count,
            "added": run.added,
            "removed": run.removed,
            "refresh_s": round(elapsed, 3),
            "bare_s": round(bare_s, 3),
            "ratio": round(ratio, 2),
            "timings": run.timings,
        }
        return run

    await bare(factory, src, cred, ALL)  # warm the file cache for both sides alike
    await refresh(ALL, "first")
    await refresh(CHURN_1, "churn_1pct_removed")
    await refresh(CHURN_2, "churn_1pct_both")
    await db.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--users",
        type=int,
        nargs="+",
        default=None,
        help="default 1M (redshift: 1M and 3M; e.g. --users 1000000 3000000 10000000)",
    )
    parser.add_argument("--state", default=None, help="state database URL (default: SQLite)")
    parser.add_argument(
        "--in-memory",
        action="store_true",
        help="the engine collects, sorts and diffs ids in memory instead of streaming them",
    )
    parser.add_argument(
        "--warehouse",
        choices=["duckdb", "redshift"],
        default="duckdb",
        help="redshift: run bench/refresh_redshift.py (Redshift adapter vs bare psycopg read); "
        "its other options (--batch-rows, --only) pass through",
    )
    args, rest = parser.parse_known_args()
    if args.warehouse == "redshift":
        script = Path(__file__).resolve().parent / "refresh_redshift.py"
        users = ["--users", *map(str, args.users)] if args.users else []
        argv = [sys.executable, str(script), *users, *rest]
        os.execv(sys.executable, argv)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    configure_logging("warning", "console")
    for users in args.users or [1_000_000]:
        result = anyio.run(main, users, args.state, not args.in_memory)
        print(json.dumps(result))
