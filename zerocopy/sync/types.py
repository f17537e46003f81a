"""The sync vocabulary: data types, statuses, row-error codes and the validated-row shape.

Everything here is plain data shared by the engine, the destinations (built-in store, HTTP)
and the file-storage source. Codes and status names are stable: API clients and the README
depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal


class DataType(StrEnum):
    """What a sync's rows are; fixed at creation (``data_type_immutable``)."""

    USER_ATTRIBUTES = "user_attributes"
    CUSTOM_EVENTS = "custom_events"
    PURCHASES = "purchases"
    USER_DELETES = "user_deletes"
    CATALOG_ITEMS = "catalog_items"
    ACCOUNTS = "accounts"

    @property
    def is_user_type(self) -> bool:
        """User types carry one identifier per row (external id, alias, braze id, email, phone)."""
        return self in USER_TYPES


USER_TYPES = frozenset(
    {DataType.USER_ATTRIBUTES, DataType.CUSTOM_EVENTS, DataType.PURCHASES, DataType.USER_DELETES}
)


class SyncStatus(StrEnum):
    """Lifecycle of a sync definition; ``active`` only after a successful test."""

    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"


class RunStatus(StrEnum):
    """Outcome of one sync run."""

    RUNNING = "running"
    SUCCESS = "success"
    PARTIAL_SUCCESS = "partial_success"
    """Finished, some rows were refused (row errors); the watermark advanced past them."""
    ERROR = "error"
    """Sync-level failure (credentials, missing table, destination down): watermark unchanged."""
    LIMIT_EXCEEDED = "limit_exceeded"
    """The per-run row limit was reached: rows before it delivered, watermark says so."""
    CANCELLED = "cancelled"


FINISHED_STATUSES = frozenset(s for s in RunStatus if s is not RunStatus.RUNNING)

# --- Row-error codes (stable) ---------------------------------------------------------------
NO_IDENTIFIER = "no_identifier"
MULTIPLE_IDENTIFIERS = "multiple_identifiers"
INCOMPLETE_ALIAS = "incomplete_alias"
UNKNOWN_BRAZE_ID = "unknown_braze_id"
"""A braze id only updates an existing profile; it never creates one."""
INVALID_JSON = "invalid_json"
PAYLOAD_NOT_OBJECT = "payload_not_object"
MISSING_FIELD = "missing_field"
INVALID_FIELD = "invalid_field"
INVALID_UPDATED_AT = "invalid_updated_at"
"""``UPDATED_AT`` null or unparseable."""
INVALID_IDENTIFIER = "invalid_identifier"
"""An identifier value that is empty or not text/number (e.g. a malformed e-mail)."""
UNEXPECTED_PAYLOAD = "unexpected_payload"
"""User deletes take no payload."""
UNKNOWN_FIELD = "unknown_field"
"""Accounts: a field not in the account schema was dropped (the row is still applied)."""
REJECTED_BY_DESTINATION = "rejected_by_destination"
"""The destination refused the row (HTTP per-row rejection without a more specific code)."""
FILE_INVALID = "file_invalid"
"""File-storage source: the whole file was skipped (e.g. a JSON-lines file with a bad line)."""

ROW_ERROR_CODES = (
    NO_IDENTIFIER,
    MULTIPLE_IDENTIFIERS,
    INCOMPLETE_ALIAS,
    UNKNOWN_BRAZE_ID,
    INVALID_JSON,
    PAYLOAD_NOT_OBJECT,
    MISSING_FIELD,
    INVALID_FIELD,
    INVALID_UPDATED_AT,
    INVALID_IDENTIFIER,
    UNEXPECTED_PAYLOAD,
    UNKNOWN_FIELD,
    REJECTED_BY_DESTINATION,
    FILE_INVALID,
)

IdentifierKind = Literal["external_id", "alias", "braze_id", "email", "phone"]


@dataclass(frozen=True, slots=True)
class Identifier:
    """The one identifier of a user row. ``label`` is set only for aliases (``value`` = name)."""

    kind: IdentifierKind
    value: str
    label: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Braze-style JSON: ``{"external_id": ...}`` or ``{"user_alias": {...}}``."""
        if self.kind == "alias":
            return {"user_alias": {"alias_name": self.value, "alias_label": self.label}}
        return {self.kind: self.value}


@dataclass(slots=True)
class ValidRow:
    """One row that passed validation, ready for a destination.

    Attributes:
        position: 0-based position of the row in the run (stable across the run's batches).
        row_hash: content hash of the source row (hex); the HTTP destination may send it as an
            idempotency key, the engine uses it for de-duplication at the watermark.
        updated_at: UTC-aware ``UPDATED_AT`` (``None`` for file sources).
        identifier: user types only.
        phone: when a row carries both e-mail and phone, e-mail identifies and phone is kept here.
        payload: the decoded JSON object (attributes / event / purchase / item / account fields);
            for attributes a ``None`` value means "remove the attribute". ``{}`` for deletes.
        item_id: catalog items and accounts (``ID``).
        name: accounts (``NAME``).
        deleted: catalog items and accounts (``DELETED`` true).
        warnings: non-fatal row notes, e.g. account fields dropped (code, message).
        again: see the field's doc.
    """

    position: int
    row_hash: str
    updated_at: datetime | None = None
    updated_us: int | None = None
    """``updated_at`` in epoch microseconds (what the watermark compares)."""
    identifier: Identifier | None = None
    phone: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    item_id: str | None = None
    name: str | None = None
    deleted: bool = False
    warnings: list[tuple[str, str]] = field(default_factory=list)
    again: bool = False
    """Delivered by an earlier run and applied again only to keep the apply order after a
    late row of its key: counted as skipped, not delivered, and not logged again."""


@dataclass(frozen=True, slots=True)
class RowError:
    """A refused row: where, why (stable code + message) and its raw content for the log."""

    position: int
    code: str
    message: str
    raw: dict[str, Any]
    updated_at: datetime | None = None
    row_hash: str = ""
    updated_us: int | None = None


@dataclass(slots=True)
class AttributeRows:
    """Valid ``user_attributes`` rows identified by an external id, kept as columns.

    The engine's fast path: every row already passed validation (identifier rule, a one-line
    JSON object payload with no subscription fields). Rows are in source order.
    :meth:`materialise` gives the same :class:`ValidRow` objects the per-row path builds, for
    destinations (HTTP) and paths (row log ``all``) that need them.

    Attributes:
        positions: 0-based position of each row in the run (ascending, int64).
        hashes: content hash of each row.
        updated_us: ``UPDATED_AT`` in epoch microseconds (int64, never null here).
        external_ids: the external ids (text, already stripped).
        payloads: the JSON object text of each payload (one line each).
    """

    positions: Any
    hashes: list[str]
    updated_us: Any
    external_ids: Any
    payloads: Any

    def __len__(self) -> int:
        return len(self.hashes)

    def slice(self, start: int, stop: int) -> AttributeRows:
        """Rows ``[start, stop)`` (indexes into this set, not positions)."""
        return AttributeRows(
            positions=self.positions[start:stop],
            hashes=self.hashes[start:stop],
            updated_us=self.updated_us[start:stop],
            external_ids=self.external_ids.slice(start, stop - start),
            payloads=self.payloads.slice(start, stop - start),
        )

    @staticmethod
    def concat(parts: list[AttributeRows]) -> AttributeRows:
        """One set of the rows of ``parts``, in order."""
        import numpy as np
        import pyarrow as pa

        if len(parts) == 1:
            return parts[0]
        return AttributeRows(
            positions=np.concatenate([p.positions for p in parts]),
            hashes=[h for p in parts for h in p.hashes],
            updated_us=np.concatenate([p.updated_us for p in parts]),
            external_ids=pa.concat_arrays([p.external_ids for p in parts]),
            payloads=pa.concat_arrays([p.payloads for p in parts]),
        )

    def materialise(self) -> list[ValidRow]:
        """The rows as :class:`ValidRow` objects (payloads decoded as the per-row path does)."""
        import msgspec

        from zerocopy.sync.watermark import from_micros

        out: list[ValidRow] = []
        for pos, h, us, ext, payload in zip(
            self.positions.tolist(),
            self.hashes,
            self.updated_us.tolist(),
            self.external_ids.to_pylist(),
            self.payloads.to_pylist(),
            strict=True,
        ):
            out.append(
                ValidRow(
                    position=pos,
                    row_hash=h,
                    updated_at=from_micros(us),
                    updated_us=us,
                    identifier=Identifier("external_id", ext),
                    payload=msgspec.json.decode(payload),
                )
            )
        return out
