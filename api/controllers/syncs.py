"""Ingestion syncs: definitions, test, activation, runs, row errors and their export."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.background_tasks import BackgroundTask
from litestar.params import FromPath, JSONBody, Parameter
from litestar.response import Stream

from api.deps import CallerDep, RuntimeDep, SessionDep
from api.errors import ERROR_RESPONSES, refuse_unknown_query_params
from api.openapi import OptionalBodyOperation
from api.schemas.common import MAX_OFFSET, ErrorInfo
from api.schemas.runs import ScheduledOccurrence
from api.schemas.syncs import (
    PreviewRowRead,
    RowLogRead,
    SyncCreate,
    SyncRead,
    SyncRunRead,
    SyncTestRead,
    SyncUpdate,
    SyncWatermarkReset,
)
from api.views import with_occurrences
from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.scheduling.dispatch import dispatch_sync_run, wait_sync_run
from zerocopy.services import syncs
from zerocopy.state.sync_models import Sync, SyncRun
from zerocopy.sync.validate import parse_timestamp_us
from zerocopy.sync.watermark import WatermarkState, from_micros


def _reset_point(text: str | None) -> datetime | None:
    """A watermark reset's ``to``: ISO 8601 as syncs read times everywhere, else 400."""
    if text is None:
        return None
    micros = parse_timestamp_us(text)
    if micros is None:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"'to' {text!r} is not an ISO 8601 timestamp (e.g. 2026-04-01T10:00:00Z)",
            details={"field": "to"},
        )
    return from_micros(micros)


def _error(data: dict[str, Any] | None) -> ErrorInfo | None:
    if not data:
        return None
    return ErrorInfo(code=data["code"], message=data["message"], details=data.get("details") or {})


def sync_read(sync: Sync) -> SyncRead:
    return SyncRead(
        id=sync.id,
        name=sync.name,
        data_type=sync.data_type,
        status=sync.status,
        source_id=sync.source_id,
        table=sync.table_name,
        credential_id=sync.credential_id,
        catalog_name=sync.catalog_name,
        frequency=sync.frequency,
        contacts=list(sync.contacts or []),
        notifications=dict(sync.notifications or {}),
        row_limit=sync.row_limit,
        lookback_minutes=(sync.lookback_s or 0) // 60,
        destination=sync.destination,
        row_log=sync.row_log,
        watermark=WatermarkState.from_json(sync.watermark).value,
        last_tested_at=sync.last_test_at,
        last_test_error=_error(sync.last_test_error),
        last_run_id=sync.last_run_id,
        created_at=sync.created_at,
    )


def run_read(run: SyncRun, scheduled: ScheduledOccurrence | None = None) -> SyncRunRead:
    return SyncRunRead(
        id=run.id,
        sync_id=run.sync_id,
        status=run.status,
        trigger=run.trigger,
        rows_read=run.rows_read,
        rows_skipped=run.rows_skipped,
        rows_delivered=run.rows_delivered,
        rows_errored=run.rows_errored,
        watermark_before=WatermarkState.from_json(run.watermark_before).value,
        watermark_after=WatermarkState.from_json(run.watermark_after).value,
        error=ErrorInfo(code=run.error_code, message=run.error_message or "")
        if run.error_code
        else None,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_s=run.duration_s,
        scheduled=scheduled,
    )


async def run_reads(session: Any, runs: list[SyncRun]) -> list[SyncRunRead]:
    """:func:`run_read` of each sync run, with its schedule occurrence."""
    return await with_occurrences(session, runs, run_read)


class SyncController(Controller):
    path = "/v1/syncs"
    tags = ["syncs"]
    guards = [refuse_unknown_query_params]

    @post(operation_id="createSync", responses=ERROR_RESPONSES)
    async def create(
        self, caller: CallerDep, session: SessionDep, data: JSONBody[SyncCreate]
    ) -> SyncRead:
        """Create a sync in ``draft``; test it, then activate it."""
        sync = await syncs.create_sync(
            session,
            caller.workspace_id,
            name=data.name,
            data_type=data.data_type,
            source_id=data.source_id,
            table=data.table,
            credential_id=data.credential_id,
            source_settings=data.source_settings,
            catalog_name=data.catalog_name,
            frequency=data.frequency,
            contacts=data.contacts,
            notifications=data.notifications,
            row_limit=data.row_limit,
            lookback_minutes=data.lookback_minutes,
            destination=data.destination,
            row_log=data.row_log,
            settings=data.settings,
        )
        return sync_read(sync)

    @get(operation_id="listSyncs", responses=ERROR_RESPONSES)
    async def list_all(self, caller: CallerDep, session: SessionDep) -> list[SyncRead]:
        """Every sync of the workspace."""
        return [sync_read(s) for s in await syncs.list_syncs(session, caller.workspace_id)]

    @get("/{sync_id:str}", operation_id="getSync", responses=ERROR_RESPONSES)
    async def get_one(
        self, caller: CallerDep, session: SessionDep, sync_id: FromPath[str]
    ) -> SyncRead:
        """One sync with its committed watermark."""
        return sync_read(await syncs.get_sync(session, caller.workspace_id, sync_id))

    @patch("/{sync_id:str}", operation_id="updateSync", responses=ERROR_RESPONSES)
    async def update(
        self,
        caller: CallerDep,
        session: SessionDep,
        sync_id: FromPath[str],
        data: JSONBody[SyncUpdate],
    ) -> SyncRead:
        """Change a sync (``data_type_immutable`` for its data type)."""
        changes = {
            f: getattr(data, f)
            for f in data.__struct_fields__
            if getattr(data, f) is not msgspec.UNSET
        }
        return sync_read(await syncs.update_sync(session, caller.workspace_id, sync_id, **changes))

    @delete("/{sync_id:str}", operation_id="deleteSync", responses=ERROR_RESPONSES)
    async def remove(self, caller: CallerDep, session: SessionDep, sync_id: FromPath[str]) -> None:
        """Delete a sync, its runs and row logs."""
        await syncs.delete_sync(session, caller.workspace_id, sync_id)

    @post(
        "/{sync_id:str}/test", operation_id="testSync", responses=ERROR_RESPONSES, status_code=200
    )
    async def test(
        self, caller: CallerDep, session: SessionDep, runtime: RuntimeDep, sync_id: FromPath[str]
    ) -> SyncTestRead:
        """Reach the table, check its columns and validate the first 10 rows (row verdicts)."""
        out = await syncs.test_sync(session, runtime, caller.workspace_id, sync_id)
        return SyncTestRead(
            sync=sync_read(out.sync),
            table=out.table,
            columns=out.columns,
            preview=[
                PreviewRowRead(
                    position=p.position, valid=p.valid, code=p.code, message=p.message, row=p.row
                )
                for p in out.preview
            ],
            elapsed_s=out.elapsed_s,
        )

    @post(
        "/{sync_id:str}/activate",
        operation_id="activateSync",
        responses=ERROR_RESPONSES,
        status_code=200,
    )
    async def activate(
        self, caller: CallerDep, session: SessionDep, sync_id: FromPath[str]
    ) -> SyncRead:
        """``active`` after a successful test (``conflict`` otherwise)."""
        return sync_read(await syncs.activate_sync(session, caller.workspace_id, sync_id))

    @post(
        "/{sync_id:str}/pause", operation_id="pauseSync", responses=ERROR_RESPONSES, status_code=200
    )
    async def pause(
        self, caller: CallerDep, session: SessionDep, sync_id: FromPath[str]
    ) -> SyncRead:
        """``paused``: no scheduled runs until activated again."""
        return sync_read(await syncs.pause_sync(session, caller.workspace_id, sync_id))

    @post("/{sync_id:str}/runs", operation_id="runSync", responses=ERROR_RESPONSES, status_code=202)
    async def run_now(
        self,
        caller: CallerDep,
        session: SessionDep,
        runtime: RuntimeDep,
        sync_id: FromPath[str],
        wait: bool = Parameter(default=False, description="Answer when the run has finished."),
    ) -> Response[SyncRunRead]:
        """Start a run now (``sync_in_progress`` with the running run's id if one is running)."""
        run = await syncs.start_run(session, runtime, caller.workspace_id, sync_id)
        if await dispatch_sync_run(runtime, run.id):  # the runner's workers execute it
            if wait:
                return Response(run_read(await wait_sync_run(runtime, run.id)), status_code=200)
            return Response(run_read(run), status_code=202)
        if wait:
            return Response(run_read(await syncs.execute_run(runtime, run.id)), status_code=200)
        return Response(
            run_read(run),
            status_code=202,
            background=BackgroundTask(syncs.execute_run, runtime, run.id),
        )

    @post(
        "/{sync_id:str}/watermark/reset",
        operation_id="resetSyncWatermark",
        operation_class=OptionalBodyOperation,
        responses=ERROR_RESPONSES,
        status_code=200,
    )
    async def reset_watermark(
        self,
        caller: CallerDep,
        session: SessionDep,
        runtime: RuntimeDep,
        sync_id: FromPath[str],
        data: JSONBody[SyncWatermarkReset | None] = None,
    ) -> SyncRunRead:
        """Reset the watermark (``to`` null: read the whole table again; a timestamp: from
        it). ``sync_in_progress`` while a run is running. Answers the history record (a run
        with ``trigger`` ``watermark_reset`` and the watermark before and after)."""
        to = _reset_point(data.to) if data is not None else None
        return run_read(
            await syncs.reset_watermark(session, runtime, caller.workspace_id, sync_id, to)
        )

    @get("/{sync_id:str}/runs", operation_id="listSyncRuns", responses=ERROR_RESPONSES)
    async def runs(
        self,
        caller: CallerDep,
        session: SessionDep,
        sync_id: FromPath[str],
        limit: int = Parameter(default=50, ge=1, le=500),
    ) -> list[SyncRunRead]:
        """Runs of a sync, newest first."""
        found = await syncs.list_runs(session, caller.workspace_id, sync_id, limit=limit)
        return await run_reads(session, list(found))


class SyncRunController(Controller):
    path = "/v1/sync-runs"
    tags = ["syncs"]
    guards = [refuse_unknown_query_params]

    @get("/{run_id:str}", operation_id="getSyncRun", responses=ERROR_RESPONSES)
    async def get_one(
        self, caller: CallerDep, session: SessionDep, run_id: FromPath[str]
    ) -> SyncRunRead:
        """A run's status, counts, watermark before/after, duration and error."""
        run = await syncs.get_run(session, caller.workspace_id, run_id)
        return (await run_reads(session, [run]))[0]

    @post(
        "/{run_id:str}/cancel",
        operation_id="cancelSyncRun",
        responses=ERROR_RESPONSES,
        status_code=202,
    )
    async def cancel(
        self, caller: CallerDep, session: SessionDep, runtime: RuntimeDep, run_id: FromPath[str]
    ) -> SyncRunRead:
        """Ask a running run to stop; it ends ``cancelled``, the watermark at its last batch."""
        return run_read(await syncs.cancel_run(session, runtime, caller.workspace_id, run_id))

    @get("/{run_id:str}/rows", operation_id="listSyncRunRows", responses=ERROR_RESPONSES)
    async def rows(
        self,
        caller: CallerDep,
        session: SessionDep,
        run_id: FromPath[str],
        errors_only: bool = Parameter(
            default=True, description="true: refused rows only; false: every logged row."
        ),
        limit: int = Parameter(default=100, ge=1, le=1000),
        offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET),
    ) -> list[RowLogRead]:
        """Row verdicts of a run in row order, with the row and the reason."""
        found = await syncs.list_row_logs(
            session,
            caller.workspace_id,
            run_id,
            errors_only=errors_only,
            limit=limit,
            offset=offset,
        )
        return [RowLogRead(**syncs.row_log_dict(r)) for r in found]

    @get("/{run_id:str}/rows/export", operation_id="exportSyncRunRows", responses=ERROR_RESPONSES)
    async def export(
        self,
        caller: CallerDep,
        session: SessionDep,
        runtime: RuntimeDep,
        run_id: FromPath[str],
        format: str = Parameter(default="jsonl", pattern="^(jsonl|csv)$"),
        errors_only: bool = Parameter(
            default=True,
            description="true: refused rows and rows applied with a warning (verdict "
            "'warning', e.g. account fields dropped); false: every logged row.",
        ),
    ) -> Stream:
        """Row logs as JSON lines or CSV (streamed)."""
        await syncs.get_run(session, caller.workspace_id, run_id)
        media = "text/csv" if format == "csv" else "application/x-ndjson"
        return Stream(
            syncs.export_row_logs(runtime.db, run_id, fmt=format, errors_only=errors_only),
            media_type=media,
            headers={"content-disposition": f'attachment; filename="sync-run-{run_id}.{format}"'},
        )
