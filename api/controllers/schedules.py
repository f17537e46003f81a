"""Schedules: segments (show next 5 runs, last outcome, pause reason; set; resume) and syncs."""

from __future__ import annotations

import re
from typing import Any

from litestar import Controller, get, post, put
from litestar.params import FromPath, JSONBody
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import CallerDep, RuntimeDep
from api.errors import ERROR_RESPONSES, refuse_unknown_query_params
from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.logging import get_logger
from zerocopy.scheduling import schedules
from zerocopy.scheduling.sync_scheduler import sync_schedule_view
from zerocopy.services._common import refuse_implausible_id
from zerocopy.services.contacts import check_contacts
from zerocopy.state.models import Segment
from zerocopy.state.sync_models import Sync

log = get_logger("api.schedules")


class ScheduleController(Controller):
    path = "/v1/segments/{segment_id:str}/schedule"
    tags = ["schedules"]
    guards = [refuse_unknown_query_params]

    @get(operation_id="getSegmentSchedule", responses=ERROR_RESPONSES)
    async def get_one(
        self, caller: CallerDep, runtime: RuntimeDep, segment_id: FromPath[str]
    ) -> dict[str, Any]:
        """The schedule in the workspace time zone, its next 5 runs, pause state, last run.

        ``paused.notice`` is the pause's e-mail to the contacts (delivered, or failed with
        ``error`` and retried at ``next_attempt_at``); ``blocked`` says why due runs are
        skipped while the segment's source is not ``active`` (null otherwise).
        """
        refuse_implausible_id(Segment, segment_id)
        return await schedules.schedule_view(runtime.db, caller.workspace_id, segment_id)

    @put(operation_id="setSegmentSchedule", responses=ERROR_RESPONSES)
    async def set_one(
        self,
        caller: CallerDep,
        runtime: RuntimeDep,
        segment_id: FromPath[str],
        data: JSONBody[dict[str, Any]],
    ) -> dict[str, Any]:
        """Set ``{"schedule": {...} | null, "contacts": [...]}``; a paused schedule stays paused."""
        refuse_implausible_id(Segment, segment_id)
        if not isinstance(data, dict) or "schedule" not in data:
            raise ZerocopyError(
                errors.VALIDATION_ERROR,
                'send {"schedule": {"frequency": "daily", "hour": 2, "minute": 30}} '
                '(or {"schedule": null} for manual only)',
                details={"field": "schedule", "reason": "required"},
            )
        unknown = sorted(str(key) for key in data if key not in ("schedule", "contacts"))
        if unknown:
            raise ZerocopyError(
                errors.VALIDATION_ERROR,
                f"unknown field(s) {', '.join(unknown)}: send schedule and optionally contacts",
                details={"field": unknown[0], "reason": "unknown_field"},
            )
        contacts = data.get("contacts")
        if isinstance(contacts, list):
            check_contacts(contacts)  # what the state cannot hold or no server can mail
        return await schedules.set_schedule(
            runtime.db, caller.workspace_id, segment_id, data["schedule"], contacts
        )

    @post(
        "/resume", operation_id="resumeSegmentSchedule", responses=ERROR_RESPONSES, status_code=200
    )
    async def resume(
        self, caller: CallerDep, runtime: RuntimeDep, segment_id: FromPath[str]
    ) -> dict[str, Any]:
        """Lift an automatic pause; the next run is the next occurrence after now."""
        refuse_implausible_id(Segment, segment_id)
        return await schedules.resume_schedule(runtime.db, caller.workspace_id, segment_id)


class SyncScheduleController(Controller):
    path = "/v1/syncs/{sync_id:str}/schedule"
    tags = ["schedules"]
    guards = [refuse_unknown_query_params]

    @get(operation_id="getSyncSchedule", responses=ERROR_RESPONSES)
    async def get_one(
        self, caller: CallerDep, runtime: RuntimeDep, sync_id: FromPath[str]
    ) -> dict[str, Any]:
        """The sync's frequency in the workspace time zone, its next 5 runs, last run's outcome.

        ``next_runs`` is empty unless the sync is ``active`` (paused and draft syncs never run
        on schedule); the frequency is changed with ``PATCH /v1/syncs/{id}``.
        """
        refuse_implausible_id(Sync, sync_id)
        return await sync_schedule_view(runtime.db, caller.workspace_id, sync_id)


_MEMBER_READ = re.compile(r"^/v1/segments/([^/]+)/members(?:/|$)")


def member_read_middleware(app: ASGIApp) -> ASGIApp:
    """Note successful member reads (``GET …/members``): a read segment is not stale."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            _MEMBER_READ.match(scope.get("path", ""))
            if scope["type"] == "http" and scope.get("method") == "GET"
            else None
        )
        if match is None:
            await app(scope, receive, send)
            return
        status = 0

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await app(scope, receive, capture)
        if 200 <= status < 300:
            try:
                runtime = scope["app"].state.runtime
                await schedules.record_member_read(runtime.db, match.group(1))
            except Exception as exc:  # never fail a read for bookkeeping
                log.warning("schedule.member_read_not_recorded", error=type(exc).__name__)

    return middleware
