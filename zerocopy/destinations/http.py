"""HTTP batch destination: validated rows POSTed as JSON batches to a configured URL.

Wire format (README "HTTP destination"): one ``POST <url>`` per HTTP batch of at most
``batch_rows`` rows (default :data:`DEFAULT_BATCH_ROWS`, at most :data:`MAX_HTTP_BATCH_ROWS`;
a body over :data:`MAX_BODY_BYTES` is split further)::

    Authorization: Bearer <key>
    Content-Type: application/json
    Idempotency-Key: <batch_id>

    {"batch_id": "<sha256 of the rows' row_hash values>", "sync_id": "...", "run_id": "...",
     "data_type": "user_attributes",
     "attributes": [{"row_hash": "...", "identifier": {"external_id": "u1"},
                     "attributes": {"plan": "gold", "nickname": null}}]}

Event and purchase ``time`` values are sent as the UTC instant, ISO 8601 with ``Z``.

Exactly one array is present, named after the data type: ``attributes``, ``events``,
``purchases``, ``user_deletes``, ``catalog_items`` or ``accounts``. A ``2xx`` answer
acknowledges the batch; its JSON body may list refused rows, each by ``index`` into that array
(or by ``row_hash``)::

    {"rejected": [{"index": 3, "code": "invalid_field", "message": "price must be >= 0"}]}

Refused rows become row errors (their ``code`` when it is one of zerocopy's row-error codes,
else ``rejected_by_destination`` with the receiver's code in the message). An ``index`` may be
a JSON string of digits or an integral number written with a fraction (``3.0``). A refusal
naming no row of that array (an index past its end or negative, a ``row_hash`` not sent,
neither given) is a sync-level ``destination_error``: the run fails and the watermark stays
before the batch (a row refused unseen is never counted delivered).

Failures: connection errors, timeouts, ``408`` and ``5xx`` are retried with exponential
backoff (:data:`BACKOFF_BASE_S` doubling up to :data:`BACKOFF_MAX_S`, with jitter); ``429``
and ``503`` wait for their ``Retry-After`` when they give one (seconds or an HTTP date), all
within the run's deadline and at
most ``max_attempts`` tries per HTTP batch; ``413`` halves the batch, and a single row answered
``413`` is a row error (``rejected_by_destination``); ``401`` / ``403`` are
sync-level errors (``auth_failed`` / ``permission_denied``); any other ``4xx`` is a sync-level
``destination_error``. When an HTTP batch finally fails, :meth:`HttpDestination.deliver`
returns ``accepted=False``: the engine keeps the watermark before the whole
:class:`~zerocopy.destinations.protocol.DeliveryBatch`, and the next run re-sends it. HTTP
batches already acknowledged are then sent again with the same ``Idempotency-Key`` and
``row_hash`` values (at-least-once; the receiver de-duplicates by them).

The bearer key is a secret: registered for log redaction, never in ``repr``, logs or errors.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import anyio
import httpx
import orjson

from zerocopy import errors
from zerocopy.destinations.protocol import DeliveryBatch, DeliveryResult, RowRejection
from zerocopy.errors import ZerocopyError
from zerocopy.logging import get_logger, register_secret, shown_url
from zerocopy.sync import exactjson
from zerocopy.sync.types import (
    REJECTED_BY_DESTINATION,
    ROW_ERROR_CODES,
    DataType,
    ValidRow,
)
from zerocopy.sync.validate import parse_timestamp_us
from zerocopy.sync.watermark import from_micros

log = get_logger(__name__)

DEFAULT_BATCH_ROWS = 75
"""Rows per POST unless configured (the size Braze's ``/users/track`` takes per array)."""

MAX_HTTP_BATCH_ROWS = 1_000
"""Upper bound of the configurable ``batch_rows``."""

MAX_BODY_BYTES = 4 * 1024 * 1024
"""A JSON body larger than this is split in halves before sending."""

BACKOFF_BASE_S = 0.5
"""First retry delay after a 5xx / connection error; doubles each attempt."""

BACKOFF_MAX_S = 30.0
"""Cap of one backoff delay."""

DEFAULT_MAX_ATTEMPTS = 8
"""Tries per HTTP batch (first POST included) before the run fails."""

MAX_ATTEMPTS = 100
"""Upper bound of the configurable ``max_attempts`` (the backoff doubles on each)."""

REQUEST_TIMEOUT_S = 30.0
"""Timeout of one POST (connect + read)."""

MAX_DELAY_S = 3600.0
"""Upper bound of the configurable ``timeout_s``, ``backoff_base_s`` and ``backoff_max_s``."""

ARRAY_BY_TYPE: dict[DataType, str] = {
    DataType.USER_ATTRIBUTES: "attributes",
    DataType.CUSTOM_EVENTS: "events",
    DataType.PURCHASES: "purchases",
    DataType.USER_DELETES: "user_deletes",
    DataType.CATALOG_ITEMS: "catalog_items",
    DataType.ACCOUNTS: "accounts",
}
"""Name of the JSON array carrying rows of each data type."""

_RETRYABLE_STATUS = frozenset({408, 500, 502, 503, 504})
_RETRY_AFTER_STATUS = frozenset({429, 503})
"""Answers whose ``Retry-After`` says when to try again (else the usual backoff)."""


@dataclass(frozen=True, slots=True)
class HttpDestinationConfig:
    """Where and how to POST (the key is write-only: not in ``repr``)."""

    url: str
    api_key: str
    batch_rows: int = DEFAULT_BATCH_ROWS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_base_s: float = BACKOFF_BASE_S
    backoff_max_s: float = BACKOFF_MAX_S
    timeout_s: float = REQUEST_TIMEOUT_S

    def __repr__(self) -> str:
        return (
            f"HttpDestinationConfig(url={shown_url(self.url)!r}, api_key='***', "
            f"batch_rows={self.batch_rows})"
        )

    def validate(self) -> None:
        """Refuse unusable settings with ``validation_error`` naming the fix."""
        if not self.url.startswith(("http://", "https://")):
            raise ZerocopyError(
                errors.VALIDATION_ERROR,
                f"destination URL must start with https:// (got {shown_url(self.url)!r})",
            )
        host = httpx.URL(self.url).host
        if self.url.startswith("http://") and host not in {"127.0.0.1", "localhost", "::1"}:
            raise ZerocopyError(
                errors.VALIDATION_ERROR,
                "destination URL must use https:// (plain http is only allowed on loopback): "
                "the bearer key would travel in clear text",
            )
        if not self.api_key:
            raise ZerocopyError(errors.VALIDATION_ERROR, "the HTTP destination needs an API key")
        self.check_options()

    def check_options(self) -> None:
        """Refuse unusable tuning (``batch_rows``, ``max_attempts``, delays), the part of
        :meth:`validate` that needs no URL or key: a sync's ``settings.http`` is checked when it
        is saved, not at its first run."""
        if not 1 <= self.batch_rows <= MAX_HTTP_BATCH_ROWS:
            raise ZerocopyError(
                errors.VALIDATION_ERROR,
                f"batch_rows must be between 1 and {MAX_HTTP_BATCH_ROWS} "
                f"(got {_shown(self.batch_rows)})",
            )
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS:
            raise ZerocopyError(
                errors.VALIDATION_ERROR,
                f"max_attempts must be between 1 and {MAX_ATTEMPTS} (got {_shown(self.max_attempts)})",
            )
        for name in ("backoff_base_s", "backoff_max_s", "timeout_s"):
            value = getattr(self, name)
            if not 0 < value <= MAX_DELAY_S:  # also NaN; a huge int never reaches float()
                raise ZerocopyError(
                    errors.VALIDATION_ERROR,
                    f"{name} must be more than 0 and at most {MAX_DELAY_S:g} seconds "
                    f"(got {_shown(value)})",
                )


def _shown(value: Any) -> str:
    """A setting's value for a message: a number too long to print is not printed."""
    if isinstance(value, int) and value.bit_length() > 64:
        return "a number out of range"
    return repr(value)


def row_json(data_type: DataType, row: ValidRow, catalog: str | None) -> dict[str, Any]:
    """The JSON object of one row in its data type's array."""
    out: dict[str, Any] = {"row_hash": row.row_hash}
    if row.identifier is not None:
        out["identifier"] = row.identifier.as_dict()
        if row.phone:
            out["phone"] = row.phone
    if data_type is DataType.USER_ATTRIBUTES:
        out["attributes"] = row.payload
    elif data_type in (DataType.CUSTOM_EVENTS, DataType.PURCHASES):
        out.update({k: v for k, v in row.payload.items() if k not in out})
        if isinstance(out.get("time"), str):
            out["time"] = utc_iso(out["time"])
    elif data_type is DataType.CATALOG_ITEMS:
        out.update(catalog=catalog, id=row.item_id, deleted=row.deleted, fields=row.payload)
    elif data_type is DataType.ACCOUNTS:
        out.update(id=row.item_id, name=row.name, deleted=row.deleted, fields=row.payload)
    return out


def utc_iso(text: str) -> str:
    """An event or purchase ``time`` as the receiver gets it: the instant in UTC, ISO 8601
    with ``Z`` (``2026-03-01T10:00:00+05:45`` → ``2026-03-01T04:15:00Z``; no zone = UTC, as
    everywhere in syncs), so receivers never guess a zone. Unparseable text is kept as is."""
    micros = parse_timestamp_us(text)
    if micros is None:
        return text
    when = from_micros(micros)
    spec = "microseconds" if when.microsecond else "seconds"
    return when.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def batch_id(rows: Sequence[ValidRow]) -> str:
    """Stable id of an HTTP batch: the same rows re-sent by a later run keep the same id."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(row.row_hash.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), else None.

    Delta-seconds are ASCII digits only (RFC 9110): ``inf``, ``1e309``, ``nan``, ``1_0`` or
    non-ASCII digits are no delay at all (the usual backoff applies), where ``float`` read an
    infinite wait (the deadline check then crashed on it) or none.
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value)) if len(value) <= 15 else 1e15  # beyond any deadline
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _BatchFailed(Exception):
    """An HTTP batch could not be delivered (retries exhausted or deadline): run error."""


class HttpDestination:
    """POSTs each batch as JSON; see the module docstring for the wire format and retries."""

    KIND: ClassVar[str] = "http"
    COMMITS_WATERMARK: ClassVar[bool] = False

    def __init__(
        self,
        config: HttpDestinationConfig,
        *,
        deadline: float | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        config.validate()
        register_secret(config.api_key)
        self.config = config
        self._url = shown_url(config.url)
        """The URL as errors and logs show it (no userinfo or query: keys travel there)."""
        self.deadline = deadline
        """Absolute ``anyio.current_time()`` by which the run must end (None: no limit)."""
        self._client = client or httpx.AsyncClient(timeout=config.timeout_s)
        self._owns_client = client is None
        self.attempts = 0
        """POSTs sent so far (all batches, retries included): for logs and tests."""

    def __repr__(self) -> str:
        return f"HttpDestination({self.config!r})"

    async def aclose(self) -> None:
        """Close the connection pool (when this destination created it)."""
        if self._owns_client:
            await self._client.aclose()

    async def deliver(self, batch: DeliveryBatch) -> DeliveryResult:
        """Send ``batch`` in HTTP batches; accepted only when every one was acknowledged."""
        array = ARRAY_BY_TYPE[DataType(batch.data_type)]
        rejections: list[RowRejection] = []
        step = self.config.batch_rows
        try:
            for start in range(0, len(batch.rows), step):
                chunk = batch.rows[start : start + step]
                for index, code, message in await self._send(batch, array, chunk, start):
                    rejections.append(RowRejection(index, code, message))
        except _BatchFailed as exc:
            return DeliveryResult(accepted=False, delivered=0, error=str(exc))
        refused = {r.index for r in rejections}
        return DeliveryResult(
            accepted=True, delivered=len(batch.rows) - len(refused), rejections=rejections
        )

    async def _send(
        self, batch: DeliveryBatch, array: str, rows: list[ValidRow], offset: int
    ) -> list[tuple[int, str, str]]:
        """POST ``rows`` (one HTTP batch) until acknowledged; rejections as batch indexes."""
        body = {
            "batch_id": batch_id(rows),
            "sync_id": batch.sync_id,
            "run_id": batch.run_id,
            "data_type": str(batch.data_type),
            array: [row_json(DataType(batch.data_type), r, batch.catalog) for r in rows],
        }
        # exactjson: a STRUCT payload's HUGEINT / DECIMAL(38, 0) is an integer orjson refuses.
        content = exactjson.dumps(body, default=str)
        if len(content) > MAX_BODY_BYTES and len(rows) > 1:
            return await self._split(batch, array, rows, offset)
        headers: dict[str, str] = {
            "Authorization": f"Bearer {self.config.api_key}",
            "Content-Type": "application/json",
            "Idempotency-Key": str(body["batch_id"]),
        }
        last = "no attempt"
        for attempt in range(self.config.max_attempts):
            self.attempts += 1
            wait: float | None
            try:
                resp = await self._client.post(
                    self.config.url, content=content, headers=headers, timeout=self._timeout()
                )
            except httpx.TimeoutException as exc:
                last, wait = f"timed out ({type(exc).__name__})", self._backoff(attempt)
            except httpx.TransportError as exc:
                last, wait = f"connection failed ({type(exc).__name__})", self._backoff(attempt)
            else:
                status = resp.status_code
                if 200 <= status < 300:
                    return self._rejections(resp, rows, offset)
                if status == 413 and len(rows) > 1:
                    return await self._split(batch, array, rows, offset)
                if status == 413:
                    # One row too large for the receiver: that row is refused; the others
                    # (and the watermark) go on, rather than every run failing on it.
                    return [
                        (
                            offset,
                            REJECTED_BY_DESTINATION,
                            f"HTTP 413: the destination refused this row alone as too large "
                            f"({len(content):,} bytes of JSON)",
                        )
                    ]
                if status in (401, 403):
                    code = errors.AUTH_FAILED if status == 401 else errors.PERMISSION_DENIED
                    raise ZerocopyError(
                        code,
                        f"the HTTP destination {self._url} refused the API key "
                        f"(HTTP {status}): update the destination's key",
                    )
                if status in _RETRY_AFTER_STATUS and "Retry-After" in resp.headers:
                    # 429, and 503 with the time the receiver expects to be back (RFC 9110
                    # 10.2.3): retrying sooner only hits it while it is down.
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    last = f"HTTP {status} (Retry-After: {resp.headers.get('Retry-After')})"
                    wait = retry_after if retry_after is not None else self._backoff(attempt)
                elif status == 429:
                    last, wait = "HTTP 429", self._backoff(attempt)
                elif status in _RETRYABLE_STATUS or status >= 500:
                    last, wait = f"HTTP {status}", self._backoff(attempt)
                else:
                    raise ZerocopyError(
                        errors.DESTINATION_ERROR,
                        f"the HTTP destination {self._url} refused the batch with HTTP "
                        f"{status}: {_excerpt(resp)}",
                        details={"status": status},
                    )
            if attempt + 1 >= self.config.max_attempts:
                break
            self._check_deadline(wait, last)
            log.info(
                "http_destination_retry",
                url=self._url,
                attempt=attempt + 1,
                reason=last,
                wait_s=round(wait, 3),
            )
            await anyio.sleep(wait)
        raise _BatchFailed(
            f"the HTTP destination {self._url} did not acknowledge a batch of {len(rows)} "
            f"rows after {self.config.max_attempts} attempts (last: {last}); the watermark "
            "stays before it and the next run sends it again"
        )

    async def _split(
        self, batch: DeliveryBatch, array: str, rows: list[ValidRow], offset: int
    ) -> list[tuple[int, str, str]]:
        half = len(rows) // 2
        first = await self._send(batch, array, rows[:half], offset)
        return first + await self._send(batch, array, rows[half:], offset + half)

    def _timeout(self) -> float:
        """Per-POST timeout: the configured one, cut to what is left of the run's deadline.

        Deliveries are shielded from the run's cancellation (a batch is never abandoned
        half-way), so the destination itself must not outlive the deadline.
        """
        if self.deadline is None:
            return self.config.timeout_s
        left = self.deadline - anyio.current_time()
        if left <= 0:
            raise _BatchFailed(
                f"the run's deadline passed before a batch reached {self._url}; the "
                "watermark stays before this batch and the next run sends it again"
            )
        return min(self.config.timeout_s, left)

    def _backoff(self, attempt: int) -> float:
        base = min(self.config.backoff_max_s, self.config.backoff_base_s * 2**attempt)
        # Full jitter on the upper half: concurrent syncs do not retry in lockstep.
        return base / 2 + random.random() * base / 2

    def _check_deadline(self, wait: float, last: str) -> None:
        if self.deadline is None:
            return
        left = self.deadline - anyio.current_time()
        if wait >= left:
            raise _BatchFailed(
                f"the HTTP destination {self._url} asked to wait {math.ceil(wait)} s "
                f"({last}) but the run's deadline is {max(0, math.floor(left))} s away; the "
                "watermark stays before this batch and the next run sends it again"
            )

    def _rejections(
        self, resp: httpx.Response, rows: list[ValidRow], offset: int
    ) -> list[tuple[int, str, str]]:
        """Per-row refusals of an acknowledged HTTP batch, as indexes into the DeliveryBatch."""
        if not resp.content:
            return []
        try:
            data = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            return []
        items = data.get("rejected") if isinstance(data, dict) else None
        if not isinstance(items, list):
            return []
        by_hash = {row.row_hash: i for i, row in enumerate(rows)}
        out: dict[int, tuple[int, str, str]] = {}
        for item in items:
            if not isinstance(item, dict):
                continue
            index = item.get("index")
            if isinstance(index, str) and index.isascii() and index.strip().isdigit():
                index = int(index)  # "3": a receiver writing its numbers as text
            elif isinstance(index, float) and index.is_integer():
                index = int(index)  # 3.0: a receiver whose numbers are all doubles
            if not isinstance(index, int) or isinstance(index, bool):
                index = by_hash.get(str(item.get("row_hash")))
            if index is None or not 0 <= index < len(rows):
                # The receiver refused a row we cannot tell: counting every row delivered
                # would lose one without a trace. The run fails, the watermark stays before
                # this batch, and the next run sends it again.
                raise ZerocopyError(
                    errors.DESTINATION_ERROR,
                    f"the HTTP destination {self._url} refused a row it was not sent "
                    f"({_shown_refusal(item)}; the batch had {len(rows)} rows, index 0 to "
                    f"{len(rows) - 1}): fix the receiver's rejected list; the watermark stays "
                    "before this batch and the next run sends it again",
                    details={"rejected": _shown_refusal(item)},
                )
            code = str(item.get("code") or "")
            message = str(item.get("message") or "refused by the destination")
            if code not in ROW_ERROR_CODES:
                message = f"{code}: {message}" if code else message
                code = REJECTED_BY_DESTINATION
            out[index] = (offset + index, code, message)
        return list(out.values())


def _shown_refusal(item: dict[str, Any]) -> str:
    """A refusal naming no sent row, as the error shows it (``index 75`` or its row_hash)."""
    if "index" in item:
        return f"index {str(item['index'])[:40]}"
    if "row_hash" in item:
        return f"row_hash {str(item['row_hash'])[:80]!r}"
    return "a refusal with neither index nor row_hash"


def _excerpt(resp: httpx.Response, limit: int = 300) -> str:
    text = resp.text.strip().replace("\n", " ")
    return (text[:limit] + "...") if len(text) > limit else (text or "(empty body)")
