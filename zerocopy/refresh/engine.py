"""The refresh engine: one run = check → materialize → read ids → drop → diff → atomic swap.

See :mod:`zerocopy.refresh` for the public interface. Everything a run does is recorded on its
``refresh_run`` row, and everything that coordinates runs goes through the database, so the
same engine works when the API and the workers are different processes:

* one active run per segment: a partial unique index on ``refresh_run(segment_id)`` where the
  status is queued/running; the loser of the insert gets ``refresh_in_progress``;
* claiming: ``UPDATE … SET status='running' WHERE id=? AND status='queued'`` (exactly one
  executor wins, so submitting a run twice is harmless);
* cancel: ``cancel_requested_at`` is set in the database; the executing task polls it every
  :attr:`RefreshEngine.cancel_poll_s` (and wakes at once when the cancel comes from its own
  process), then cancels its anyio scope, which cancels the warehouse query server-side;
* liveness: ``heartbeat_at`` is refreshed while running; :meth:`RefreshEngine.reap_lost` ends
  runs whose heartbeat stopped as ``worker_lost``;
* success: the new membership, the segment's pointer and the run's ``succeeded`` status
  commit in one transaction, conditional on the run still being ``running``.
"""

from __future__ import annotations

import os
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import anyio
import anyio.to_thread
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlglot import exp
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

from dialects.base import temp_table_name
from dialects.protocol import QueryTag
from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.logging import bound_context, get_logger, redact_text
from zerocopy.refresh.stream import StreamResult, stream_refresh
from zerocopy.secrets import SecretBox
from zerocopy.settings import Settings
from zerocopy.state.db import Database
from zerocopy.state.membership import ChunkMeta, MembershipStore, diff_counts, normalise_ids
from zerocopy.state.models import (
    CatalogTable,
    Credential,
    RefreshRun,
    RunStatus,
    Segment,
    Source,
    new_id,
    utcnow,
)

log = get_logger("zerocopy.refresh")

AdapterFactory = Callable[..., Any]
"""``factory(source, credential, *, max_runtime_s=...) -> adapter`` (see :mod:`zerocopy.connections`)."""

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"

# The hot path's statements, built once: Core on the session's connection, no ORM unit of
# work, and a statement object whose cache key is memoised (measured: building and
# ORM-executing them was about a third of a small refresh's CPU in the engine's process).
_RUN = cast(sa.Table, RefreshRun.__table__)
_CLAIM = (
    sa.update(_RUN)
    .where(
        _RUN.c.id == sa.bindparam("p_run_id"),
        _RUN.c.status == RunStatus.QUEUED,
        _RUN.c.cancel_requested_at.is_(None),
    )
    .values(
        status=RunStatus.RUNNING,
        started_at=sa.bindparam("p_now"),
        heartbeat_at=sa.bindparam("p_now"),
        worker=sa.bindparam("p_worker"),
    )
    .returning(*_RUN.c)
)
_SUCCEED = (
    sa.update(_RUN)
    .where(_RUN.c.id == sa.bindparam("p_run_id"), _RUN.c.status == RunStatus.RUNNING)
    .values(
        status=RunStatus.SUCCEEDED,
        member_count=sa.bindparam("p_member_count"),
        added=sa.bindparam("p_added"),
        removed=sa.bindparam("p_removed"),
        timings=sa.bindparam("p_timings", type_=_RUN.c.timings.type),
        finished_at=sa.bindparam("p_finished_at"),
        temp_table_dropped=sa.bindparam("p_temp_table_dropped"),
        query_id=sa.bindparam("p_query_id"),
    )
    .returning(*_RUN.c)
)
_LOAD = (
    sa.select(Segment, Source, Credential)
    .select_from(Segment)
    .join(Source, Source.id == sa.bindparam("p_source_id"))
    .outerjoin(Credential, Credential.id == Source.credential_id)
    .where(Segment.id == sa.bindparam("p_segment_id"))
)
_CATALOG = (
    sa.select(CatalogTable.schema, CatalogTable.name, CatalogTable.columns)
    .where(CatalogTable.source_id == sa.bindparam("p_source_id"))
    .order_by(CatalogTable.schema, CatalogTable.name)
)


def _load_with_catalog(dialect: str) -> Any:
    """:data:`_LOAD` with the source's catalog as one JSON array column, where the state
    database can aggregate JSON (one statement less in every claim); ``None`` elsewhere."""
    cat = CatalogTable.__table__.c
    if dialect == "postgresql":
        agg: Any = sa.func.coalesce(
            sa.func.jsonb_agg(sa.func.jsonb_build_array(cat.schema, cat.name, cat.columns)),
            sa.literal_column("'[]'::jsonb"),
        )
    elif dialect == "sqlite":
        agg = sa.func.json_group_array(
            sa.func.json_array(cat.schema, cat.name, sa.func.json(cat.columns))
        )
    else:
        return None
    catalog = (
        sa.select(sa.type_coerce(agg, sa.JSON))
        .where(cat.source_id == sa.bindparam("p_source_id"))
        .scalar_subquery()
    )
    return _LOAD.add_columns(catalog)


_LOAD_WITH_CATALOG = {name: _load_with_catalog(name) for name in ("postgresql", "sqlite")}


def _claim_and_load() -> Any:
    """:data:`_CLAIM` and :data:`_LOAD_WITH_CATALOG` in one statement (PostgreSQL: an
    ``UPDATE … RETURNING`` in a ``WITH``): no row when the run is not claimable; the
    segment and source are ``None`` when deleted (outer joins)."""
    claimed = _CLAIM.cte("zc_claimed")
    cat = CatalogTable.__table__.c
    catalog = (
        sa.select(
            sa.type_coerce(
                sa.func.coalesce(
                    sa.func.jsonb_agg(sa.func.jsonb_build_array(cat.schema, cat.name, cat.columns)),
                    sa.literal_column("'[]'::jsonb"),
                ),
                sa.JSON,
            )
        )
        .where(cat.source_id == claimed.c.source_id)
        .scalar_subquery()
    )
    return (
        sa.select(*[claimed.c[key] for key in _RUN_KEYS], Segment, Source, Credential, catalog)
        .select_from(claimed)
        .outerjoin(Segment, Segment.id == claimed.c.segment_id)
        .outerjoin(Source, Source.id == claimed.c.source_id)
        .outerjoin(Credential, Credential.id == Source.credential_id)
    )


@dataclass(frozen=True, slots=True)
class _CatalogRow:
    schema: str
    name: str
    columns: Any


_RUN_KEYS = tuple(c.key for c in _RUN.c)
_REQUEST = (
    sa.insert(_RUN)
    .from_select(
        [
            "id",
            "segment_id",
            "workspace_id",
            "source_id",
            "trigger",
            "status",
            "max_runtime_s",
            "temp_table",
        ],
        sa.select(
            sa.bindparam("p_id", type_=sa.String),
            Segment.id,
            Segment.workspace_id,
            Source.id,
            sa.bindparam("p_trigger", type_=sa.String),
            sa.literal(RunStatus.QUEUED, sa.String),
            sa.func.coalesce(
                sa.bindparam("p_max_runtime_s", type_=sa.Float),
                sa.cast(Source.max_runtime_s, sa.Float),
            ),
            sa.bindparam("p_temp_table", type_=sa.String),
        )
        .join(Source, Source.id == Segment.source_id)
        .where(Segment.id == sa.bindparam("p_segment_id")),
    )
    .returning(*_RUN.c)
)


_CLAIM_AND_LOAD = {"postgresql": _claim_and_load()}


def _run_from_row(row: Any) -> RefreshRun:
    """A :class:`RefreshRun` (not attached to any session) from a ``RETURNING`` row."""
    return RefreshRun(**dict(zip(_RUN_KEYS, row, strict=True)))


@dataclass(slots=True)
class _Outcome:
    status: str
    error: ZerocopyError | None = None
    ids: pa.Array | None = None
    streamed: StreamResult | None = None
    """Set when the ids were streamed into the run's version (already written, not current)."""
    wrote_version: bool = False
    query_id: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    temp_table_dropped: bool | None = None
    loaded: _Loaded | None = None
    """What the claim's transaction read for the run (``None``: read it in :meth:`_prepare`)."""


@dataclass(slots=True)
class _Loaded:
    """The run's segment, source, credential, catalog and previous chunks, read at claim."""

    row: Any
    tables: list[Any]
    previous: list[ChunkMeta]
    preloaded: dict[int, bytes]


@dataclass(slots=True)
class ClaimedRun:
    """A run claimed (``queued → running``) in some caller's transaction by
    :meth:`RefreshEngine.claim_in`, with what it needs read in the same transaction; handed
    to :meth:`RefreshEngine.execute` once that transaction has committed."""

    run: RefreshRun
    loaded: _Loaded | None


class RunHooks:
    """Statements a caller adds to a run's claim and final transactions (no extra transaction).

    The source-slot layer uses it to take a slot in the claim's transaction and give it back
    in the final one (where a queue worker also claims its lane's next run, with
    :meth:`RefreshEngine.claim_in`). :attr:`final_committed` tells the caller whether the
    final transaction (and so :meth:`on_final`) committed: when it did not (the run was not
    claimed, or it was reaped meanwhile), the caller undoes :meth:`on_claim`'s work itself.
    """

    final_committed: bool = False

    async def on_claim(self, session: Any, run_id: str) -> None:
        """Before the ``queued → running`` compare-and-set; an error here claims nothing."""

    async def on_final(self, session: Any, run_id: str) -> None:
        """In the transaction that records the run's final status."""


class _NotClaimed(Exception):
    pass


class _HookFailed(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class RefreshEngine:
    """Runs segment refreshes against warehouses and records them in the state database.

    Args:
        db: the state database.
        adapter_factory: ``factory(source, credential, *, max_runtime_s=None) -> adapter``;
            a :class:`~zerocopy.secrets.SecretBox` is accepted too and wrapped in
            :class:`zerocopy.connections.AdapterFactory`; ``None`` builds one from ``settings``.
        settings: process settings (used for the default adapter factory).
        members: the membership store (one per process; its cache is shared by readers).
        cancel_poll_s: how often a running refresh looks for a cancel from another process.
        heartbeat_s: how often a running refresh refreshes ``heartbeat_at``.
        stale_after_s: a ``running`` run without heartbeat for this long is ``worker_lost``.
        batch_rows: ids per Arrow batch read back from the warehouse.
        stream: read ids in byte order where the adapter promises it (``ID_ORDER``) and
            stream them into the new version (memory flat in the segment's size); ``False``
            always collects, sorts and diffs in memory.
        worker: the name recorded on runs this engine executes.
    """

    def __init__(
        self,
        db: Database,
        adapter_factory: AdapterFactory | SecretBox | None = None,
        settings: Settings | None = None,
        *,
        members: MembershipStore | None = None,
        cancel_poll_s: float = 0.3,
        heartbeat_s: float = 2.0,
        stale_after_s: float = 60.0,
        batch_rows: int = 50_000,
        worker: str = WORKER_ID,
        stream: bool = True,
    ) -> None:
        from zerocopy.connections import AdapterCache
        from zerocopy.connections import AdapterFactory as DefaultFactory

        if adapter_factory is None:
            if settings is None:
                raise ValueError("RefreshEngine needs an adapter_factory or settings")
            adapter_factory = SecretBox(settings.secret_keys)
        if isinstance(adapter_factory, SecretBox):
            adapter_factory = DefaultFactory(adapter_factory)
        self.db = db
        self.adapter_factory: AdapterFactory = adapter_factory
        self.settings = settings
        self.members = members or MembershipStore(db)
        self.cancel_poll_s = cancel_poll_s
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.batch_rows = batch_rows
        self.stream = stream
        self.worker = worker
        self._local_cancels: dict[str, anyio.Event] = {}
        self.adapters = AdapterCache()
        """Warehouse adapters (and their sessions) kept between runs, for reusable kinds."""
        self._checked: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        """``ids_sql`` of segment SQL that passed the check, by everything the check reads."""

    async def aclose(self) -> None:
        """Close the warehouse adapters kept between runs (process shutdown)."""
        await self.adapters.aclose()

    # ------------------------------------------------------------------ public interface
    async def request(
        self, segment_id: str, trigger: str = "api", *, max_runtime_s: float | None = None
    ) -> RefreshRun:
        """Queue a run for ``segment_id``; ``refresh_in_progress`` (with ``run_id``) if one is active.

        ``max_runtime_s`` overrides the source's max runtime for this run (tests, benches);
        the product's 60-3600 s bound is the service layer's to enforce.
        """
        for _attempt in range(3):
            run_id = new_id()
            params = {
                "p_id": run_id,
                "p_segment_id": segment_id,
                "p_trigger": trigger,
                "p_temp_table": temp_table_name(run_id),
                "p_max_runtime_s": None if max_runtime_s is None else float(max_runtime_s),
            }
            async with self.db.session() as s:
                # One INSERT … SELECT … RETURNING: the segment's workspace and source, and the
                # source's max runtime unless overridden, are read by the insert itself.
                conn = await s.connection()
                try:
                    row = (await conn.execute(_REQUEST, params)).first()
                    await s.commit()
                except IntegrityError:
                    await s.rollback()
                else:
                    if row is None:
                        raise ZerocopyError(
                            errors.NOT_FOUND,
                            f"segment {segment_id} does not exist",
                            details={"segment_id": segment_id},
                        )
                    run = _run_from_row(row)
                    log.info(
                        "refresh.requested",
                        run_id=run.id,
                        segment_id=segment_id,
                        source_id=run.source_id,
                        workspace_id=run.workspace_id,
                        trigger=trigger,
                    )
                    return run
            active = await self.active_run(segment_id)
            if active is None:
                continue  # it finished between our insert and our look: try again
            if await self._reap_if_lost(active):
                continue
            raise ZerocopyError(
                errors.REFRESH_IN_PROGRESS,
                f"segment {segment_id} is already refreshing (run {active.id}, {active.status}); "
                "wait for it or cancel it",
                details={"run_id": active.id, "status": active.status, "segment_id": segment_id},
            )
        raise ZerocopyError(
            errors.CONFLICT, f"could not queue a refresh of segment {segment_id}; retry"
        )

    async def execute(
        self, run_id: str, *, hooks: RunHooks | None = None, claimed: ClaimedRun | None = None
    ) -> RefreshRun:
        """Run a queued run to a final status and return it; run failures are recorded, not raised.

        A run that is not ``queued`` (already claimed elsewhere, finished, cancelled while
        queued) is returned as it is. ``hooks``: see :class:`RunHooks` (an error raised by
        ``hooks.on_claim`` propagates, and the run stays queued). ``claimed``: the run was
        already claimed by :meth:`claim_in` in a transaction that committed (``hooks.on_claim``
        is not called).
        """
        if claimed is not None and claimed.run.id == run_id:
            run, loaded = claimed.run, claimed.loaded
        else:
            got = await self._claim(run_id, hooks)
            if got is None:
                return await self.get(run_id)
            run, loaded = got
        with bound_context(
            run_id=run.id,
            segment_id=run.segment_id,
            source_id=run.source_id,
            workspace_id=run.workspace_id,
        ):
            log.info("refresh.started", worker=self.worker, max_runtime_s=run.max_runtime_s)
            event = self._local_cancels.setdefault(run.id, anyio.Event())
            try:
                return await self._execute_claimed(run, event, loaded, hooks)
            finally:
                self._local_cancels.pop(run.id, None)

    async def request_cancel(self, run_id: str) -> RefreshRun:
        """Ask a run to stop: a queued run is cancelled at once, a running one within ~2 s.

        Works from any process sharing the database; a final run is returned unchanged.
        """
        now = utcnow()
        async with self.db.transaction() as s:
            await s.execute(
                sa.update(RefreshRun)
                .where(RefreshRun.id == run_id, RefreshRun.status == RunStatus.QUEUED)
                .values(
                    status=RunStatus.CANCELLED,
                    cancel_requested_at=now,
                    finished_at=now,
                    error_code=errors.CANCELLED,
                    error_message="cancelled on request before it started",
                    temp_table_dropped=True,  # never created
                )
            )
            await s.execute(
                sa.update(RefreshRun)
                .where(
                    RefreshRun.id == run_id,
                    RefreshRun.status == RunStatus.RUNNING,
                    RefreshRun.cancel_requested_at.is_(None),
                )
                .values(cancel_requested_at=now)
            )
        event = self._local_cancels.get(run_id)
        if event is not None:
            event.set()
        run = await self.get(run_id)
        log.info("refresh.cancel_requested", run_id=run_id, status=run.status)
        return run

    async def refresh(
        self, segment_id: str, trigger: str = "api", *, max_runtime_s: float | None = None
    ) -> RefreshRun:
        """:meth:`request` then :meth:`execute` in this task."""
        run = await self.request(segment_id, trigger, max_runtime_s=max_runtime_s)
        return await self.execute(run.id)

    async def get(self, run_id: str) -> RefreshRun:
        async with self.db.session() as s:
            run = await s.get(RefreshRun, run_id)
        if run is None:
            raise ZerocopyError(
                errors.NOT_FOUND, f"refresh run {run_id} does not exist", details={"run_id": run_id}
            )
        return run

    async def active_run(self, segment_id: str) -> RefreshRun | None:
        """The queued or running run of ``segment_id``, if any."""
        async with self.db.session() as s:
            return await s.scalar(
                sa.select(RefreshRun).where(
                    RefreshRun.segment_id == segment_id,
                    RefreshRun.status.in_(RunStatus.ACTIVE),
                )
            )

    async def queued_run_ids(self) -> list[str]:
        """Ids of queued runs, oldest first (a runner re-submits them when it starts)."""
        async with self.db.session() as s:
            rows = await s.scalars(
                sa.select(RefreshRun.id)
                .where(RefreshRun.status == RunStatus.QUEUED)
                .order_by(RefreshRun.created_at)
            )
            return list(rows.all())

    async def reap_lost(self, stale_after_s: float | None = None) -> list[str]:
        """Mark ``running`` runs whose heartbeat is older than ``stale_after_s`` as ``worker_lost``."""
        limit = utcnow() - timedelta(
            seconds=self.stale_after_s if stale_after_s is None else stale_after_s
        )
        async with self.db.transaction() as s:
            lost = (
                await s.execute(
                    sa.select(RefreshRun.id, RefreshRun.segment_id).where(
                        RefreshRun.status == RunStatus.RUNNING,
                        RefreshRun.heartbeat_at < limit,
                    )
                )
            ).all()
            ids = [r[0] for r in lost]
            if ids:
                await s.execute(
                    sa.update(RefreshRun)
                    .where(RefreshRun.id.in_(ids), RefreshRun.status == RunStatus.RUNNING)
                    .values(
                        status=RunStatus.FAILED,
                        error_code=errors.WORKER_LOST,
                        error_message="the process running this refresh stopped responding; "
                        "its temporary table is left for the janitor",
                        finished_at=utcnow(),
                        temp_table_dropped=False,
                    )
                )
        for run_id, segment_id in lost:
            log.warning("refresh.worker_lost", run_id=run_id)
            try:  # chunks a streamed run wrote before its worker died (never current)
                await self.members.discard(segment_id, run_id)
            except Exception as exc:
                log.warning("refresh.discard_failed", run_id=run_id, error=redact_text(str(exc)))
        return ids

    # ------------------------------------------------------------------ execution
    async def _claim(
        self, run_id: str, hooks: RunHooks | None = None
    ) -> tuple[RefreshRun, _Loaded | None] | None:
        """``queued → running`` compare-and-set: the claimed run, or ``None``.

        The same transaction reads what the run needs (segment, source, credential, catalog,
        previous chunks): one transaction instead of three. Should that reading fail, the
        run is claimed alone and :meth:`_prepare` reads (and records the failure) as usual.
        """
        try:
            async with self.db.transaction() as s:
                await self._on_claim(hooks, s, run_id)
                got = await self._claim_and_load(s, run_id)
                if got is None:
                    raise _NotClaimed  # roll back what the hook did
            return got
        except _NotClaimed:
            return None
        except _HookFailed as exc:
            raise exc.error from None
        except Exception:
            log.warning("refresh.claim_with_load_failed", run_id=run_id, exc_info=True)
        try:
            async with self.db.transaction() as s:
                await self._on_claim(hooks, s, run_id)
                run = await self._claim_in(s, run_id)
                if run is None:
                    raise _NotClaimed
        except _NotClaimed:
            return None
        except _HookFailed as exc:
            raise exc.error from None
        return run, None

    def is_executing(self, run_id: str) -> bool:
        """Whether ``run_id`` is being executed in this process now."""
        return run_id in self._local_cancels

    async def claim_in(self, session: Any, run_id: str) -> ClaimedRun | None:
        """Claim ``run_id`` in the caller's transaction (``session``) and read what it needs.

        ``None`` when the run is not claimable (no longer queued, or cancelled). Once that
        transaction commits, :meth:`execute` with ``claimed=`` runs it; should the caller's
        transaction roll back, the run stays queued.
        """
        got = await self._claim_and_load(session, run_id)
        return None if got is None else ClaimedRun(*got)

    async def _claim_and_load(self, s: Any, run_id: str) -> tuple[RefreshRun, _Loaded] | None:
        """:meth:`_claim_in` then :meth:`_load` in ``s``'s transaction (one statement for
        both where the state database allows)."""
        both = _CLAIM_AND_LOAD.get(self.db.dialect)
        if both is None:
            run = await self._claim_in(s, run_id)
            return None if run is None else (run, await self._load(s, run))
        row = (
            await s.execute(both, {"p_run_id": run_id, "p_now": utcnow(), "p_worker": self.worker})
        ).first()
        if row is None:
            return None
        n = len(_RUN_KEYS)
        run = _run_from_row(row[:n])
        segment, source, credential, catalog = row[n:]
        if segment is None or source is None:
            return run, _Loaded(None, [], [], {})
        tables: list[Any] = [_CatalogRow(*t) for t in catalog or []]
        previous, preloaded = await self.members.current_chunks_with_head(s, run.segment_id)
        return run, _Loaded((segment, source, credential), tables, previous, preloaded)

    @staticmethod
    async def _on_claim(hooks: RunHooks | None, s: Any, run_id: str) -> None:
        if hooks is None:
            return
        try:
            await hooks.on_claim(s, run_id)
        except Exception as exc:
            raise _HookFailed(exc) from exc

    async def _load(self, s: Any, run: RefreshRun) -> _Loaded:
        # One statement for the segment, its source and credential, one for the catalog,
        # one for the previous membership's chunk list (and its first chunk).
        params = {"p_source_id": run.source_id, "p_segment_id": run.segment_id}
        with_catalog = _LOAD_WITH_CATALOG.get(self.db.dialect)
        row = (await s.execute(with_catalog if with_catalog is not None else _LOAD, params)).first()
        if row is None:
            return _Loaded(None, [], [], {})
        if with_catalog is not None:
            tables: list[Any] = [_CatalogRow(*t) for t in row[3] or []]
            row = row[:3]
        else:
            conn = await s.connection()
            tables = list((await conn.execute(_CATALOG, {"p_source_id": run.source_id})).all())
        previous, preloaded = await self.members.current_chunks_with_head(s, run.segment_id)
        return _Loaded(row, tables, previous, preloaded)

    async def _claim_in(self, s: Any, run_id: str) -> RefreshRun | None:
        """The ``queued → running`` compare-and-set in ``s``'s transaction: the run, or ``None``."""
        conn = await s.connection()
        row = (
            await conn.execute(
                _CLAIM, {"p_run_id": run_id, "p_now": utcnow(), "p_worker": self.worker}
            )
        ).first()
        return None if row is None else _run_from_row(row)

    async def _execute_claimed(
        self,
        run: RefreshRun,
        event: anyio.Event,
        loaded: _Loaded | None = None,
        hooks: RunHooks | None = None,
    ) -> RefreshRun:
        started = time.perf_counter()
        outcome = _Outcome(status=RunStatus.FAILED, loaded=loaded)
        adapter: Any = None
        try:
            try:
                adapter, ids_sql, column = await self._prepare(run, outcome)
                if adapter is not None:
                    await self._warehouse_phase(run, adapter, ids_sql, column, event, outcome)
            except ZerocopyError as exc:
                outcome.status = _status_for(exc)
                outcome.error = exc
            except Exception as exc:
                found = _zerocopy_error_in(exc)
                outcome.status = RunStatus.FAILED if found is None else _status_for(found)
                outcome.error = found
                if found is None:
                    log.exception("refresh.internal_error")
                    outcome.error = ZerocopyError(
                        errors.INTERNAL_ERROR,
                        f"unexpected error during the refresh: {type(exc).__name__}: "
                        f"{redact_text(str(exc))}",
                    )
        except anyio.get_cancelled_exc_class():
            # The process is stopping (runner shutdown): clean up, record, then let it stop.
            with anyio.CancelScope(shield=True):
                outcome.status = RunStatus.CANCELLED
                outcome.error = ZerocopyError(
                    errors.CANCELLED, "stopped because the zerocopy process shut down"
                )
                await self._cleanup(run, adapter, outcome)
                await self._finish(run, outcome, started, hooks)
            raise
        with anyio.CancelScope(shield=True):
            await self._cleanup(run, adapter, outcome)
            final = await self._finish(run, outcome, started, hooks)
        return final

    async def _prepare(self, run: RefreshRun, outcome: _Outcome) -> tuple[Any, str, str]:
        """Load the run's segment, source and catalog; check the SQL; build the adapter."""
        t = time.perf_counter()
        if outcome.loaded is None:
            async with self.db.session() as s:
                outcome.loaded = await self._load(s, run)
        if outcome.loaded.row is None:
            raise ZerocopyError(errors.NOT_FOUND, "the segment or its source was deleted")
        segment, source, credential = outcome.loaded.row
        tables = outcome.loaded.tables
        if credential is None:
            raise ZerocopyError(errors.NOT_FOUND, "the source's credential was deleted")
        ids_sql = self._check(segment, source, catalog_mapping(tables))
        outcome.timings["check"] = time.perf_counter() - t
        adapter = self.adapters.acquire(
            self.adapter_factory, source, credential, max_runtime_s=run.max_runtime_s
        )
        column = warehouse_column_name(segment.id_column, adapter.SQLGLOT_DIALECT)
        return adapter, ids_sql, column

    CHECK_CACHE_SIZE = 2048

    def _check(self, segment: Segment, source: Source, catalog: dict[str, Any]) -> str:
        """The segment's ``ids_sql``, checked; cached by SQL, dialect, scope, target and catalog.

        The check is a pure function of these inputs, so a repeat refresh of an unchanged
        segment against an unchanged catalog reuses the checked query.
        """
        import orjson

        from zerocopy.sql import check_segment_sql

        key = (
            segment.sql,
            segment.dialect,
            segment.id_column,
            source.scope,
            source.kind,
            orjson.dumps(catalog, option=orjson.OPT_SORT_KEYS),
        )
        cached = self._checked.get(key)
        if cached is not None:
            self._checked.move_to_end(key)
            return cached
        result = check_segment_sql(
            segment.sql,
            dialect=segment.dialect,
            catalog=catalog,
            scope=source.scope,
            id_column=segment.id_column,
            target=source.kind,
        )
        if not result.valid or not result.ids_sql:
            first = result.errors[0] if result.errors else None
            raise ZerocopyError(
                first.code if first else errors.VALIDATION_ERROR,
                (first.message if first else "the segment SQL produced no query")
                + " (nothing was sent to the warehouse)",
                line=first.line if first else None,
                column=first.column if first else None,
                details={"errors": [e.to_dict() for e in result.errors]},
            )
        self._checked[key] = result.ids_sql
        if len(self._checked) > self.CHECK_CACHE_SIZE:
            self._checked.popitem(last=False)
        return result.ids_sql

    async def _warehouse_phase(
        self,
        run: RefreshRun,
        adapter: Any,
        ids_sql: str,
        column: str,
        event: anyio.Event,
        outcome: _Outcome,
    ) -> None:
        """Materialize and read ids under the run's deadline, watching for cancellation."""
        assert run.started_at is not None
        elapsed = (utcnow() - run.started_at).total_seconds()
        deadline = anyio.current_time() + max(0.0, run.max_runtime_s - elapsed)
        work = anyio.CancelScope(deadline=deadline)
        cancelled = False
        table = run.temp_table or temp_table_name(run.id)
        tag = QueryTag(run_id=run.id, segment_id=run.segment_id, workspace_id=run.workspace_id)

        finished = False

        async def watch() -> None:
            # Stopped by a flag, not by cancellation: cancelling a task mid-query makes
            # psycopg close its pooled connection.
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

        batches: list[pa.Array] = []
        phase, t = "materialize", time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            try:
                with work:
                    phase, t = "materialize", time.perf_counter()
                    result = await adapter.materialize(ids_sql, table, deadline=deadline, tag=tag)
                    outcome.query_id = result.query_id
                    outcome.timings[phase] = time.perf_counter() - t
                    phase, t = "read", time.perf_counter()
                    if self.stream and getattr(adapter, "ID_ORDER", None) is not None:
                        outcome.wrote_version = True
                        loaded = outcome.loaded
                        got = await stream_refresh(
                            adapter.read_column(
                                table, column, batch_rows=self.batch_rows, ordered=True
                            ),
                            members=self.members,
                            segment_id=run.segment_id,
                            version=run.id,
                            timings=outcome.timings,
                            previous=loaded.previous if loaded else None,
                            preloaded=loaded.preloaded if loaded else None,
                            defer_tail=True,  # written in the final transaction
                        )
                        if isinstance(got, StreamResult):
                            outcome.streamed = got
                        else:
                            batches.append(got)  # order not kept: normalised in memory
                    else:
                        async for batch in adapter.read_column(
                            table, column, batch_rows=self.batch_rows
                        ):
                            batches.append(batch)
                    outcome.timings[phase] = time.perf_counter() - t
            finally:
                # A stopped phase still reports how long it ran.
                outcome.timings.setdefault(phase, time.perf_counter() - t)
                finished = True
                event.set()
        if cancelled:
            outcome.status = RunStatus.CANCELLED
            outcome.error = ZerocopyError(errors.CANCELLED, "cancelled on request")
            return
        if work.cancelled_caught:
            outcome.status = RunStatus.TIMED_OUT
            outcome.error = ZerocopyError(
                errors.TIMED_OUT,
                f"the refresh ran past the max runtime ({run.max_runtime_s:g} s) and was "
                "stopped; simplify the query or raise the source's max runtime",
                details={"max_runtime_s": run.max_runtime_s, "query_id": outcome.query_id},
            )
            return
        if outcome.streamed is None:
            t = time.perf_counter()
            outcome.ids = await anyio.to_thread.run_sync(normalise_ids, batches)
            outcome.timings.setdefault("normalise", 0.0)
            outcome.timings["normalise"] += time.perf_counter() - t
        outcome.status = RunStatus.SUCCEEDED

    async def _cleanup(self, run: RefreshRun, adapter: Any, outcome: _Outcome) -> None:
        """Always drop the temporary table (shielded), then close the adapter."""
        if adapter is None:
            # Nothing reached the warehouse (SQL refused, credential unusable): no table.
            outcome.temp_table_dropped = True
            return
        t = time.perf_counter()
        try:
            await adapter.drop_table(run.temp_table or temp_table_name(run.id))
            outcome.temp_table_dropped = True
        except Exception as exc:
            outcome.temp_table_dropped = False
            log.warning("refresh.drop_failed", error=redact_text(str(exc)))
        outcome.timings["drop"] = time.perf_counter() - t
        try:
            # A kept adapter goes back for the source's next run (its sessions stay open).
            await self.adapters.release(adapter)
        except Exception as exc:
            log.warning("refresh.close_failed", error=redact_text(str(exc)))

    async def _finish(
        self, run: RefreshRun, outcome: _Outcome, started: float, hooks: RunHooks | None = None
    ) -> RefreshRun:
        """Record the outcome; on success swap the membership in the same transaction."""
        values: dict[str, Any] = {
            "finished_at": utcnow(),
            "temp_table_dropped": outcome.temp_table_dropped,
            "query_id": outcome.query_id,
        }
        succeeded = outcome.ids is not None or outcome.streamed is not None
        if outcome.status == RunStatus.SUCCEEDED and succeeded:
            try:
                return await self._commit_success(run, outcome, started, values, hooks)
            except _RunNoLongerRunning:
                await self._discard_version(run, outcome)
                return await self.get(run.id)
            except Exception as exc:
                log.exception("refresh.swap_failed")
                outcome.status = RunStatus.FAILED
                outcome.error = ZerocopyError(
                    errors.INTERNAL_ERROR,
                    f"storing the new membership failed: {type(exc).__name__}: "
                    f"{redact_text(str(exc))}; the previous membership is unchanged",
                )
        await self._discard_version(run, outcome)
        error = outcome.error or ZerocopyError(errors.INTERNAL_ERROR, "the refresh failed")
        outcome.timings["total"] = time.perf_counter() - started
        values.update(
            status=outcome.status,
            error_code=error.code,
            error_message=redact_text(error.message),
            error_details=_json_safe(error.details, error.line, error.column),
            timings=_rounded(outcome.timings),
        )
        async with self.db.transaction() as s:
            final = await s.scalar(
                sa.update(RefreshRun)
                .where(RefreshRun.id == run.id, RefreshRun.status == RunStatus.RUNNING)
                .values(**values)
                .returning(RefreshRun)
                .execution_options(synchronize_session=False)
            )
            await s.execute(
                sa.update(Segment).where(Segment.id == run.segment_id).values(last_run_id=run.id)
            )
            if hooks is not None:
                await hooks.on_final(s, run.id)
        if hooks is not None:
            hooks.final_committed = True
        if final is None:  # no longer running (reaped meanwhile): as recorded
            final = await self.get(run.id)
        log.info(
            "refresh.finished",
            status=final.status,
            error_code=final.error_code,
            error_message=final.error_message,
            temp_table_dropped=final.temp_table_dropped,
            timings=final.timings,
        )
        return final

    async def _discard_version(self, run: RefreshRun, outcome: _Outcome) -> None:
        """Delete chunks a streamed run wrote under its version (never the current one)."""
        if not outcome.wrote_version:
            return
        try:
            await self.members.discard(run.segment_id, run.id)
        except Exception as exc:  # orphans go with the segment's next successful swap
            log.warning("refresh.discard_failed", error=redact_text(str(exc)))

    async def _commit_success(
        self,
        run: RefreshRun,
        outcome: _Outcome,
        started: float,
        values: dict[str, Any],
        hooks: RunHooks | None = None,
    ) -> RefreshRun:
        ids = outcome.ids
        chunks = None
        if outcome.streamed is not None:
            count = outcome.streamed.count
            added, removed = outcome.streamed.added, outcome.streamed.removed
        else:
            assert ids is not None
            count = len(ids)
            t = time.perf_counter()
            old = await self.members.load(run.segment_id)
            outcome.timings["load_previous"] = time.perf_counter() - t
            t = time.perf_counter()
            added, removed = await anyio.to_thread.run_sync(diff_counts, old, ids)
            del old
            outcome.timings["diff"] = time.perf_counter() - t
            t = time.perf_counter()
            chunks = await anyio.to_thread.run_sync(self.members.encode, ids)
            outcome.timings["encode"] = time.perf_counter() - t
        # finished_at covers the diff and encode above, not just the warehouse part.
        values = {**values, "finished_at": utcnow()}
        t = time.perf_counter()
        segment_values = {"last_run_id": run.id, "last_refreshed_at": utcnow()}
        async with self.db.transaction() as s:
            # The membership first, the run's status last: its compare-and-set decides, and
            # when the run is no longer running (reaped as worker_lost meanwhile) the whole
            # transaction rolls back and the old membership stays. (No lock cycle: only this
            # run's own executor locks its row together with the segment's.)
            if ids is None:
                assert outcome.streamed is not None
                await self.members.flip(
                    s,
                    run.segment_id,
                    run.id,
                    count,
                    tail=outcome.streamed.tail,
                    segment_values=segment_values,
                )
            else:
                await self.members.swap(
                    s, run.segment_id, run.id, ids, chunks=chunks, segment_values=segment_values
                )
            outcome.timings["swap"] = time.perf_counter() - t
            outcome.timings["total"] = time.perf_counter() - started
            conn = await s.connection()
            row = (
                await conn.execute(
                    _SUCCEED,
                    {
                        "p_run_id": run.id,
                        "p_member_count": count,
                        "p_added": added,
                        "p_removed": removed,
                        "p_timings": _rounded(outcome.timings),
                        "p_finished_at": values["finished_at"],
                        "p_temp_table_dropped": values["temp_table_dropped"],
                        "p_query_id": values["query_id"],
                    },
                )
            ).first()
            if row is None:
                raise _RunNoLongerRunning  # reaped as worker_lost meanwhile: keep the old one
            final = _run_from_row(row)
            if hooks is not None:
                await hooks.on_final(s, run.id)
        if hooks is not None:
            hooks.final_committed = True
        log.info(
            "refresh.finished",
            status=final.status,
            member_count=final.member_count,
            added=added,
            removed=removed,
            temp_table_dropped=final.temp_table_dropped,
            timings=final.timings,
        )
        return final

    # ------------------------------------------------------------------ small DB helpers
    async def _cancel_requested(self, run_id: str) -> bool:
        async with self.db.session() as s:
            value = await s.scalar(
                sa.select(RefreshRun.cancel_requested_at).where(RefreshRun.id == run_id)
            )
        return value is not None

    async def _heartbeat(self, run_id: str) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                sa.update(RefreshRun)
                .where(RefreshRun.id == run_id, RefreshRun.status == RunStatus.RUNNING)
                .values(heartbeat_at=utcnow())
            )

    async def _reap_if_lost(self, run: RefreshRun) -> bool:
        if run.status != RunStatus.RUNNING or run.heartbeat_at is None:
            return False
        if (utcnow() - run.heartbeat_at).total_seconds() < self.stale_after_s:
            return False
        return run.id in await self.reap_lost()


class _RunNoLongerRunning(Exception):
    pass


def catalog_mapping(tables: Any) -> dict[str, dict[str, dict[str, str]]]:
    """``{schema: {table: {column: type}}}`` from stored :class:`CatalogTable` rows."""
    mapping: dict[str, dict[str, dict[str, str]]] = {}
    for table in tables:
        columns = {str(c["name"]): str(c.get("data_type") or "") for c in table.columns or []}
        mapping.setdefault(table.schema, {})[table.name] = columns
    return mapping


def warehouse_column_name(id_column: str, dialect: str) -> str:
    """The id column's name as the warehouse stores the ``ids_sql`` alias.

    ``ids_sql`` aliases the ids with the id column as an identifier quoted only when needed,
    so the warehouse folds its case (Snowflake: ``EXTERNAL_USER_ID``; Postgres: lower case);
    reading the column back must use the folded name.
    """
    ident = exp.to_identifier(id_column.strip())
    return str(normalize_identifiers(ident, dialect=dialect or None).name)


def _zerocopy_error_in(exc: BaseException) -> ZerocopyError | None:
    """The one ZerocopyError inside (nested) exception groups of a single error, if any."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, ZerocopyError) else None


def _status_for(exc: ZerocopyError) -> str:
    if exc.code == errors.TIMED_OUT:
        return RunStatus.TIMED_OUT
    if exc.code == errors.CANCELLED:
        return RunStatus.CANCELLED
    return RunStatus.FAILED


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in timings.items()}


def _json_safe(details: dict[str, Any], line: int | None, column: int | None) -> dict[str, Any]:
    import orjson

    out = dict(details)
    if line is not None:
        out["line"] = line
    if column is not None:
        out["column"] = column
    try:
        orjson.dumps(out)
    except TypeError:
        out = {k: str(v) for k, v in out.items()}
    return out
