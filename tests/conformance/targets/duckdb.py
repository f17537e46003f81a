"""DuckDB target: the fixture warehouse in a database file under the session's tmp dir."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dialects.protocol import ConnectionConfig, Scope
from fixtures import build, load_duckdb
from tests.conformance.target import ConformanceTarget

CAN_SHOW = frozenset(
    {
        "table_descriptions",
        "column_descriptions",
        "views",
        "server_timeout",
        "server_cancel",
        "permission_denied",
        "scope_not_found",
    }
)
# Not shown: auth_failed (an embedded file has no login), unreachable (no network).

SCHEMA = "mkt"

# ~400 users x 1e11 rows of hashing: hours on any machine, interruptible between chunks.
SLOW_SQL = (
    f'SELECT external_user_id FROM "{SCHEMA}"."users", range(100000000000) AS r(n) '
    "WHERE hash(external_user_id, r.n) = 42"
)


@pytest.fixture(scope="session")
def duckdb_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConformanceTarget]:
    base: Path = tmp_path_factory.mktemp("duckdb_target")
    warehouse = build()
    path = base / "warehouse.duckdb"
    load_duckdb(path, SCHEMA, warehouse)
    # A second file only ever opened read-only: DuckDB itself refuses the CTAS there.
    read_only = base / "read_only.duckdb"
    load_duckdb(read_only, SCHEMA, warehouse)

    con = duckdb.connect(str(path))
    lock = threading.Lock()

    def admin(sql: str) -> Any:
        with lock:
            return con.execute(sql).fetchall()

    def config(file: Path, scope: str = SCHEMA, **settings: Any) -> ConnectionConfig:
        return ConnectionConfig(
            settings={"path": str(file), **settings}, secrets={}, scope=Scope.parse(scope)
        )

    yield ConformanceTarget(
        kind="duckdb",
        config=config(path),
        admin=admin,
        slow_sql=SLOW_SQL,
        expected_tables=warehouse.names,
        can_show=CAN_SHOW,
        broken={
            "scope_not_found": config(path, scope="no_such_schema"),
            "permission_denied": config(read_only, read_only=True),
        },
        warehouse=warehouse,
    )
    con.close()
