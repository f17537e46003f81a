#!/usr/bin/env bash
# Fabric peer setup (idempotent, fast no-op once done): what mssql-python's ODBC provider needs
# on this machine, and a throwaway CA + server certificate for the TDS peer.
#  - Debian libltdl7 (the bundled ODBC driver manager loads the driver through it);
#  - the throwaway CA in the system store: the ODBC driver trusts nothing else (it ignores
#    SSL_CERT_FILE), so update-ca-certificates is the only way to make Encrypt=yes verify.
# The peer itself runs on the project's venv (duckdb, sqlglot), like the Databricks peer.
set -euo pipefail
cd "$(dirname "$0")/../../.."
DIR=.peers/tds
mkdir -p "$DIR"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if ! ldconfig -p 2>/dev/null | grep -q 'libltdl.so.7'; then
  $SUDO apt-get install -y -q libltdl7 >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q libltdl7 >/dev/null
  }
fi

if [ ! -s "$DIR/server.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=zerocopy TDS peer test CA" \
    -keyout "$DIR/ca.key" -out "$DIR/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$DIR/server.key" \
    -out "$DIR/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$DIR/ext.cnf"
  openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 3650 -extfile "$DIR/ext.cnf" -out "$DIR/server.pem" 2>/dev/null
fi

STORE=/usr/local/share/ca-certificates/zerocopy-tds-peer.crt
if ! cmp -s "$DIR/ca.pem" "$STORE" 2>/dev/null; then
  $SUDO cp "$DIR/ca.pem" "$STORE"
  $SUDO update-ca-certificates >/dev/null 2>&1
fi
