"""Fabric target: mssql-python (ODBC provider) against the TDS peer in tests/peers/tds.

The peer is DuckDB behind TDS 7.4 over TLS with Entra-style tokens from a local token
endpoint: ``app-zerocopy`` may read and create tables, ``app-reader`` may only read (CREATE
TABLE → error 262 at the CTAS), a wrong secret gets AADSTS7000215. Deadline: the driver's
query timeout sends ATTENTION, which interrupts DuckDB; cancel: ``KILL <spid>``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dialects.protocol import ConnectionConfig, Scope
from fixtures import build
from tests.conformance.target import ConformanceTarget
from tests.peers.tds.launch import CLIENTS, DATABASE, TENANT, running_peer
from tests.support import free_port

CAN_SHOW = frozenset(
    {
        "views",
        "server_cancel",
        "auth_failed",
        "permission_denied",
        "scope_not_found",
        "unreachable",
    }
)

SCHEMA = "marketing"
# ~400 users x 1e11 rows of hashing: hours, interruptible between DuckDB chunks.
SLOW_SQL = (
    f"SELECT u.external_user_id FROM [{SCHEMA}].[users] AS u, range(100000000000) AS r(n) "
    "WHERE hash(u.external_user_id, r.n) = 42"
)


@pytest.fixture(scope="session")
def fabric_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConformanceTarget]:
    base = tmp_path_factory.mktemp("fabric_target")
    with running_peer(base) as peer:

        def config(
            client_id: str = "app-zerocopy",
            secret: str | None = None,
            scope: str = SCHEMA,
            port: int = peer.port,
            **extra: object,
        ) -> ConnectionConfig:
            return ConnectionConfig(
                settings={
                    "server": f"localhost,{port}",
                    "database": DATABASE,
                    "tenant_id": TENANT,
                    "client_id": client_id,
                    "authority_host": f"http://127.0.0.1:{peer.sts_port}",
                    **extra,
                },
                secrets={"client_secret": secret or CLIENTS[client_id][0]},
                scope=Scope.parse(scope),
            )

        yield ConformanceTarget(
            kind="fabric",
            config=config(),
            admin=peer.admin,
            slow_sql=SLOW_SQL,
            expected_tables=build().names,
            can_show=CAN_SHOW,
            broken={
                "auth_failed": config(secret="not-the-secret"),
                "permission_denied": config(client_id="app-reader"),
                "scope_not_found": config(scope="no_such_schema"),
                # The ODBC driver retries a closed port until the login timeout (15 s default).
                "unreachable": config(port=free_port(), login_timeout=2),
            },
        )
