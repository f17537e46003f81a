"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from litestar import get

from api.deps import RuntimeDep


@get("/health", operation_id="getHealth", tags=["health"], security=[{}])
async def health(runtime: RuntimeDep) -> dict[str, Any]:
    """Whether the API can reach its state database."""
    return await runtime.health()
