"""Shapes shared by every resource."""

from __future__ import annotations

from typing import Any

import msgspec


class ErrorInfo(msgspec.Struct, kw_only=True):
    """A stable error code and what went wrong (also stored on failed runs and tests)."""

    code: str
    message: str
    line: int | None = None
    column: int | None = None
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class ErrorResponse(msgspec.Struct, kw_only=True):
    """Body of every 4xx/5xx answer."""

    error: ErrorInfo
