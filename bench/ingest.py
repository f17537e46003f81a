"""Ingestion sync throughput: ours next to a bare baseline and dlt, in the same run.

Cases (each variant runs in its own child process, so its peak RSS is its own):

* ``pg``: PostgreSQL source table → built-in profile store on PostgreSQL (``user_attributes``:
  ``UPDATED_AT``, ``EXTERNAL_ID``, ``PAYLOAD`` JSON text). Compared with
  (a) **bare**: psycopg 3 server-side cursor → Arrow → ``COPY`` into PostgreSQL, no validation;
  (b) **dlt**: ``sql_table(..., incremental=updated_at, backend="pyarrow")`` loaded into DuckDB,
  dlt installed into its own venv ``.cache/bench-dlt/`` by this script (never the product venv).
  Also printed, not a target: **bare into the store's shape**, the same read and ``COPY``
  into a table with ``store_profile``'s own keys and indexes (ours / it = our engine's
  overhead; it / bare = what an indexed store costs). JSON key ``vs_bare_store_shape``.
* ``duckdb``: DuckDB source table → built-in store on SQLite, next to a bare DuckDB → Arrow →
  SQLite ``executemany`` copy.

Usage: ``.venv/bin/python bench/ingest.py [--rows 1000000] [--cases pg,duckdb] [--no-dlt]``.
The last line is one JSON object for the PostgreSQL case:
``{"rows", "rows_per_s", "vs_bare", "vs_dlt", "peak_mb", "vs_bare_store_shape"}`` (ratios =
our throughput / theirs).
Our runs use ``row_log="errors"`` (only refused rows are logged, as a production sync would).
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DLT_VENV = REPO / ".cache" / "bench-dlt"
DLT_SPEC = ["dlt[duckdb,sql_database]>=1.5", "sqlalchemy>=2", "psycopg2-binary", "pyarrow"]
BATCH = 50_000


def peak_mb() -> float:
    """Peak RSS of this process in MB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# ----------------------------------------------------------------------------- seeding
def seed_postgres(url: str, rows: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE users AS SELECT "
            "timestamptz '2026-01-01 00:00:00+00' + i * interval '1 millisecond' AS updated_at, "
            "'u' || i AS external_id, "
            "json_build_object('plan', (ARRAY['gold','silver','bronze'])[1 + i % 3], "
            "'score', i % 1000, 'active', i % 2 = 0)::text AS payload "
            f"FROM generate_series(0, {int(rows)} - 1) AS i"
        )
        conn.execute("CREATE INDEX ON users (updated_at)")
        conn.execute("ANALYZE users")


def seed_duckdb(path: Path, rows: int) -> None:
    import duckdb

    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE users AS SELECT "
            "TIMESTAMP '2026-01-01' + i * INTERVAL 1 MILLISECOND AS updated_at, "
            "'u' || i AS external_id, "
            "'{\"plan\": \"' || ['gold','silver','bronze'][1 + i % 3] || '\", \"score\": ' "
            "|| (i % 1000) || ', \"active\": ' || CASE WHEN i % 2 = 0 THEN 'true' ELSE 'false' END "
            "|| '}' AS payload FROM range(?) t(i)",
            [rows],
        )


# ----------------------------------------------------------------------------- children
async def _ours(kind: str, settings: dict[str, Any], scope: str, state_url: str) -> dict[str, Any]:
    from zerocopy.connections import AdapterFactory
    from zerocopy.logging import configure_logging
    from zerocopy.secrets import SecretBox
    from zerocopy.state.db import Database
    from zerocopy.state.membership import use_refresh_pool_everywhere
    from zerocopy.state.models import Credential, Source, SourceStatus, Workspace
    from zerocopy.state.sync_models import Sync
    from zerocopy.sync.engine import SyncEngine

    configure_logging("warning")
    use_refresh_pool_everywhere()  # as zerocopy's own processes do at start (CLI, API)
    db = Database(state_url)
    await db.upgrade()
    box = SecretBox([SecretBox.generate_key()])
    async with db.transaction() as s:
        ws = Workspace(name="bench")
        s.add(ws)
        await s.flush()
        cred = Credential(
            workspace_id=ws.id,
            name="wh",
            kind=kind,
            settings=settings,
            secret_ciphertext=box.encrypt({}),
        )
        s.add(cred)
        await s.flush()
        src = Source(
            workspace_id=ws.id,
            credential_id=cred.id,
            name="wh",
            kind=kind,
            scope=scope,
            max_runtime_s=3600,
            status=SourceStatus.ACTIVE,
        )
        s.add(src)
        await s.flush()
        sync = Sync(
            workspace_id=ws.id,
            name="bench",
            source_id=src.id,
            table_name="users",
            data_type="user_attributes",
            status="active",
            row_log="errors",
        )
        s.add(sync)
        await s.flush()
        sync_id = sync.id
    engine = SyncEngine(db, AdapterFactory(box))
    started = time.perf_counter()
    run = await engine.run(sync_id)
    seconds = time.perf_counter() - started
    await db.dispose()
    return {
        "status": run.status,
        "rows": run.rows_delivered,
        "errors": run.rows_errored,
        "error": run.error_message,
        "seconds": seconds,
    }


def child_ours_pg(src_url: str, state_url: str) -> dict[str, Any]:
    import anyio

    from tests.support import postgres_credential_settings

    settings = postgres_credential_settings(src_url)
    from zerocopy.settings import normalise_database_url

    return anyio.run(_ours, "postgres", settings, "public", normalise_database_url(state_url))


def child_ours_duckdb(duck_path: str, state_path: str) -> dict[str, Any]:
    import anyio

    return anyio.run(
        _ours, "duckdb", {"path": duck_path}, "main", f"sqlite+aiosqlite:///{state_path}"
    )


def child_bare_pg(src_url: str, target_url: str) -> dict[str, Any]:
    import io

    import psycopg
    import pyarrow as pa
    import pyarrow.csv as pacsv

    started = time.perf_counter()
    total = 0
    with psycopg.connect(src_url) as src, psycopg.connect(target_url) as dst:
        dst.execute(
            "CREATE TABLE IF NOT EXISTS bare_users "
            "(updated_at timestamptz, external_id text, payload text)"
        )
        with src.cursor(name="bare") as cur:
            cur.execute("SELECT updated_at, external_id, payload FROM users ORDER BY updated_at")
            names = ["updated_at", "external_id", "payload"]
            while rows := cur.fetchmany(BATCH):
                cols = list(zip(*rows, strict=True))
                table = pa.table({n: pa.array(c) for n, c in zip(names, cols, strict=True)})
                buf = io.BytesIO()
                pacsv.write_csv(table, buf)
                with dst.cursor().copy(
                    "COPY bare_users FROM STDIN (FORMAT csv, HEADER true)"
                ) as copy:
                    copy.write(buf.getvalue())
                total += len(rows)
        dst.commit()
    return {"rows": total, "seconds": time.perf_counter() - started}


def child_bare_store_pg(src_url: str, target_url: str) -> dict[str, Any]:
    """The bare baseline's read and COPY, into a table of the store's own shape.

    The target is ``store_profile`` of a migrated state database (the same primary key,
    unique indexes and ``jsonb`` column as ours); the server fills ``id`` (a random UUID, as
    random in the primary key as our derived ids), ``braze_id`` and ``workspace_id`` by
    column defaults, so the client work is the bare baseline's. Ours minus this is our
    engine's overhead; this minus bare is the cost of an indexed store.
    """
    import io

    import anyio
    import psycopg
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from zerocopy.state.db import Database

    async def migrate() -> None:
        db = Database(target_url.replace("postgresql://", "postgresql+psycopg://", 1))
        await db.upgrade()
        await db.dispose()

    anyio.run(migrate)
    with psycopg.connect(target_url, autocommit=True) as conn:
        ws = conn.execute(
            "INSERT INTO workspace (id, name, time_zone, created_at, updated_at) "
            "VALUES (gen_random_uuid()::text, 'bare', 'UTC', now(), now()) RETURNING id"
        ).fetchone()
        assert ws is not None
        conn.execute(
            "ALTER TABLE store_profile ALTER id SET DEFAULT gen_random_uuid()::text, "
            "ALTER braze_id SET DEFAULT replace(gen_random_uuid()::text, '-', ''), "
            f"ALTER workspace_id SET DEFAULT '{ws[0]}'"
        )
    started = time.perf_counter()
    total = 0
    with psycopg.connect(src_url) as src, psycopg.connect(target_url) as dst:
        with src.cursor(name="bare") as cur:
            cur.execute("SELECT updated_at, external_id, payload FROM users ORDER BY updated_at")
            names = ["updated_at", "external_id", "attributes"]
            while rows := cur.fetchmany(BATCH):
                cols = list(zip(*rows, strict=True))
                table = pa.table({n: pa.array(c) for n, c in zip(names, cols, strict=True)})
                buf = io.BytesIO()
                pacsv.write_csv(table, buf)
                with dst.cursor().copy(
                    "COPY store_profile (updated_at, external_id, attributes) "
                    "FROM STDIN (FORMAT csv, HEADER true)"
                ) as copy:
                    copy.write(buf.getvalue())
                total += len(rows)
        dst.commit()
    return {"rows": total, "seconds": time.perf_counter() - started}


def child_bare_duckdb(duck_path: str, state_path: str) -> dict[str, Any]:
    import sqlite3

    import duckdb

    started = time.perf_counter()
    total = 0
    con = duckdb.connect(duck_path, read_only=True)
    dst = sqlite3.connect(state_path)
    dst.execute(
        "CREATE TABLE IF NOT EXISTS bare_users (updated_at TEXT, external_id TEXT, payload TEXT)"
    )
    reader = con.execute(
        "SELECT CAST(updated_at AS VARCHAR), external_id, payload FROM users ORDER BY updated_at"
    ).to_arrow_reader(BATCH)
    assert reader is not None
    for batch in reader:
        cols = [c.to_pylist() for c in batch.columns]
        dst.executemany("INSERT INTO bare_users VALUES (?, ?, ?)", zip(*cols, strict=True))
        total += batch.num_rows
    dst.commit()
    dst.close()
    con.close()
    return {"rows": total, "seconds": time.perf_counter() - started}


DLT_SCRIPT = r"""
import json, resource, sys, time
import dlt
from dlt.sources.sql_database import sql_table
url, duck, workdir = sys.argv[1], sys.argv[2], sys.argv[3]
started = time.perf_counter()
source = sql_table(
    credentials=url, table="users", schema="public",
    incremental=dlt.sources.incremental("updated_at"), backend="pyarrow", chunk_size=50000,
)
pipeline = dlt.pipeline(
    pipeline_name="bench_ingest", destination=dlt.destinations.duckdb(duck),
    dataset_name="bench", pipelines_dir=workdir, progress=None,
)
pipeline.run(source)
seconds = time.perf_counter() - started
import duckdb
with duckdb.connect(duck, read_only=True) as con:
    rows = con.execute("SELECT count(*) FROM bench.users").fetchone()[0]
print(json.dumps({"rows": rows, "seconds": seconds,
                  "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def ensure_dlt() -> Path:
    """dlt in its own venv under .cache/bench-dlt/ (created on first use)."""
    python = DLT_VENV / "bin" / "python"
    probe = [str(python), "-c", "import dlt, duckdb, psycopg2, sqlalchemy, pyarrow"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print("installing dlt into .cache/bench-dlt/ ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(DLT_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *DLT_SPEC],
        check=True,
    )
    return python


def run_child(args: list[str], python: str = sys.executable) -> dict[str, Any]:
    """Run a variant in a fresh process; its last stdout line is a JSON object."""
    proc = subprocess.run(
        [python, *args], capture_output=True, text=True, cwd=REPO, env={**os.environ}
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{args[:3]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_main(argv: list[str]) -> None:
    name, *rest = argv
    fn = {
        "ours-pg": child_ours_pg,
        "ours-duckdb": child_ours_duckdb,
        "bare-pg": child_bare_pg,
        "bare-store-pg": child_bare_store_pg,
        "bare-duckdb": child_bare_duckdb,
    }[name]
    result = fn(*rest)
    result["peak_mb"] = peak_mb()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)  # the client's, not the server's
    print(json.dumps(result))


# ----------------------------------------------------------------------------- cases
def rate(result: dict[str, Any]) -> float:
    return result["rows"] / result["seconds"] if result["seconds"] else 0.0


def case_pg(rows: int, with_dlt: bool) -> dict[str, Any]:
    from tests.support import postgres_server_url, scratch_database, throwaway_postgres

    server = postgres_server_url()
    if server is None:
        with throwaway_postgres() as started:
            return _case_pg(started, rows, with_dlt, scratch_database)
    return _case_pg(server, rows, with_dlt, scratch_database)


def _case_pg(server: str, rows: int, with_dlt: bool, scratch: Any) -> dict[str, Any]:
    with (
        scratch(server) as src,
        scratch(server) as state,
        scratch(server) as bare_target,
        scratch(server) as store_target,
    ):
        t0 = time.perf_counter()
        seed_postgres(src, rows)
        print(f"pg: seeded {rows} rows in {time.perf_counter() - t0:.1f} s", flush=True)
        ours = run_child([__file__, "--child", "ours-pg", src, state])
        print(f"pg ours: {ours}", flush=True)
        bare = run_child([__file__, "--child", "bare-pg", src, bare_target])
        print(f"pg bare: {bare}", flush=True)
        bare_store = run_child([__file__, "--child", "bare-store-pg", src, store_target])
        print(f"pg bare into the store's shape: {bare_store}", flush=True)
        dlt_result = None
        if with_dlt:
            python = ensure_dlt()
            with tempfile.TemporaryDirectory(prefix="zc-bench-dlt-") as work:
                script = Path(work) / "dlt_load.py"
                script.write_text(DLT_SCRIPT)
                url = src.replace("postgresql://", "postgresql+psycopg2://", 1)
                dlt_result = run_child(
                    [str(script), url, str(Path(work) / "dlt.duckdb"), work], python=str(python)
                )
            print(f"pg dlt: {dlt_result}", flush=True)
    out = {
        "rows": ours["rows"],
        "rows_per_s": round(rate(ours)),
        "vs_bare": round(rate(ours) / rate(bare), 3),
        "vs_dlt": round(rate(ours) / rate(dlt_result), 3) if dlt_result else None,
        "peak_mb": ours["peak_mb"],
        "vs_bare_store_shape": round(rate(ours) / rate(bare_store), 3),
    }
    print(
        f"pg: ours {rate(ours):,.0f} rows/s ({ours['status']}), bare {rate(bare):,.0f} rows/s"
        f", bare into the store's shape {rate(bare_store):,.0f} rows/s"
        f" (ours {rate(ours) / rate(bare_store):.2f}x of it)"
        + (f", dlt {rate(dlt_result):,.0f} rows/s" if dlt_result else "")
        + f"; peak RSS ours {ours['peak_mb']} MB, bare {bare['peak_mb']} MB"
        + (f", dlt {dlt_result['peak_mb']} MB" if dlt_result else ""),
        flush=True,
    )
    return out


def case_duckdb(rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="zc-bench-ingest-") as work:
        duck = Path(work) / "wh.duckdb"
        seed_duckdb(duck, rows)
        ours = run_child([__file__, "--child", "ours-duckdb", str(duck), str(Path(work) / "s.db")])
        print(f"duckdb ours: {ours}", flush=True)
        bare = run_child(
            [__file__, "--child", "bare-duckdb", str(duck), str(Path(work) / "bare.db")]
        )
        print(f"duckdb bare: {bare}", flush=True)
    print(
        f"duckdb→sqlite: ours {rate(ours):,.0f} rows/s ({ours['status']}), bare "
        f"{rate(bare):,.0f} rows/s, vs_bare {rate(ours) / rate(bare):.3f}; peak RSS ours "
        f"{ours['peak_mb']} MB, bare {bare['peak_mb']} MB (bare holds DuckDB's whole ORDER BY "
        "result, which grows with the rows read; ours reads ranges of UPDATED_AT)",
        flush=True,
    )
    return {
        "rows": ours["rows"],
        "rows_per_s": round(rate(ours)),
        "peak_mb": ours["peak_mb"],
        "bare_peak_mb": bare["peak_mb"],
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cases", default="duckdb,pg")
    parser.add_argument("--no-dlt", action="store_true")
    args = parser.parse_args()
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    cases = {c.strip() for c in args.cases.split(",")}
    if "duckdb" in cases:
        case_duckdb(args.rows)
    if "pg" in cases:
        result = case_pg(args.rows, not args.no_dlt)
        print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
