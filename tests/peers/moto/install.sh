#!/usr/bin/env bash
# S3 peer: moto's standalone server (real S3 REST API over HTTP) in its own virtualenv under
# .peers/moto/, so Flask/Werkzeug and moto's pins never reach the product venv. The product
# talks to it with boto3 only. Idempotent: a no-op once the pinned version is installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
VENV="$ROOT/.peers/moto"
PY="${PY:-python3}"
VERSION="5.2.5"
STAMP="$VENV/.zerocopy-moto-$VERSION"
if [ -f "$STAMP" ] && "$VENV/bin/python" -c "import moto.server" 2>/dev/null; then
    exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "moto[server,s3]==$VERSION"
touch "$STAMP"
