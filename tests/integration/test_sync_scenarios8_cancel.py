"""Round 14: cancelling a sync run that is still waiting for its source's slot.

A sync run is ``running`` from its request on; behind a busy source (a DuckDB file takes one
run at a time, other warehouses ``ZEROCOPY_SOURCE_CONCURRENCY``) it waits for a slot. A
cancel of such a run only set ``cancel_requested_at``: the run stayed ``running``, and "run
now" answered ``sync_in_progress``, until the slot came free -- behind a long refresh, up to
its source's max runtime. The waiting run now notices the request with its next heartbeat and
ends ``cancelled`` at once, reading nothing; the next run goes through normally.

The slot is held by a real running run of another sync on the same source (taken through
the same ``SourceSlots`` every run uses), so the waiting run waits exactly as behind a long
run.
"""

from __future__ import annotations

import anyio
import pytest

from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture  # noqa: F401
from zerocopy.scheduling.slots import SYNC, SourceSlots, slot_key
from zerocopy.services import syncs

pytestmark = pytest.mark.anyio

COLS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}


async def test_a_run_waiting_for_its_slot_is_cancelled_at_once(spec: Spec) -> None:
    spec.warehouse.create("busy", COLS, [("2026-01-01 00:00:00", "u1", j({"x": 1}))])
    spec.warehouse.create("queued", COLS, [("2026-01-01 00:00:00", "u2", j({"x": 2}))])
    holder = await spec.ready("user_attributes", "busy")
    waiting = await spec.ready("user_attributes", "queued")
    held = await spec.engine.request(holder)
    settings = {"path": str(spec.warehouse.path)} if spec.source_kind == "duckdb" else {}
    kind = "duckdb" if spec.source_kind == "duckdb" else "postgres"
    slots = SourceSlots(spec.app.state.runtime.db)
    key = slot_key(await spec.source(), kind, settings)
    taken = [await slots.acquire(key, kind, held.id, SYNC)]
    while len(taken) < slots.limit_for(kind):  # every slot of the source is busy
        other = await spec.engine.request(
            await spec.ready("user_attributes", "busy", name=f"filler-{len(taken)}")
        )
        taken.append(await slots.acquire(key, kind, other.id, SYNC))
    try:
        resp = await spec.post(f"/v1/syncs/{waiting}/runs")
        assert resp.status_code == 202, resp.text
        run_id = resp.json()["id"]
        await anyio.sleep(0.5)
        assert (await spec.get(f"/v1/sync-runs/{run_id}")).json()["status"] == "running"
        resp = await spec.post(f"/v1/sync-runs/{run_id}/cancel")
        assert resp.status_code == 202, resp.text
        run: dict[str, object] = {}
        for _ in range(50):  # a heartbeat is 2 s; the slot stays held all along
            await anyio.sleep(0.2)
            run = (await spec.get(f"/v1/sync-runs/{run_id}")).json()
            if run["status"] != "running":
                break
        assert run["status"] == "cancelled", run
        assert run["error"]["code"] == "cancelled" and run["rows_read"] == 0, run  # type: ignore[index]
        assert await spec.profile(external_id="u2") is None
        # Run now is free again at once (no sync_in_progress), and waits for its slot.
        again = await spec.post(f"/v1/syncs/{waiting}/runs")
        assert again.status_code == 202, again.text
        next_id = again.json()["id"]
    finally:
        for run_holding in await _holders(slots, key):
            await slots.release(run_holding)
    done: dict[str, object] = {}
    for _ in range(100):
        await anyio.sleep(0.2)
        done = (await spec.get(f"/v1/sync-runs/{next_id}")).json()
        if done["status"] != "running":
            break
    assert (done["status"], done["rows_delivered"]) == ("success", 1), done
    prof = await spec.profile(external_id="u2")
    assert prof is not None and prof["attributes"] == {"x": 2}


async def _holders(slots: SourceSlots, key: str) -> list[str]:
    import sqlalchemy as sa

    from zerocopy.scheduling.models import SourceSlot

    async with slots.db.session() as s:
        rows = await s.scalars(sa.select(SourceSlot.run_id).where(SourceSlot.source_id == key))
        return list(rows.all())


async def test_a_scheduled_run_waiting_when_its_sync_is_paused_reads_nothing(
    spec: Spec,
) -> None:
    """A paused sync never runs on schedule: an occurrence fired before the pause that had
    not started yet (waiting for its source's slot or a place in the pool) ends
    ``cancelled`` when it starts, instead of reading the table of a sync the user has just
    paused. Activated again, the sync runs normally."""
    spec.warehouse.create("sched", COLS, [("2026-01-01 00:00:00", "u3", j({"x": 3}))])
    scheduled = await spec.ready("user_attributes", "sched")
    # The occurrence as the scheduler launches it: a running run with trigger "schedule",
    # handed to the runner; the pause comes before the runner starts it.
    run = await spec.engine.request(scheduled, "schedule")
    resp = await spec.post(f"/v1/syncs/{scheduled}/pause")
    assert resp.status_code == 200 and resp.json()["status"] == "paused", resp.text
    done = await syncs.execute_run(spec.app.state.runtime, run.id)
    assert (done.status, done.rows_read, done.error_code) == ("cancelled", 0, "cancelled")
    assert "paused" in (done.error_message or ""), done.error_message
    assert await spec.profile(external_id="u3") is None
    sync = await spec.sync(scheduled)
    assert sync["status"] == "paused", sync
    # A run the user asks for is refused while paused; once active again it runs.
    resp = await spec.post(f"/v1/syncs/{scheduled}/activate")
    assert resp.status_code == 200, resp.text
    again = await spec.run(scheduled)
    assert (again["status"], again["rows_delivered"]) == ("success", 1), again
