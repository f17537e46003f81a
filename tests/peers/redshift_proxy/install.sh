#!/usr/bin/env bash
# Redshift peer: stock PostgreSQL behind tests/peers/redshift_proxy/proxy.py, which uses the
# standard library only, so there is nothing to install; this checks the interpreter can run it.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"${PY:-python3}" -m py_compile "$HERE/proxy.py"
