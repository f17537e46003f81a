"""The one error root of zerocopy and its stable error codes.

Codes are ``snake_case`` constants, never renamed: API clients, the CLI and the README's
error table depend on them. This module imports nothing of the project so that every layer
(``dialects/`` included) can raise a :class:`ZerocopyError`.
"""

from __future__ import annotations

from typing import Any

# --- SQL check (zerocopy.sql) -------------------------------------------------------------
PARSE_ERROR = "parse_error"
MULTIPLE_STATEMENTS = "multiple_statements"
NOT_READ_ONLY = "not_read_only"
FORBIDDEN_FUNCTION = "forbidden_function"
OUT_OF_SCOPE = "out_of_scope"
UNKNOWN_TABLE = "unknown_table"
UNKNOWN_COLUMN = "unknown_column"
MISSING_ID_COLUMN = "missing_id_column"
UNSUPPORTED_IN_DIALECT = "unsupported_in_dialect"
UNKNOWN_DIALECT = "unknown_dialect"

# --- Warehouses (dialects/) ---------------------------------------------------------------
AUTH_FAILED = "auth_failed"
PERMISSION_DENIED = "permission_denied"
SCOPE_NOT_FOUND = "scope_not_found"
UNREACHABLE = "unreachable"
TIMED_OUT = "timed_out"
CANCELLED = "cancelled"
WAREHOUSE_ERROR = "warehouse_error"
WAREHOUSE_BUSY = "warehouse_busy"
INVALID_CREDENTIAL = "invalid_credential"

# --- Engine and API -----------------------------------------------------------------------
NOT_FOUND = "not_found"
VALIDATION_ERROR = "validation_error"
UNAUTHORIZED = "unauthorized"
METHOD_NOT_ALLOWED = "method_not_allowed"
CONFLICT = "conflict"
REFRESH_IN_PROGRESS = "refresh_in_progress"
SYNC_IN_PROGRESS = "sync_in_progress"
SOURCE_NOT_ACTIVE = "source_not_active"
CREDENTIAL_IN_USE = "credential_in_use"
SOURCE_IN_USE = "source_in_use"
CREDENTIAL_KIND_MISMATCH = "credential_kind_mismatch"
DATA_TYPE_IMMUTABLE = "data_type_immutable"
WORKER_LOST = "worker_lost"
INTERNAL_ERROR = "internal_error"
NOTIFICATION_FAILED = "notification_failed"
DESTINATION_ERROR = "destination_error"
FILE_SOURCE_ERROR = "file_source_error"


class ZerocopyError(Exception):
    """Root of every error zerocopy raises on purpose.

    Args:
        code: a stable ``snake_case`` code from this module.
        message: what went wrong and, where possible, what to do about it.
        line: 1-based line in the user's SQL, when known.
        column: 1-based column in the user's SQL, when known.
        details: extra structured context (table, column, query id, ...), JSON-serialisable.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line
        self.column = column
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used by the API and the CLI."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.line is not None:
            out["line"] = self.line
        if self.column is not None:
            out["column"] = self.column
        if self.details:
            out["details"] = self.details
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"
