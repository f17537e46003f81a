"""Snowflake target: the official connector against the fakesnow peer in tests/peers/fakesnow.

fakesnow serves Snowflake's HTTP API over DuckDB. It accepts any login, including the
JWT of key-pair auth (the key is accepted and ignored), has no grants, no statement
timeout and no ``SYSTEM$CANCEL_QUERY``; view comments come back NULL (views themselves are
listed, from INFORMATION_SCHEMA.VIEWS); column comments show only because the peer's
launcher sets them natively (fakesnow drops Snowflake's column COMMENT clause). What it
cannot show is covered statement by statement in tests/unit/dialects/test_snowflake*.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dialects.protocol import ConnectionConfig, Scope
from fixtures import build
from tests.conformance.target import ConformanceTarget
from tests.peers.fakesnow.peer import peer_python, running_peer
from tests.support import free_port, unavailable

CAN_SHOW = frozenset(
    {"table_descriptions", "column_descriptions", "scope_not_found", "unreachable"}
)

DATABASE, SCHEMA = "ZC", "ANALYTICS"

# Snowflake's own SYSTEM$WAIT (the peer's launcher adds it). The cast then fails on purpose:
# fakesnow cannot cancel, so a query left running must not create its table after the test
# has dropped it.
SLOW_SQL = (
    f'SELECT "external_user_id" FROM "{DATABASE}"."{SCHEMA}"."users", '
    '(SELECT SYSTEM$WAIT(25) AS "waited") AS "w" WHERE CAST("w"."waited" AS INT) = 0'
)


def _private_key_pem() -> str:
    from zerocopy.secrets.keypairs import generate_rsa_keypair

    return generate_rsa_keypair().private_key_pem


@pytest.fixture(scope="session")
def snowflake_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConformanceTarget]:
    if peer_python() is None:
        unavailable("fakesnow peer not installed: run tests/peers/fakesnow/install.sh")
    base = tmp_path_factory.mktemp("snowflake_target")
    warehouse = build()
    pem = _private_key_pem()
    with running_peer(base, warehouse, database=DATABASE, schema=SCHEMA) as peer:

        def config(port: int = peer.port, scope: str = f"{DATABASE}.{SCHEMA}") -> ConnectionConfig:
            return ConnectionConfig(
                settings={
                    "account": "zerocopy-peer",
                    "user": "ZEROCOPY",
                    "role": "ZEROCOPY_ROLE",
                    "warehouse": "ZEROCOPY_WH",
                    "host": peer.host,
                    "port": port,
                    "protocol": "http",
                    "login_timeout": 3,
                    # The connector would otherwise post telemetry to Snowflake's servers.
                    "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
                },
                secrets={"private_key": pem},
                scope=Scope.parse(scope),
            )

        yield ConformanceTarget(
            kind="snowflake",
            config=config(),
            admin=peer.admin,
            slow_sql=SLOW_SQL,
            expected_tables=warehouse.names,
            can_show=CAN_SHOW,
            broken={
                "scope_not_found": config(scope=f"{DATABASE}.NO_SUCH_SCHEMA"),
                "unreachable": config(port=free_port()),
            },
            warehouse=warehouse,
        )
