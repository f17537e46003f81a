"""The structured outcome of a segment SQL check, shared by the CLI, the API and the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zerocopy.errors import (
    FORBIDDEN_FUNCTION,
    MISSING_ID_COLUMN,
    MULTIPLE_STATEMENTS,
    NOT_READ_ONLY,
    OUT_OF_SCOPE,
    PARSE_ERROR,
    UNKNOWN_COLUMN,
    UNKNOWN_DIALECT,
    UNKNOWN_TABLE,
    UNSUPPORTED_IN_DIALECT,
    ZerocopyError,
)

# The order issues are reported in (issue #4): the earlier a stage, the earlier its code.
CODE_ORDER: tuple[str, ...] = (
    UNKNOWN_DIALECT,
    PARSE_ERROR,
    MULTIPLE_STATEMENTS,
    NOT_READ_ONLY,
    FORBIDDEN_FUNCTION,
    OUT_OF_SCOPE,
    UNKNOWN_TABLE,
    UNKNOWN_COLUMN,
    MISSING_ID_COLUMN,
    UNSUPPORTED_IN_DIALECT,
)
_RANK = {code: rank for rank, code in enumerate(CODE_ORDER)}


@dataclass(frozen=True, slots=True)
class SqlIssue:
    """One problem found in the user's SQL; line and column are 1-based, or None when unknown."""

    code: str
    message: str
    line: int | None = None
    column: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used by the API and the CLI (line/column always present, maybe null)."""
        return {
            "code": self.code,
            "message": self.message,
            "line": self.line,
            "column": self.column,
        }

    def to_error(self) -> ZerocopyError:
        """This issue as the project's error type, for callers that raise."""
        return ZerocopyError(self.code, self.message, line=self.line, column=self.column)

    def sort_key(self) -> tuple[int, int, int]:
        """Order by code rank (issue #4), then by position; unknown positions last."""
        return (
            _RANK.get(self.code, len(_RANK)),
            self.line if self.line is not None else 1 << 30,
            self.column if self.column is not None else 1 << 30,
        )


@dataclass(slots=True)
class CheckResult:
    """What `check_segment_sql` found: validity, ordered issues, and the SQL to run."""

    dialect: str
    target: str
    errors: list[SqlIssue] = field(default_factory=list)
    sql: str | None = None
    ids_sql: str | None = None
    tables: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """True when no rule is broken."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape shared by `zerocopy sql check` and `POST …/segments/validate`."""
        return {
            "valid": self.valid,
            "errors": [issue.to_dict() for issue in self.errors],
            "sql": self.sql,
            "ids_sql": self.ids_sql,
            "tables": list(self.tables),
            "dialect": self.dialect,
            "target": self.target,
        }

    def raise_for_errors(self) -> None:
        """Raise the first issue as a `ZerocopyError` (all of them in ``details``)."""
        if self.errors:
            first = self.errors[0]
            raise ZerocopyError(
                first.code,
                first.message,
                line=first.line,
                column=first.column,
                details={"errors": [issue.to_dict() for issue in self.errors]},
            )
