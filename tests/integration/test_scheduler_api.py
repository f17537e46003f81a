"""Schedules, metrics and health over HTTP on the real app (in-process runner; SQLite and PostgreSQL state)."""

from __future__ import annotations

import pytest

from tests.acceptance.conftest import (  # noqa: F401
    Api,
    api,
    state_url,
    warehouse_file,
    warehouse_template,
)
from tests.acceptance.test_api_flow import assert_error, connected_source

pytestmark = pytest.mark.anyio


async def _segment(api: Api) -> str:  # noqa: F811
    source_id = await connected_source(api)
    resp = await api.post(
        "/v1/segments",
        {"name": "FR", "source_id": source_id, "sql": "SELECT external_user_id FROM users"},
    )
    assert resp.status_code == 201, resp.text
    segment_id: str = resp.json()["id"]
    return segment_id


async def test_schedule_set_show_resume_and_metrics(api: Api) -> None:  # noqa: F811
    segment_id = await _segment(api)
    base = f"/v1/segments/{segment_id}/schedule"
    resp = await api.get(base)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "manual" and resp.json()["next_runs"] == []

    assert_error(
        await api.client.put(
            base, json={"schedule": {"frequency": "every_15_minutes"}}, headers=api.auth
        ),
        400,
        "validation_error",
    )
    resp = await api.client.put(
        base,
        json={
            "schedule": {"frequency": "weekly", "weekday": "monday", "hour": 2, "minute": 30},
            "contacts": ["ops@example.com"],
        },
        headers=api.auth,
    )
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["status"] == "active" and len(view["next_runs"]) == 5
    assert view["schedule"] == {"frequency": "weekly", "minute": 30, "hour": 2, "weekday": "monday"}
    assert view["contacts"] == ["ops@example.com"]

    # A manual refresh shows up as the last run's outcome.
    run = await api.post(f"/v1/segments/{segment_id}/refresh")
    assert run.status_code == 202, run.text
    await api.wait_run(run.json()["id"])
    view = (await api.get(base)).json()
    assert view["last_run"]["id"] == run.json()["id"] and view["last_run"]["status"] == "succeeded"

    # Member reads are noted for the stale rule.
    assert (await api.get(f"/v1/segments/{segment_id}/members")).status_code == 200
    db = api.app.state.runtime.db
    from zerocopy.scheduling.models import SEGMENT, ScheduleState

    async with db.session() as s:
        state = await s.get(ScheduleState, (SEGMENT, segment_id))
    assert state is not None and state.last_member_read_at is not None

    resp = await api.post(f"{base}/resume")
    assert resp.status_code == 200 and resp.json()["status"] == "active"
    assert (await api.client.get(base)).status_code == 401
    other = await api.new_workspace("Other")
    resp = await api.client.get(base, headers={"Authorization": f"Bearer {other}"})
    assert resp.status_code == 404

    metrics = await api.client.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert (
        'zerocopy_runs_total{error_code="",kind="refresh",status="succeeded",trigger="api"} 1.0'
        in text
    )
    assert "zerocopy_run_duration_seconds_bucket" in text
    assert "zerocopy_queue_depth" in text and "zerocopy_janitor_drops_total" in text
    assert (await api.client.get("/health/live")).json() == {"status": "ok"}
    ready = await api.client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
