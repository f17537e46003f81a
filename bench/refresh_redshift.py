"""A 1M-member segment through the Redshift adapter, next to a bare psycopg cursor read.

    .venv/bin/python bench/refresh_redshift.py [--users 1000000] [--batch-rows 100000]

Loads ``marketing.users`` (``--users`` rows) into a scratch database on the local PostgreSQL
server, starts the Redshift proxy peer in front of it, and measures in the same run, each in
its own child process so that every peak RSS (``ru_maxrss``) is that path's own:

1. ``engine``: the product's refresh of a segment selecting every user, through the
   Redshift adapter (check, CTAS, streamed ids, diff, swap, drop), state in SQLite;
2. ``adapter``: the Redshift adapter alone: CTAS + ``read_column`` of every id + drop;
3. ``psycopg``: a bare psycopg 3 named cursor (``fetchmany``) reading the same ids directly;
4. ``driver_fetchall``: redshift_connector's plain ``execute`` + ``fetchall`` (what the
   adapter avoids: the driver buffers the whole result inside ``execute()``).

Prints rows/s, peak RSS and RSS growth over the process's idle baseline per path, the size of
the result (Arrow bytes), then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCHEMA = "marketing"
SEGMENT_SQL = "SELECT external_user_id FROM users"


def rss_mb() -> float:
    """Current resident set size (MB) from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- child paths
def run_adapter(env: dict[str, Any]) -> dict[str, Any]:
    import anyio

    from dialects.protocol import ConnectionConfig, QueryTag, Scope
    from dialects.redshift import RedshiftAdapter

    config = ConnectionConfig(
        settings={"host": "127.0.0.1", "port": env["proxy_port"], "database": env["database"],
                  "user": env["user"], "ssl": False},
        secrets={"password": "unused"},
        scope=Scope(SCHEMA),
        max_runtime_s=600,
    )  # fmt: skip
    baseline = rss_mb()

    async def go() -> tuple[int, int, float]:
        table = "zc_tmp_bench_redshift"
        async with RedshiftAdapter(config) as adapter:
            started = time.perf_counter()
            await adapter.materialize(
                f'SELECT DISTINCT external_user_id FROM "{SCHEMA}"."users"',
                table,
                deadline=anyio.current_time() + 600,
                tag=QueryTag(run_id="bench"),
            )
            rows = nbytes = 0
            async for batch in adapter.read_column(
                table, "external_user_id", batch_rows=env["batch_rows"]
            ):
                rows += len(batch)
                nbytes += batch.nbytes
            await adapter.drop_table(table)
            return rows, nbytes, time.perf_counter() - started

    rows, nbytes, seconds = anyio.run(go)
    return {"rows": rows, "seconds": seconds, "arrow_bytes": nbytes, "baseline_mb": baseline}


def run_psycopg(env: dict[str, Any]) -> dict[str, Any]:
    import psycopg

    baseline = rss_mb()
    started = time.perf_counter()
    rows = 0
    with psycopg.connect(env["url"]) as conn, conn.cursor(name="bench") as cur:
        cur.execute(f'SELECT DISTINCT external_user_id FROM "{SCHEMA}"."users"')
        while batch := cur.fetchmany(env["batch_rows"]):
            rows += len(batch)
    return {"rows": rows, "seconds": time.perf_counter() - started, "baseline_mb": baseline}


def run_driver_fetchall(env: dict[str, Any]) -> dict[str, Any]:
    import redshift_connector

    baseline = rss_mb()
    started = time.perf_counter()
    conn = redshift_connector.connect(
        host="127.0.0.1", port=env["proxy_port"], database=env["database"], user=env["user"],
        password="unused", ssl=False,
    )  # fmt: skip
    cur = conn.cursor()
    cur.execute(f'SELECT DISTINCT external_user_id FROM "{SCHEMA}"."users"')
    rows = len(cur.fetchall())
    conn.close()
    return {"rows": rows, "seconds": time.perf_counter() - started, "baseline_mb": baseline}


def run_engine(env: dict[str, Any]) -> dict[str, Any]:
    import anyio

    from zerocopy.connections import AdapterFactory, build_adapter
    from zerocopy.refresh import RefreshEngine, catalog_mapping
    from zerocopy.secrets import SecretBox
    from zerocopy.state.db import Database
    from zerocopy.state.models import (
        CatalogTable,
        Credential,
        Segment,
        Source,
        SourceStatus,
        Workspace,
    )

    async def go() -> dict[str, Any]:
        tmp = Path(tempfile.mkdtemp(prefix="zc-bench-rs-"))
        db = Database(f"sqlite+aiosqlite:///{tmp / 'state.sqlite3'}")
        await db.upgrade()
        box = SecretBox([SecretBox.generate_key()])
        settings = {"host": "127.0.0.1", "port": env["proxy_port"], "database": env["database"],
                    "user": env["user"], "ssl": False}  # fmt: skip
        async with db.transaction() as s:
            ws = Workspace(name="bench")
            s.add(ws)
            await s.flush()
            cred = Credential(
                workspace_id=ws.id, name="rs", kind="redshift", settings=settings,
                secret_ciphertext=box.encrypt({"password": "unused"}),
            )  # fmt: skip
            s.add(cred)
            await s.flush()
            src = Source(
                workspace_id=ws.id, credential_id=cred.id, name="rs", kind="redshift",
                scope=SCHEMA, max_runtime_s=600, status=SourceStatus.ACTIVE,
            )  # fmt: skip
            s.add(src)
            await s.flush()
            seg = Segment(
                workspace_id=ws.id, source_id=src.id, name="all", sql=SEGMENT_SQL,
                dialect="redshift",
            )  # fmt: skip
            s.add(seg)
        adapter = build_adapter(src, cred, box)
        try:
            tables = await adapter.list_tables()
        finally:
            await adapter.aclose()
        async with db.transaction() as s:
            for tbl in tables:
                s.add(
                    CatalogTable(
                        source_id=src.id, schema=SCHEMA, name=tbl.name, kind=tbl.kind,
                        columns=[{"name": c.name, "data_type": c.data_type} for c in tbl.columns],
                    )
                )  # fmt: skip
        catalog_mapping  # noqa: B018 - imported to fail early if the engine's API moved
        engine = RefreshEngine(db, AdapterFactory(box))
        baseline = rss_mb()
        started = time.perf_counter()
        run = await engine.refresh(seg.id, trigger="bench")
        seconds = time.perf_counter() - started
        assert run.status == "succeeded", (run.error_code, run.error_message)
        await db.dispose()
        return {"rows": run.member_count, "seconds": seconds, "baseline_mb": baseline,
                "timings": run.timings}  # fmt: skip

    return anyio.run(go)


CHILDREN = {
    "engine": run_engine,
    "adapter": run_adapter,
    "psycopg": run_psycopg,
    "driver_fetchall": run_driver_fetchall,
}


def child(mode: str, env_json: str) -> None:
    env = json.loads(env_json)
    try:
        from zerocopy.logging import configure_logging

        configure_logging("warning", "console")
    except Exception:  # logging setup is optional for the adapter-only paths
        pass
    result = CHILDREN[mode](env)
    result["peak_mb"] = peak_mb()
    print(json.dumps(result, default=str))


# --------------------------------------------------------------------------- parent
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--only", nargs="*", choices=sorted(CHILDREN), default=list(CHILDREN))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--env", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.env)
        return 0

    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from tests.peers.redshift_proxy.peer import REDSHIFT_CATALOG_SQL, redshift_proxy
    from tests.support import postgres_server_url, scratch_database

    server = postgres_server_url()
    if server is None:
        print("no PostgreSQL server (set ZEROCOPY_TEST_POSTGRES_URL)", file=sys.stderr)
        return 2
    info = conninfo_to_dict(server)
    with scratch_database(server) as url:
        t = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{SCHEMA}"')  # type: ignore[arg-type]
            conn.execute(
                f'CREATE TABLE "{SCHEMA}"."users" AS SELECT '  # type: ignore[arg-type]
                "'u' || lpad(g::text, 9, '0') AS external_user_id, (g % 3 = 0) AS is_subscribed "
                f"FROM generate_series(1, {args.users}) AS g"
            )
            conn.execute(f'ANALYZE "{SCHEMA}"."users"')  # type: ignore[arg-type]
            conn.execute(REDSHIFT_CATALOG_SQL.read_text())  # type: ignore[arg-type]
        print(f"{args.users:,} users loaded in {time.perf_counter() - t:.1f} s")
        with redshift_proxy(
            int(info.get("port") or 5432), str(info.get("host") or "127.0.0.1")
        ) as port:
            env = {
                "url": url, "proxy_port": port, "database": conninfo_to_dict(url)["dbname"],
                "user": str(info.get("user") or "postgres"), "batch_rows": args.batch_rows,
            }  # fmt: skip
            results: dict[str, Any] = {"users": args.users, "batch_rows": args.batch_rows}
            for mode in args.only:
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", mode, "--env", json.dumps(env)],
                    capture_output=True, text=True, cwd=ROOT, env={**os.environ},
                )  # fmt: skip
                if proc.returncode != 0:
                    print(f"{mode}: FAILED\n{proc.stderr[-2000:]}")
                    results[mode] = {"error": proc.stderr[-500:]}
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                r["rows_per_s"] = r["rows"] / r["seconds"] if r["seconds"] else None
                r["growth_mb"] = r["peak_mb"] - r["baseline_mb"]
                results[mode] = r
                print(
                    f"{mode:>16}: {r['rows']:>9,} ids in {r['seconds']:.2f} s = "
                    f"{r['rows_per_s']:>10,.0f} rows/s; peak RSS {r['peak_mb']:.0f} MB "
                    f"(+{r['growth_mb']:.0f} MB over idle {r['baseline_mb']:.0f} MB)"
                )
            if "adapter" in results and "arrow_bytes" in results["adapter"]:
                mb = results["adapter"]["arrow_bytes"] / 2**20
                print(f"result size: {mb:.1f} MB as Arrow (Python str objects: ~{mb * 6:.0f} MB)")
        print(json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
