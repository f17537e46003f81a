"""Red team, concurrent requests: a burst of the same request has exactly one winner and the
others get the documented refusal, never a 500 or a duplicate."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests.acceptance.conftest import SCHEMA, Api
from tests.acceptance.redteam import state_url  # noqa: F401 (fixture)
from tests.acceptance.test_api_flow import (
    SLOW,
    assert_error,
    connected_source,
    wait_for_abandoned_statements,
)

pytestmark = pytest.mark.anyio


async def _burst(n: int, call: Any) -> list[Any]:
    results: list[Any] = [None] * n

    async def one(i: int) -> None:
        results[i] = await call()

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    return results


async def test_a_burst_of_refreshes_starts_one_run(api: Api) -> None:
    source_id = await connected_source(api)
    seg = await api.post("/v1/segments", {"name": "Slow", "source_id": source_id, "sql": SLOW})
    segment_id = seg.json()["id"]
    answers = await _burst(5, lambda: api.post(f"/v1/segments/{segment_id}/refresh"))
    started = [r for r in answers if r.status_code == 202]
    try:
        assert len(started) == 1, [r.text for r in answers]
        run_id = started[0].json()["id"]
        for resp in answers:
            if resp.status_code != 202:
                err = assert_error(resp, 409, "refresh_in_progress")
                assert err["details"]["run_id"] == run_id
    finally:
        for resp in started:
            await api.post(f"/v1/runs/{resp.json()['id']}/cancel")
            await api.wait_run(resp.json()["id"], timeout=60)
        assert await wait_for_abandoned_statements() == []
    runs = (await api.get(f"/v1/segments/{segment_id}/runs")).json()
    assert [r["id"] for r in runs] == [run_id]


async def test_a_burst_of_creates_with_one_name_makes_one_object(api: Api) -> None:
    cred = await api.post(
        "/v1/credentials",
        {"name": "Warehouse", "kind": "duckdb", "settings": {"path": str(api.warehouse)}},
    )
    cred_id = cred.json()["id"]
    answers = await _burst(
        5,
        lambda: api.post(
            "/v1/sources", {"name": "Same", "credential_id": cred_id, "scope": SCHEMA}
        ),
    )
    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409, 409], [
        r.text for r in answers
    ]
    for resp in answers:
        if resp.status_code == 409:
            assert_error(resp, 409, "conflict")
    assert [s["name"] for s in (await api.get("/v1/sources")).json()] == ["Same"]
