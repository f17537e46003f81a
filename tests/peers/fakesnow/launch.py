"""Launcher for the fakesnow peer (runs inside ``.peers/fakesnow``, never the product venv).

``python launch.py --port P [--host 127.0.0.1] [--load manifest.json]`` serves Snowflake's
HTTP API (fakesnow 0.12.1 over an in-memory DuckDB) on 127.0.0.1:P until SIGTERM/SIGINT.

Two things on top of ``fakesnow -s``:

- ``SYSTEM$WAIT(seconds)``, which Snowflake has and fakesnow lacks, registered as a DuckDB
  function that sleeps and returns ``'waited N seconds'`` like Snowflake's. The tests' slow
  query waits instead of burning the shared CPU; fakesnow has no cancel, so such a query
  keeps its server thread busy until the wait ends.
- A fix for fakesnow 0.12.1 storing table comments: it pastes the comment into SQL
  unescaped, so a comment with an apostrophe ("the customer's id") fails the CREATE.
- ``--load``: a manifest (``{"database", "schema", "statements": [...], "column_comments":
  [[table, column, comment]...], "parquet": {table: path}}``) loaded before the port opens:
  the DDL statements (tables with inline comments, views) go through fakesnow's own
  Snowflake→DuckDB translation; column comments, which that translation drops, are set
  as DuckDB column comments (what fakesnow's INFORMATION_SCHEMA.COLUMNS reads); the rows
  are bulk-inserted from Parquet into DuckDB directly. Going row by row through fakesnow's
  ``INSERT`` translation takes ~2 s per 1,000 rows, which would make every test session slow.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

import duckdb

import fakesnow
import fakesnow.info_schema

# The package's ``server()`` context manager; importing the ``fakesnow.server`` module
# below rebinds that package attribute to the module.
serve = fakesnow.server
import fakesnow.server as server_module  # noqa: E402

_insert_table_comment_sql = fakesnow.info_schema.insert_table_comment_sql


def _insert_table_comment_sql_escaped(
    catalog: str, schema: str, table: str, comment: str | None
) -> str:
    """fakesnow's own statement, with the comment's quotes doubled."""
    escaped = comment.replace("'", "''") if isinstance(comment, str) else comment
    return _insert_table_comment_sql(catalog, schema, table, escaped)


fakesnow.info_schema.insert_table_comment_sql = _insert_table_comment_sql_escaped


def _wait(seconds: int) -> str:
    time.sleep(seconds)
    return f"waited {seconds} seconds"


def _load(manifest_path: Path) -> None:
    manifest = json.loads(manifest_path.read_text())
    database, schema = manifest["database"], manifest["schema"]
    fs = server_module.shared_fs
    conn = fs.connect(database, schema)  # creates the database and schema like Snowflake's DDL
    cur = conn.cursor()
    for statement in manifest["statements"]:
        cur.execute(statement)
    for table, column, comment in manifest.get("column_comments", []):
        # fakesnow cannot translate Snowflake's column COMMENT clause, but its
        # INFORMATION_SCHEMA.COLUMNS returns DuckDB's own column comments: set those.
        literal = comment.replace("'", "''")
        fs.duck_conn.execute(
            f'COMMENT ON COLUMN {database}.{schema}."{table}"."{column}" IS \'{literal}\''
        )
    for table, path in manifest["parquet"].items():
        fs.duck_conn.execute(
            f'INSERT INTO {database}.{schema}."{table}" SELECT * FROM read_parquet(?)', [path]
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--load", type=Path)
    args = parser.parse_args()

    server_module.shared_fs.duck_conn.create_function(
        "system$wait", _wait, [duckdb.sqltypes.INTEGER], duckdb.sqltypes.VARCHAR, side_effects=True
    )
    if args.load:
        _load(args.load)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with serve(port=args.port, host=args.host):
        print(f"fakesnow peer ready on {args.host}:{args.port}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
