"""The destination protocol: one small async interface, two implementations.

How the engine uses it (the watermark rule):

1. The engine validates a bounded batch of source rows (at most ``MAX_BATCH_ROWS`` valid
   rows per :class:`DeliveryBatch`) and calls :meth:`Destination.deliver` once per batch,
   strictly in ``UPDATED_AT`` order, never concurrently for one sync.
2. ``batch.watermark`` is the cursor state the sync may resume from *if this batch and every
   earlier one are durably accepted* (value + hashes of rows at that value, dlt-style).
3. A destination with ``COMMITS_WATERMARK = True`` (the built-in store) writes the rows and
   ``batch.watermark`` in **one transaction**: either both are visible or neither.
   A destination with ``COMMITS_WATERMARK = False`` (HTTP) only acknowledges; the engine then
   persists ``batch.watermark`` itself, and only when ``DeliveryResult.accepted`` is true.
   A crash between acknowledgement and the engine's commit re-delivers that batch on the next
   run: HTTP delivery is at-least-once, and each row carries ``row_hash`` as idempotency key.
4. ``accepted=False`` (or an exception) stops the run with status ``error``; the watermark
   stays at the last accepted batch. Per-row ``rejections`` with ``accepted=True`` are row
   errors: the batch is done, refused rows are logged, the watermark moves past them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

from zerocopy.sync.types import AttributeRows, DataType, ValidRow
from zerocopy.sync.watermark import WatermarkState

MAX_BATCH_ROWS = 5_000
"""Upper bound of rows in one :class:`DeliveryBatch` (the HTTP destination may split further),
except for columns to a destination that declares ``columnar_batch_rows``."""
MAX_COLUMNAR_BATCH_ROWS = 50_000
"""Upper bound of rows in one :class:`DeliveryBatch` carried as columns (``columns``)."""


@dataclass(slots=True)
class DeliveryBatch:
    """Validated rows of one sync, in source order, plus the cursor to commit with them.

    Attributes:
        workspace_id: owner workspace (the built-in store is per workspace).
        sync_id: the sync delivering.
        run_id: the run delivering (for logs / idempotency).
        data_type: the sync's data type; every row has the shape documented on ``ValidRow``.
        rows: at most ``MAX_BATCH_ROWS`` valid rows (empty when ``columns`` carries them).
        watermark: cursor state valid once this batch is accepted.
        catalog: catalog name (catalog-items syncs only).
        columns: the engine's columnar fast path (``user_attributes`` by external id), only
            given to destinations with ``ACCEPTS_COLUMNS = True``; then ``rows`` is empty and
            rejection indexes point into ``columns``. :meth:`valid_rows` materialises either.
        replay_until_us: see the attribute's doc.
    """

    workspace_id: str
    sync_id: str
    run_id: str
    data_type: DataType
    rows: list[ValidRow]
    watermark: WatermarkState
    catalog: str | None = None
    columns: AttributeRows | None = None
    replay_until_us: int | None = None
    """After a watermark reset to an earlier point: rows with ``updated_us`` at or before it
    may have been delivered before. Merging kinds are idempotent; a destination that appends
    (events, purchases) or deletes applies such a row only if it does not hold it yet."""

    @property
    def count(self) -> int:
        """Number of valid rows in the batch, whichever way they are carried."""
        return len(self.columns) if self.columns is not None else len(self.rows)

    def valid_rows(self) -> list[ValidRow]:
        """The rows as :class:`ValidRow` objects (materialises ``columns`` when set)."""
        return self.columns.materialise() if self.columns is not None else self.rows


@dataclass(frozen=True, slots=True)
class RowRejection:
    """A row the destination refused: ``index`` into ``DeliveryBatch.rows``, stable code, why."""

    index: int
    code: str
    message: str


@dataclass(slots=True)
class DeliveryResult:
    """What the destination did with a batch.

    ``accepted`` means durably stored / acknowledged (the watermark may move past it);
    ``delivered`` counts rows applied; ``rejections`` are per-row refusals (row errors).
    """

    accepted: bool
    delivered: int
    rejections: list[RowRejection] = field(default_factory=list)
    error: str | None = None
    """When ``accepted`` is false: why (shown as the run's error)."""


@runtime_checkable
class Destination(Protocol):
    """Receives validated batches of a sync."""

    KIND: ClassVar[str]
    COMMITS_WATERMARK: ClassVar[bool]
    """True: :meth:`deliver` stores ``batch.watermark`` in the same transaction as the rows."""
    # Optional ``ACCEPTS_COLUMNS: ClassVar[bool]``: True when :meth:`deliver` takes
    # ``DeliveryBatch.columns``; the engine materialises ``ValidRow`` objects for the others.

    async def deliver(self, batch: DeliveryBatch) -> DeliveryResult:
        """Apply one batch; raise :class:`zerocopy.errors.ZerocopyError` on sync-level failure."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
