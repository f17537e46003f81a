#!/usr/bin/env bash
# TPC-H data and queries for the SQL round-trip test (tests/integration/test_tpch_roundtrip.py).
# DuckDB downloads its tpch extension at run time, which fails here; PyPI's
# duckdb-extension-tpch ships the extension for duckdb 1.5.5 only, so a separate virtualenv
# under .peers/tpch/ generates sf=0.01 Parquet files and the 22 query texts into .cache/tpch/.
# Idempotent: a no-op once the pinned versions are installed and the files exist.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
VENV="$ROOT/.peers/tpch"
OUT="$ROOT/.cache/tpch"
PY="${PY:-python3}"
STAMP="$VENV/.zerocopy-tpch-duckdb-1.5.5"
if [ ! -f "$STAMP" ] || ! "$VENV/bin/python" -c "import duckdb, duckdb_extension_tpch" 2>/dev/null; then
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "duckdb==1.5.5" "duckdb-extension-tpch==1.5.5"
    touch "$STAMP"
fi
if [ ! -f "$OUT/.complete" ]; then
    "$VENV/bin/python" "$ROOT/tests/peers/tpch/generate.py" --out "$OUT" --scale 0.01
fi
