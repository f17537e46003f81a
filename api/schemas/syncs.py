"""Sync, sync run and row-log DTOs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from api.schemas.common import ErrorInfo
from api.schemas.runs import ScheduledOccurrence


class SyncCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new sync (``draft``): a source table (or, for files, a credential) and a data type."""

    name: str
    data_type: str
    source_id: str | None = None
    table: str | None = None
    credential_id: str | None = None
    source_settings: dict[str, Any] | None = None
    catalog_name: str | None = None
    frequency: str = "1d"
    contacts: list[str] = msgspec.field(default_factory=list)
    notifications: dict[str, Any] = msgspec.field(default_factory=dict)
    row_limit: int | None = None
    lookback_minutes: int = 0
    destination: str = "builtin"
    row_log: str = "all"
    settings: dict[str, Any] = msgspec.field(default_factory=dict)


class SyncUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Change a sync; ``data_type`` can never change (``data_type_immutable``).

    Fields left out stay as they are; ``"row_limit": null`` removes the row limit.
    """

    name: str | msgspec.UnsetType = msgspec.UNSET
    data_type: str | msgspec.UnsetType = msgspec.UNSET
    source_id: str | msgspec.UnsetType = msgspec.UNSET
    table: str | msgspec.UnsetType = msgspec.UNSET
    frequency: str | msgspec.UnsetType = msgspec.UNSET
    contacts: list[str] | msgspec.UnsetType = msgspec.UNSET
    notifications: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    row_limit: int | msgspec.UnsetType | None = msgspec.UNSET
    lookback_minutes: int | msgspec.UnsetType = msgspec.UNSET
    row_log: str | msgspec.UnsetType = msgspec.UNSET
    status: str | msgspec.UnsetType = msgspec.UNSET


class SyncWatermarkReset(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where the next run starts reading: ``to`` null (or left out) = the whole table; an
    ISO 8601 timestamp = rows with ``UPDATED_AT`` at or after it (no zone = UTC; any spelling
    a text ``UPDATED_AT`` or an event ``time`` may use, a date alone = its midnight)."""

    to: str | None = None


class SyncRead(msgspec.Struct, kw_only=True):
    id: str
    name: str
    data_type: str
    status: str
    source_id: str | None
    table: str | None
    credential_id: str | None
    catalog_name: str | None
    frequency: str
    contacts: list[str]
    notifications: dict[str, Any]
    row_limit: int | None
    lookback_minutes: int
    destination: str
    row_log: str
    watermark: datetime | None
    """Last delivered ``UPDATED_AT`` (the next run reads from it, inclusive)."""
    last_tested_at: datetime | None
    last_test_error: ErrorInfo | None
    last_run_id: str | None
    created_at: datetime


class PreviewRowRead(msgspec.Struct, kw_only=True):
    position: int
    valid: bool
    code: str | None
    message: str | None
    row: dict[str, Any]


class SyncTestRead(msgspec.Struct, kw_only=True):
    """A successful sync test: the table, its columns and the first rows with their verdicts."""

    sync: SyncRead
    table: str
    columns: dict[str, str]
    preview: list[PreviewRowRead]
    elapsed_s: float


class SyncRunRead(msgspec.Struct, kw_only=True):
    id: str
    sync_id: str
    status: str
    trigger: str
    rows_read: int
    """Rows read and accounted for: ``rows_delivered + rows_skipped + rows_errored``."""
    rows_skipped: int
    """Rows read again that an earlier run already accounted for (the inclusive boundary, the
    lookback, a null ``UPDATED_AT`` already reported, a file's lines delivered before)."""
    rows_delivered: int
    rows_errored: int
    """Row errors (refused by validation or by the destination)."""
    watermark_before: datetime | None
    watermark_after: datetime | None
    error: ErrorInfo | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    scheduled: ScheduledOccurrence | None = None
    """Set when the scheduler started the run: its occurrence and whether it was a catch-up."""


class RowLogRead(msgspec.Struct, kw_only=True):
    position: int
    verdict: str
    code: str | None
    message: str | None
    updated_at: str | None
    row: dict[str, Any] | None
