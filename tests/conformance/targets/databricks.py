"""Databricks target: the official connector against the TCLIService peer in tests/peers/databricks.

The peer is DuckDB behind the real Thrift-over-HTTP protocol, with Unity-Catalog-style grants:
``zerocopy`` may use the scope, read it and create tables there; ``reader`` may only read
(no CREATE TABLE: permission_denied at the CTAS); a wrong token gets HTTP 403.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dialects.protocol import ConnectionConfig, Scope
from fixtures import build
from tests.conformance.target import ConformanceTarget
from tests.peers.databricks.launch import HTTP_PATH, running_peer
from tests.support import free_port

CAN_SHOW = frozenset(
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

CATALOG, SCHEMA = "zc", "mkt"
TOKENS = {
    "dapi-admin-peer": "admin",
    "dapi-zerocopy-peer": "zerocopy",
    "dapi-reader-peer": "reader",
}

# ~400 users x 1e11 rows of hashing: hours, interruptible between DuckDB chunks.
SLOW_SQL = (
    f"SELECT external_user_id FROM `{CATALOG}`.`{SCHEMA}`.`users`, range(100000000000) AS r(n) "
    "WHERE hash(external_user_id, r.n) = 42"
)


def grant_reader_and_writer(admin: Any, catalog: str = CATALOG, schema: str = SCHEMA) -> None:
    """The grants the README asks for, given through the driver like a workspace admin would."""
    for principal in ("zerocopy", "reader"):
        admin(f"GRANT USE CATALOG ON CATALOG {catalog} TO `{principal}`")
        admin(f"GRANT USE SCHEMA ON SCHEMA {catalog}.{schema} TO `{principal}`")
        admin(f"GRANT SELECT ON SCHEMA {catalog}.{schema} TO `{principal}`")
    admin(f"GRANT CREATE TABLE ON SCHEMA {catalog}.{schema} TO `zerocopy`")


@pytest.fixture(scope="session")
def databricks_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConformanceTarget]:
    base = tmp_path_factory.mktemp("databricks_target")
    with running_peer(base, tokens=TOKENS, fixtures=(f"{CATALOG}.{SCHEMA}",)) as peer:
        grant_reader_and_writer(peer.admin)

        def config(
            token: str = "dapi-zerocopy-peer", scope: str = f"{CATALOG}.{SCHEMA}", uri: str = ""
        ) -> ConnectionConfig:
            return ConnectionConfig(
                settings={
                    "server_hostname": "127.0.0.1",
                    "http_path": HTTP_PATH,
                    "connection_uri": uri or peer.uri,
                },
                secrets={"access_token": token},
                scope=Scope.parse(scope),
            )

        yield ConformanceTarget(
            kind="databricks",
            config=config(),
            admin=peer.admin,
            slow_sql=SLOW_SQL,
            expected_tables=build().names,
            can_show=CAN_SHOW,
            broken={
                "auth_failed": config(token="dapi-not-a-valid-token"),
                "permission_denied": config(token="dapi-reader-peer"),
                "scope_not_found": config(scope=f"{CATALOG}.no_such_schema"),
                "unreachable": config(uri=f"http://127.0.0.1:{free_port()}{HTTP_PATH}"),
            },
        )
