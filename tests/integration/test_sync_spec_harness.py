"""Harness of the spec-driven sync scenarios (``test_sync_spec_*.py``), plus its own checks.

Each scenario builds a small source table in a real warehouse -- a DuckDB file or a
PostgreSQL database (its own, uniquely named) -- and drives the sync through the real app
(in-process HTTP: create, test, activate, run now with ``wait=true``), with the built-in
profile store on SQLite or PostgreSQL. Results are read back only through the API readers:
profile lookup by any identifier, events / purchases of a profile, catalog items, accounts,
run records and row logs. The ``spec`` fixture runs every scenario on the four combinations.

The expected values come from the text of issue 8 (and the README), never from the code.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from tests.support import scratch_database
from zerocopy.services import syncs, workspaces
from zerocopy.settings import load_settings

pytestmark = pytest.mark.anyio

SCHEMA = "marketing"

COMBOS = [
    pytest.param(("duckdb", "sqlite"), id="duckdb-sqlite"),
    pytest.param(("duckdb", "postgres"), id="duckdb-pgstate", marks=pytest.mark.postgres),
    pytest.param(("postgres", "sqlite"), id="pg-sqlite", marks=pytest.mark.postgres),
    pytest.param(("postgres", "postgres"), id="pg-pgstate", marks=pytest.mark.postgres),
]

# Portable column types: (DuckDB, PostgreSQL).
TYPES = {
    "ts": ("TIMESTAMP", "timestamp"),
    "tstz": ("TIMESTAMPTZ", "timestamptz"),
    "text": ("VARCHAR", "text"),
    "bool": ("BOOLEAN", "boolean"),
    "int": ("BIGINT", "bigint"),
}


def ts(text: str) -> datetime:
    """An ISO 8601 timestamp as an aware UTC datetime (naive = UTC)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def j(value: Any) -> str:
    """A JSON text (payload cell)."""
    return json.dumps(value)


USER_ID_COLS = {
    "UPDATED_AT": "ts",
    "EXTERNAL_ID": "text",
    "ALIAS_NAME": "text",
    "ALIAS_LABEL": "text",
    "BRAZE_ID": "text",
    "EMAIL": "text",
    "PHONE": "text",
    "PAYLOAD": "text",
}
"""A user table with every identifier column (rows: :func:`user_row`)."""


def user_row(
    minute: int,
    payload: object,
    *,
    ext: str | None = None,
    alias: tuple[str | None, str | None] = (None, None),
    braze: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    raw: str | None = None,
    day: int = 1,
) -> tuple[object, ...]:
    """A :data:`USER_ID_COLS` row at 2026-03-<day> 00:<minute>: ``payload`` as JSON text
    (``None``: a NULL PAYLOAD), or ``raw`` taken as is."""
    return (
        f"2026-03-{day:02d} 00:{minute:02d}:00",
        ext,
        alias[0],
        alias[1],
        braze,
        email,
        phone,
        raw if raw is not None else (None if payload is None else j(payload)),
    )


class Warehouse:
    """Tables in schema ``marketing`` of a DuckDB file or a PostgreSQL database."""

    def __init__(self, kind: str, *, path: Path | None = None, url: str | None = None) -> None:
        self.kind = kind
        self.path = path
        self.url = url
        if kind == "duckdb":
            assert path is not None
            self._exec([f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"])
        else:
            self._exec([f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"])

    def _exec(self, statements: Sequence[str], rows: Sequence[tuple[str, list[Any]]] = ()) -> None:
        if self.kind == "duckdb":
            con = duckdb.connect(str(self.path))
            try:
                for stmt in statements:
                    con.execute(stmt)
                for stmt, params in rows:
                    con.execute(stmt, params)
            finally:
                con.close()
        else:
            import psycopg

            assert self.url is not None
            with psycopg.connect(self.url, autocommit=True) as con:
                for stmt in statements:
                    con.execute(stmt)
                for stmt, params in rows:
                    con.execute(stmt.replace("?", "%s"), params)

    def create(
        self, table: str, columns: dict[str, str], rows: Sequence[Sequence[Any]] = ()
    ) -> None:
        """``CREATE TABLE marketing.<table>`` with quoted (case-kept) column names, then rows."""
        idx = 0 if self.kind == "duckdb" else 1
        cols = ", ".join(f'"{name}" {TYPES[kind][idx]}' for name, kind in columns.items())
        self._exec([f'CREATE TABLE {SCHEMA}."{table}" ({cols})'])
        self.insert(table, columns, rows)

    def insert(self, table: str, columns: dict[str, str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        names = list(columns)
        idx = 0 if self.kind == "duckdb" else 1
        marks = ", ".join(f"CAST(? AS {TYPES[columns[n]][idx]})" for n in names)
        col_list = ", ".join(f'"{n}"' for n in names)
        stmt = f'INSERT INTO {SCHEMA}."{table}" ({col_list}) VALUES ({marks})'
        self._exec([], [(stmt, list(row)) for row in rows])

    def execute(self, *statements: str) -> None:
        self._exec(statements)


@dataclass
class Spec:
    """The app, authenticated as one workspace, and the warehouse behind its source."""

    client: Any
    key: str
    workspace_id: str
    warehouse: Warehouse
    app: Any
    source_kind: str
    state_kind: str
    _source_id: str | None = None
    _credential_id: str | None = None
    _names: Iterator[int] = field(default_factory=lambda: iter(range(10_000)))

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.client.get(path, headers=self.auth, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return await self.client.post(path, json=json, headers=self.auth, **kw)

    async def patch(self, path: str, json: Any) -> Any:
        return await self.client.patch(path, json=json, headers=self.auth)

    async def delete(self, path: str) -> Any:
        return await self.client.delete(path, headers=self.auth)

    @property
    def engine(self) -> Any:
        """The process's sync engine (the one ``run now`` uses)."""
        return syncs.sync_engine(self.app.state.runtime)

    # ------------------------------------------------------------ definitions
    async def credential(self) -> str:
        if self._credential_id is None:
            if self.warehouse.kind == "duckdb":
                body: dict[str, Any] = {
                    "name": "dw",
                    "kind": "duckdb",
                    "settings": {"path": str(self.warehouse.path)},
                }
            else:
                assert self.warehouse.url is not None
                parts = urlsplit(self.warehouse.url)
                body = {
                    "name": "dw",
                    "kind": "postgres",
                    "settings": {
                        "host": parts.hostname,
                        "port": parts.port or 5432,
                        "database": parts.path.lstrip("/"),
                        "user": parts.username,
                    },
                    "secrets": {"password": parts.password or ""},
                }
            resp = await self.post("/v1/credentials", json=body)
            assert resp.status_code == 201, resp.text
            self._credential_id = resp.json()["id"]
        return self._credential_id

    async def source(self) -> str:
        if self._source_id is None:
            cred = await self.credential()
            resp = await self.post(
                "/v1/sources", json={"name": "dw", "credential_id": cred, "scope": SCHEMA}
            )
            assert resp.status_code == 201, resp.text
            source_id = resp.json()["id"]
            resp = await self.post(f"/v1/sources/{source_id}/test")
            assert resp.status_code == 200, resp.text
            self._source_id = source_id
        return self._source_id

    async def create_sync(self, data_type: str, table: str, **body: Any) -> dict[str, Any]:
        body.setdefault("name", f"{data_type}-{next(self._names)}")
        resp = await self.post(
            "/v1/syncs",
            json={"data_type": data_type, "source_id": await self.source(), "table": table, **body},
        )
        assert resp.status_code == 201, resp.text
        sync: dict[str, Any] = resp.json()
        return sync

    async def test_sync(self, sync_id: str) -> dict[str, Any]:
        resp = await self.post(f"/v1/syncs/{sync_id}/test")
        assert resp.status_code == 200, resp.text
        out: dict[str, Any] = resp.json()
        return out

    async def ready(self, data_type: str, table: str, **body: Any) -> str:
        """Create → test → activate a sync; its id."""
        sync = await self.create_sync(data_type, table, **body)
        await self.test_sync(sync["id"])
        resp = await self.post(f"/v1/syncs/{sync['id']}/activate")
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "active"
        return str(sync["id"])

    async def run(self, sync_id: str) -> dict[str, Any]:
        """Run now and wait: the run record."""
        resp = await self.post(f"/v1/syncs/{sync_id}/runs", params={"wait": "true"})
        assert resp.status_code == 200, resp.text
        run: dict[str, Any] = resp.json()
        assert run["status"] != "running", run
        return run

    async def sync(self, sync_id: str) -> dict[str, Any]:
        resp = await self.get(f"/v1/syncs/{sync_id}")
        assert resp.status_code == 200, resp.text
        out: dict[str, Any] = resp.json()
        return out

    # ------------------------------------------------------------ readers
    async def rows(self, run_id: str, *, errors_only: bool = True) -> list[dict[str, Any]]:
        resp = await self.get(
            f"/v1/sync-runs/{run_id}/rows",
            params={"errors_only": "true" if errors_only else "false", "limit": 1000},
        )
        assert resp.status_code == 200, resp.text
        out: list[dict[str, Any]] = resp.json()
        return out

    async def codes(self, run_id: str) -> list[str]:
        return [r["code"] for r in await self.rows(run_id)]

    async def profile(self, **ident: str) -> dict[str, Any] | None:
        """The profile an identifier designates, or None (404)."""
        resp = await self.get("/v1/profiles", params=ident)
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        out: dict[str, Any] = resp.json()
        return out

    async def events(self, profile_id: str) -> list[dict[str, Any]]:
        resp = await self.get(f"/v1/profiles/{profile_id}/events", params={"limit": 1000})
        assert resp.status_code == 200, resp.text
        out: list[dict[str, Any]] = resp.json()
        return out

    async def purchases(self, profile_id: str) -> list[dict[str, Any]]:
        resp = await self.get(f"/v1/profiles/{profile_id}/purchases", params={"limit": 1000})
        assert resp.status_code == 200, resp.text
        out: list[dict[str, Any]] = resp.json()
        return out

    async def catalog(self, name: str) -> dict[str, dict[str, Any]]:
        resp = await self.get(f"/v1/catalogs/{name}/items", params={"limit": 1000})
        assert resp.status_code == 200, resp.text
        return {item["id"]: item for item in resp.json()}

    async def accounts(self) -> dict[str, dict[str, Any]]:
        resp = await self.get("/v1/accounts", params={"limit": 1000})
        assert resp.status_code == 200, resp.text
        return {acc["id"]: acc for acc in resp.json()}


@pytest.fixture(name="spec", params=COMBOS)
async def spec_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Spec]:
    source_kind, state_kind = request.param
    with ExitStack() as stack:
        if source_kind == "duckdb":
            wh = Warehouse("duckdb", path=tmp_path / "wh.duckdb")
        else:
            server = request.getfixturevalue("postgres_server")
            wh = Warehouse("postgres", url=stack.enter_context(scratch_database(server)))
        # The state database starts at the newest revision (a copy of the session's migrated
        # template, conftest.py): the app's upgrade() at start-up finds nothing to do.
        if state_kind == "sqlite":
            state_url = f"sqlite:///{request.getfixturevalue('migrated_sqlite_path')}"
        else:
            state_url = request.getfixturevalue("migrated_postgres_url")
        settings = load_settings(
            {
                "ZEROCOPY_DATA_DIR": str(tmp_path / "data"),
                "ZEROCOPY_DATABASE_URL": state_url,
                "ZEROCOPY_LOG_LEVEL": "warning",
            }
        )
        app = create_app(settings)
        async with AsyncTestClient(app) as client:
            async with app.state.runtime.db.session() as session:
                ws, key = await workspaces.create_workspace(session, name="Spec")
            yield Spec(client, key, ws.id, wh, app, source_kind, state_kind)


# --------------------------------------------------------------------------- harness checks
USER_COLS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


async def test_the_harness_reads_back_what_a_sync_delivered(spec: Spec) -> None:
    spec.warehouse.create(
        "attrs",
        USER_COLS,
        [("2026-03-01 00:00:00", "u1", j({"tier": "gold"}))],
    )
    sync_id = await spec.ready("user_attributes", "attrs")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_read"], run["rows_delivered"]) == ("success", 1, 1)
    prof = await spec.profile(external_id="u1")
    assert prof is not None and prof["attributes"] == {"tier": "gold"}
    assert await spec.profile(external_id="nobody") is None
