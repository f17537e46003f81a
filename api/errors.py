"""The one place where error codes become HTTP statuses, and every error becomes our JSON shape.

Every error response is ``{"error": {"code", "message", "line", "column", "details"}}``, with
the same stable codes the engine and the CLI use (``zerocopy.errors``).
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.exc import IntegrityError

from api.schemas.common import ErrorResponse
from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.logging import get_logger

log = get_logger("zerocopy.api")

STATUS_BY_CODE: dict[str, int] = {
    # Request shape and identity.
    errors.VALIDATION_ERROR: 400,
    errors.UNAUTHORIZED: 401,
    errors.NOT_FOUND: 404,
    errors.METHOD_NOT_ALLOWED: 405,
    # State conflicts.
    errors.CONFLICT: 409,
    errors.REFRESH_IN_PROGRESS: 409,
    errors.SYNC_IN_PROGRESS: 409,
    errors.SOURCE_NOT_ACTIVE: 409,
    errors.CREDENTIAL_IN_USE: 409,
    errors.SOURCE_IN_USE: 409,
    errors.DATA_TYPE_IMMUTABLE: 409,
    errors.CANCELLED: 409,
    # Well-formed requests the rules refuse (segment SQL, credentials, warehouse config).
    errors.PARSE_ERROR: 422,
    errors.MULTIPLE_STATEMENTS: 422,
    errors.NOT_READ_ONLY: 422,
    errors.FORBIDDEN_FUNCTION: 422,
    errors.OUT_OF_SCOPE: 422,
    errors.UNKNOWN_TABLE: 422,
    errors.UNKNOWN_COLUMN: 422,
    errors.MISSING_ID_COLUMN: 422,
    errors.UNSUPPORTED_IN_DIALECT: 422,
    errors.UNKNOWN_DIALECT: 422,
    errors.INVALID_CREDENTIAL: 422,
    errors.CREDENTIAL_KIND_MISMATCH: 422,
    errors.AUTH_FAILED: 422,
    errors.PERMISSION_DENIED: 422,
    errors.SCOPE_NOT_FOUND: 422,
    # The warehouse (an upstream of ours) failed or was slow.
    errors.UNREACHABLE: 502,
    errors.WAREHOUSE_ERROR: 502,
    errors.WAREHOUSE_BUSY: 503,
    errors.TIMED_OUT: 504,
    errors.DESTINATION_ERROR: 502,
    errors.NOTIFICATION_FAILED: 502,
    errors.FILE_SOURCE_ERROR: 422,
    # Ours.
    errors.WORKER_LOST: 500,
    errors.INTERNAL_ERROR: 500,
}
"""Stable error code → HTTP status. A code missing here is answered 500 (and is a bug)."""

CODE_BY_HTTP_STATUS: dict[int, str] = {
    400: errors.VALIDATION_ERROR,
    401: errors.UNAUTHORIZED,
    403: errors.UNAUTHORIZED,
    404: errors.NOT_FOUND,
    405: errors.METHOD_NOT_ALLOWED,
    409: errors.CONFLICT,
}
"""Litestar's own HTTP exceptions (unknown route, wrong method, bad body) → our codes."""


def status_for(code: str) -> int:
    """HTTP status for an error code."""
    return STATUS_BY_CODE.get(code, HTTP_500_INTERNAL_SERVER_ERROR)


def error_body(
    code: str,
    message: str,
    *,
    line: int | None = None,
    column: int | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The error JSON shape, all five keys always present."""
    return {
        "error": {
            "code": code,
            "message": message,
            "line": line,
            "column": column,
            "details": details or {},
        }
    }


def zerocopy_error_handler(request: Request[Any, Any, Any], exc: ZerocopyError) -> Response[Any]:
    """A ZerocopyError raised anywhere below a handler."""
    status = status_for(exc.code)
    if status >= 500:
        log.error("request_failed", code=exc.code, message=exc.message, path=request.url.path)
    return Response(
        error_body(exc.code, exc.message, line=exc.line, column=exc.column, details=exc.details),
        status_code=status,
        # RFC 9110: a 401 names the scheme the client should use.
        headers={"WWW-Authenticate": 'Bearer realm="zerocopy"'} if status == 401 else None,
    )


def validation_error_handler(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    """Litestar's request validation (bad JSON, wrong field types, bad query params)."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    message = exc.detail or "the request is not valid"
    details: dict[str, Any] = {"problems": problems}
    if problems:
        first = problems[0]
        if isinstance(first, dict) and first.get("message"):
            key = first.get("key")
            message = str(first["message"])
            if key and key != "data":
                where = first.get("source") or "request"
                where = getattr(where, "value", where)  # ParamType.QUERY -> "query"
                message += f" (field {key!r} in the {where})"
            else:
                message = f"request body: {message}"
            details |= _field_and_reason(message, key)

    return Response(
        error_body(errors.VALIDATION_ERROR, message, details=details),
        status_code=400,
    )


_NAMED = re.compile(r"(missing required|unknown) field `([^`]+)`")


def _field_and_reason(message: str, key: Any) -> dict[str, str]:
    """``field`` and ``reason`` of a request-shape problem, as the services name theirs
    (``details: {"field", "reason"}``): the field the decoder named, and why."""
    named = _NAMED.search(message)
    if named:
        reason = "required" if named.group(1).startswith("missing") else "unknown_field"
        return {"field": named.group(2), "reason": reason}
    if not key or key == "data":
        return {}
    reason = "invalid_type" if message.startswith("Expected `") else "invalid_value"
    return {"field": str(key).removeprefix("$.").split(".")[-1], "reason": reason}


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Any other HTTP exception Litestar raises itself (unknown route, wrong method...)."""
    if exc.status_code == 413:
        # Litestar's request_max_body_size (10 MB by default): a request-shape refusal.
        resolve = getattr(request.route_handler, "resolve_request_max_body_size", None)
        limit = resolve() if callable(resolve) else None
        return Response(
            error_body(
                errors.VALIDATION_ERROR,
                f"the request body is larger than the limit of {limit:,} bytes"
                if limit
                else "the request body is too large",
                details={"reason": "too_large", "limit_bytes": limit},
            ),
            status_code=413,
        )
    # Another 4xx of Litestar's own (415, 406...) is a request-shape problem, never ours.
    fallback = errors.VALIDATION_ERROR if exc.status_code < 500 else errors.INTERNAL_ERROR
    code = CODE_BY_HTTP_STATUS.get(exc.status_code, fallback)
    if exc.status_code >= 500:
        log.error("request_failed", code=code, message=exc.detail, path=request.url.path)
    return Response(
        error_body(code, exc.detail or "request failed"),
        status_code=exc.status_code,
        headers=exc.headers,
    )


def integrity_error_handler(request: Request[Any, Any, Any], exc: IntegrityError) -> Response[Any]:
    """A state-database constraint the services did not check first (a race, or a path
    without its own check): ``conflict`` instead of a 500; the SQL and its values stay out."""
    text = str(exc.orig or exc).lower()
    if "foreign key" in text:
        message = (
            "this object is still used by another one (or refers to one that is gone); "
            "delete or move what uses it first, then retry"
        )
    else:
        message = "another request changed the same object at the same time; retry"
    log.warning("request_conflict", path=request.url.path, error_type=type(exc.orig).__name__)
    return Response(error_body(errors.CONFLICT, message), status_code=409)


def unexpected_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A bug: log it with the traceback, answer 500 without leaking anything."""
    log.exception("unhandled_error", path=request.url.path, error_type=type(exc).__name__)
    return Response(
        error_body(errors.INTERNAL_ERROR, "internal error; the server log has the details"),
        status_code=500,
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    ZerocopyError: zerocopy_error_handler,
    ValidationException: validation_error_handler,
    IntegrityError: integrity_error_handler,
    HTTPException: http_error_handler,
    Exception: unexpected_error_handler,
}


ERROR_RESPONSES: dict[int, ResponseSpec] = {
    status: ResponseSpec(ErrorResponse, description=description, generate_examples=False)
    for status, description in {
        400: "validation_error: the request is malformed (body, parameters)",
        401: "unauthorized: missing, unknown or revoked API key",
        404: "not_found: no such object in the caller's workspace",
        409: "conflict, refresh_in_progress, sync_in_progress, credential_in_use, "
        "source_in_use, source_not_active ...",
        422: "a rule refused the request: SQL check codes, invalid_credential, warehouse codes",
        500: "internal_error: a bug; the server log has the details (nothing is leaked)",
    }.items()
}
"""Documented on every ``/v1`` operation (replaces Litestar's default 400 schema)."""

WAREHOUSE_ERROR_RESPONSES: dict[int, ResponseSpec] = ERROR_RESPONSES | {
    status: ResponseSpec(ErrorResponse, description=description, generate_examples=False)
    for status, description in {
        502: "unreachable, warehouse_error: the warehouse could not be reached or failed",
        503: "warehouse_busy: the warehouse refused for load; retry later",
        504: "timed_out: the warehouse did not answer within the source's max runtime",
    }.items()
}
"""Operations that talk to the warehouse while the caller waits (connection test, key test)."""


_QUERY_NAMES = "zerocopy_query_names"


def _query_names(handler: BaseRouteHandler, path_params: set[str]) -> frozenset[str]:
    """The query parameters ``handler`` takes (computed once, kept in its ``opt``)."""
    cached = handler.opt.get(_QUERY_NAMES)
    if not isinstance(cached, frozenset):
        # Only the names of the path parameters matter to what the model expects in the query.
        names: dict[str, Any] = dict.fromkeys(path_params)
        model = handler.create_kwargs_model(path_parameters=names)
        cached = frozenset(p.field_alias for p in model.expected_query_params)
        handler.opt[_QUERY_NAMES] = cached
    return cached


async def refuse_unknown_query_params(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: a query parameter the route does not take is ``validation_error`` naming it,
    never silently ignored (``?offset=10`` or ``?sort=name`` would otherwise return page one
    in the default order, as if they had worked)."""
    known = _query_names(handler, set(connection.path_params))
    unknown = sorted(set(connection.query_params) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"unknown query parameter {shown(unknown[0])!r}; this route takes: {allowed}",
            details={
                "field": shown(unknown[0]),
                "reason": "unknown_field",
                "allowed": sorted(known),
            },
        )


def shown(text: str, limit: int = 64) -> str:
    """User text as an error message repeats it: short, control characters escaped."""
    cut = text if len(text) <= limit else text[:limit] + "…"
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in cut)
