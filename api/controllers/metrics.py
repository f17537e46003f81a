"""Prometheus ``/metrics``, liveness ``/health/live`` and readiness ``/health/ready``."""

from __future__ import annotations

from typing import Any

import anyio
from litestar import Response, get

from api.deps import RuntimeDep
from zerocopy import metrics

READY_TIMEOUT_S = 5.0


@get("/metrics", operation_id="getMetrics", tags=["health"], security=[{}], include_in_schema=True)
async def prometheus_metrics(runtime: RuntimeDep) -> Response[bytes]:
    """Runs by kind/status, durations, queue depth and lag, warehouse time, ids moved, janitor."""
    body = await metrics.render(runtime.db)
    return Response(content=body, media_type=metrics.CONTENT_TYPE)


@get("/health/live", operation_id="getLiveness", tags=["health"], security=[{}])
async def liveness() -> dict[str, str]:
    """The process answers (restart it if not)."""
    return {"status": "ok"}


@get("/health/ready", operation_id="getReadiness", tags=["health"], security=[{}])
async def readiness(runtime: RuntimeDep) -> Response[dict[str, Any]]:
    """State database and job queue reachable: 200, else 503 with what is not."""
    checks: dict[str, str] = {}
    with anyio.move_on_after(READY_TIMEOUT_S):
        try:
            await runtime.db.ping()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        runner = getattr(runtime, "runner", None)
        ping = getattr(runner, "ping", None)
        if ping is None:
            checks["queue"] = "ok" if runner is not None else "not started"
        else:
            try:
                await ping()
                checks["queue"] = "ok"
            except Exception as exc:
                checks["queue"] = f"unreachable: {type(exc).__name__}"
    for name in ("database", "queue"):
        checks.setdefault(name, "timed out")
    ok = all(v == "ok" for v in checks.values())
    return Response(
        content={"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503
    )
