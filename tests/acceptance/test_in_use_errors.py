"""Deleting what something else still uses answers a specific code, never a 500.

A source used by segments or syncs → ``source_in_use`` naming them; a sync or a segment with
a run in flight → ``sync_in_progress`` / ``refresh_in_progress``; a constraint the services
did not check first (a race) → ``conflict`` without the SQL.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from api.errors import integrity_error_handler
from tests.acceptance.conftest import SCHEMA, Api
from zerocopy.services import syncs

pytestmark = pytest.mark.anyio


def assert_error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error: dict[str, Any] = resp.json()["error"]
    assert error["code"] == code, resp.text
    return error


async def source(api: Api) -> str:
    resp = await api.post(
        "/v1/credentials",
        json={"name": "dw", "kind": "duckdb", "settings": {"path": str(api.warehouse)}},
    )
    resp = await api.post(
        "/v1/sources", json={"name": "dw", "credential_id": resp.json()["id"], "scope": SCHEMA}
    )
    source_id: str = resp.json()["id"]
    assert (await api.post(f"/v1/sources/{source_id}/test")).status_code == 200
    return source_id


async def attributes_sync(api: Api, source_id: str, name: str) -> str:
    resp = await api.post(
        "/v1/syncs",
        json={
            "name": name,
            "data_type": "user_attributes",
            "source_id": source_id,
            "table": "users_attributes_sync",
            "frequency": "1h",
        },
    )
    assert resp.status_code == 201, resp.text
    sync_id: str = resp.json()["id"]
    return sync_id


async def test_source_used_by_a_sync_or_segment_is_source_in_use(api: Api) -> None:
    source_id = await source(api)
    sync_id = await attributes_sync(api, source_id, "attrs")

    error = assert_error(await api.delete(f"/v1/sources/{source_id}"), 409, "source_in_use")
    assert "sync 'attrs'" in error["message"] and "delete those" in error["message"]
    assert error["details"]["sync_ids"] == [sync_id]

    resp = await api.post(
        "/v1/segments",
        json={"name": "All", "source_id": source_id, "sql": "SELECT external_user_id FROM users"},
    )
    segment_id = resp.json()["id"]
    error = assert_error(await api.delete(f"/v1/sources/{source_id}"), 409, "source_in_use")
    assert "segment 'All'" in error["message"] and "sync 'attrs'" in error["message"]
    assert error["details"] == {"segment_ids": [segment_id], "sync_ids": [sync_id]}

    assert (await api.delete(f"/v1/syncs/{sync_id}")).status_code == 204
    assert (await api.delete(f"/v1/segments/{segment_id}")).status_code == 204
    assert (await api.delete(f"/v1/sources/{source_id}")).status_code == 204
    assert (await api.get(f"/v1/sources/{source_id}")).status_code == 404


async def test_sync_with_a_running_run_cannot_be_deleted(api: Api) -> None:
    source_id = await source(api)
    sync_id = await attributes_sync(api, source_id, "attrs")
    assert (await api.post(f"/v1/syncs/{sync_id}/test")).status_code == 200
    assert (await api.post(f"/v1/syncs/{sync_id}/activate")).status_code == 200
    # A run a worker has claimed (running) but not finished: the engine's own request.
    run = await syncs.sync_engine(api.app.state.runtime).request(sync_id, "api")
    error = assert_error(await api.delete(f"/v1/syncs/{sync_id}"), 409, "sync_in_progress")
    assert run.id in error["message"] and f"/v1/sync-runs/{run.id}/cancel" in error["message"]
    assert (await api.get(f"/v1/syncs/{sync_id}")).status_code == 200

    resp = await api.post(f"/v1/sync-runs/{run.id}/cancel")
    assert resp.status_code == 202, resp.text
    # The run is cancelled when the engine drives it; then the sync can go.
    await syncs.sync_engine(api.app.state.runtime).execute(run.id)
    resp = await api.get(f"/v1/sync-runs/{run.id}")
    assert resp.json()["status"] != "running", resp.text
    assert (await api.delete(f"/v1/syncs/{sync_id}")).status_code == 204


async def test_a_constraint_race_is_a_conflict_not_a_500() -> None:
    """What the handler answers for a real foreign-key violation of the state database."""
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.exec_driver_sql("CREATE TABLE a (id TEXT PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE b (a_id TEXT REFERENCES a(id) ON DELETE RESTRICT)")
        conn.exec_driver_sql("INSERT INTO a VALUES ('secret-looking-id')")
        conn.exec_driver_sql("INSERT INTO b VALUES ('secret-looking-id')")
        with pytest.raises(IntegrityError) as caught:
            conn.exec_driver_sql("DELETE FROM a")
    request = SimpleNamespace(url=SimpleNamespace(path="/v1/sources/x"))
    resp = integrity_error_handler(request, caught.value)  # type: ignore[arg-type]
    assert resp.status_code == 409
    body = resp.content
    assert body["error"]["code"] == "conflict"
    assert "still used" in body["error"]["message"]
    assert "secret-looking-id" not in str(body) and "DELETE" not in str(body)
