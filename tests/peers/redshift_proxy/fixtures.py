"""Pytest fixtures for the Postgres-like adapters; import them into a test module to use them.

``pg_peer`` builds adapters of either kind against the same scratch database: ``postgres``
connects to the PostgreSQL server directly, ``redshift`` through the Redshift proxy.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from dialects.base import BaseAdapter
from dialects.protocol import ConnectionConfig, Scope
from dialects.registry import create_adapter
from fixtures.warehouse import Warehouse
from tests.peers.redshift_proxy.peer import (
    Md5Cluster,
    conninfo,
    load_scope,
    md5_cluster,
    redshift_proxy,
)
from tests.support import scratch_database, unavailable

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


@pytest.fixture(scope="session")
def md5_server() -> Iterator[Md5Cluster]:
    """A private cluster whose TCP logins need the right md5 password."""
    try:
        with md5_cluster() as cluster:
            yield cluster
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        unavailable(f"cannot start a PostgreSQL cluster with password auth: {exc}")
