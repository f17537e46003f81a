"""Round 14: the sync, sync-run and schedule routes refuse a query parameter they do not take.

The README's rule for every route ("an unknown query parameter is ``validation_error`` naming
it and the allowed ones") held for credentials, sources, segments, runs and profiles, but the
sync, sync-run and schedule routes ignored unknown parameters: ``GET
/v1/syncs/{id}/runs?status=success`` answered every run, ``partial_success`` included, as if
the filter had worked; ``…/rows?verdict=error`` every logged row.
"""

from __future__ import annotations

import pytest

from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture  # noqa: F401

pytestmark = pytest.mark.anyio

ONE = [pytest.param(("duckdb", "sqlite"), id="duckdb-sqlite")]
COLS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


@pytest.mark.parametrize("spec", ONE, indirect=True)
async def test_sync_routes_refuse_unknown_query_parameters(spec: Spec) -> None:
    spec.warehouse.create(
        "q", COLS, [("2026-01-01 00:00:00", "u1", j({"x": 1})), ("2026-01-01 00:01:00", None, "{}")]
    )
    sync_id = await spec.ready("user_attributes", "q")
    run = await spec.run(sync_id)
    assert run["status"] == "partial_success", run
    seg = await spec.post(
        "/v1/segments",
        json={"name": "s", "source_id": await spec.source(), "sql": "SELECT 1 AS external_user_id"},
    )
    segment_path = f"/v1/segments/{seg.json()['id']}/schedule" if seg.status_code == 201 else None
    cases = [
        (f"/v1/syncs/{sync_id}/runs", {"status": "success"}, "status"),
        (f"/v1/syncs/{sync_id}", {"expand": "runs"}, "expand"),
        ("/v1/syncs", {"sort": "name"}, "sort"),
        (f"/v1/sync-runs/{run['id']}/rows", {"verdict": "error"}, "verdict"),
        (f"/v1/sync-runs/{run['id']}/rows/export", {"fmt": "csv"}, "fmt"),
        (f"/v1/sync-runs/{run['id']}", {"x": "1"}, "x"),
        (f"/v1/syncs/{sync_id}/schedule", {"count": "10"}, "count"),
    ]
    if segment_path is not None:
        cases.append((segment_path, {"tz": "Europe/Paris"}, "tz"))
    for path, params, name in cases:
        resp = await spec.get(path, params=params)
        assert resp.status_code == 400, (path, resp.status_code, resp.text)
        error = resp.json()["error"]
        assert error["code"] == "validation_error" and error["details"]["field"] == name, error
        assert error["details"]["reason"] == "unknown_field", error
    # The parameters each route does take still work.
    resp = await spec.get(f"/v1/syncs/{sync_id}/runs", params={"limit": 1})
    assert resp.status_code == 200 and len(resp.json()) == 1, resp.text
    resp = await spec.get(
        f"/v1/sync-runs/{run['id']}/rows", params={"errors_only": "false", "limit": 5}
    )
    assert resp.status_code == 200 and len(resp.json()) == 2, resp.text
    resp = await spec.get(f"/v1/sync-runs/{run['id']}/rows/export", params={"format": "csv"})
    assert resp.status_code == 200, resp.text
    resp = await spec.get(f"/v1/syncs/{sync_id}/schedule")
    assert resp.status_code == 200, resp.text
