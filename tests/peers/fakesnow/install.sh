#!/usr/bin/env bash
# Snowflake peer: fakesnow 0.12.1 (Snowflake's HTTP API over DuckDB) in its own virtualenv
# under .peers/fakesnow/. fakesnow 0.12.1 imports modules that snowflake-connector-python 5
# removed, so its venv pins the connector below 5; numpy is needed by DuckDB Python UDFs
# (the launcher's SYSTEM$WAIT). Idempotent: a no-op once the pinned versions are installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
VENV="$ROOT/.peers/fakesnow"
PY="${PY:-python3}"
STAMP="$VENV/.zerocopy-fakesnow-0.12.1"
if [ -f "$STAMP" ] && "$VENV/bin/python" -c "import fakesnow, numpy, uvicorn" 2>/dev/null; then
    exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "fakesnow[server]==0.12.1" "snowflake-connector-python>=4,<5" "numpy>=1.26"
touch "$STAMP"
