"""Ingestion syncs: definitions, test (10-row validated preview), activation, runs, row logs."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from dialects.protocol import Watermark
from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.notify.decision import distinct_addresses
from zerocopy.scheduling.models import SYNC, ScheduleState, delete_schedule_rows
from zerocopy.scheduling.sync_frequency import check_sync_frequency
from zerocopy.services._common import check_name, ensure_unique_name, get_scoped, list_scoped
from zerocopy.services.contacts import check_contacts
from zerocopy.state.db import Database
from zerocopy.state.models import Credential, Source
from zerocopy.state.sync_models import Sync, SyncRowLog, SyncRun
from zerocopy.sync import exactjson
from zerocopy.sync.engine import SyncEngine, resolve_source_table, sync_options
from zerocopy.sync.types import DataType, RowError, RunStatus, SyncStatus, ValidRow
from zerocopy.sync.validate import KNOWN_COLUMNS, validate_batch
from zerocopy.sync.watermark import WatermarkState

if TYPE_CHECKING:
    from zerocopy.services.context import Runtime

FREQUENCIES = ("15m", "30m", "1h", "2h", "3h", "4h", "6h", "8h", "12h", "1d", "1w", "1mo")
"""Every 15 minutes up to monthly (schedules use it; "run now" works at any frequency)."""
DESTINATIONS = ("builtin", "http")
FILE_FORMATS = ("auto", "jsonl", "csv")
ROW_LOG_MODES = ("all", "errors")
NOTIFICATION_KEYS: dict[str, type | tuple[type, ...]] = {
    "notify_on_error": bool,
    "notify_on_success": bool,
    "success_even_if_no_rows": bool,
    "row_error_threshold_pct": (int, float),
    "webhook_url": str,
}
"""The sync's ``notifications`` (see :class:`zerocopy.notify.decision.NotificationSettings`)."""
PREVIEW_ROWS = 10
MAX_LOOKBACK_MINUTES = 7 * 24 * 60
ROW_LOG_RETENTION = timedelta(days=30)
RUN_RETENTION = timedelta(days=366)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _invalid(field: str, message: str) -> ZerocopyError:
    return ZerocopyError(errors.VALIDATION_ERROR, message, details={"field": field})


def _data_type(value: str) -> DataType:
    try:
        return DataType(value)
    except ValueError:
        raise _invalid(
            "data_type",
            f"unknown data type {value!r}; use one of {', '.join(d.value for d in DataType)}",
        ) from None


def _frequency(value: str) -> str:
    return check_sync_frequency(value, FREQUENCIES)  # reason: too_frequent / too_rare / …


def _contacts(values: list[str]) -> list[str]:
    """The contact addresses, trimmed, each once (compared without case: one mail each)."""
    for value in values:
        if not isinstance(value, str) or not EMAIL_RE.match(value.strip()):
            raise _invalid("contacts", f"{value!r:.300} is not an e-mail address")
    check_contacts(values)
    return distinct_addresses(values)


def _notifications(value: dict[str, Any]) -> dict[str, Any]:
    _no_nul(value, "notifications")
    for key, item in value.items():
        kind = NOTIFICATION_KEYS.get(key)
        if kind is None:
            raise _invalid(
                "notifications",
                f"unknown notification setting {key!r}; use {', '.join(NOTIFICATION_KEYS)}",
            )
        if item is not None and (
            not isinstance(item, kind) or isinstance(item, bool) != (kind is bool)
        ):
            raise _invalid("notifications", f"notification setting {key!r} has the wrong type")
    url = value.get("webhook_url")
    if url is not None:
        _webhook_url(url)
    pct = value.get("row_error_threshold_pct")
    if pct is not None and not 0 <= pct <= 100:
        raise _invalid("notifications", "row_error_threshold_pct must be 0-100")
    return dict(value)


HTTP_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "batch_rows": int,
    "max_attempts": int,
    "backoff_base_s": (int, float),
    "backoff_max_s": (int, float),
    "timeout_s": (int, float),
}
"""``settings.http``: the HTTP destination's tuning (``HttpDestinationConfig``)."""


def _settings(value: dict[str, Any]) -> dict[str, Any]:
    """``settings``: ``account_fields`` (a list of field names) and ``http`` (the HTTP
    destination's tuning). A string for ``account_fields`` would be read as its letters and
    drop every field; an unknown key would be ignored silently."""
    for key in value:
        if key not in ("account_fields", "http"):
            raise _invalid("settings", f"unknown sync setting {key!r}; use account_fields, http")
    fields = value.get("account_fields")
    if fields is not None and (
        not isinstance(fields, list)
        or not all(isinstance(f, str) and f.strip() and f == f.strip() for f in fields)
    ):
        raise _invalid(
            "settings",
            "settings.account_fields must be a list of account field names "
            f'(e.g. ["plan", "seats"]), got {fields!r:.200}',
        )
    http = value.get("http")
    if http is not None:
        if not isinstance(http, dict):
            raise _invalid("settings", "settings.http must be an object")
        for key, item in http.items():
            kind = HTTP_OPTIONS.get(key)
            if kind is None:
                raise _invalid(
                    "settings",
                    f"unknown settings.http option {key!r}; use {', '.join(HTTP_OPTIONS)}",
                )
            if isinstance(item, bool) or not isinstance(item, int | float) or item <= 0:
                raise _invalid("settings", f"settings.http.{key} must be a positive number")
            if not isinstance(item, kind):
                raise _invalid("settings", f"settings.http.{key} must be a whole number")
        from zerocopy.destinations.http import HttpDestinationConfig

        try:  # the bounds the destination applies at run time (batch_rows <= 1000, ...)
            HttpDestinationConfig(url="", api_key="", **http).check_options()
        except ZerocopyError as exc:
            raise _invalid("settings", f"settings.http: {exc.message}") from None
    return dict(value)


MAX_TABLE_LENGTH = 400
"""The state column's size (``sync.table_name``)."""


def _table(value: str | None) -> str:
    """The table or view to read: trimmed, 1-400 characters, no control characters (a NUL
    cannot even be stored on PostgreSQL)."""
    table = (value or "").strip()
    if not table:
        raise _invalid("table", "a warehouse sync needs the table or view to read")
    if len(table) > MAX_TABLE_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in table):
        raise _invalid(
            "table",
            f"table must be at most {MAX_TABLE_LENGTH} characters without control characters, "
            f"got {table[:60]!r}" + ("…" if len(table) > 60 else ""),
        )
    return table


def _no_nul(value: Any, field: str) -> Any:
    """``value`` (JSON) when no string in it (key or value) holds a NUL character, which
    PostgreSQL's ``jsonb`` cannot store (it failed as an internal error)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise _invalid(field, f"{field} must not contain NUL characters (U+0000)")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return value


def _catalog_name(name: str) -> None:
    """At most 200 characters (the store's column), no control characters, and no ``/`` so
    that ``GET /v1/catalogs/{name}/items`` can name it."""
    if len(name) > 200 or "/" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise _invalid(
            "catalog_name",
            "catalog_name must be 1-200 characters without '/' or control characters, "
            f"got {name[:60]!r}" + ("…" if len(name) > 60 else ""),
        )


FILE_SETTINGS = ("bucket", "prefix", "format", "endpoint_url", "region")
"""What a file sync's ``source_settings`` may hold (the S3 location, as the credential's)."""


def _setting_invalid(key: str, message: str) -> ZerocopyError:
    """``validation_error`` on ``source_settings`` naming the setting (``details.setting``)."""
    return ZerocopyError(
        errors.VALIDATION_ERROR,
        f"source_settings.{key}: {message}",
        details={"field": "source_settings", "setting": key},
    )


def _check_file_source(cred: Credential, source_settings: dict[str, Any] | None) -> None:
    """A file-storage sync reads with an ``s3`` credential, a well-formed bucket name (here or
    in the credential) and prefix, in a format it knows: refused when created rather than at
    every test and run. Whether the bucket exists and the keys may read it is the test's job."""
    from zerocopy.sync.files import check_bucket_name, key_problem

    if cred.kind != "s3":
        raise ZerocopyError(
            errors.CREDENTIAL_KIND_MISMATCH,
            f"file-storage syncs read with an s3 credential; {cred.name!r} is {cred.kind} "
            "(a warehouse sync gives source_id and table)",
            details={"field": "credential_id", "kind": cred.kind},
        )
    settings = dict(source_settings or {})
    unknown = sorted(str(k) for k in settings if k not in FILE_SETTINGS)
    if unknown:
        raise _setting_invalid(
            unknown[0], f"unknown setting(s) {', '.join(unknown)}; use {', '.join(FILE_SETTINGS)}"
        )
    for key in FILE_SETTINGS:
        if settings.get(key) is not None and not isinstance(settings[key], str):
            raise _setting_invalid(key, f"must be a string, got {settings[key]!r:.100}")
    fmt = str(settings.get("format") or "auto").lower()
    if fmt not in FILE_FORMATS:
        raise _setting_invalid(
            "format", f"format must be jsonl, csv or auto (by extension), got {fmt!r}"
        )
    bucket = settings.get("bucket") or (cred.settings or {}).get("bucket")
    if not bucket:
        raise _setting_invalid(
            "bucket",
            "a file-storage sync needs the bucket to read (or a credential that names one)",
        )
    try:
        check_bucket_name(str(bucket))
    except ZerocopyError as exc:
        raise _setting_invalid("bucket", exc.message) from None
    prefix = settings.get("prefix")
    if prefix and (problem := key_problem(prefix)):
        raise _setting_invalid("prefix", f"{prefix[:100]!r} is not an S3 key prefix: {problem}")
    endpoint = settings.get("endpoint_url")
    if endpoint and not endpoint.startswith(("https://", "http://")):
        raise _setting_invalid(
            "endpoint_url", "must be an http(s) URL of an S3-compatible endpoint"
        )


def _webhook_url(url: str) -> None:
    """An ``http(s)://host/…`` URL: anything else could never receive a webhook."""
    parts = urlsplit(url.strip())
    try:
        host = parts.hostname
    except ValueError:
        host = None
    if parts.scheme.lower() not in ("http", "https") or not host or url != url.strip():
        raise _invalid(
            "notifications",
            f"webhook_url must be an http:// or https:// URL with a host, got {url[:200]!r}",
        )


_NULLABLE = frozenset({"row_limit"})
"""Sync fields whose ``None`` means "off" (clear it), not "unchanged"."""


MAX_ROW_LIMIT = 2**31 - 1
"""Largest ``row_limit``: the column is a 32-bit integer on every state database (a larger
one was a 500 ``internal_error`` on PostgreSQL, and past 2**63 on SQLite too)."""


def _row_limit(value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not 1 <= value <= MAX_ROW_LIMIT):
        raise _invalid(
            "row_limit", f"row_limit must be 1-{MAX_ROW_LIMIT} rows (or null for no limit)"
        )
    return value


def _lookback(minutes: int) -> int:
    if isinstance(minutes, bool) or not 0 <= minutes <= MAX_LOOKBACK_MINUTES:
        raise _invalid("lookback_minutes", f"lookback_minutes must be 0-{MAX_LOOKBACK_MINUTES}")
    return minutes * 60


def _choice(field: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise _invalid(field, f"{field} must be one of {', '.join(allowed)}")
    return value


async def create_sync(
    session: AsyncSession,
    workspace_id: str,
    *,
    name: str,
    data_type: str,
    source_id: str | None = None,
    table: str | None = None,
    credential_id: str | None = None,
    source_settings: dict[str, Any] | None = None,
    catalog_name: str | None = None,
    frequency: str = "1d",
    contacts: list[str] | None = None,
    notifications: dict[str, Any] | None = None,
    row_limit: int | None = None,
    lookback_minutes: int = 0,
    destination: str = "builtin",
    row_log: str = "all",
    settings: dict[str, Any] | None = None,
) -> Sync:
    """A new sync in ``draft``: test it (preview) and activate it before it runs on schedule."""
    name = check_name(name, "sync")
    dtype = _data_type(data_type)
    if source_id is not None:
        if credential_id is not None:
            # The source's own credential reads the table: a second one would be ignored.
            raise _invalid(
                "credential_id",
                "a warehouse sync reads through its source's credential: give source_id + "
                "table, or (file storage) credential_id + source_settings, not both",
            )
        if source_settings:
            raise _invalid(
                "source_settings",
                "source_settings describe a file-storage sync (credential_id + bucket); a "
                "warehouse sync reads the table of its source",
            )
        await get_scoped(session, Source, workspace_id, source_id)
        table = _table(table)
    elif credential_id is not None:
        if table is not None and table.strip():
            raise _invalid(
                "table",
                "a file-storage sync reads the files under source_settings.bucket/prefix, "
                "not a table (a warehouse sync gives source_id + table)",
            )
        cred = await get_scoped(session, Credential, workspace_id, credential_id)
        _check_file_source(cred, source_settings)
    else:
        raise _invalid(
            "source_id", "give a source_id + table (warehouse) or a credential_id (files)"
        )
    if dtype is DataType.CATALOG_ITEMS and not (catalog_name or "").strip():
        raise _invalid("catalog_name", "a catalog-items sync needs the catalog_name to write to")
    if catalog_name is not None and catalog_name.strip():
        if dtype is not DataType.CATALOG_ITEMS:
            raise _invalid(
                "catalog_name",
                f"catalog_name is only for catalog_items syncs; a {dtype.value} sync writes to "
                "no catalog (leave it out)",
            )
        _catalog_name(catalog_name.strip())
    await ensure_unique_name(session, Sync, workspace_id, name)
    sync = Sync(
        workspace_id=workspace_id,
        name=name,
        data_type=dtype.value,
        source_id=source_id,
        credential_id=credential_id,
        table_name=table.strip() if table else None,
        source_settings=_no_nul(dict(source_settings or {}), "source_settings"),
        catalog_name=catalog_name.strip() if catalog_name else None,
        frequency=_frequency(frequency),
        contacts=_contacts(contacts or []),
        notifications=_notifications(notifications or {}),
        row_limit=_row_limit(row_limit),
        lookback_s=_lookback(lookback_minutes),
        destination=_choice("destination", destination, DESTINATIONS),
        row_log=_choice("row_log", row_log, ROW_LOG_MODES),
        settings=_settings(_no_nul(settings or {}, "settings")),
        status=SyncStatus.DRAFT,
    )
    session.add(sync)
    await session.commit()
    return sync


async def list_syncs(session: AsyncSession, workspace_id: str) -> list[Sync]:
    return await list_scoped(session, Sync, workspace_id, Sync.created_at)


async def get_sync(session: AsyncSession, workspace_id: str, sync_id: str) -> Sync:
    return await get_scoped(session, Sync, workspace_id, sync_id)


async def update_sync(
    session: AsyncSession, workspace_id: str, sync_id: str, **changes: Any
) -> Sync:
    """Change a sync; ``data_type_immutable`` for the data type; a new table means a new test.

    Only the fields passed change. ``row_limit=None`` removes the row limit; ``None`` for a
    field that cannot be empty means "unchanged".
    """
    sync = await get_scoped(session, Sync, workspace_id, sync_id)
    was_active = sync.status == SyncStatus.ACTIVE
    changes = {k: v for k, v in changes.items() if v is not None or k in _NULLABLE}
    if "data_type" in changes and changes["data_type"] != sync.data_type:
        raise ZerocopyError(
            errors.DATA_TYPE_IMMUTABLE,
            f"the data type of sync {sync.name!r} is {sync.data_type} and cannot change; "
            "create a new sync for another data type",
            details={"field": "data_type", "data_type": sync.data_type},
        )
    if "name" in changes:
        name = check_name(changes["name"], "sync")
        await ensure_unique_name(session, Sync, workspace_id, name, exclude_id=sync.id)
        sync.name = name
    retest = False
    if "source_id" in changes and sync.source_id is None:
        # It would keep its s3 credential and file records next to a source without a table.
        raise _invalid(
            "source_id",
            f"sync {sync.name!r} reads files with credential {sync.credential_id}: it cannot "
            "become a warehouse sync; create a new sync with source_id + table",
        )
    new_source = "source_id" in changes and changes["source_id"] != sync.source_id
    if "table" in changes and sync.source_id is None and "source_id" not in changes:
        raise _invalid("table", "a file sync reads files, not a table: set source_settings")
    if "table" in changes:
        changes["table"] = _table(changes["table"])
    new_table = "table" in changes and changes["table"] != sync.table_name
    if new_source or new_table:
        await _refuse_while_running(session, sync, "change its table or source")
    if new_source:
        await get_scoped(session, Source, workspace_id, changes["source_id"])
        sync.source_id = changes["source_id"]
        retest = True
    if new_table:
        sync.table_name = changes["table"]
        retest = True
    if "frequency" in changes:
        sync.frequency = _frequency(changes["frequency"])
    if "contacts" in changes:
        sync.contacts = _contacts(changes["contacts"])
    if "notifications" in changes:
        sync.notifications = _notifications(changes["notifications"])
    if "row_limit" in changes:
        sync.row_limit = _row_limit(changes["row_limit"])
    if "lookback_minutes" in changes:
        lookback_s = _lookback(changes["lookback_minutes"])
        if lookback_s > (sync.lookback_s or 0):
            await _refuse_while_running(session, sync, "lengthen its lookback")
            # The content hashes kept cover the old window only: rows delivered before it
            # that the longer window reads again are applied once more unless marked, as
            # after a watermark reset, for de-duplication up to the current value.
            state = WatermarkState.from_json(sync.watermark)
            if state.value is not None:
                replay = max(v for v in (state.value, state.replay_until) if v is not None)
                sync.watermark = replace(state, replay_until=replay).to_json()
        sync.lookback_s = lookback_s
    if "row_log" in changes:
        sync.row_log = _choice("row_log", changes["row_log"], ROW_LOG_MODES)
    if "status" in changes:
        status = changes["status"]
        if status == SyncStatus.ACTIVE:
            _require_tested(sync)
        elif status not in (SyncStatus.PAUSED, SyncStatus.DRAFT):
            raise _invalid("status", "status must be draft, active or paused")
        sync.status = status
    if retest:
        sync.status = SyncStatus.DRAFT
        sync.last_test_ok = None
        # Another table's UPDATED_AT values say nothing about this one: read it whole, with
        # the rows up to the old watermark de-duplicated as after a reset (the same data
        # under a new name is not applied twice).
        sync.watermark = WatermarkState.from_json(sync.watermark).reset(None).to_json()
    if was_active != (sync.status == SyncStatus.ACTIVE):
        # Paused, draft or active again: the plan goes with the change, not with the
        # scheduler's next look (a pause and an activation between two ticks would otherwise
        # fire a catch-up for the paused time); the scheduler plans an active sync from then.
        await session.execute(
            sa.update(ScheduleState)
            .where(ScheduleState.owner_kind == SYNC, ScheduleState.owner_id == sync.id)
            .values(next_due_at=None, planned_key=None)
        )
    await session.commit()
    return sync


async def _refuse_while_running(session: AsyncSession, sync: Sync, action: str) -> None:
    """``sync_in_progress`` naming the running run: it would go on with the old settings."""
    running = await session.scalar(
        sa.select(SyncRun.id)
        .where(SyncRun.sync_id == sync.id, SyncRun.status == "running")
        .limit(1)
    )
    if running is not None:
        raise ZerocopyError(
            errors.SYNC_IN_PROGRESS,
            f"sync {sync.name!r} is running (run {running}); cancel it "
            f"(POST /v1/sync-runs/{running}/cancel) or wait for it to finish, then {action}",
            details={"run_id": running, "sync_id": sync.id},
        )


async def delete_sync(session: AsyncSession, workspace_id: str, sync_id: str) -> None:
    """Delete a sync with its runs and row logs (the delivered data stays in the store).

    ``sync_in_progress`` while a run is running: its rows and watermark would land on a
    sync that no longer exists.
    """
    sync = await get_scoped(session, Sync, workspace_id, sync_id)
    await _refuse_while_running(session, sync, "delete")
    await session.execute(sa.delete(SyncRowLog).where(SyncRowLog.sync_id == sync.id))
    await session.execute(sa.delete(SyncRun).where(SyncRun.sync_id == sync.id))
    await delete_schedule_rows(session, SYNC, sync.id)
    await session.delete(sync)
    await session.commit()


def _require_tested(sync: Sync) -> None:
    if not sync.last_test_ok:
        raise ZerocopyError(
            errors.CONFLICT,
            f"sync {sync.name!r} must pass a test before it can be active: "
            f"POST /v1/syncs/{sync.id}/test",
            details={"status": sync.status, "sync_id": sync.id},
        )


# ------------------------------------------------------------------ test + activate
@dataclass(slots=True)
class PreviewRow:
    """One preview row: its verdict (``valid`` or a row-error code) and what it carries."""

    position: int
    valid: bool
    code: str | None
    message: str | None
    row: dict[str, Any]


@dataclass(slots=True)
class SyncTestOutcome:
    sync: Sync
    table: str
    columns: dict[str, str]
    preview: list[PreviewRow]
    elapsed_s: float


async def test_sync(
    session: AsyncSession, runtime: Runtime, workspace_id: str, sync_id: str
) -> SyncTestOutcome:
    """Table reachable, required columns present, first 10 rows validated; failures raise."""
    sync = await get_scoped(session, Sync, workspace_id, sync_id)
    if sync.source_id is None:
        return await _test_file_sync(session, runtime, sync)
    source = await get_scoped(session, Source, workspace_id, sync.source_id)
    cred = await get_scoped(session, Credential, workspace_id, source.credential_id)
    dtype = DataType(sync.data_type)
    started = anyio.current_time()
    now = datetime.now(UTC)
    try:
        await _check_destination(runtime, sync)
        with anyio.fail_after(source.max_runtime_s):
            async with runtime.adapter_for(source, cred) as adapter:
                resolved = await resolve_source_table(adapter, sync.table_name or "", dtype)
                canonical = {a: c for c, a in resolved.columns.items()}
                wanted = [
                    resolved.columns[c] for c in KNOWN_COLUMNS[dtype] if c in resolved.columns
                ]
                verdicts: list[ValidRow | RowError] = []
                async for batch in adapter.read_incremental(
                    resolved.table,
                    Watermark(None, column=resolved.columns["UPDATED_AT"]),
                    batch_rows=PREVIEW_ROWS,
                    columns=wanted,
                ):
                    batch = batch.slice(0, PREVIEW_ROWS - len(verdicts))
                    batch = batch.rename_columns([canonical.get(n, n) for n in batch.schema.names])
                    verdicts += validate_batch(
                        dtype, batch, start_position=len(verdicts), options=sync_options(sync)
                    )
                    if len(verdicts) >= PREVIEW_ROWS:
                        break
    except (ZerocopyError, TimeoutError) as exc:
        err = (
            exc
            if isinstance(exc, ZerocopyError)
            else ZerocopyError(errors.TIMED_OUT, "the sync test ran past the source's max runtime")
        )
        sync.last_test_at, sync.last_test_ok = now, False
        sync.last_test_error = {"code": err.code, "message": err.message, "details": err.details}
        await session.commit()
        raise ZerocopyError(
            err.code, err.message, details={**err.details, "sync_id": sync.id}
        ) from exc
    sync.last_test_at, sync.last_test_ok, sync.last_test_error = now, True, None
    await session.commit()
    preview = [_preview(v) for v in verdicts]
    return SyncTestOutcome(
        sync=sync,
        table=resolved.table,
        columns=resolved.columns,
        preview=preview,
        elapsed_s=round(anyio.current_time() - started, 3),
    )


async def _check_destination(runtime: Runtime, sync: Sync) -> None:
    """The destination can be built here (the HTTP one is configured): a sync whose every run
    would fail at once does not pass its test."""
    from zerocopy.destinations.factory import destination_factory

    destination = destination_factory(runtime.db, runtime.settings)(sync)
    close = getattr(destination, "aclose", None)
    if close is not None:
        await close()


async def _test_file_sync(session: AsyncSession, runtime: Runtime, sync: Sync) -> SyncTestOutcome:
    """File-storage syncs: bucket reachable, pending files, first rows of the first validated."""
    from zerocopy.state.sync_models import SyncFile
    from zerocopy.sync.files import preview_files, store_for

    cred = await session.get(Credential, sync.credential_id) if sync.credential_id else None
    done = {
        (k, e)
        for k, e in (
            await session.execute(
                sa.select(SyncFile.key, SyncFile.etag).where(SyncFile.sync_id == sync.id)
            )
        ).all()
    }
    started = anyio.current_time()
    now = datetime.now(UTC)
    try:
        out = await preview_files(
            store_for(sync, cred, runtime.secret_box),
            DataType(sync.data_type),
            done=done,
            options=sync_options(sync),
            limit=PREVIEW_ROWS,
        )
    except ZerocopyError as err:
        sync.last_test_at, sync.last_test_ok = now, False
        sync.last_test_error = {"code": err.code, "message": err.message, "details": err.details}
        await session.commit()
        raise
    sync.last_test_at, sync.last_test_ok, sync.last_test_error = now, True, None
    await session.commit()
    settings = sync.source_settings or {}
    return SyncTestOutcome(
        sync=sync,
        table=out.previewed or f"s3://{settings.get('bucket', '')}/{settings.get('prefix', '')}",
        columns={},
        preview=[_preview(v) for v in out.verdicts],
        elapsed_s=round(anyio.current_time() - started, 3),
    )


def _preview(verdict: ValidRow | RowError) -> PreviewRow:
    if isinstance(verdict, RowError):
        return PreviewRow(verdict.position, False, verdict.code, verdict.message, verdict.raw)
    from zerocopy.sync.engine import _row_payload

    return PreviewRow(verdict.position, True, None, None, _row_payload(verdict))


async def activate_sync(session: AsyncSession, workspace_id: str, sync_id: str) -> Sync:
    """``active`` after a successful test (else ``conflict``)."""
    return await update_sync(session, workspace_id, sync_id, status=SyncStatus.ACTIVE)


async def pause_sync(session: AsyncSession, workspace_id: str, sync_id: str) -> Sync:
    return await update_sync(session, workspace_id, sync_id, status=SyncStatus.PAUSED)


# ------------------------------------------------------------------ runs
def sync_engine(runtime: Runtime) -> SyncEngine:
    """The process's sync engine (built on first use, shared by requests)."""
    engine = getattr(runtime, "sync_engine", None)
    if engine is None:
        from zerocopy.connections import AdapterFactory
        from zerocopy.destinations.factory import destination_factory

        engine = SyncEngine(
            runtime.db,
            AdapterFactory(runtime.secret_box),
            destination_factory(runtime.db, runtime.settings),
            on_finished=_notifier(runtime),
        )
        runtime.sync_engine = engine  # type: ignore[attr-defined]
    return engine


def _notifier(runtime: Runtime) -> Callable[[SyncRun], Awaitable[Any]]:
    """After each run: e-mail / webhook per the sync's notification settings (one per change)."""
    from zerocopy.notify.email import smtp_settings_from_env
    from zerocopy.notify.runs import notify_after_run

    smtp = getattr(runtime.settings, "smtp", None) or smtp_settings_from_env()

    async def notify(run: SyncRun) -> Any:
        return await notify_after_run(runtime.db, run.id, smtp)

    return notify


def file_sync_engine(runtime: Runtime) -> SyncEngine:
    """The process's engine for file-storage syncs (same runs, cancel and row logs)."""
    engine = getattr(runtime, "file_sync_engine", None)
    if engine is None:
        from zerocopy.connections import AdapterFactory
        from zerocopy.destinations.factory import destination_factory
        from zerocopy.sync.files import FileSyncEngine

        engine = FileSyncEngine(
            runtime.db,
            AdapterFactory(runtime.secret_box),
            destination_factory(runtime.db, runtime.settings),
            box=runtime.secret_box,
            on_finished=_notifier(runtime),
        )
        runtime.file_sync_engine = engine  # type: ignore[attr-defined]
    return engine


async def execute_run(runtime: Runtime, run_id: str) -> SyncRun:
    """Execute a started run with the engine its sync needs (warehouse or file storage)."""
    async with runtime.db.session() as s:
        run = await s.get(SyncRun, run_id)
        sync = await s.get(Sync, run.sync_id) if run else None
    if sync is not None and sync.source_id is None:
        return await file_sync_engine(runtime).execute(run_id)
    return await sync_engine(runtime).execute(run_id)


async def start_run(
    session: AsyncSession,
    runtime: Runtime,
    workspace_id: str,
    sync_id: str,
    trigger: str = "api",
) -> SyncRun:
    """Create a running run of an active sync; execute it with ``sync_engine(runtime).execute``."""
    sync = await get_scoped(session, Sync, workspace_id, sync_id)
    if sync.status != SyncStatus.ACTIVE:
        raise ZerocopyError(
            errors.CONFLICT,
            f"sync {sync.name!r} is {sync.status}; test and activate it before running it",
            details={"status": sync.status, "sync_id": sync.id},
        )
    return await sync_engine(runtime).request(sync.id, trigger)


RESET_TRIGGER = "watermark_reset"
"""``trigger`` of the run record a watermark reset leaves in the sync's history."""


async def reset_watermark(
    session: AsyncSession,
    runtime: Runtime,
    workspace_id: str,
    sync_id: str,
    to: datetime | None = None,
) -> SyncRun:
    """Reset a warehouse sync's watermark: ``None`` → the next run reads the whole table,
    a timestamp → it reads rows with ``UPDATED_AT`` at or after it (naive = UTC).

    ``sync_in_progress`` while a run is running (the reset takes the sync's one running-run
    slot, so a run cannot start half-way either). The reset is recorded in the sync's run
    history as a finished run with ``trigger`` ``watermark_reset`` (``success``, no rows,
    ``watermark_before`` / ``watermark_after``). Rows read again are de-duplicated in effect:
    merges are idempotent, and the built-in store applies events, purchases and deletes up to
    the old watermark only once (``WatermarkState.replay_until``); the HTTP destination
    re-sends them with the same ``row_hash`` idempotency keys.
    """
    sync = await get_scoped(session, Sync, workspace_id, sync_id)
    if sync.source_id is None:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"sync {sync.name!r} reads files, which have no watermark (each file is "
            "processed once by key and ETag); a changed file is read again by itself",
            details={"field": "sync_id", "sync_id": sync.id},
        )
    if to is not None:
        to = to.replace(tzinfo=UTC) if to.tzinfo is None else to.astimezone(UTC)
    target = sync.id
    await session.rollback()  # the reset's own transactions below see the latest state
    engine = sync_engine(runtime)
    run = await engine.request(target, RESET_TRIGGER, max_runtime_s=60.0)
    async with runtime.db.transaction() as s:
        current = await s.get(Sync, target)
        before = WatermarkState.from_json(current.watermark if current else None)
        after = before.reset(to).to_json()
        await s.execute(sa.update(Sync).where(Sync.id == target).values(watermark=after))
        await s.execute(
            sa.update(SyncRun)
            .where(SyncRun.id == run.id)
            .values(
                status=RunStatus.SUCCESS,
                watermark_before=before.to_json(),
                watermark_after=after,
                finished_at=datetime.now(UTC),
            )
        )
    return await engine.get(run.id)


async def get_run(session: AsyncSession, workspace_id: str, run_id: str) -> SyncRun:
    return await get_scoped(session, SyncRun, workspace_id, run_id)


async def list_runs(
    session: AsyncSession, workspace_id: str, sync_id: str, *, limit: int = 50
) -> list[SyncRun]:
    await get_scoped(session, Sync, workspace_id, sync_id)
    rows = await session.scalars(
        sa.select(SyncRun)
        .where(SyncRun.sync_id == sync_id)
        .order_by(SyncRun.created_at.desc())
        .limit(limit)
    )
    return list(rows.all())


async def cancel_run(
    session: AsyncSession, runtime: Runtime, workspace_id: str, run_id: str
) -> SyncRun:
    """Ask a running run to stop; ``conflict`` when it already finished."""
    run = await get_scoped(session, SyncRun, workspace_id, run_id)
    if run.status != "running":
        raise ZerocopyError(
            errors.CONFLICT,
            f"sync run {run_id} already finished ({run.status})",
            details={"run_id": run_id, "status": run.status},
        )
    engine = sync_engine(runtime)
    cancelled = await engine.request_cancel(run_id)
    withdraw = getattr(getattr(runtime, "runner", None), "withdraw_sync", None)
    if withdraw is not None and await withdraw(run_id):
        # Its job was still in the queue (every lane of its source busy): no worker will
        # fetch it, so the run ends here, at once, reading nothing -- not when a lane frees.
        return await engine.execute(run_id)
    return cancelled


async def list_row_logs(
    session: AsyncSession,
    workspace_id: str,
    run_id: str,
    *,
    errors_only: bool = True,
    limit: int = 100,
    offset: int = 0,
) -> list[SyncRowLog]:
    """Row verdicts of a run in row order: errors only (default) or all logged rows."""
    await get_scoped(session, SyncRun, workspace_id, run_id)
    stmt = sa.select(SyncRowLog).where(SyncRowLog.run_id == run_id)
    if errors_only:
        stmt = stmt.where(SyncRowLog.verdict == "error")
    stmt = stmt.order_by(SyncRowLog.position, SyncRowLog.id).limit(limit).offset(offset)
    return list((await session.scalars(stmt)).all())


def row_log_dict(row: SyncRowLog) -> dict[str, Any]:
    return {
        "position": row.position,
        "verdict": row.verdict,
        "code": row.code,
        "message": row.message,
        "updated_at": row.row_updated_at.isoformat() if row.row_updated_at else None,
        "row": row.payload,
    }


EXPORTED_WITH_ERRORS = ("error", "warning")
"""Verdicts an errors-only export holds: refused rows and rows applied with a warning (an
account's fields outside the schema dropped), each with its ``verdict``."""


async def export_row_logs(
    db: Database, run_id: str, *, fmt: str = "jsonl", errors_only: bool = True
) -> AsyncIterator[bytes]:
    """Stream a run's row logs as JSON lines or CSV (header first), 1,000 rows per query.

    ``errors_only``: refused rows and rows applied with a warning (:data:`EXPORTED_WITH_ERRORS`);
    else every logged row."""
    if fmt not in ("jsonl", "csv"):
        raise _invalid("format", "format must be jsonl or csv")
    fields = ["position", "verdict", "code", "message", "updated_at", "row"]
    if fmt == "csv":
        yield _csv_line(fields)
    last = -1
    last_id = -1
    while True:
        async with db.session() as s:
            stmt = sa.select(SyncRowLog).where(
                SyncRowLog.run_id == run_id,
                sa.or_(
                    SyncRowLog.position > last,
                    sa.and_(SyncRowLog.position == last, SyncRowLog.id > last_id),
                ),
            )
            if errors_only:  # the report of rows to look at: refused, or applied changed
                stmt = stmt.where(SyncRowLog.verdict.in_(EXPORTED_WITH_ERRORS))
            rows = list(
                (
                    await s.scalars(stmt.order_by(SyncRowLog.position, SyncRowLog.id).limit(1000))
                ).all()
            )
        if not rows:
            return
        for row in rows:
            data = row_log_dict(row)
            if fmt == "jsonl":
                yield exactjson.dumps(data) + b"\n"
            else:
                data["row"] = exactjson.dumps(data["row"]).decode()
                yield _csv_line([data[f] for f in fields])
        last, last_id = rows[-1].position, rows[-1].id


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""How a spreadsheet cell that it evaluates begins (OWASP "CSV injection")."""


def _csv_cell(value: Any) -> Any:
    """A CSV cell: a text a spreadsheet would take for a formula (a receiver's reason, say)
    is written after ``'``, the spreadsheet's mark of text, so opening the export runs
    nothing. Cells zerocopy writes itself never begin so (a row is JSON: ``{``)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _csv_line(values: list[Any]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerow([_csv_cell(v) for v in values])
    return buf.getvalue().encode()


async def sweep_retention(db: Database, *, now: datetime | None = None) -> dict[str, int]:
    """Delete row logs older than 30 days and run records older than 12 months (periodic job)."""
    now = now or datetime.now(UTC)
    async with db.transaction() as s:
        logs = await s.execute(
            sa.delete(SyncRowLog).where(SyncRowLog.created_at < now - ROW_LOG_RETENTION)
        )
        old_runs = sa.select(SyncRun.id).where(
            SyncRun.created_at < now - RUN_RETENTION, SyncRun.status != "running"
        )
        await s.execute(sa.delete(SyncRowLog).where(SyncRowLog.run_id.in_(old_runs)))
        runs = await s.execute(
            sa.delete(SyncRun).where(
                SyncRun.created_at < now - RUN_RETENTION, SyncRun.status != "running"
            )
        )
    return {
        "row_logs": logs.rowcount,  # type: ignore[attr-defined]
        "runs": runs.rowcount,  # type: ignore[attr-defined]
    }
