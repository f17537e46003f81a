"""One owner whose stored time zone cannot be read is skipped; every other schedule fires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.refresh_fixtures import wire
from tests.integration.state_fixtures import db_fixture  # noqa: F401
from zerocopy.scheduling.config import SchedulingConfig
from zerocopy.scheduling.scheduler import Scheduler
from zerocopy.scheduling.schedules import set_schedule
from zerocopy.state.models import Segment, Workspace

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


async def test_an_unreadable_zone_skips_its_owner_only(db, tmp_path: Path) -> None:
    w = await wire(db, tmp_path, "SELECT external_user_id FROM users WHERE external_user_id <= 10")
    async with db.session() as s:
        seg = await s.get(Segment, w.segment_id)
        ws = seg.workspace_id
    await set_schedule(db, ws, w.segment_id, {"frequency": "hourly", "minute": 30}, now=T0)
    async with db.transaction() as s:
        await s.execute(
            sa.insert(Workspace).values(
                id="bad-ws", name="bad", time_zone="Nowhere/Zone", created_at=T0
            )
        )
        row = (await s.execute(sa.select(Segment).where(Segment.id == w.segment_id))).scalar_one()
        cols = {
            c.name: getattr(row, c.key) for c in Segment.__table__.columns if c.name not in ("id",)
        }
        cols.update(
            id="bad-seg",
            workspace_id="bad-ws",
            name="bad",
            schedule={"frequency": "hourly", "minute": 0},
        )
        cols.pop("last_run_id", None)
        await s.execute(sa.insert(Segment).values(**cols))
    submitted: list[str] = []

    async def submit(run_id: str) -> None:
        submitted.append(run_id)

    now = T0 + timedelta(minutes=31)
    sched = Scheduler(db, w.engine, submit, config=SchedulingConfig(), clock=lambda: now)
    await sched.tick()
    assert len(submitted) == 1  # the good segment's 06:30 occurrence
