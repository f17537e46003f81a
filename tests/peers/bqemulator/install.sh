#!/usr/bin/env bash
# BigQuery peer: bqemulator 1.4.0 (+ numpy, which it imports but does not declare) in its own
# virtualenv under .peers/bqemulator/. Idempotent: a no-op once the pinned version is installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
VENV="$ROOT/.peers/bqemulator"
PY="${PY:-python3}"
STAMP="$VENV/.zerocopy-bqemulator-1.4.0"
if [ -f "$STAMP" ] && "$VENV/bin/python" -c "import bqemulator, numpy" 2>/dev/null; then
    exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "bqemulator==1.4.0" "numpy>=1.26"
touch "$STAMP"
