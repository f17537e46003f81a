"""OpenAPI adjustments Litestar has no parameter for."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import Operation, RequestBody


@dataclass
class OptionalBodyOperation(Operation):
    """An operation whose JSON body may be left out (Litestar marks every body required)."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False
