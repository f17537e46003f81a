"""BigQuery target: the fixture warehouse in a bqemulator dataset, reached over REST + gRPC.

The adapter signs in with real service-account JSON keys: REST calls go through the IAM gate
(tests/peers/bqemulator/gate.py), which verifies the key's signed JWT at its token endpoint,
answers BigQuery's 401/403 and forwards the rest to the emulator. That is how
``auth_failed`` (a key Google does not know) and ``permission_denied`` (an account without
``bigquery.tables.create``) are provoked.

Peer gaps (see tests/peers/bqemulator/launch.py and PEERS.md): jobs run synchronously inside
the emulator, so ``job_timeout_ms`` and ``jobs.cancel`` have no visible effect
(``server_timeout``/``server_cancel`` not shown; tests/integration/test_bigquery_adapter.py
records the exact job configuration and cancel calls at the HTTP boundary instead).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dialects.protocol import ConnectionConfig, Scope
from fixtures import build
from tests.conformance.target import ConformanceTarget
from tests.peers.bqemulator.gate import running_gate
from tests.peers.bqemulator.server import installed, load_warehouse, running_emulator
from tests.support import free_port, unavailable

CAN_SHOW = frozenset(
    {
        "table_descriptions",
        "column_descriptions",
        "views",
        "auth_failed",
        "permission_denied",
        "scope_not_found",
        "unreachable",
    }
)

DATASET = "mkt"

SLOW_SECONDS = 5.0
"""Longer than the tests' deadline (MAX_RUNTIME_S = 1.5 s) plus the adapter's cancel grace, so
the query is still running when the deadline or a user cancel (after 1 s) hits it. No longer:
the emulator runs one query at a time, so the drop that ends each test waits for the slow query
to finish (at 20 s, each deadline/cancel/server-timeout test took ~20 s)."""


def slow_sql(project: str, dataset: str) -> str:
    """Runs SLOW_SECONDS in the emulator: the peer's ZC_PEER_SLEEP, evaluated once."""
    return (
        f"SELECT external_user_id FROM `{project}`.`{dataset}`.`users` "
        f"WHERE (SELECT ZC_PEER_SLEEP({SLOW_SECONDS}))"
    )


@pytest.fixture(scope="session")
def bigquery_target() -> Iterator[ConformanceTarget]:
    if not installed():
        unavailable("bqemulator peer not installed: run tests/peers/bqemulator/install.sh")
    warehouse = build()
    with running_emulator() as emulator, running_gate(emulator.rest_url) as gate:
        client = emulator.client()
        load_warehouse(client, DATASET, warehouse)
        project = emulator.project
        owner = gate.service_account("zerocopy", project)
        reader = gate.service_account(
            "zerocopy-reader", project, denied=frozenset({"bigquery.tables.create"})
        )
        stranger = gate.service_account("zerocopy-deleted-key", project, registered=False)

        def admin(sql: str) -> Any:
            return [tuple(row.values()) for row in client.query(sql).result()]

        def config(
            key: str = owner.key_json, dataset: str = DATASET, **settings: Any
        ) -> ConnectionConfig:
            return ConnectionConfig(
                settings=emulator.settings(**{"api_endpoint": gate.url, **settings}),
                secrets={"service_account_json": key},
                scope=Scope(schema=dataset, database=project),
            )

        closed = f"http://127.0.0.1:{free_port()}"
        yield ConformanceTarget(
            kind="bigquery",
            config=config(),
            admin=admin,
            slow_sql=slow_sql(project, DATASET),
            expected_tables=warehouse.names,
            can_show=CAN_SHOW,
            broken={
                "auth_failed": config(key=stranger.key_json),
                "permission_denied": config(key=reader.key_json),
                "scope_not_found": config(dataset="no_such_dataset"),
                "unreachable": config(api_endpoint=closed, storage_api_endpoint=closed[7:]),
            },
            warehouse=warehouse,
        )
        client.close()
