"""Test-side helpers for the Postgres-like peers: the Redshift proxy, an md5 cluster, scopes.

* :func:`redshift_proxy` starts ``proxy.py`` as a subprocess in front of a PostgreSQL server
  and stops it by PID.
* :func:`md5_cluster` starts a private PostgreSQL cluster whose TCP logins need an md5
  password, so a wrong password is rejected by the server itself (the shared server on
  127.0.0.1:5432 trusts everyone and cannot show ``auth_failed``).
* :func:`load_scope` loads the fixture warehouse into a schema; :func:`reader_role` creates a
  login role with exactly the grants a test names, and drops it afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from fixtures.render import statements
from fixtures.warehouse import Warehouse
from fixtures.warehouse import build as build_warehouse
from tests.support import _pg_bin, free_port, wait_for_port

HERE = Path(__file__).resolve().parent
PROXY = HERE / "proxy.py"
REDSHIFT_CATALOG_SQL = HERE / "redshift_catalog.sql"


@contextmanager
def redshift_proxy(upstream_port: int, upstream_host: str = "127.0.0.1") -> Iterator[int]:
    """Run the proxy on a free loopback port; yields the port."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(PROXY),
            "--port",
            str(port),
            "--upstream-host",
            upstream_host,
            "--upstream-port",
            str(upstream_port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, timeout=15)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class Md5Cluster:
    port: int
    socket_dir: str

    @property
    def admin_conninfo(self) -> str:
        """Superuser over the Unix socket (trusted); TCP logins need a password."""
        return f"host={self.socket_dir} port={self.port} user=postgres dbname=postgres"


@contextmanager
def md5_cluster() -> Iterator[Md5Cluster]:
    """A throwaway cluster: TCP logins authenticate with md5 passwords, the socket is trusted."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError("initdb/pg_ctl not found")
    root = Path(tempfile.mkdtemp(prefix="zc-md5-"))
    data, pwfile = root / "data", root / "pw"
    pwfile.write_text(uuid.uuid4().hex + "\n")
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        user = "postgres"
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            user, entry = "nobody", pwd.getpwnam("nobody")
        for path in (root, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        prefix = ["runuser", "-u", user, "--"]
    port = free_port()
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-U", "postgres", "-N", "--auth-local=trust",
         "--auth-host=md5", f"--pwfile={pwfile}"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c password_encryption=md5"  # md5, not SCRAM: redshift_connector's SCRAM fails here
    )
    subprocess.run(
        # -l: the server must not inherit our pipes, or run() would wait for it to exit.
        [*prefix, pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-o", options,
         "-w", "start"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    try:
        yield Md5Cluster(port=port, socket_dir=str(root))
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def load_scope(
    url: str, schema: str, *, users: int = 400, redshift_catalog: bool = False
) -> Warehouse:
    """Create ``schema`` in the database at ``url`` and load the fixture warehouse into it."""
    warehouse = build_warehouse(users=users)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        with conn.transaction():
            for sql in statements(warehouse, "postgres", schema, batch_rows=500):
                conn.execute(sql)  # type: ignore[arg-type]
        if redshift_catalog:
            conn.execute(REDSHIFT_CATALOG_SQL.read_text())  # type: ignore[arg-type]
    return warehouse


@contextmanager
def reader_role(
    url: str,
    schema: str,
    *,
    tables: list[str] | None = None,
    create: bool = True,
    password: str | None = None,
) -> Iterator[str]:
    """A LOGIN role with USAGE on ``schema``, SELECT on ``tables`` (all when None), CREATE if asked."""
    role = f"zc_role_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        pw = f" PASSWORD '{password}'" if password else ""
        conn.execute(f'CREATE ROLE "{role}" LOGIN{pw}')  # type: ignore[arg-type]
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')  # type: ignore[arg-type]
        if create:
            conn.execute(f'GRANT CREATE ON SCHEMA "{schema}" TO "{role}"')  # type: ignore[arg-type]
        if tables is None:
            conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')  # type: ignore[arg-type]
        for table in tables or []:
            conn.execute(f'GRANT SELECT ON "{schema}"."{table}" TO "{role}"')  # type: ignore[arg-type]
    try:
        yield role
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(  # type: ignore[arg-type]
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            conn.execute(f'DROP OWNED BY "{role}"')  # type: ignore[arg-type]
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')  # type: ignore[arg-type]


def conninfo(url: str) -> dict[str, str]:
    """``postgresql://user@host:port/db`` → host, port, dbname, user."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    return {k: str(v) for k, v in params.items() if v is not None}
