#!/usr/bin/env bash
# SSH bastion peer: a small asyncssh server (server.py) in its own virtualenv under
# .peers/sshd/. Idempotent: a no-op once the pinned version is installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
VENV="$ROOT/.peers/sshd"
PY="${PY:-python3}"
VERSION="2.24.1"
STAMP="$VENV/.zerocopy-asyncssh-$VERSION"
if [ -f "$STAMP" ] && "$VENV/bin/python" -c "import asyncssh" 2>/dev/null; then
    exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "asyncssh==$VERSION"
touch "$STAMP"
