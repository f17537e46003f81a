"""Helpers shared by the test tree.

Rule: a test that cannot get what it needs (a server, a peer, a binary) calls
:func:`unavailable`, which skips on a developer machine and *fails* under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REPO = Path(__file__).resolve().parent.parent


def unavailable(reason: str) -> None:
    """Skip locally, fail under CI=true: CI must never silently skip a test."""
    if IN_CI:
        pytest.fail(f"required test dependency unavailable under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


# --------------------------------------------------------------------------- PostgreSQL
def _can_connect(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:
        return False


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a private cluster with initdb/pg_ctl (as an unprivileged user when root)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError("initdb/pg_ctl not found")
    data = Path(tempfile.mkdtemp(prefix="zc-pg-"))
    port = free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        user = "postgres" if _has_user("postgres") else "nobody"
        os.chown(data, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
        prefix = ["runuser", "-u", user, "--"]
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *prefix,
            pg_ctl,
            "-D",
            str(data),
            "-o",
            # A throwaway cluster: no crash safety needed, so no fsync (CREATE/DROP DATABASE
            # and every commit would otherwise wait on the disk).
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            # The server's output to a file: with the default (pg_ctl's stdout, a pipe here)
            # the postmaster keeps the pipe open and subprocess.run waits for ever.
            "-l",
            str(data / "server.log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(data, ignore_errors=True)


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def postgres_credential_settings(url: str) -> dict[str, Any]:
    """A ``postgres`` credential's settings for the server and database of ``url`` (no TLS)."""
    from psycopg.conninfo import conninfo_to_dict

    pg = conninfo_to_dict(url)
    return {
        "host": pg.get("host") or "127.0.0.1",
        "port": int(pg.get("port") or 5432),
        "database": pg["dbname"],
        "user": pg.get("user") or "postgres",
        "sslmode": "disable",
    }


def postgres_server_url() -> str | None:
    """ZEROCOPY_TEST_POSTGRES_URL, else the local server on 127.0.0.1:5432, else None."""
    url = os.environ.get("ZEROCOPY_TEST_POSTGRES_URL")
    if url:
        return url if _can_connect(url) else None
    for candidate in (
        "postgresql://postgres@127.0.0.1:5432/postgres",
        "postgresql://root@127.0.0.1:5432/postgres",
    ):
        if _can_connect(candidate):
            return candidate
    return None


@contextmanager
def scratch_database(server_url: str, template: str | None = None) -> Iterator[str]:
    """A fresh, uniquely named database on ``server_url``, dropped afterwards; with
    ``template``, a copy of that database (``CREATE DATABASE … TEMPLATE``)."""
    import psycopg

    name = f"zc_test_{uuid.uuid4().hex[:12]}"
    copy_of = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy_of}')
    try:
        yield database_on(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class RecycledDatabases:
    """Copies of a template database (``None``: the server's default, an empty database),
    one per :meth:`database` block, reused.

    ``CREATE DATABASE`` and ``DROP DATABASE`` (which waits for a checkpoint) cost 1-3 s per
    test on the shared 2-core machines, more than most tests' own work. After a block, its
    database is emptied (schemas the template does not have dropped, ``TRUNCATE … RESTART
    IDENTITY`` of every table written to: fresh heaps, sequences restarted) and kept for the
    next block only if ``pg_dump`` (schema *and* data) of it is then exactly the template's;
    a test that changed anything else (a migration, a table in ``public``, a grant, a
    setting) gets its database dropped as before. So a block always starts on a database
    indistinguishable from a fresh copy of the template.
    """

    def __init__(self, server_url: str, template: str | None = None) -> None:
        self.server_url = server_url
        self.template = template
        self.free: list[str] = []
        # Without a template, the reference is a new empty database (never template1
        # itself: a connection to it makes other workers' CREATE DATABASE fail).
        reference = template if template else self._create()
        if not template:
            self.free.append(reference)
        self.pg_dump = _pg_bin("pg_dump")
        self.reference: str | None = None  # without a pg_dump that works: never reused
        if self.pg_dump:
            with suppress(OSError, subprocess.CalledProcessError):
                self.reference = self._dump(reference)
        self.schemas = self._schemas(reference)

    def _schemas(self, name: str) -> set[str]:
        import psycopg

        with psycopg.connect(database_on(self.server_url, name)) as conn:
            rows = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                "AND nspname <> 'information_schema'"
            ).fetchall()
        return {row[0] for row in rows}

    def _dump(self, name: str) -> str:
        assert self.pg_dump
        out = subprocess.run(
            [self.pg_dump, "--no-password", database_on(self.server_url, name)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        # Comments name the dump's time; \(un)restrict lines carry a random key (15.14+).
        return "\n".join(
            line
            for line in out.splitlines()
            if not line.startswith(("--", "\\restrict", "\\unrestrict"))
        )

    def _create(self) -> str:
        import psycopg

        name = f"zc_test_{uuid.uuid4().hex[:12]}"
        copy_of = f' TEMPLATE "{self.template}"' if self.template else ""
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy_of}')
        return name

    def _drop(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _emptied_as_new(self, name: str) -> bool:
        """Empty ``name``; whether it now dumps exactly as the template."""
        import psycopg

        if self.reference is None:
            return False
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            if conn.execute(
                "SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
                "WHERE d.datname = %s",
                (name,),
            ).fetchone():
                return False
        with psycopg.connect(database_on(self.server_url, name), autocommit=True) as conn:
            for schema in self._schemas(name) - self.schemas:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            # Only tables ever written to (a table of the template is empty: size 0).
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
                    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
                    "AND tablename <> 'alembic_version' "
                    "AND pg_relation_size(format('%I.%I', schemaname, tablename)) > 0"
                )
            ]
            if tables:
                conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        return self._dump(name) == self.reference

    @contextmanager
    def database(self) -> Iterator[str]:
        name = self.free.pop() if self.free else self._create()
        try:
            yield database_on(self.server_url, name)
        finally:
            try:
                kept = self._emptied_as_new(name)
            except Exception:
                kept = False
            if kept:
                self.free.append(name)
            else:
                self._drop(name)

    def close(self) -> None:
        while self.free:
            self._drop(self.free.pop())


def database_on(server_url: str, name: str) -> str:
    """The URL (or conninfo string) of database ``name`` on the server of ``server_url``."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    if "://" in server_url:
        return _with_db(server_url, name)
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    return make_conninfo(**params)


def _with_db(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


# --------------------------------------------------------------------------- state templates
def migrate_state_database(url: str) -> None:
    """Apply the state migrations to ``url`` (once per session: a template tests copy).

    In a thread with its own event loop, so a session fixture first requested from an async
    fixture (inside the test's running loop) can still call it."""
    from concurrent.futures import ThreadPoolExecutor

    import anyio

    from zerocopy.state.db import Database

    async def upgrade() -> None:
        db = Database(url)
        try:
            await db.upgrade()
        finally:
            await db.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(anyio.run, upgrade).result()


def copy_sqlite_database(source: Path, target: Path) -> None:
    """``target`` becomes a copy of the SQLite file ``source`` (through SQLite's backup API,
    so a WAL file left beside ``source`` is included)."""
    import sqlite3
    from contextlib import closing

    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
