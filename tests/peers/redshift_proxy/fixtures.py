"""Pytest fixtures for the Postgres-like adapters; import them into a test module to use them.

``pg_peer`` builds adapters of either kind against the same scratch database: ``postgres``
connects to the PostgreSQL server directly, ``redshift`` through the Redshift proxy.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from dialects.base import BaseAdapter
from dialects.protocol import ConnectionConfig, QueryTag, Scope
from dialects.registry import create_adapter
from fixtures.warehouse import Warehouse
from tests.peers.redshift_proxy.peer import (
    Md5Cluster,
    conninfo,
    load_scope,
    md5_cluster,
    reader_role,
    redshift_proxy,
)
from tests.support import free_port, scratch_database, unavailable

SCHEMA = "mart"


def adapter_settings(kind: str, host: str, port: int, database: str, user: str) -> dict[str, Any]:
    """Connection settings for the local peers (plaintext: the peers have no TLS)."""
    settings: dict[str, Any] = {"host": host, "port": port, "database": database, "user": user}
    if kind == "redshift":
        settings["ssl"] = False
    else:
        settings["sslmode"] = "disable"
    return settings


@dataclass
class PgPeer:
    """One scratch database with the fixture warehouse in ``mart``, reachable as either kind."""

    url: str
    warehouse: Warehouse
    proxy_port: int

    @property
    def host(self) -> str:
        return conninfo(self.url).get("host", "127.0.0.1")

    @property
    def port(self) -> int:
        return int(conninfo(self.url).get("port", 5432))

    @property
    def database(self) -> str:
        return conninfo(self.url)["dbname"]

    def config(
        self,
        kind: str,
        user: str,
        *,
        schema: str = SCHEMA,
        password: str = "unused-on-trust",
        max_runtime_s: float = 60.0,
        **extra: Any,
    ) -> ConnectionConfig:
        port = self.proxy_port if kind == "redshift" else self.port
        settings = adapter_settings(kind, self.host, port, self.database, user)
        settings.update(extra)
        return ConnectionConfig(
            settings=settings,
            secrets={"password": password},
            scope=Scope(schema),
            max_runtime_s=max_runtime_s,
        )

    def adapter(self, kind: str, user: str, **kwargs: Any) -> BaseAdapter:
        return create_adapter(kind, self.config(kind, user, **kwargs))


@pytest.fixture(scope="session")
def redshift_proxy_port(postgres_server: str) -> Iterator[int]:
    """The Redshift proxy in front of the session's PostgreSQL server."""
    info = conninfo(postgres_server)
    with redshift_proxy(int(info.get("port", 5432)), info.get("host", "127.0.0.1")) as port:
        yield port


@pytest.fixture(scope="module")
def pg_peer(postgres_server: str, redshift_proxy_port: int) -> Iterator[PgPeer]:
    """A scratch database loaded with the fixture warehouse (and Redshift's catalog function)."""
    with scratch_database(postgres_server) as url:
        warehouse = load_scope(url, SCHEMA, redshift_catalog=True)
        yield PgPeer(url=url, warehouse=warehouse, proxy_port=redshift_proxy_port)


PGLIKE_KINDS = ["postgres", "redshift"]
"""psycopg 3 straight to PostgreSQL; redshift_connector through the Redshift proxy."""


@pytest.fixture(params=PGLIKE_KINDS)
def pglike_kind(request: pytest.FixtureRequest) -> str:
    """Each test once per Postgres-like kind (a module takes it as ``kind = pglike_kind``)."""
    return str(request.param)


@pytest.fixture
def reader(pg_peer: PgPeer) -> Iterator[str]:
    """A role with USAGE + CREATE on the scope and SELECT on every table and view in it."""
    with reader_role(pg_peer.url, SCHEMA) as name:
        yield name


def query_tag(segment_id: str = "seg-1") -> QueryTag:
    """A tag with a run id of its own."""
    return QueryTag(run_id=f"run-{uuid.uuid4().hex[:12]}", segment_id=segment_id)


@pytest.fixture(scope="session")
def md5_server() -> Iterator[Md5Cluster]:
    """A private cluster whose TCP logins need the right md5 password."""
    try:
        with md5_cluster() as cluster:
            yield cluster
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        unavailable(f"cannot start a PostgreSQL cluster with password auth: {exc}")


# --------------------------------------------------------------------------- conformance
CAN_SHOW_PGLIKE = frozenset(
    {
        "table_descriptions",
        "column_descriptions",
        "views",
        "server_timeout",
        "server_cancel",
        "auth_failed",
        "permission_denied",
        "scope_not_found",
        "unreachable",
    }
)
"""Both kinds run against real PostgreSQL, which shows every capability."""

SLOW_SQL = f'SELECT external_user_id FROM "{SCHEMA}"."users", (SELECT pg_sleep(600)) AS s'
"""Runs ten minutes unless cancelled; pg_sleep honours cancel requests and statement_timeout."""


@contextmanager
def pglike_conformance_target(kind: str, postgres_server: str) -> Iterator[Any]:
    """A ConformanceTarget for ``postgres`` or ``redshift`` (via the proxy) on a scratch database.

    The working role owns nothing and has exactly USAGE + CREATE on the scope and SELECT on
    every table and view in it; ``broken`` holds real provocations: a wrong md5 password on a
    password-checking cluster, a role without CREATE, a missing schema, a closed port.
    """
    from tests.conformance.target import ConformanceTarget

    info = conninfo(postgres_server)
    host, port = info.get("host", "127.0.0.1"), int(info.get("port", 5432))
    with ExitStack() as stack:
        url = stack.enter_context(scratch_database(postgres_server))
        database = conninfo(url)["dbname"]
        warehouse = load_scope(url, SCHEMA, redshift_catalog=kind == "redshift")
        writer = stack.enter_context(reader_role(url, SCHEMA))
        no_create = stack.enter_context(reader_role(url, SCHEMA, create=False))
        try:
            cluster = stack.enter_context(md5_cluster())
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            unavailable(f"cannot start a PostgreSQL cluster with password auth: {exc}")
        with psycopg.connect(cluster.admin_conninfo, autocommit=True) as conn:
            conn.execute("CREATE ROLE zc_md5_user LOGIN PASSWORD 'the-right-password'")
        if kind == "redshift":
            port = stack.enter_context(redshift_proxy(port, host))
            md5_port = stack.enter_context(redshift_proxy(cluster.port))
        else:
            md5_port = cluster.port

        def config(
            user: str = writer,
            schema: str = SCHEMA,
            password: str = "unused-on-trust",
            at_port: int = port,
            db: str = database,
        ) -> ConnectionConfig:
            return ConnectionConfig(
                settings=adapter_settings(kind, host, at_port, db, user),
                secrets={"password": password},
                scope=Scope(schema),
            )

        def admin(sql: str) -> Any:
            with psycopg.connect(url, autocommit=True) as conn:
                cur = conn.execute(sql)  # type: ignore[arg-type]
                return cur.fetchall() if cur.description else []

        yield ConformanceTarget(
            kind=kind,
            config=config(),
            admin=admin,
            slow_sql=SLOW_SQL,
            expected_tables=warehouse.names,
            can_show=CAN_SHOW_PGLIKE,
            broken={
                "auth_failed": config(
                    "zc_md5_user", "public", "a-wrong-password", md5_port, "postgres"
                ),
                "permission_denied": config(no_create),
                "scope_not_found": config(schema="no_such_schema"),
                "unreachable": config(at_port=free_port()),
            },
            warehouse=warehouse,
        )
