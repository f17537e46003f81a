"""Round 6: sync schedules across status changes the scheduler did not see.

The scheduler unplans a paused sync when it ticks; a pause and an activation between two
ticks (a long tick, a restart, the scheduler down) must still mean "nothing runs for the
paused time": the status change itself drops the plan, in its own transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.state_fixtures import db_fixture  # noqa: F401
from tests.integration.test_sync_engine import new_engine
from tests.integration.test_sync_scheduler import (
    T0,
    Clock,
    _runs,
    _scheduler,
    _set,
    _setup,
    _state,
)
from zerocopy.services import syncs
from zerocopy.state.db import Database

pytestmark = pytest.mark.anyio


async def test_a_pause_the_scheduler_never_saw_does_not_make_a_catch_up(
    db: Database, tmp_path: Path
) -> None:
    sync_id, ws_id = await _setup(db, tmp_path)
    await _set(db, sync_id, last_test_ok=True)
    engine = new_engine(db)
    clock = Clock(T0)
    submitted: list[str] = []
    sched = _scheduler(db, engine, clock, submitted)
    await sched.tick()
    assert (await _state(db, sync_id)).next_due_at == datetime(2026, 6, 1, 6, 15, tzinfo=UTC)
    async with db.session() as s:
        await syncs.pause_sync(s, ws_id, sync_id)
    # Paused from 06:00 to 08:00 with no tick in between (the scheduler was down).
    clock.now = T0 + timedelta(hours=2)
    async with db.session() as s:
        await syncs.activate_sync(s, ws_id, sync_id)
    report = await sched.tick()
    assert report.fired == [] and report.catch_up == [], report
    assert await _runs(db, sync_id) == [] and submitted == []
    assert (await _state(db, sync_id)).next_due_at == datetime(2026, 6, 1, 8, 15, tzinfo=UTC)
    clock.now = datetime(2026, 6, 1, 8, 15, 1, tzinfo=UTC)
    report = await sched.tick()
    assert len(report.fired) == 1 and report.catch_up == [], report


async def test_a_sync_made_draft_and_active_again_unseen_plans_from_its_activation(
    db: Database, tmp_path: Path
) -> None:
    """A table change makes the sync draft until tested again: the same rule."""
    sync_id, ws_id = await _setup(db, tmp_path, frequency="1h")
    await _set(db, sync_id, last_test_ok=True)
    clock = Clock(T0)
    submitted: list[str] = []
    sched = _scheduler(db, new_engine(db), clock, submitted)
    await sched.tick()
    async with db.session() as s:
        await syncs.update_sync(s, ws_id, sync_id, status="draft")
    clock.now = T0 + timedelta(hours=5)
    async with db.session() as s:
        await syncs.activate_sync(s, ws_id, sync_id)
    report = await sched.tick()
    assert report.fired == [] and await _runs(db, sync_id) == [], report
    assert (await _state(db, sync_id)).next_due_at == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
