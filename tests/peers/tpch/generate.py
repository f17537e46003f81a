"""Generate TPC-H sf=0.01 as Parquet plus the 22 query texts (runs in .peers/tpch, duckdb 1.5.5).

Usage: python generate.py --out .cache/tpch [--scale 0.01]
"""

from __future__ import annotations

import argparse
import pathlib
import shutil

import duckdb


def extension_path() -> pathlib.Path:
    """The tpch extension file shipped by the duckdb-extension-tpch wheel."""
    import duckdb_extension_tpch

    package = pathlib.Path(duckdb_extension_tpch.__file__).parent
    found = sorted(package.rglob("tpch.duckdb_extension"))
    if not found:
        raise SystemExit(f"no tpch.duckdb_extension under {package}")
    return found[0]


def main() -> None:
    """Write <out>/<table>.parquet, <out>/queries/qNN.sql and a completion marker."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--scale", type=float, default=0.01)
    args = parser.parse_args()
    out: pathlib.Path = args.out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "queries").mkdir(parents=True)
    con = duckdb.connect()
    con.execute(f"LOAD '{extension_path()}'")
    con.execute(f"CALL dbgen(sf={args.scale})")
    tables = [row[0] for row in con.execute("SHOW TABLES").fetchall()]
    for table in tables:
        con.execute(f"COPY {table} TO '{tmp / (table + '.parquet')}' (FORMAT parquet)")
    for number, query in con.execute("SELECT query_nr, query FROM tpch_queries()").fetchall():
        (tmp / "queries" / f"q{number:02d}.sql").write_text(query)
    (tmp / ".complete").write_text(f"scale={args.scale}\ntables={','.join(tables)}\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


if __name__ == "__main__":
    main()
