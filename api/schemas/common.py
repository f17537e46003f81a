"""Shapes shared by every resource."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
    from litestar.typing import FieldDefinition


MAX_OFFSET = 2**63 - 1
"""Largest ``?offset=`` of a paged list: a 64-bit integer on every state database (a larger one
reached the database driver and was a 500 ``internal_error``)."""


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


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Litestar's msgspec schema, plus ``additionalProperties: false`` for request bodies that
    refuse unknown fields (``forbid_unknown_fields=True``), as the API answers them (400)."""

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        if getattr(field_definition.type_, "__struct_config__", None) is not None and (
            field_definition.type_.__struct_config__.forbid_unknown_fields
        ):
            schema.additional_properties = False
        return schema
