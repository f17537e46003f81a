"""Notify after a finished sync run: load the sync's settings and last state, decide, send, store.

The sync runner (API "run now", scheduler, worker) calls :func:`notify_after_run` once a run
has its final status. The state lives in ``sync.notify_state`` (``AlertState`` plus the id of
the last run it saw), so calling it twice for one run sends nothing the second time.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from zerocopy.notify.decision import AlertState, NotificationSettings, RunOutcome, decide
from zerocopy.notify.dispatch import send_notifications
from zerocopy.notify.email import SmtpSettings
from zerocopy.state.db import Database
from zerocopy.state.sync_models import Sync, SyncRun

LAST_RUN_KEY = "last_run_id"


def outcome_of(sync: Sync, run: SyncRun) -> RunOutcome:
    """The notification facts of a finished run."""
    watermark: Any = run.watermark_after or {}
    return RunOutcome(
        sync_id=sync.id,
        sync_name=sync.name,
        run_id=run.id,
        status=run.status,
        rows_read=run.rows_read,
        rows_delivered=run.rows_delivered,
        row_errors=run.rows_errored,
        rows_skipped=run.rows_skipped,
        error_code=run.error_code,
        error_message=run.error_message,
        watermark_after=watermark.get("value") if isinstance(watermark, dict) else None,
        finished_at=run.finished_at.isoformat() if run.finished_at else None,
    )


async def notify_after_run(db: Database, run_id: str, smtp: SmtpSettings | None) -> AlertState:
    """Send what the finished run ``run_id`` calls for and store the new state on its sync.

    The decision and the new state are committed together, under the sync row's write lock,
    *before* anything is sent: "run now" answers once the run is final, while its mail may
    still be on its way, so the next run (or a second call for the same run) can finish and be
    notified meanwhile. It then reads the state this run left and says nothing twice; a run
    finished before the one the state already accounts for changes nothing.
    """
    async with db.transaction() as s:
        # A write first: PostgreSQL locks the row, SQLite takes its write lock, so two
        # notifiers of one sync decide one after the other, each from the other's state.
        await s.execute(
            sa.update(Sync)
            .where(
                Sync.id == sa.select(SyncRun.sync_id).where(SyncRun.id == run_id).scalar_subquery()
            )
            .values(notify_state=Sync.notify_state)
        )
        run = await s.get(SyncRun, run_id)
        sync = await s.get(Sync, run.sync_id) if run is not None else None
        if run is None or sync is None or run.finished_at is None:
            return AlertState()
        stored = dict(sync.notify_state or {})
        previous = AlertState.from_dict(stored)
        if stored.get(LAST_RUN_KEY) == run.id:
            return previous  # already notified for this run
        last_id = stored.get(LAST_RUN_KEY)
        last = await s.get(SyncRun, last_id) if isinstance(last_id, str) else None
        if last is not None and last.finished_at is not None and last.finished_at > run.finished_at:
            return previous  # a later run was notified already: this one is no news
        settings = NotificationSettings.from_sync(sync.contacts, sync.notifications)
        outcome = outcome_of(sync, run)
        decision = decide(previous, outcome, settings)
        await s.execute(
            sa.update(Sync)
            .where(Sync.id == sync.id)
            .values(notify_state={**decision.state.to_dict(), LAST_RUN_KEY: run.id})
        )
    await send_notifications(decision.notifications, settings, smtp)
    return decision.state
