"""The sync part of ``zerocopy demo``: an attributes sync and an events sync from the fixture.

Same services and engine as the API: create → test (10-row preview with verdicts) →
activate → run → row errors; then rows land in the warehouse with the watermark's
``UPDATED_AT`` (a tie) and a second run picks exactly them up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import click

from zerocopy.errors import ZerocopyError
from zerocopy.services import syncs
from zerocopy.services.context import Runtime

EVENTS_VIEW = """
CREATE OR REPLACE VIEW events_sync AS
SELECT occurred_at AS UPDATED_AT,
       external_user_id AS EXTERNAL_ID,
       json_object('name', name,
                   'time', strftime(occurred_at, '%Y-%m-%dT%H:%M:%SZ'),
                   'properties', properties::JSON)::VARCHAR AS PAYLOAD
FROM events
"""
"""The fixture's events as a custom-events sync source (a view works like a table)."""

TIE_ROWS = """
INSERT INTO users_attributes_sync (UPDATED_AT, EXTERNAL_ID, PAYLOAD)
SELECT (SELECT max(UPDATED_AT) FROM users_attributes_sync), 'u' || lpad(i::VARCHAR, 8, '0'),
       '{"plan": "enterprise", "first_name": null}'
FROM range(1, 4) t(i)
"""
"""Three late rows tied with the watermark: the next run must pick them up, once."""


def _say(text: str = "", **style: Any) -> None:
    click.secho(text, **style)


def _sql(path: Path, schema: str, sql: str) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    try:
        con.execute(f"SET schema = '{schema}'")
        con.execute(sql)
    finally:
        con.close()


def _run_line(name: str, run: Any) -> None:
    from zerocopy.sync.watermark import WatermarkState

    mark = WatermarkState.from_json(run.watermark_after).value
    # read = delivered + skipped (already delivered, re-read at the boundary) + errors
    _say(
        f"   {name:<18} {run.status:<16} read {run.rows_read:>5} = delivered "
        f"{run.rows_delivered:>5} + skipped {run.rows_skipped:>2} + errors {run.rows_errored:>3}  "
        f"watermark {mark.isoformat() if mark else '-'}"
    )


async def run_sync_demo(
    runtime: Runtime, workspace_id: str, source_id: str, warehouse: Path, schema: str
) -> None:
    """Create, test, activate and run the two syncs; print counts, errors, watermarks."""
    await anyio.to_thread.run_sync(_sql, warehouse, schema, EVENTS_VIEW)
    engine = syncs.sync_engine(runtime)
    made = []
    async with runtime.db.session() as s:
        for name, data_type, table in (
            ("User attributes", "user_attributes", "users_attributes_sync"),
            ("Product events", "custom_events", "events_sync"),
        ):
            sync = await syncs.create_sync(
                s, workspace_id, name=name, data_type=data_type, source_id=source_id,
                table=table, frequency="1h", lookback_minutes=0,
            )  # fmt: skip
            test = await syncs.test_sync(s, runtime, workspace_id, sync.id)
            bad = sum(not p.valid for p in test.preview)
            _say(
                f"   {name:<18} test: table {test.table}, preview {len(test.preview)} rows, "
                f"{bad} with row errors"
            )
            await syncs.activate_sync(s, workspace_id, sync.id)
            made.append(sync)
    runs = []
    for sync in made:
        async with runtime.db.session() as s:
            started = await syncs.start_run(s, runtime, workspace_id, sync.id, trigger="demo")
        run = await engine.execute(started.id)
        if run.status not in ("success", "partial_success"):
            raise ZerocopyError(run.error_code or "internal_error", f"{sync.name}: {run.status}")
        _run_line(sync.name, run)
        runs.append(run)
    async with runtime.db.session() as s:
        logs = await syncs.list_row_logs(s, workspace_id, runs[0].id, limit=4)
    for entry in logs:
        _say(f"     row {entry.position:>3}: {entry.code}: {entry.message}", fg="yellow")
    _say("   3 rows arrive with the watermark's UPDATED_AT (a tie); run the attributes again:")
    await anyio.to_thread.run_sync(_sql, warehouse, schema, TIE_ROWS)
    again = await engine.run(made[0].id, trigger="demo")
    _run_line(made[0].name, again)
    if again.rows_delivered != 3:
        raise ZerocopyError("internal_error", "the rows tied with the watermark were not synced")
