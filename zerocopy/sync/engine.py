"""The sync run engine: read past the watermark → validate → deliver → advance the watermark.

Mirrors :mod:`zerocopy.refresh.engine` for everything that coordinates runs through the
database, so the API, the CLI and workers in other processes share one engine:

* one running run per sync: a partial unique index on ``sync_run(sync_id)`` where the status
  is ``running``; the loser gets ``sync_in_progress`` with the running run's id;
* cancel: ``cancel_requested_at`` in the database, polled every ``cancel_poll_s``;
* liveness: ``heartbeat_at`` refreshed while running; :meth:`SyncEngine.reap_lost` ends runs
  whose process died (``error`` / ``worker_lost``) — their watermark never moved past what
  the destination committed;
* the source's max runtime bounds the whole run (warehouse reads are cancelled server-side).

The watermark only advances with a delivered batch (see :mod:`zerocopy.destinations.protocol`):
in the built-in store's transaction, or, for destinations that only acknowledge, right after
the acknowledgement. Deliveries are shielded from cancellation, so a cancel or a deadline
takes effect between batches and during warehouse reads, never half-way through a batch.
"""

from __future__ import annotations

import bisect
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from dialects.protocol import Adapter, TableInfo, Watermark
from zerocopy import errors
from zerocopy.destinations.protocol import (
    MAX_BATCH_ROWS,
    MAX_COLUMNAR_BATCH_ROWS,
    DeliveryBatch,
    DeliveryResult,
    Destination,
)
from zerocopy.errors import ZerocopyError
from zerocopy.logging import get_logger, redact_text
from zerocopy.state.db import Database
from zerocopy.state.models import Credential, RunTrigger, Source, new_id, utcnow
from zerocopy.state.sync_models import Sync, SyncRowLog, SyncRun
from zerocopy.sync.types import (
    AttributeRows,
    DataType,
    RowError,
    RunStatus,
    SyncStatus,
    ValidRow,
)
from zerocopy.sync.validate import (
    IDENTIFIER_COLUMNS,
    KNOWN_COLUMNS,
    UPDATED_AT,
    SyncOptions,
    attribute_columns,
    canonical_columns,
    missing_columns,
    normalize_phone,
    row_hashes,
    updated_micros,
    validate_batch,
)
from zerocopy.sync.watermark import WatermarkState, WatermarkTracker, to_micros, to_utc

log = get_logger("zerocopy.sync")

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"

AdapterFactory = Callable[..., Any]
DestinationFactory = Callable[..., Destination]
"""``factory(sync, *, deadline=None) -> Destination``."""


@dataclass(slots=True)
class ResolvedTable:
    """A sync's source table as the warehouse spells it, with its canonical columns."""

    table: str
    columns: dict[str, str]
    """Canonical upper-case name → actual column name."""
    updated_at_tz: bool
    """Whether ``UPDATED_AT`` is a timestamp *with* time zone (else naive = UTC)."""
    updated_at_text: bool = False
    """``UPDATED_AT`` is text (ISO 8601 parsed here): the warehouse cannot compare or order it
    as time, so every run reads the whole table and filters after parsing."""


def resolve_table(tables: list[TableInfo], name: str, data_type: DataType) -> ResolvedTable:
    """Find ``name`` (case-insensitive, table or view) and its columns; raise when unusable.

    ``name`` may be qualified by the source's schema (``marketing.users``, quoted or not), as
    people copy it from their SQL.
    """
    wanted = name.strip().lower()
    found = [x for x in tables if x.name.lower() == wanted]
    if not found and "." in wanted:
        schema, _, table = wanted.rpartition(".")
        schema, table = schema.strip().strip('"`[]'), table.strip().strip('"`[]')
        found = [
            x
            for x in tables
            if x.name.lower() == table
            and (
                x.schema is None
                or x.schema.lower() == schema
                or schema.endswith("." + x.schema.lower())
            )
        ]
    if not found:
        raise ZerocopyError(
            errors.UNKNOWN_TABLE,
            f"table or view {name!r} is not visible to the source's credential; check the name "
            "and the grants, then test the source again",
            details={"table": name},
        )
    if len(found) > 1:
        # Names that differ only in case (quoted in PostgreSQL): the one spelled exactly.
        given = name.strip().rpartition(".")[2].strip('"`[]')
        found = [x for x in found if x.name == given] or found
        if len({x.name for x in found}) > 1:
            raise ZerocopyError(
                errors.UNKNOWN_TABLE,
                f"{name!r} names {len(found)} tables or views that differ only in case "
                f"({', '.join(sorted(x.name for x in found))}): give the name exactly",
                details={"table": name, "ambiguous": sorted(x.name for x in found)},
            )
    info = found[0]
    spellings: dict[str, list[str]] = {}
    for c in info.columns:
        spellings.setdefault(c.name.upper(), []).append(c.name)
    twice = {k: v for k, v in spellings.items() if len(v) > 1 and k in KNOWN_COLUMNS[data_type]}
    if twice:
        both = "; ".join(" and ".join(repr(n) for n in v) for v in twice.values())
        raise ZerocopyError(
            errors.UNKNOWN_COLUMN,
            f"table {info.name!r} has columns that differ only in case ({both}) where a "
            f"{data_type.value} sync reads one ({', '.join(twice)}): rename one, or sync a view "
            "that selects the one to use",
            details={"table": info.name, "ambiguous": sorted(twice)},
        )
    columns = canonical_columns([c.name for c in info.columns], data_type)
    missing = missing_columns(columns, data_type)
    if missing:
        raise ZerocopyError(
            errors.UNKNOWN_COLUMN,
            f"table {info.name!r} lacks the column(s) a {data_type.value} sync needs: "
            f"{', '.join(missing)}",
            details={"table": info.name, "missing": missing},
        )
    types = {c.name: (c.data_type or "").upper() for c in info.columns}
    upd_type = types.get(columns[UPDATED_AT], "")
    if not any(word in upd_type for word in ("TIMESTAMP", "DATE", "CHAR", "TEXT", "STRING")):
        raise ZerocopyError(
            errors.UNKNOWN_COLUMN,
            f"column {columns[UPDATED_AT]!r} has type {upd_type or 'unknown'}; UPDATED_AT must "
            "be a timestamp (with or without time zone)",
            details={"table": info.name, "column": columns[UPDATED_AT], "type": upd_type},
        )
    text = "TIMESTAMP" not in upd_type and "DATE" not in upd_type
    return ResolvedTable(
        table=info.name,
        columns=columns,
        updated_at_tz=is_zoned_type(upd_type),
        updated_at_text=text,
    )


async def resolve_source_table(adapter: Adapter, name: str, data_type: DataType) -> ResolvedTable:
    """:func:`resolve_table` on the adapter's tables. A table the credential lost ``SELECT``
    on is left out of the listing: where the adapter can tell it exists
    (``unreadable_table``), that is ``permission_denied`` ("permission removed"), not
    ``unknown_table``."""
    try:
        return resolve_table(await adapter.list_tables(), name, data_type)
    except ZerocopyError as exc:
        if exc.code != errors.UNKNOWN_TABLE or "ambiguous" in exc.details:
            raise
        try:
            hidden = await adapter.unreadable_table(name)
        except ZerocopyError:
            hidden = None
        if hidden is None:
            raise
        raise ZerocopyError(
            errors.PERMISSION_DENIED,
            f"table or view {hidden!r} exists but the source's credential may not read it "
            "(no SELECT privilege: revoked?); grant SELECT on it to the credential's user",
            details={"table": hidden},
        ) from None


_ZONED_TYPES = frozenset(
    {"TIMESTAMPTZ", "TIMESTAMP_TZ", "TIMESTAMP_LTZ", "TIMESTAMPLTZ", "DATETIMEOFFSET"}
)
"""Type names of instants: PostgreSQL/DuckDB/Redshift ``timestamptz``, Snowflake
``TIMESTAMP_TZ``/``TIMESTAMP_LTZ``, Fabric ``datetimeoffset``."""
_NAIVE_TYPES = frozenset({"TIMESTAMP_NTZ", "TIMESTAMPNTZ"})
"""Snowflake and Databricks timestamps without a time zone (the name ends in ``TZ`` too)."""


def is_zoned_type(type_name: str) -> bool:
    """Whether a warehouse column type holds instants (with a time zone) rather than naive
    wall-clock values, which a sync takes as UTC.

    Decided on the type's words, not on substrings: ``TIMESTAMP_NTZ`` ends in ``TZ`` but is
    naive; ``… WITHOUT TIME ZONE`` names a zone but is naive; ``… WITH [LOCAL] TIME ZONE``,
    ``TIMESTAMPTZ``, ``TIMESTAMP_TZ``, ``TIMESTAMP_LTZ`` and ``DATETIMEOFFSET`` are instants.
    Precision and other arguments (``TIMESTAMP_TZ(9)``) are ignored. A plain ``TIMESTAMP``,
    ``DATETIME`` or ``DATE`` is naive (BigQuery's and Databricks' ``TIMESTAMP`` are instants,
    but their adapters bind a naive watermark as UTC, the same instant).
    """
    words = re.sub(r"\([^)]*\)", " ", type_name.upper()).split()
    text = " ".join(words)
    if "WITHOUT TIME ZONE" in text or any(w in _NAIVE_TYPES for w in words):
        return False
    return (
        "WITH TIME ZONE" in text
        or "WITH LOCAL TIME ZONE" in text
        or any(w in _ZONED_TYPES for w in words)
    )


def sync_options(sync: Sync) -> SyncOptions:
    """Validation options from the sync's settings."""
    fields = (sync.settings or {}).get("account_fields")
    return SyncOptions(account_fields=frozenset(fields) if fields is not None else None)


@dataclass(slots=True)
class _Counts:
    """A run's row counts. ``read = delivered + skipped + errored`` in every run record: rows
    of a batch the destination never accepted (the run failed or was stopped first) and rows
    past a row limit are not counted; the next run reads them again."""

    taken: int = 0
    """Rows taken for delivery or refusal so far (delivered or not yet): the row limit counts
    them, and they number the row log's positions."""
    skipped: int = 0
    """Rows read again that an earlier run accounted for (same content at the boundary or in
    the lookback, a null-``UPDATED_AT`` row already reported, a file's delivered lines)."""
    delivered: int = 0
    errored: int = 0
    limit_hit: bool = False
    logs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def read(self) -> int:
        """Rows read and accounted for: delivered, skipped as known, or refused."""
        return self.delivered + self.skipped + self.errored


class SyncEngine:
    """Runs syncs and records them in the state database.

    Args:
        db: the state database.
        adapter_factory: ``factory(source, credential, *, max_runtime_s=...) -> adapter``.
        destination_factory: ``factory(sync) -> Destination`` (default: the built-in store).
        batch_rows: rows per Arrow batch read from the warehouse.
        delivery_rows: valid rows per delivery batch (at most ``MAX_BATCH_ROWS``). Left out,
            a destination that takes columns gets up to its ``columnar_batch_rows`` per batch
            while the rows stay columns (fewer transactions); given, it holds for every batch.
    """

    def __init__(
        self,
        db: Database,
        adapter_factory: AdapterFactory,
        destination_factory: DestinationFactory | None = None,
        *,
        cancel_poll_s: float = 0.3,
        heartbeat_s: float = 2.0,
        stale_after_s: float = 60.0,
        batch_rows: int = 50_000,
        delivery_rows: int | None = None,
        worker: str = WORKER_ID,
        on_finished: Callable[[SyncRun], Awaitable[Any]] | None = None,
    ) -> None:
        from zerocopy.destinations.builtin import BuiltinStore

        self.db = db
        self.adapter_factory = adapter_factory
        self.destination_factory: DestinationFactory = destination_factory or (
            lambda _sync, **_kw: BuiltinStore(db)
        )
        self.cancel_poll_s = cancel_poll_s
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.batch_rows = batch_rows
        self.delivery_rows = min(delivery_rows or MAX_BATCH_ROWS, MAX_BATCH_ROWS)
        self._columnar_rows: int | None = None if delivery_rows is None else self.delivery_rows
        """Valid rows per columnar batch (None: the destination's ``columnar_batch_rows``)."""
        self.worker = worker
        self.on_finished = on_finished
        """Called with every finished run (notifications); best effort, never fails the run."""
        self._local_cancels: dict[str, anyio.Event] = {}

    # ------------------------------------------------------------------ public interface
    async def request(
        self, sync_id: str, trigger: str = "api", *, max_runtime_s: float | None = None
    ) -> SyncRun:
        """Create a ``running`` run of ``sync_id``; ``sync_in_progress`` if one is running."""
        for _attempt in range(3):
            async with self.db.session() as s:
                sync = await s.get(Sync, sync_id)
                if sync is None:
                    raise ZerocopyError(errors.NOT_FOUND, f"sync {sync_id} not found")
                runtime = max_runtime_s
                if runtime is None:
                    source = await s.get(Source, sync.source_id) if sync.source_id else None
                    runtime = float(source.max_runtime_s) if source else 600.0
                now = utcnow()
                run = SyncRun(
                    id=new_id(),
                    sync_id=sync.id,
                    workspace_id=sync.workspace_id,
                    trigger=trigger,
                    status=RunStatus.RUNNING,
                    max_runtime_s=float(runtime),
                    watermark_before=sync.watermark,
                    started_at=now,
                    heartbeat_at=now,
                    worker=self.worker,
                )
                s.add(run)
                try:
                    await s.commit()
                except IntegrityError:
                    await s.rollback()
                else:
                    log.info("sync.requested", run_id=run.id, sync_id=sync_id, trigger=trigger)
                    return run
            active = await self.active_run(sync_id)
            if active is None:
                continue
            if await self._reap_if_lost(active):
                continue
            raise ZerocopyError(
                errors.SYNC_IN_PROGRESS,
                f"sync {sync_id} is already running (run {active.id}); wait for it or cancel it",
                details={"run_id": active.id, "sync_id": sync_id},
            )
        raise ZerocopyError(errors.CONFLICT, f"could not start a run of sync {sync_id}; retry")

    async def run(
        self, sync_id: str, trigger: str = "api", *, max_runtime_s: float | None = None
    ) -> SyncRun:
        """:meth:`request` then :meth:`execute` in this task."""
        run = await self.request(sync_id, trigger, max_runtime_s=max_runtime_s)
        return await self.execute(run.id)

    async def execute(self, run_id: str) -> SyncRun:
        """Drive a ``running`` run to its final status; failures are recorded, not raised."""
        run = await self.get(run_id)
        if run.status != RunStatus.RUNNING or run.finished_at is not None:
            return run
        event = self._local_cancels.setdefault(run.id, anyio.Event())
        started = time.perf_counter()
        counts = _Counts()
        status: str = RunStatus.ERROR
        error: ZerocopyError | None = None
        try:
            try:
                status = await self._execute(run, event, counts)
            except ZerocopyError as exc:
                status, error = (
                    (RunStatus.CANCELLED if exc.code == errors.CANCELLED else RunStatus.ERROR),
                    exc,
                )
            except Exception as exc:
                log.exception("sync.internal_error", run_id=run.id)
                error = ZerocopyError(
                    errors.INTERNAL_ERROR,
                    f"unexpected error during the sync: {type(exc).__name__}: "
                    f"{redact_text(str(exc))}",
                )
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._finish(
                    run,
                    RunStatus.CANCELLED,
                    ZerocopyError(
                        errors.CANCELLED, "stopped because the zerocopy process shut down"
                    ),
                    counts,
                    started,
                )
            raise
        finally:
            self._local_cancels.pop(run.id, None)
        with anyio.CancelScope(shield=True):
            final = await self._finish(run, status, error, counts, started)
        await self._after(final)
        return final

    async def _after(self, run: SyncRun) -> None:
        if self.on_finished is None:
            return
        try:
            with anyio.move_on_after(60):
                await self.on_finished(run)
        except Exception as exc:
            log.warning("sync.after_run_failed", run_id=run.id, error=redact_text(str(exc)))

    async def request_cancel(self, run_id: str) -> SyncRun:
        """Ask a running run to stop (from any process); it ends ``cancelled`` within ~1 s."""
        async with self.db.transaction() as s:
            await s.execute(
                sa.update(SyncRun)
                .where(
                    SyncRun.id == run_id,
                    SyncRun.status == RunStatus.RUNNING,
                    SyncRun.cancel_requested_at.is_(None),
                )
                .values(cancel_requested_at=utcnow())
            )
        event = self._local_cancels.get(run_id)
        if event is not None:
            event.set()
        return await self.get(run_id)

    async def get(self, run_id: str) -> SyncRun:
        async with self.db.session() as s:
            run = await s.get(SyncRun, run_id)
        if run is None:
            raise ZerocopyError(errors.NOT_FOUND, f"sync run {run_id} not found")
        return run

    async def active_run(self, sync_id: str) -> SyncRun | None:
        async with self.db.session() as s:
            return await s.scalar(
                sa.select(SyncRun).where(
                    SyncRun.sync_id == sync_id, SyncRun.status == RunStatus.RUNNING
                )
            )

    async def reap_lost(self, stale_after_s: float | None = None) -> list[str]:
        """End ``running`` runs whose heartbeat stopped (process killed) as ``error``/``worker_lost``."""
        limit = utcnow() - timedelta(
            seconds=self.stale_after_s if stale_after_s is None else stale_after_s
        )
        async with self.db.transaction() as s:
            ids = list(
                (
                    await s.scalars(
                        sa.select(SyncRun.id).where(
                            SyncRun.status == RunStatus.RUNNING, SyncRun.heartbeat_at < limit
                        )
                    )
                ).all()
            )
            for run_id in ids:
                run = await s.get(SyncRun, run_id)
                assert run is not None
                sync = await s.get(Sync, run.sync_id)
                await s.execute(
                    sa.update(SyncRun)
                    .where(SyncRun.id == run_id, SyncRun.status == RunStatus.RUNNING)
                    .values(
                        status=RunStatus.ERROR,
                        error_code=errors.WORKER_LOST,
                        error_message="the process running this sync stopped; the watermark "
                        "stays at the last committed batch and the next run continues from it",
                        finished_at=utcnow(),
                        watermark_after=sync.watermark if sync else None,
                    )
                )
        for run_id in ids:
            log.warning("sync.worker_lost", run_id=run_id)
        return ids

    # ------------------------------------------------------------------ execution
    async def _load(self, run: SyncRun) -> tuple[Sync, Source | None, Credential | None]:
        async with self.db.session() as s:
            sync = await s.get(Sync, run.sync_id)
            if sync is None:
                raise ZerocopyError(errors.NOT_FOUND, "the sync was deleted")
            if run.trigger == RunTrigger.SCHEDULE and sync.status != SyncStatus.ACTIVE:
                # Paused (or made draft) while this occurrence waited for its slot: a
                # paused sync never runs on schedule, so it reads nothing.
                raise ZerocopyError(
                    errors.CANCELLED,
                    f"the sync was {sync.status} before this scheduled run started; nothing "
                    "was read (activate it to run on schedule again)",
                    details={"status": sync.status},
                )
            source = await s.get(Source, sync.source_id) if sync.source_id else None
            cred_id = source.credential_id if source else sync.credential_id
            credential = await s.get(Credential, cred_id) if cred_id else None
        return sync, source, credential

    async def _execute(self, run: SyncRun, event: anyio.Event, counts: _Counts) -> str:
        if await self._cancel_requested(run.id):
            raise ZerocopyError(errors.CANCELLED, "cancelled on request before it started")
        sync, source, credential = await self._load(run)
        if source is None or credential is None or not sync.table_name:
            raise ZerocopyError(
                errors.VALIDATION_ERROR,
                "this sync has no warehouse source and table to read "
                "(file-storage syncs run through zerocopy.sync.files)",
            )
        data_type = DataType(sync.data_type)
        options = sync_options(sync)
        state = WatermarkState.from_json(sync.watermark)
        lookback = timedelta(seconds=sync.lookback_s) if sync.lookback_s else None
        tracker = WatermarkTracker(state, lookback)
        assert run.started_at is not None
        elapsed = (utcnow() - run.started_at).total_seconds()
        deadline = anyio.current_time() + max(0.0, run.max_runtime_s - elapsed)
        destination = self.destination_factory(sync, deadline=deadline)
        adapter = self.adapter_factory(source, credential, max_runtime_s=run.max_runtime_s)
        work = anyio.CancelScope(deadline=deadline)
        cancelled = False
        finished = False
        # Every row read and delivered: a cancel that came during the last (shielded) batch
        # came too late, the run is complete rather than cancelled.
        pumped = False
        failure: ZerocopyError | None = None

        async def watch() -> None:
            nonlocal cancelled
            next_beat = anyio.current_time() + self.heartbeat_s
            while True:
                with anyio.move_on_after(self.cancel_poll_s):
                    await event.wait()
                if finished:
                    return
                if event.is_set() or await self._cancel_requested(run.id):
                    cancelled = True
                    work.cancel()
                    return
                if anyio.current_time() >= next_beat:
                    await self._heartbeat(run.id)
                    next_beat = anyio.current_time() + self.heartbeat_s

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                try:
                    with work:
                        try:
                            resolved = await resolve_source_table(
                                adapter, sync.table_name, data_type
                            )
                            await self._pump(
                                run,
                                sync,
                                data_type,
                                options,
                                adapter,
                                resolved,
                                state,
                                lookback,
                                tracker,
                                destination,
                                counts,
                            )
                            pumped = True
                        except ZerocopyError as exc:
                            # Raised out of the task group it would arrive wrapped in an
                            # ExceptionGroup and be recorded as internal_error.
                            failure = exc
                finally:
                    finished = True
                    event.set()
        finally:
            with anyio.CancelScope(shield=True):
                for closer in (adapter.aclose, destination.aclose):
                    try:
                        await closer()
                    except Exception as exc:
                        log.warning("sync.close_failed", error=redact_text(str(exc)))
        if failure is not None:
            raise failure
        if cancelled and not pumped:
            raise ZerocopyError(errors.CANCELLED, "cancelled on request")
        if work.cancelled_caught:
            raise ZerocopyError(
                errors.TIMED_OUT,
                f"the sync ran past the source's max runtime ({run.max_runtime_s:g} s) and was "
                "stopped; delivered batches are kept and the next run continues from there",
                details={"max_runtime_s": run.max_runtime_s},
            )
        if counts.limit_hit:
            return RunStatus.LIMIT_EXCEEDED
        return RunStatus.PARTIAL_SUCCESS if counts.errored else RunStatus.SUCCESS

    async def _pump(
        self,
        run: SyncRun,
        sync: Sync,
        data_type: DataType,
        options: SyncOptions,
        adapter: Any,
        resolved: ResolvedTable,
        state: WatermarkState,
        lookback: timedelta | None,
        tracker: WatermarkTracker,
        destination: Destination,
        counts: _Counts,
    ) -> None:
        start = state.read_from(lookback)
        floor_us: int | None = None
        if resolved.updated_at_text:
            # Text: read everything (no server-side comparison with a timestamp), drop rows
            # before the window after parsing, and keep the committed value where it was until
            # the whole table has been read (rows come in text order, not time order).
            floor_us = to_micros(start) if start is not None else None
            start = None
            tracker.hold_value()
        elif start is not None and not resolved.updated_at_tz:
            start = to_utc(start).replace(tzinfo=None)  # naive column: compare in UTC
        canonical = {actual: canon for canon, actual in resolved.columns.items()}
        wanted = [resolved.columns[c] for c in KNOWN_COLUMNS[data_type] if c in resolved.columns]
        watermark = Watermark(start, column=resolved.columns[UPDATED_AT])
        # Pipeline: the next source batch is read and validated (worker thread) while the
        # current one is delivered; one batch in flight keeps memory bounded.
        send, receive = anyio.create_memory_object_stream[tuple[_Chunk, int]](1)

        reads = [watermark]
        if start is not None:
            # Rows with a NULL UPDATED_AT are outside every ``>=`` read: they are read on
            # every run and reported once per content (the tracker's ``invalid`` hashes).
            reads.append(Watermark(None, column=watermark.column, nulls_only=True))

        order = _Order(tracker.value_us) if data_type in MERGE_TYPES else None
        # A destination may ask for smaller read batches (the rows in flight bound the peak
        # memory next to the source's own); it never gets larger ones.
        batch_rows = min(self.batch_rows, getattr(destination, "read_batch_rows", None) or 2**62)

        async def produce() -> None:
            position = 0

            async def emit(keyed: _Keyed) -> None:
                nonlocal position
                chunk, skipped = await anyio.to_thread.run_sync(
                    _verdicts, data_type, keyed, position, tracker, options, floor_us, order
                )
                position += chunk.n
                await send.send((chunk, skipped))

            async with send:
                for read in reads:
                    held: _Keyed | None = None
                    source = _batches(adapter, resolved.table, read, batch_rows, wanted)
                    if resolved.updated_at_text:
                        source = _in_time_order(source, read.column, batch_rows)
                    async for raw in source:
                        names = [canonical.get(n, n) for n in raw.schema.names]
                        batch = raw.rename_columns(names)
                        pieces, held = await anyio.to_thread.run_sync(
                            _ordered_pieces, held, batch, data_type
                        )
                        for piece in pieces:
                            await emit(piece)
                    if held is not None and held.n:
                        await emit(held)
                tracker.read_all_invalid()

        try:
            await self._consume(
                run, sync, data_type, produce, receive, tracker, destination, counts
            )
        except BaseExceptionGroup as group:
            raise _unwrap(group) from None

    async def _consume(
        self,
        run: SyncRun,
        sync: Sync,
        data_type: DataType,
        produce: Callable[[], Coroutine[Any, Any, None]],
        receive: Any,
        tracker: WatermarkTracker,
        destination: Destination,
        counts: _Counts,
    ) -> None:
        """Deliver the validated chunks ``produce`` sends, in order, ``delivery_rows`` at a time."""
        pending: list[_Chunk] = []
        pending_valid = 0
        limit = sync.row_limit
        columnar_rows = self.delivery_rows
        if getattr(destination, "ACCEPTS_COLUMNS", False):
            columnar_rows = self._columnar_rows or min(
                getattr(destination, "columnar_batch_rows", self.delivery_rows),
                MAX_COLUMNAR_BATCH_ROWS,
            )
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            async with receive:
                async for chunk, skipped in receive:
                    counts.skipped += skipped
                    if limit is not None and chunk.n > limit - counts.taken:
                        # Rows past the limit wait for the next run.
                        counts.limit_hit = True
                        chunk = chunk.cut(max(0, limit - counts.taken))[0]
                    while chunk.n:
                        columnar = isinstance(chunk.valid, AttributeRows) and all(
                            isinstance(p.valid, AttributeRows) for p in pending
                        )
                        cap = columnar_rows if columnar else self.delivery_rows
                        if pending_valid >= cap:  # columns pending, then a per-row chunk
                            await self._flush(
                                run, sync, data_type, pending, tracker, destination, counts
                            )
                            pending, pending_valid = [], 0
                            await anyio.lowlevel.checkpoint()
                        need = cap - pending_valid
                        head, chunk = chunk.cut(chunk.rows_for_valid(need))
                        again = head.again_count  # already delivered: skipped
                        counts.taken += head.n - again
                        counts.skipped += again
                        pending.append(head)
                        pending_valid += head.valid_count
                        if pending_valid >= cap:
                            await self._flush(
                                run, sync, data_type, pending, tracker, destination, counts
                            )
                            pending, pending_valid = [], 0
                            # Between batches: where a cancel or the deadline takes effect.
                            await anyio.lowlevel.checkpoint()
                    if counts.limit_hit:
                        tg.cancel_scope.cancel()  # stop reading: the rest waits for next run
                        break
        # Always: the last flush also commits what the run learnt about rows without a usable
        # UPDATED_AT (and costs one transaction when nothing is pending).
        if tracker.complete and not counts.limit_hit:
            tracker.release_value()  # every row read is in this last batch or an earlier one
        await self._flush(run, sync, data_type, pending, tracker, destination, counts)

    async def _flush(
        self,
        run: SyncRun,
        sync: Sync,
        data_type: DataType,
        pending: list[_Chunk] | list[ValidRow | RowError],
        tracker: Any,
        destination: Destination,
        counts: _Counts,
    ) -> None:
        """Deliver one batch (shielded) and commit its watermark; log its rows.

        ``pending`` is the engine's chunks, or (file source) plain verdicts in order.
        """
        chunks: list[_Chunk] = (
            pending  # type: ignore[assignment]
            if not pending or isinstance(pending[0], _Chunk)
            else [_chunk_of(pending, 0)]  # type: ignore[arg-type]
        )
        parts: list[AttributeRows] = []
        listed: list[ValidRow] = []
        record_invalid = getattr(tracker, "record_invalid", None)
        for chunk in chunks:
            for error in chunk.errors:
                if error.updated_us is not None:
                    tracker.record(error.row_hash, error.updated_us)
                elif record_invalid is not None:
                    record_invalid(error.row_hash)
            if isinstance(chunk.valid, AttributeRows):
                if len(chunk.valid):
                    tracker.record_many(chunk.valid.hashes, chunk.valid.updated_us)
                    parts.append(chunk.valid)
            else:
                for row in chunk.valid:
                    if row.updated_us is not None:
                        tracker.record(row.row_hash, row.updated_us)
                listed.extend(chunk.valid)
        watermark = tracker.snapshot()
        columns: AttributeRows | None = None
        rows: list[ValidRow] = listed
        if parts and not listed and getattr(destination, "ACCEPTS_COLUMNS", False):
            columns = AttributeRows.concat(parts)
        elif parts:
            rows = []
            for chunk in chunks:
                valid = chunk.valid
                rows.extend(valid.materialise() if isinstance(valid, AttributeRows) else valid)
        count = len(columns) if columns is not None else len(rows)
        with anyio.CancelScope(shield=True):
            if count:
                result = await destination.deliver(
                    DeliveryBatch(
                        workspace_id=sync.workspace_id,
                        sync_id=sync.id,
                        run_id=run.id,
                        data_type=data_type,
                        rows=rows,
                        watermark=watermark,
                        catalog=sync.catalog_name,
                        columns=columns,
                        replay_until_us=getattr(tracker, "replay_until_us", None),
                    )
                )
            else:
                result = DeliveryResult(accepted=True, delivered=0)
            if not result.accepted:
                raise ZerocopyError(
                    errors.DESTINATION_ERROR,
                    f"the destination did not accept a batch: {result.error or 'no reason given'}; "
                    "the watermark stays at the last accepted batch",
                )
            if not count or not getattr(destination, "COMMITS_WATERMARK", False):
                async with self.db.transaction() as s:
                    await s.execute(
                        sa.update(Sync)
                        .where(Sync.id == sync.id)
                        .values(watermark=watermark.to_json())
                    )
            rejected = {r.index: r for r in result.rejections}
            log_all = sync.row_log == "all"
            logs: list[dict[str, Any]] = []
            for chunk in chunks:
                for verdict in chunk.errors:
                    counts.errored += 1
                    logs.append(
                        _log(
                            run,
                            verdict.position,
                            "error",
                            verdict.code,
                            verdict.message,
                            verdict.raw,
                            verdict,
                        )
                    )
            if columns is not None and not rejected and not log_all:
                counts.delivered += count  # columnar rows carry no warnings
            else:
                if columns is not None:
                    rows = columns.materialise()
                for index, row in enumerate(rows):
                    if row.again:
                        continue  # accounted for by the run that delivered it
                    rej = rejected.get(index)
                    if rej is not None:
                        counts.errored += 1
                        logs.append(
                            _log(
                                run,
                                row.position,
                                "error",
                                rej.code,
                                rej.message,
                                _row_payload(row),
                                row,
                            )
                        )
                        continue
                    counts.delivered += 1
                    if row.warnings:
                        code, message = row.warnings[0]
                        logs.append(
                            _log(
                                run, row.position, "warning", code, message, _row_payload(row), row
                            )
                        )
                    elif log_all:
                        logs.append(
                            _log(run, row.position, "delivered", None, None, _row_payload(row), row)
                        )
            async with self.db.transaction() as s:
                if logs:
                    await s.execute(sa.insert(SyncRowLog.__table__), logs)  # type: ignore[arg-type]
                await s.execute(
                    sa.update(SyncRun)
                    .where(SyncRun.id == run.id)
                    .values(
                        rows_read=counts.read,
                        rows_skipped=counts.skipped,
                        rows_delivered=counts.delivered,
                        rows_errored=counts.errored,
                        watermark_after=watermark.to_json(),
                        heartbeat_at=utcnow(),
                    )
                )

    async def _finish(
        self,
        run: SyncRun,
        status: str,
        error: ZerocopyError | None,
        counts: _Counts,
        started: float,
    ) -> SyncRun:
        async with self.db.transaction() as s:
            sync = await s.get(Sync, run.sync_id)
            await s.execute(
                sa.update(SyncRun)
                .where(SyncRun.id == run.id, SyncRun.status == RunStatus.RUNNING)
                .values(
                    status=status,
                    rows_read=counts.read,
                    rows_skipped=counts.skipped,
                    rows_delivered=counts.delivered,
                    rows_errored=counts.errored,
                    watermark_after=sync.watermark if sync else None,
                    error_code=error.code if error else None,
                    error_message=redact_text(error.message) if error else None,
                    finished_at=utcnow(),
                )
            )
            if sync is not None:
                await s.execute(
                    sa.update(Sync).where(Sync.id == sync.id).values(last_run_id=run.id)
                )
        final = await self.get(run.id)
        log.info(
            "sync.finished",
            run_id=run.id,
            sync_id=run.sync_id,
            status=final.status,
            rows_read=final.rows_read,
            rows_delivered=final.rows_delivered,
            rows_errored=final.rows_errored,
            error_code=final.error_code,
            seconds=round(time.perf_counter() - started, 3),
        )
        return final

    async def _cancel_requested(self, run_id: str) -> bool:
        async with self.db.session() as s:
            value = await s.scalar(
                sa.select(SyncRun.cancel_requested_at).where(SyncRun.id == run_id)
            )
        return value is not None

    async def _heartbeat(self, run_id: str) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                sa.update(SyncRun)
                .where(SyncRun.id == run_id, SyncRun.status == RunStatus.RUNNING)
                .values(heartbeat_at=utcnow())
            )

    async def _reap_if_lost(self, run: SyncRun) -> bool:
        if run.heartbeat_at is None:
            return False
        if (utcnow() - run.heartbeat_at).total_seconds() < self.stale_after_s:
            return False
        return run.id in await self.reap_lost()


def _unwrap(group: BaseExceptionGroup) -> BaseException:
    """The one error of a task group that failed for exactly one reason (else the group)."""
    match, rest = group.split(ZerocopyError)
    if match is not None and rest is None:
        leaves = list(_leaves(match))
        if len(leaves) == 1:
            return leaves[0]
    return group


def _leaves(group: BaseExceptionGroup) -> Any:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


async def _batches(
    adapter: Any, table: str, watermark: Watermark, batch_rows: int, columns: list[str]
) -> AsyncIterator[pa.RecordBatch]:
    async for batch in adapter.read_incremental(
        table, watermark, batch_rows=batch_rows, columns=columns
    ):
        yield batch


async def _in_time_order(
    batches: AsyncIterator[pa.RecordBatch], column: str, batch_rows: int
) -> AsyncIterator[pa.RecordBatch]:
    """A text ``UPDATED_AT`` read whole, re-ordered by the instant each value means.

    The warehouse can only order the text as text, which is not time order as soon as the
    values use offsets (``…T10:00+05:00`` is before ``…T06:00Z``) or other ISO 8601
    spellings (``2026-330``, ``24:00``); merges must apply in time order, as with a timestamp
    column. Rows without a usable time keep their place at the end. The whole table is held
    as Arrow columns (text ``UPDATED_AT`` tables are modest; see the README).
    """
    collected = [b async for b in batches if b.num_rows]
    if not collected:
        return

    def order() -> list[pa.RecordBatch]:
        table = pa.Table.from_batches(collected)
        micros = updated_micros(table.column(column).combine_chunks())
        top = np.iinfo(np.int64).max
        keys = np.fromiter(
            (top if u is None else u for u in micros), dtype=np.int64, count=len(micros)
        )
        taken = table.take(pa.array(np.argsort(keys, kind="stable"), pa.int64()))
        return taken.combine_chunks().to_batches(max_chunksize=batch_rows)

    for batch in await anyio.to_thread.run_sync(order):
        yield batch


@dataclass(slots=True)
class _Chunk:
    """Verdicts of ``n`` consecutive rows (positions ``start`` …): refused and valid rows.

    ``valid`` is a list of :class:`ValidRow` (per-row path) or :class:`AttributeRows`
    (columnar fast path); both sorted by position.
    """

    n: int
    start: int
    errors: list[RowError]
    valid: list[ValidRow] | AttributeRows

    @property
    def valid_count(self) -> int:
        return len(self.valid)

    @property
    def again_count(self) -> int:
        """Rows applied again after a late row of their key (see :class:`_Order`)."""
        if isinstance(self.valid, AttributeRows):
            return 0
        return sum(1 for v in self.valid if v.again)

    def _valid_positions(self) -> Any:
        if isinstance(self.valid, AttributeRows):
            return self.valid.positions
        return [v.position for v in self.valid]

    def rows_for_valid(self, wanted: int) -> int:
        """How many leading rows hold ``wanted`` valid rows (all rows when fewer)."""
        if wanted <= 0:
            return 0
        if self.valid_count <= wanted:
            return self.n
        return int(self._valid_positions()[wanted - 1]) - self.start + 1

    def cut(self, k: int) -> tuple[_Chunk, _Chunk]:
        """The first ``k`` rows and the rest."""
        end = self.start + k
        head_err = [e for e in self.errors if e.position < end]
        tail_err = self.errors[len(head_err) :]
        j = bisect.bisect_left(self._valid_positions(), end)
        valid = self.valid
        if isinstance(valid, AttributeRows):
            head_v: list[ValidRow] | AttributeRows = valid.slice(0, j)
            tail_v: list[ValidRow] | AttributeRows = valid.slice(j, len(valid))
        else:
            head_v, tail_v = valid[:j], valid[j:]
        return (
            _Chunk(k, self.start, head_err, head_v),
            _Chunk(self.n - k, end, tail_err, tail_v),
        )


def _chunk_of(verdicts: list[ValidRow | RowError], start: int) -> _Chunk:
    errors = [v for v in verdicts if isinstance(v, RowError)]
    valid = [v for v in verdicts if isinstance(v, ValidRow)]
    first = verdicts[0].position if verdicts else start
    return _Chunk(len(verdicts), first, errors, valid)


MERGE_TYPES = frozenset({DataType.USER_ATTRIBUTES, DataType.CATALOG_ITEMS, DataType.ACCOUNTS})
"""Data types whose rows merge into one record per key (key by key, the last row applied
wins): for them the order in which rows are applied is the result."""


@dataclass(slots=True)
class _Keyed:
    """Source rows with their parsed ``UPDATED_AT`` (epoch µs, None when unusable) and hashes."""

    batch: pa.RecordBatch
    updated: list[int | None]
    hashes: list[str]
    sub: list[int] | None = None
    """Nanoseconds past ``updated`` (a ``timestamp[ns]`` column), else None: the order of
    rows one microsecond apart in the watermark but not in the source."""

    @property
    def n(self) -> int:
        return int(self.batch.num_rows)

    def rows(self, start: int, stop: int) -> _Keyed:
        return _Keyed(
            self.batch.slice(start, stop - start),
            self.updated[start:stop],
            self.hashes[start:stop],
            None if self.sub is None else self.sub[start:stop],
        )


def _keyed(batch: pa.RecordBatch) -> _Keyed:
    column = batch.column(UPDATED_AT)
    updated = updated_micros(column)
    return _Keyed(batch, updated, row_hashes(batch, updated), _sub_micros(column))


def _sub_micros(column: pa.Array) -> list[int] | None:
    """Per row, the nanoseconds past the microsecond of a ``timestamp[ns]`` value (0 where
    null); None for other types (no finer order than the microsecond)."""
    typ = column.type
    if not pa.types.is_timestamp(typ) or typ.unit != "ns":
        return None
    raw = pc.fill_null(column.view(pa.int64()), 0).to_numpy(zero_copy_only=False)
    rest = (np.asarray(raw, dtype=np.int64) % 1_000).tolist()
    return None if not any(rest) else rest


def _in_apply_order(keyed: _Keyed, data_type: DataType) -> _Keyed:
    """The rows in **apply order**: read order, except that rows of one key (identifier /
    ``ID``) sharing an ``UPDATED_AT`` are put in content-hash order among their own places.

    The warehouse orders by ``UPDATED_AT`` only, so rows sharing one (the same identifier
    changed twice in one instant, say) come in whatever order the scan gives, which differs
    between warehouses, runs and table rewrites. For the merging types the order of two rows
    of one key is the result; ordering them by content hash makes it deterministic: the row
    with the greater hash is applied last and wins key by key, in a single run as in runs
    split at the boundary (see :class:`_Order`). Rows of other keys keep the read order (and
    so their positions in the row log); other data types are left as read. A nanosecond
    ``UPDATED_AT`` orders rows sharing its microsecond (the watermark's precision) by their
    nanoseconds first: the later one in the source wins, as in the source.
    """
    n = keyed.n
    if n < 2 or data_type not in MERGE_TYPES:
        return keyed
    times = np.fromiter((-1 if u is None else u for u in keyed.updated), dtype=np.int64, count=n)
    if bool(np.all(times[1:] > times[:-1])):
        return keyed  # strictly increasing (the usual read): no ties
    valid = np.fromiter((u is not None for u in keyed.updated), dtype=bool, count=n)
    _values, inverse, counts = np.unique(times, return_inverse=True, return_counts=True)
    tied = np.flatnonzero((counts[inverse] > 1) & valid)
    if len(tied) == 0:
        return keyed
    rows = tied.tolist()
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, key in zip(rows, _row_keys(keyed.batch, data_type, rows), strict=True):
        groups.setdefault((int(times[i]), key), []).append(i)
    order = list(range(n))
    moved = False
    sub = keyed.sub
    for places in groups.values():
        if len(places) > 1:
            # Nanoseconds first (a finer source time than the watermark's), then the hash.
            by_hash = sorted(places, key=lambda i: (0 if sub is None else sub[i], keyed.hashes[i]))
            if by_hash != places:
                moved = True
                for place, row in zip(places, by_hash, strict=True):
                    order[place] = row
    if not moved:
        return keyed
    return _Keyed(
        keyed.batch.take(pa.array(order, pa.int64())),
        [keyed.updated[i] for i in order],
        [keyed.hashes[i] for i in order],
        None if sub is None else [sub[i] for i in order],
    )


def _split_last_instant(keyed: _Keyed) -> tuple[_Keyed, _Keyed]:
    """The batch without its trailing rows at its last ``UPDATED_AT`` (rows without a usable
    time among them included), and those rows: they are held until the next batch shows
    whether the instant continues there, so a tie split by the reader is ordered as one."""
    last = next((u for u in reversed(keyed.updated) if u is not None), None)
    if last is None:
        return keyed.rows(0, 0), keyed
    first = keyed.n
    while first > 0 and keyed.updated[first - 1] in (None, last):
        first -= 1
    return keyed.rows(0, first), keyed.rows(first, keyed.n)


def _ordered_pieces(
    held: _Keyed | None, batch: pa.RecordBatch, data_type: DataType
) -> tuple[list[_Keyed], _Keyed | None]:
    """Next read batch → pieces to validate now (in apply order) and the rows to hold
    (merging types only: the others are applied as read)."""
    keyed = _keyed(batch)
    if data_type not in MERGE_TYPES:
        return ([keyed] if keyed.n else []), None
    pieces: list[_Keyed] = []
    if held is not None and held.n:
        first = keyed.updated[0] if keyed.n else None
        instant = next((u for u in reversed(held.updated) if u is not None), None)
        if first is not None and first == instant and held.batch.schema == keyed.batch.schema:
            sub = (
                None
                if held.sub is None and keyed.sub is None
                else (held.sub or [0] * held.n) + (keyed.sub or [0] * keyed.n)
            )
            keyed = _Keyed(
                pa.Table.from_batches([held.batch, keyed.batch]).combine_chunks().to_batches()[0],
                held.updated + keyed.updated,
                held.hashes + keyed.hashes,
                sub,
            )
        else:
            pieces.append(held)
    head, tail = _split_last_instant(_in_apply_order(keyed, data_type))
    if head.n:
        pieces.append(head)
    return pieces, tail


@dataclass(slots=True)
class _Order:
    """Keeps merge results equal to one clean run when rows arrive late (run-level state).

    Rows are applied in apply order (:func:`_in_apply_order`). A run re-reads the rows from
    its watermark (minus the lookback) on, and rows delivered before are skipped. A *new* row
    found there (committed late with an older or equal ``UPDATED_AT``, or a tie with a
    smaller hash than rows already delivered) would otherwise be applied after rows that
    follow it in apply order. So once such a row of a key (identifier / ``ID``) is applied,
    the already-delivered rows of that key re-read after it are applied again, in order:
    the merge ends where a single run over the same rows ends (last writer per key).
    """

    carried_us: int | None
    """The watermark value the run started from: no delivered row is after it."""
    dirty: set[tuple[str | None, ...]] = field(default_factory=set)
    """Keys that received a new row at or before ``carried_us`` in this run."""


def _row_keys(batch: pa.RecordBatch, data_type: DataType, rows: list[int]) -> list[tuple[Any, ...]]:
    """The merge key of each of ``rows``: identifier texts (user types) or ``ID``."""
    names = ("ID",) if not data_type.is_user_type else IDENTIFIER_COLUMNS
    taken = pa.array(rows, pa.int64())
    columns: list[list[Any]] = []
    for name in names:
        if name not in batch.schema.names:
            continue
        values = [
            None if v is None else (str(v).strip() or None)
            for v in batch.column(name).take(taken).to_pylist()
        ]
        if name == "EMAIL":
            values = [v.lower() if v else v for v in values]
        elif name == "PHONE":
            values = [normalize_phone(v) if v else v for v in values]
        columns.append(values)
    return list(zip(*columns, strict=True)) if columns else [() for _ in rows]


def _reapply_later_rows(
    order: _Order,
    data_type: DataType,
    keyed: _Keyed,
    keep: list[bool],
    tracker: WatermarkTracker,
    floor_us: int | None = None,
) -> set[int]:
    """Mark delivered rows to apply again (see :class:`_Order`); their indexes. Rows before
    ``floor_us`` (a text ``UPDATED_AT`` read whole) are outside the run: left alone."""
    top = order.carried_us
    if top is None:
        return set()
    low = floor_us if floor_us is not None else -(2**63)
    idx = [i for i, u in enumerate(keyed.updated) if u is not None and low <= u <= top]
    if not idx:
        return set()
    again: set[int] = set()
    for i, key in zip(idx, _row_keys(keyed.batch, data_type, idx), strict=True):
        if keep[i]:
            order.dirty.add(key)
        elif key in order.dirty:
            keep[i] = True
            again.add(i)
            tracker.reapply(keyed.hashes[i])
    return again


def _verdicts(
    data_type: DataType,
    keyed: _Keyed,
    start_position: int,
    tracker: WatermarkTracker,
    options: SyncOptions,
    floor_us: int | None = None,
    order: _Order | None = None,
) -> tuple[_Chunk, int]:
    """Drop rows already delivered (same hash at the same UPDATED_AT), validate the rest.

    ``floor_us``: also drop rows parsed before it (text ``UPDATED_AT``, read whole).
    ``order``: merge types, delivered rows to apply again after a late one (:class:`_Order`);
    one of them that is refused again is not reported twice (it is skipped).
    """
    batch, updated, hashes = keyed.batch, keyed.updated, keyed.hashes
    keep = tracker.unseen(hashes, updated)
    if floor_us is not None:
        keep = [k and (u is None or u >= floor_us) for k, u in zip(keep, updated, strict=True)]
    again: set[int] = set()
    if order is not None and data_type in MERGE_TYPES:
        again = _reapply_later_rows(order, data_type, keyed, keep, tracker, floor_us)
    while True:
        skipped = keep.count(False)
        rows, row_hashes_, row_updated = batch, hashes, updated
        again_pos: set[int] = set()
        if skipped:
            kept = [i for i, k in enumerate(keep) if k]
            rows = batch.filter(pa.array(keep, pa.bool_()))
            row_hashes_ = [hashes[i] for i in kept]
            row_updated = [updated[i] for i in kept]
            again_pos = {start_position + j for j, i in enumerate(kept) if i in again}
        else:
            again_pos = {start_position + i for i in again}
        chunk = _validate(data_type, rows, start_position, row_hashes_, row_updated, options)
        refused_again = [e.position for e in chunk.errors if e.position in again_pos]
        if not refused_again:
            if again_pos:
                valid = chunk.valid
                listed = valid.materialise() if isinstance(valid, AttributeRows) else valid
                for row in listed:
                    row.again = row.position in again_pos
                chunk.valid = listed
            return chunk, skipped
        # A delivered row refused again: it was reported when first read; skip it.
        by_position = {
            start_position + j: i for j, i in enumerate(i for i, k in enumerate(keep) if k)
        }
        for pos in refused_again:
            i = by_position[pos]
            keep[i] = False
            again.discard(i)
            tracker.unreapply(hashes[i])


def _validate(
    data_type: DataType,
    batch: pa.RecordBatch,
    start_position: int,
    hashes: list[str],
    updated: list[int | None],
    options: SyncOptions,
) -> _Chunk:
    if data_type is DataType.USER_ATTRIBUTES:
        fast = attribute_columns(
            batch, start_position=start_position, hashes=hashes, updated_us=updated
        )
        if fast is not None:
            columns, refused = fast
            return _Chunk(batch.num_rows, start_position, refused, columns)
    verdicts = validate_batch(
        data_type,
        batch,
        start_position=start_position,
        hashes=hashes,
        updated_us=updated,
        options=options,
    )
    return _chunk_of(verdicts, start_position)


def _row_payload(row: ValidRow) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if row.identifier is not None:
        out.update(row.identifier.as_dict())
    if row.phone:
        out["phone"] = row.phone
    if row.item_id is not None:
        out["id"] = row.item_id
    if row.name is not None:
        out["name"] = row.name
    if row.deleted:
        out["deleted"] = True
    out["payload"] = row.payload
    return out


def _log(
    run: SyncRun,
    position: int,
    verdict: str,
    code: str | None,
    message: str | None,
    payload: dict[str, Any],
    row: ValidRow | RowError,
) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "sync_id": run.sync_id,
        "position": position,
        "verdict": verdict,
        "code": code,
        "message": message,
        "payload": _without_nul(payload),
        "row_updated_at": row.updated_at,
        "created_at": utcnow(),
    }


def _without_nul(value: Any) -> Any:
    """A logged row with NUL characters shown as U+FFFD (PostgreSQL's jsonb refuses NUL)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value
