"""What a segment query would cost before it runs: the warehouse's own dry-run estimate.

Only adapters that override ``estimate_bytes`` (BigQuery's free dry run) are asked; for the
others validate never opens a warehouse connection and shows ``estimated_bytes: null``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from dialects.base import BaseAdapter
from dialects.registry import adapter_class
from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.services._common import get_scoped
from zerocopy.state.models import Credential, Source

if TYPE_CHECKING:
    from zerocopy.services.context import Runtime
    from zerocopy.sql.result import CheckResult

ESTIMATE_TIMEOUT_S = 60.0
"""A dry run answers in about a second; validate never waits longer than this for one."""


def can_estimate(kind: str) -> bool:
    """True when the adapter of ``kind`` implements a dry-run estimate."""
    return adapter_class(kind).estimate_bytes is not BaseAdapter.estimate_bytes


async def validate_estimate(
    session: AsyncSession, runtime: Runtime, workspace_id: str, source_id: str, result: CheckResult
) -> dict[str, Any]:
    """``{"estimated_bytes": n | None}`` for a valid check, plus ``estimate_error`` if it failed.

    A failed estimate does not make valid SQL invalid: the check result stands, and the
    warehouse's reason (code and message) is shown next to it.
    """
    out: dict[str, Any] = {"estimated_bytes": None}
    source = await get_scoped(session, Source, workspace_id, source_id)
    if not result.valid or not result.ids_sql or not can_estimate(source.kind):
        return out
    cred = await get_scoped(session, Credential, workspace_id, source.credential_id)
    try:
        with anyio.fail_after(min(ESTIMATE_TIMEOUT_S, source.max_runtime_s)):
            async with runtime.adapter_for(source, cred) as adapter:
                out["estimated_bytes"] = await adapter.estimate_bytes(result.ids_sql)
    except ZerocopyError as exc:
        out["estimate_error"] = {"code": exc.code, "message": exc.message}
    except TimeoutError:
        out["estimate_error"] = {"code": errors.TIMED_OUT, "message": "the dry run did not answer"}
    return out
