"""Ingestion sync phases, small and quick: µs/row for validation and for the store write.

Runs on a DuckDB table shaped like ``bench/ingest.py``'s (``user_attributes``:
``UPDATED_AT``, ``EXTERNAL_ID``, ``PAYLOAD`` JSON text), all in one process:

* ``read``: DuckDB → Arrow batches of 50,000 rows;
* ``validate``: the engine's ``_verdicts`` (hash, de-dup check, identifier and payload rules);
* ``store-new`` / ``store-update``: :class:`BuiltinStore.deliver` in batches of 5,000 rows,
  first creating every profile, then merging a changed payload into every profile;
* ``engine``: a whole ``SyncEngine.run`` from the DuckDB table into a fresh store.

Each is measured on SQLite and (when a local server answers) PostgreSQL.

Usage: ``.venv/bin/python bench/ingest_phases.py [--rows 100000] [--backends sqlite,postgres]``.
The last line is one JSON object with every figure and the peak RSS in MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BATCH = 50_000


def seed(path: Path, rows: int, *, version: int) -> None:
    """(Re)create the source table; ``version`` changes every payload (a new score)."""
    import duckdb

    with duckdb.connect(str(path)) as con:
        con.execute("DROP TABLE IF EXISTS users")
        con.execute(
            "CREATE TABLE users AS SELECT "
            f"TIMESTAMP '2026-01-0{version}' + i * INTERVAL 1 MILLISECOND AS updated_at, "
            "'u' || i AS external_id, "
            "'{\"plan\": \"' || ['gold','silver','bronze'][1 + i % 3] || '\", \"score\": ' "
            f"|| (i % 1000 + {version}) || ', \"active\": ' "
            "|| CASE WHEN i % 2 = 0 THEN 'true' ELSE 'false' END || '}' AS payload "
            "FROM range(?) t(i)",
            [rows],
        )


def read_batches(path: Path) -> list[Any]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        reader = con.execute(
            "SELECT updated_at AS UPDATED_AT, external_id AS EXTERNAL_ID, payload AS PAYLOAD "
            "FROM users ORDER BY updated_at"
        ).to_arrow_reader(BATCH)
        return list(reader)


def validate_all(batches: list[Any]) -> list[Any]:
    from zerocopy.sync.engine import _keyed, _verdicts
    from zerocopy.sync.types import DataType
    from zerocopy.sync.validate import SyncOptions
    from zerocopy.sync.watermark import WatermarkState, WatermarkTracker

    tracker = WatermarkTracker(WatermarkState())
    out: list[Any] = []
    position = 0
    for batch in batches:
        # Keying (UPDATED_AT parsed, row hashes) is part of validating a batch.
        keyed = _keyed(batch)
        chunk, _ = _verdicts(DataType.USER_ATTRIBUTES, keyed, position, tracker, SyncOptions())
        position += chunk.n
        out.append(chunk.valid)
    return out


async def _workspace(db: Any, path: Path) -> tuple[str, str]:
    from zerocopy.state.models import Credential, Source, SourceStatus, Workspace
    from zerocopy.state.sync_models import Sync

    async with db.transaction() as s:
        ws = Workspace(name="bench")
        s.add(ws)
        await s.flush()
        cred = Credential(
            workspace_id=ws.id, name="wh", kind="duckdb", settings={"path": str(path)}
        )
        s.add(cred)
        await s.flush()
        src = Source(
            workspace_id=ws.id,
            credential_id=cred.id,
            name="wh",
            kind="duckdb",
            scope="main",
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
        return ws.id, sync.id


async def store_phases(
    url: str, path: Path, first: list[Any], second: list[Any]
) -> tuple[float, float]:
    """Seconds to create every profile, then to merge a changed payload into every one."""
    from zerocopy.destinations.builtin import BuiltinStore
    from zerocopy.destinations.protocol import MAX_BATCH_ROWS, DeliveryBatch
    from zerocopy.state.db import Database
    from zerocopy.sync.types import DataType
    from zerocopy.sync.watermark import WatermarkState

    db = Database(url)
    await db.upgrade()
    ws, sync_id = await _workspace(db, path)
    store = BuiltinStore(db)
    from zerocopy.sync.types import AttributeRows

    out = []
    for chunks in (first, second):
        started = time.perf_counter()
        for rows in chunks:
            for i in range(0, len(rows), MAX_BATCH_ROWS):
                if isinstance(rows, AttributeRows):
                    part, columns = [], rows.slice(i, min(i + MAX_BATCH_ROWS, len(rows)))
                else:
                    part, columns = rows[i : i + MAX_BATCH_ROWS], None
                await store.deliver(
                    DeliveryBatch(
                        workspace_id=ws,
                        sync_id=sync_id,
                        run_id="bench",
                        data_type=DataType.USER_ATTRIBUTES,
                        rows=part,
                        watermark=WatermarkState(value=None, seen={}),
                        columns=columns,
                    )
                )
        out.append(time.perf_counter() - started)
    await db.dispose()
    return out[0], out[1]


async def engine_phase(url: str, path: Path) -> tuple[float, dict[str, Any]]:
    from zerocopy.connections import AdapterFactory
    from zerocopy.secrets import SecretBox
    from zerocopy.state.db import Database
    from zerocopy.sync.engine import SyncEngine

    db = Database(url)
    await db.upgrade()
    _ws, sync_id = await _workspace(db, path)
    engine = SyncEngine(db, AdapterFactory(SecretBox([SecretBox.generate_key()])))
    started = time.perf_counter()
    run = await engine.run(sync_id)
    seconds = time.perf_counter() - started
    await db.dispose()
    return seconds, {"status": run.status, "delivered": run.rows_delivered}


def main() -> None:
    import anyio

    from tests.support import postgres_server_url, scratch_database
    from zerocopy.logging import configure_logging
    from zerocopy.settings import normalise_database_url

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--phases", default="validate,store,engine")
    args = parser.parse_args()
    configure_logging("warning")
    n = args.rows
    phases = set(args.phases.split(","))
    figures: dict[str, Any] = {"rows": n}

    def us(seconds: float) -> float:
        return round(seconds / n * 1e6, 2)

    with tempfile.TemporaryDirectory(prefix="zc-phases-") as work, ExitStack() as stack:
        path = Path(work) / "wh.duckdb"
        seed(path, n, version=1)
        t0 = time.perf_counter()
        batches = read_batches(path)
        figures["read_us"] = us(time.perf_counter() - t0)
        t0 = time.perf_counter()
        first = validate_all(batches)
        figures["validate_us"] = us(time.perf_counter() - t0)
        seed(path, n, version=2)
        second = validate_all(read_batches(path))
        seed(path, n, version=1)
        urls: dict[str, str] = {}
        backends = set(args.backends.split(","))
        if "sqlite" in backends:
            urls["sqlite"] = f"sqlite+aiosqlite:///{Path(work) / 'state.db'}"
        if "postgres" in backends and (server := postgres_server_url()):
            urls["postgres"] = normalise_database_url(stack.enter_context(scratch_database(server)))
        for name, url in urls.items():
            if "store" in phases:
                new_s, upd_s = anyio.run(store_phases, url, path, first, second)
                figures[f"{name}_store_new_us"] = us(new_s)
                figures[f"{name}_store_update_us"] = us(upd_s)
            if "engine" in phases:
                engine_url = url
                if name == "sqlite":
                    engine_url = f"sqlite+aiosqlite:///{Path(work) / 'engine.db'}"
                else:
                    engine_url = normalise_database_url(
                        stack.enter_context(scratch_database(postgres_server_url() or ""))
                    )
                seconds, run = anyio.run(engine_phase, engine_url, path)
                figures[f"{name}_engine_rows_per_s"] = round(n / seconds)
                figures[f"{name}_engine_status"] = run["status"]
                assert run["delivered"] == n, run
            print(json.dumps(figures), flush=True)
    figures["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
