"""The real app over HTTP: state on SQLite or PostgreSQL, warehouse = the fixture in DuckDB."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from fixtures.warehouse import build, load_duckdb
from zerocopy.services import workspaces
from zerocopy.settings import Settings, load_settings

T = TypeVar("T")

SCHEMA = "marketing"
USERS = 120

STATE_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass
class Api:
    """An HTTP client on the running app, authenticated as one workspace."""

    client: httpx.AsyncClient
    key: str
    workspace_id: str
    settings: Settings
    warehouse: Path
    app: Any

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.auth, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.client.post(path, json=json, headers=self.auth, **kw)

    async def patch(self, path: str, json: Any) -> httpx.Response:
        return await self.client.patch(path, json=json, headers=self.auth)

    async def delete(self, path: str) -> httpx.Response:
        return await self.client.delete(path, headers=self.auth)

    async def new_workspace(self, name: str) -> str:
        """Another workspace's API key (through the same service the CLI uses)."""
        async with self.app.state.runtime.db.session() as session:
            _, key = await workspaces.create_workspace(session, name=name)
        return key

    async def in_app(self, func: Callable[[], Awaitable[T]]) -> T:
        """Await ``func()`` in the app's own event loop (the test client runs the app in a
        portal thread): the runner's task group and the state database's connections belong
        to that loop, and a run submitted from the test's loop may never be awaited."""
        portal = self.client.blocking_portal  # type: ignore[attr-defined]
        return await anyio.to_thread.run_sync(portal.call, func)

    async def wait_run(self, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll ``GET /v1/runs/{id}`` until the run is final."""
        with anyio.fail_after(timeout):
            while True:
                resp = await self.get(f"/v1/runs/{run_id}")
                assert resp.status_code == 200, resp.text
                run: dict[str, Any] = resp.json()
                if run["status"] not in ("queued", "running"):
                    return run
                await anyio.sleep(0.05)


@pytest.fixture(scope="session")
def warehouse_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture warehouse in a DuckDB file, built once per session (per xdist worker)."""
    path = tmp_path_factory.mktemp("warehouse-template") / "warehouse.duckdb"
    load_duckdb(path, SCHEMA, build(users=USERS))
    assert not path.with_name(path.name + ".wal").exists(), "DuckDB left a WAL: copy it too"
    return path


@pytest.fixture
def warehouse_file(tmp_path: Path, warehouse_template: Path) -> Path:
    """A fresh fixture warehouse in a DuckDB file (a copy of the session's, which no test
    opens: a test may change its own copy freely)."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse_template, path)
    return path


@pytest.fixture(params=STATE_BACKENDS)
def state_url(request: pytest.FixtureRequest) -> str:
    """A state database at the newest revision (a copy of the session's migrated template;
    the app's own ``upgrade()`` at start-up then finds nothing to do)."""
    if request.param == "sqlite":
        return f"sqlite:///{request.getfixturevalue('migrated_sqlite_path')}"
    url: str = request.getfixturevalue("migrated_postgres_url")
    return url


@pytest.fixture
async def api(tmp_path: Path, state_url: str, warehouse_file: Path) -> AsyncIterator[Api]:
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
            ws, key = await workspaces.create_workspace(session, name="Acme")
        yield Api(client, key, ws.id, settings, warehouse_file, app)
