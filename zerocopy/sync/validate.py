"""Row validation (pure): columns per data type, identifier rules, payload rules.

Works on Arrow record batches whose column names are already the canonical upper-case names
(``UPDATED_AT``, ``EXTERNAL_ID``, ``PAYLOAD`` ...; see :func:`canonical_columns`). The
identifier rules are computed column-wise with ``pyarrow.compute``; payloads are decoded with
orjson; only the per-row assembly of the result is a Python loop.
"""

from __future__ import annotations

import base64
import calendar
import gc
import hashlib
import math
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from typing import Any

import msgspec
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from zerocopy.sync import exactjson
from zerocopy.sync import types as t
from zerocopy.sync.types import DataType, Identifier, RowError, ValidRow
from zerocopy.sync.watermark import from_micros, to_micros, to_utc

UPDATED_AT = "UPDATED_AT"
PAYLOAD = "PAYLOAD"
ID = "ID"
NAME = "NAME"
DELETED = "DELETED"
IDENTIFIER_COLUMNS = ("EXTERNAL_ID", "ALIAS_NAME", "ALIAS_LABEL", "BRAZE_ID", "EMAIL", "PHONE")

KNOWN_COLUMNS: dict[DataType, tuple[str, ...]] = {
    DataType.USER_ATTRIBUTES: (UPDATED_AT, *IDENTIFIER_COLUMNS, PAYLOAD),
    DataType.CUSTOM_EVENTS: (UPDATED_AT, *IDENTIFIER_COLUMNS, PAYLOAD),
    DataType.PURCHASES: (UPDATED_AT, *IDENTIFIER_COLUMNS, PAYLOAD),
    DataType.USER_DELETES: (UPDATED_AT, *IDENTIFIER_COLUMNS, PAYLOAD),
    DataType.CATALOG_ITEMS: (UPDATED_AT, ID, PAYLOAD, DELETED),
    DataType.ACCOUNTS: (UPDATED_AT, ID, NAME, PAYLOAD, DELETED),
}
"""Columns a sync of each type reads (any others in the table are ignored)."""

REQUIRED_COLUMNS: dict[DataType, tuple[str, ...]] = {
    DataType.USER_ATTRIBUTES: (PAYLOAD,),
    DataType.CUSTOM_EVENTS: (PAYLOAD,),
    DataType.PURCHASES: (PAYLOAD,),
    DataType.USER_DELETES: (),
    DataType.CATALOG_ITEMS: (ID, PAYLOAD),
    DataType.ACCOUNTS: (ID, NAME, PAYLOAD),
}
"""Required besides ``UPDATED_AT`` (warehouse sources) and, for user types, one identifier column."""

SUBSCRIPTION_STATES = frozenset({"opted_in", "subscribed", "unsubscribed"})
GROUP_STATES = frozenset({"subscribed", "unsubscribed"})
SUBSCRIPTION_FIELDS = ("email_subscribe", "push_subscribe")

ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
    MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD
    TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL""".split()  # noqa: SIM905
)

MAX_QUANTITY = 2**31 - 1
"""Largest purchase ``quantity`` (the store's column is a 32-bit integer on every database)."""

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"^(?=(?:\D*\d){4})\+?[0-9(][0-9 ().\-]{3,24}$")
"""A phone number: an optional ``+``, then digits and ``( ) . -`` or blanks (at least 4
digits); a national number may start with its area code in parentheses, ``(555) 010-0001``."""
_PHONE_PUNCTUATION = re.compile(r"[ ().\-]")


def normalize_phone(phone: str) -> str:
    """A phone number as the store keeps and matches it: its digits, after a leading ``+``
    when given. ``+1 (555) 010-0001``, ``+1.555.010.0001`` and ``+15550100001`` are one."""
    return _PHONE_PUNCTUATION.sub("", phone.strip())


@dataclass(frozen=True, slots=True)
class SyncOptions:
    """Type-specific validation options of a sync."""

    account_fields: frozenset[str] | None = None
    """Accounts: the account schema; other payload fields are dropped and reported."""


def canonical_columns(names: Iterable[str], data_type: DataType) -> dict[str, str]:
    """Map canonical upper-case column → actual column name (names are case-insensitive)."""
    wanted = set(KNOWN_COLUMNS[data_type])
    out: dict[str, str] = {}
    for name in names:
        upper = name.upper()
        if upper in wanted and upper not in out:
            out[upper] = name
    return out


def missing_columns(
    present: Iterable[str], data_type: DataType, *, with_updated_at: bool = True
) -> list[str]:
    """Required canonical columns absent from ``present`` (canonical names)."""
    have = {c.upper() for c in present}
    need = list(REQUIRED_COLUMNS[data_type])
    if with_updated_at:
        need.insert(0, UPDATED_AT)
    missing = [c for c in need if c not in have]
    if data_type.is_user_type and not have & set(IDENTIFIER_COLUMNS):
        missing.append("one of " + ", ".join(IDENTIFIER_COLUMNS))
    return missing


# ------------------------------------------------------------------ keys: hash + UPDATED_AT
def row_hashes(batch: pa.RecordBatch, updated_us: Sequence[int | None] | None = None) -> list[str]:
    """Content hash of each row (all its columns), 16 bytes of BLAKE2b in hex.

    Each non-null cell enters as ``name \x1e text \x1f``, columns in name order, so the hash
    does not move when a column is added with no values (a new, empty identifier column) or
    the table's columns are reordered. With ``updated_us`` (the parsed ``UPDATED_AT`` of each
    row), ``UPDATED_AT`` enters as its instant, so a change of the column's type between runs
    (``timestamp`` → ``timestamptz``, text → timestamp, same instants) keeps every row's hash:
    rows re-read at the boundary are still recognised and not applied twice.
    """
    if batch.num_rows == 0:
        return []
    parts = []
    for name in sorted(batch.schema.names):
        col = batch.column(name)
        text = col if pa.types.is_string(col.type) else _as_text(col)
        if name == UPDATED_AT and updated_us is not None:
            micros = pa.array(updated_us, pa.int64())
            instant = pc.binary_join_element_wise(pa.scalar("@"), pc.cast(micros, pa.string()), "")
            text = pc.if_else(pc.is_valid(micros), instant, text.cast(pa.string()))
        tagged = pc.binary_join_element_wise(pa.scalar(name + "\x1e"), text, pa.scalar("\x1f"), "")
        parts.append(pc.fill_null(tagged, ""))
    joined = pc.binary_join_element_wise(*parts, "") if len(parts) > 1 else parts[0]
    blake = hashlib.blake2b
    # The UTF-8 bytes straight from Arrow (the same bytes ``str.encode`` would give).
    raw = pc.cast(
        joined, pa.large_binary() if pa.types.is_large_string(joined.type) else pa.binary()
    )
    return [blake(b, digest_size=16).hexdigest() for b in raw.to_pylist()]


_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 1}
"""Microseconds per unit (``ns``: the int64 range of nanoseconds is inside years 1-9999)."""


def _utc_as_text(col: pa.Array) -> pa.Array | None:
    """Arrow's text of a ``timestamp[unit, tz=UTC]`` column, the fast way, or None.

    The cast of a zoned timestamp to string goes through the time zone database per value
    (about 9 µs a row); for UTC it is the naive cast plus ``Z``, the same text for every
    instant in years 1-9999 (outside them Arrow's texts differ: None, the caller casts).
    """
    typ = col.type
    if not pa.types.is_timestamp(typ) or typ.tz != "UTC":
        return None
    bounds = pc.min_max(col.view(pa.int64())).as_py()
    if bounds["min"] is not None and typ.unit != "ns":
        per = _PER_UNIT[typ.unit]
        if bounds["min"] < -(-_MIN_US // per) or bounds["max"] > _MAX_US // per:
            return None
    naive = pc.cast(col.cast(pa.timestamp(typ.unit)), pa.string())
    return pc.binary_join_element_wise(naive, pa.scalar("Z"), "")


def _as_text(col: pa.Array) -> pa.Array:
    fast = _utc_as_text(col)
    if fast is not None:
        return fast
    try:
        return pc.cast(col, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else repr(v) for v in _pylist(col)], pa.string())


_MIN_US = -62_135_596_800_000_000
"""0001-01-01T00:00:00Z in epoch microseconds (Python's smallest datetime)."""
_MAX_US = 253_402_300_799_999_999
"""9999-12-31T23:59:59.999999Z in epoch microseconds (Python's largest datetime)."""


def _pylist(col: pa.Array) -> list[Any]:
    """``col.to_pylist()``, except that timestamps Python cannot represent (a warehouse's
    ``infinity``, years past 9999) become their text, e.g. ``'infinity (9223372036854775807)'``."""
    try:
        return col.to_pylist()
    except (OverflowError, ValueError):
        if not pa.types.is_timestamp(col.type) and not pa.types.is_date(col.type):
            raise
    out: list[Any] = []
    for i in range(len(col)):
        try:
            out.append(col[i].as_py())
        except (OverflowError, ValueError):
            raw = col.slice(i, 1).view(pa.int64() if col.type.bit_width == 64 else pa.int32())
            value = raw[0].as_py()
            out.append("infinity" if value > 0 else "-infinity")
    return out


def updated_micros(col: pa.Array) -> list[int | None]:
    """``UPDATED_AT`` as UTC epoch microseconds; ``None`` where null or unparseable.

    Timestamps without time zone are UTC; with a zone they are converted; text is parsed as
    ISO 8601 (naive → UTC); dates are midnight UTC.
    """
    typ = col.type
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        if pa.types.is_timestamp(typ):
            raw = col.view(pa.int64())  # stored values are UTC instants
            per_us = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0}[typ.unit]
        else:
            raw = col.view(pa.int32() if typ.bit_width == 32 else pa.int64())
            per_us = 86_400_000_000 if typ.bit_width == 32 else 1_000
        values = pc.fill_null(raw, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        ok = pc.is_valid(raw).to_numpy(zero_copy_only=False)
        if per_us == 0:
            micros = values // 1_000  # floor, as Python's ``//``
        else:
            # Outside Python's datetime range (a warehouse's ``infinity``): unusable. Checked
            # before multiplying, which could overflow int64.
            ok = ok & (values >= -(-_MIN_US // per_us)) & (values <= _MAX_US // per_us)
            micros = np.where(ok, values, 0) * per_us
        ok = ok & (micros >= _MIN_US) & (micros <= _MAX_US)
        out_ts: list[int | None] = micros.tolist()
        for i in np.flatnonzero(~ok).tolist():
            out_ts[i] = None
        return out_ts
    out: list[int | None] = []
    for value in col.to_pylist():
        out.append(parse_timestamp_us(value))
    return out


def parse_timestamp_us(value: Any) -> int | None:
    """One ``UPDATED_AT`` / ``time`` value → epoch microseconds, ``None`` when unusable
    (also when its UTC instant falls outside years 1-9999, e.g. ``9999-12-31T23:00-05:00``)."""
    try:
        return _timestamp_us(value)
    except OverflowError:
        return None


def _timestamp_us(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return to_micros(value)
    if isinstance(value, date):
        return to_micros(datetime(value.year, value.month, value.day))
    if isinstance(value, str):
        text = value.strip().replace(" UTC", "+00:00")
        if not text:
            return None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return _parse_iso_us(text)
        if ("." in text or "," in text) and _fraction_of_hour_or_minute(text):
            return _parse_iso_us(text)  # Python reads 10:30.5 as 10:30:00.5, not 10:30:30
        return to_micros(parsed)
    return None


_ISO_DATE_TIME = re.compile(
    r"(?P<date>[0-9W-]+)[T ](?P<h>[0-9]{2})(?::?(?P<m>[0-9]{2})(?::?(?P<s>[0-9]{2}))?)?"
    r"(?:[.,](?P<f>[0-9]+))?(?P<zone>\s*(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)"
)
"""ISO 8601 date and time: calendar, week or ordinal date; ``hh``, ``hh:mm`` or ``hh:mm:ss``
(colons optional) with an optional decimal fraction of its last part; an optional offset."""
_ORDINAL_DATE = re.compile(r"(?P<y>[0-9]{4})-?(?P<d>[0-9]{3})")
"""An ISO 8601 ordinal date: year and day of the year (``2026-330``, ``2026330``)."""


def _fraction_of_hour_or_minute(text: str) -> bool:
    m = _ISO_DATE_TIME.fullmatch(text.upper())
    return m is not None and m["f"] is not None and m["s"] is None


def _iso_date(text: str) -> date | None:
    """A calendar, week or ordinal date (ISO 8601), or None."""
    ordinal = _ORDINAL_DATE.fullmatch(text)
    try:
        if ordinal is None:
            return date.fromisoformat(text)
        year, day = int(ordinal["y"]), int(ordinal["d"])
        if not 1 <= day <= (366 if calendar.isleap(year) else 365):
            return None
        return date(year, 1, 1) + timedelta(days=day - 1)
    except (ValueError, OverflowError):
        return None


def _parse_iso_us(text: str) -> int | None:
    """The ISO 8601 spellings ``datetime.fromisoformat`` refuses or misreads, as epoch µs:

    * a lower-case ``t`` / ``z`` / ``utc`` (RFC 3339 allows them);
    * ordinal dates, ``2026-330`` = 2026-11-26;
    * ``24:00`` (``24:00:00``, ``24:00:00.000``), the end of a day = 00:00 of the next day;
      any other time past 24:00 is refused;
    * a leap second, ``23:59:60`` (RFC 3339), is read as the next second (as PostgreSQL does);
    * a decimal fraction of the hour or the minute: ``10.5`` = 10:30, ``10:30.5`` = 10:30:30.
    """
    upper = text.upper().replace(" UTC", "+00:00")
    day = _iso_date(upper)
    if day is not None:  # a date alone: its midnight, UTC
        return to_micros(datetime(day.year, day.month, day.day))
    m = _ISO_DATE_TIME.fullmatch(upper)
    if m is None:
        return None
    day = _iso_date(m["date"])
    if day is None:
        return None
    hour, minute, second = int(m["h"]), int(m["m"] or 0), int(m["s"] or 0)
    fraction = Decimal(f"0.{m['f']}") if m["f"] else Decimal(0)
    if minute > 59 or second > 60 or hour > 24:
        return None  # second 60: a leap second (RFC 3339), the next second as PostgreSQL reads it
    if hour == 24 and (minute or second or fraction):
        return None  # only 24:00 itself ends a day
    unit_us = 1_000_000 if m["s"] else 60_000_000 if m["m"] else 3_600_000_000
    micros = ((hour * 60 + minute) * 60 + second) * 1_000_000 + int(fraction * unit_us)
    zone = m["zone"].strip()
    try:
        midnight = datetime.fromisoformat(f"{day.isoformat()}T00:00:00{zone}")
        out = to_micros(midnight) + micros
    except (ValueError, OverflowError):
        return None
    return out if _MIN_US <= out <= _MAX_US else None


# ------------------------------------------------------------------ identifier rules
def _present(batch: pa.RecordBatch, name: str) -> np.ndarray:
    n = batch.num_rows
    idx = batch.schema.get_field_index(name)
    if idx < 0:
        return np.zeros(n, dtype=bool)
    col = batch.column(idx)
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = _as_text(col)
    mask = pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(col)), 0), False)
    return mask.to_numpy(zero_copy_only=False).astype(bool)


IDENT_OK, IDENT_NONE, IDENT_MULTIPLE, IDENT_HALF_ALIAS = 0, 1, 2, 3


def identifier_verdicts(batch: pa.RecordBatch) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Column-wise identifier rule: a code per row (``IDENT_*``) and the presence masks.

    Exactly one of external id, alias (both halves), braze id, email, phone — email and phone
    together count as one (email identifies).
    """
    p = {c: _present(batch, c) for c in IDENTIFIER_COLUMNS}
    alias_any = p["ALIAS_NAME"] | p["ALIAS_LABEL"]
    alias_both = p["ALIAS_NAME"] & p["ALIAS_LABEL"]
    contact = p["EMAIL"] | p["PHONE"]
    count = (
        p["EXTERNAL_ID"].astype(np.int8)
        + alias_any.astype(np.int8)
        + p["BRAZE_ID"].astype(np.int8)
        + contact.astype(np.int8)
    )
    code = np.full(batch.num_rows, IDENT_OK, dtype=np.int8)
    code[count == 0] = IDENT_NONE
    code[count > 1] = IDENT_MULTIPLE
    code[(count == 1) & alias_any & ~alias_both] = IDENT_HALF_ALIAS
    return code, p


# ------------------------------------------------------------------ the batch validator
class _RowRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (re-entrant, thread-safe among its own users).

    Building a batch's verdicts allocates ~10 container objects per row and none of them form
    cycles; with the collector on, its generation scans over the growing batch took half of
    the validation time. Collection resumes (if it was on) when the last user leaves.
    """
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            if _gc_was_enabled:
                gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


def validate_batch(
    data_type: DataType,
    batch: pa.RecordBatch,
    *,
    start_position: int,
    hashes: Sequence[str] | None = None,
    updated_us: Sequence[int | None] | None = None,
    options: SyncOptions | None = None,
    require_updated_at: bool = True,
) -> list[ValidRow | RowError]:
    """Validate every row of ``batch`` (canonical column names); one verdict per row, in order."""
    if batch.num_rows == 0:
        return []
    with gc_paused():
        return _validate_batch(
            data_type,
            batch,
            start_position=start_position,
            hashes=hashes,
            updated_us=updated_us,
            options=options,
            require_updated_at=require_updated_at,
        )


def _validate_batch(
    data_type: DataType,
    batch: pa.RecordBatch,
    *,
    start_position: int,
    hashes: Sequence[str] | None,
    updated_us: Sequence[int | None] | None,
    options: SyncOptions | None,
    require_updated_at: bool,
) -> list[ValidRow | RowError]:
    n = batch.num_rows
    options = options or SyncOptions()
    hashes = hashes if hashes is not None else row_hashes(batch)
    names = list(batch.schema.names)
    if updated_us is None:
        updated_us = updated_micros(batch.column(UPDATED_AT)) if UPDATED_AT in names else [None] * n
    cols = {name: _pylist(batch.column(name)) for name in names}
    idents: np.ndarray | None = None
    if data_type.is_user_type:
        idents, _ = identifier_verdicts(batch)
    # Column-wise up front: identifier/ID/NAME texts and the decoded payloads.
    texts = {name: _texts(cols[name]) for name in _TEXT_COLUMNS if name in cols}
    payloads = cols.get(PAYLOAD)
    decoded = (
        decode_payloads(batch.column(PAYLOAD))
        if payloads is not None and data_type is not DataType.USER_DELETES
        else None
    )
    out: list[ValidRow | RowError] = []
    for i in range(n):
        pos = start_position + i
        upd = updated_us[i]
        try:
            if require_updated_at and upd is None:
                raw_upd = cols.get(UPDATED_AT, [None] * n)[i]
                raise _RowRefused(
                    t.INVALID_UPDATED_AT,
                    "UPDATED_AT is null"
                    if raw_upd is None
                    else f"UPDATED_AT {raw_upd!r} is not a timestamp (use ISO 8601)",
                )
            row = ValidRow(
                position=pos,
                row_hash=hashes[i],
                updated_at=from_micros(upd) if upd is not None else None,
                updated_us=upd,
            )
            if idents is not None:
                _fill_identifier(row, data_type, int(idents[i]), texts, i)
            raw_payload = payloads[i] if payloads is not None else None
            pre = decoded[i] if decoded is not None else UNDECODED
            _fill_payload(row, data_type, raw_payload, pre, texts, cols, i, options)
            out.append(row)
        except _RowRefused as exc:
            out.append(
                RowError(
                    position=pos,
                    code=exc.code,
                    message=exc.message,
                    raw=raw_row(cols, i),
                    updated_at=from_micros(upd) if upd is not None else None,
                    row_hash=hashes[i],
                    updated_us=upd,
                )
            )
    return out


_TEXT_COLUMNS = (*IDENTIFIER_COLUMNS, ID, NAME)


def _texts(values: list[Any]) -> list[str | None]:
    """A column's values as stripped text, ``None`` where null or blank.

    Numbers from a DOUBLE / NUMERIC column read as a person would write them: an integral
    42.0 is "42" (the id a BIGINT or text column gives), 7.50 is "7.5".
    """
    return [
        None
        if v is None
        else (_number_text(v) if isinstance(v, float | Decimal) else (str(v).strip() or None))
        for v in values
    ]


def _number_text(value: float | Decimal) -> str | None:
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return str(int(value)) if value.is_integer() else repr(value)
    if not value.is_finite():
        return str(value)
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def _text(texts: dict[str, list[str | None]], name: str, i: int) -> str | None:
    values = texts.get(name)
    return None if values is None else values[i]


class _Undecoded:
    """Marker: this payload was not decoded up front (decode it on its own)."""


UNDECODED: Any = _Undecoded()

_LONG_DIGITS = exactjson.LONG_DIGITS
"""Integers past 64 bits: payloads with such a digit run are decoded one by one
(:func:`decode_payload`, through :mod:`zerocopy.sync.exactjson`), keeping them exact."""


def decode_payloads(col: pa.Array) -> list[Any]:
    """Decode a text PAYLOAD column in one call (msgspec over newline-joined rows).

    Only rows whose text is one line, not blank and free of very long digit runs take this
    path; the others, and every row of a batch whose joined decode fails or does not yield
    exactly one value per row, are :data:`UNDECODED` and go through :func:`decode_payload`
    one by one (same values and the same error messages as before).
    """
    n = len(col)
    out: list[Any] = [UNDECODED] * n
    if n == 0 or not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return out
    eligible = pc.and_(
        pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(col)), 0),
        pc.invert(pc.match_substring(col, "\n")),
    )
    mask = pc.fill_null(eligible, False)
    rows = pc.filter(col, mask)
    count = len(rows)
    if count == 0:
        return out
    if not pa.types.is_large_string(rows.type):
        rows = rows.cast(pa.large_string())
    offsets = pa.array([0, count], pa.int64())
    joined = pc.binary_join(
        pa.LargeListArray.from_arrays(offsets, rows), pa.scalar("\n", pa.large_string())
    )
    _validity, offs, buf = joined.buffers()
    assert offs is not None
    start, end = np.frombuffer(offs, dtype=np.int64)[joined.offset : joined.offset + 2].tolist()
    data = memoryview(buf)[start:end] if buf is not None else b""
    if _LONG_DIGITS.search(data) is not None:  # rare: find the rows, decode them one by one
        mask = pc.and_(
            mask, pc.invert(pc.match_substring_regex(col, _LONG_DIGITS.pattern.decode()))
        )
        return _decode_masked(col, mask, out)
    try:
        values = _LINES.decode_lines(data)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return out
    if len(values) != count:  # a row held more than one JSON value: decode each on its own
        return out
    indices = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    for index, value in zip(indices.tolist(), values, strict=True):
        out[index] = value
    return out


def _decode_masked(col: pa.Array, mask: pa.Array, out: list[Any]) -> list[Any]:
    """:func:`decode_payloads` restricted to the rows of ``mask`` (already vetted rows)."""
    rows = pc.filter(col, mask)
    if len(rows) == 0:
        return out
    try:
        values = _LINES.decode_lines("\n".join(rows.to_pylist()).encode())
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return out
    if len(values) != len(rows):
        return out
    indices = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    for index, value in zip(indices.tolist(), values, strict=True):
        out[index] = value
    return out


_LINES = msgspec.json.Decoder()


def _fill_identifier(
    row: ValidRow, data_type: DataType, code: int, texts: dict[str, list[str | None]], i: int
) -> None:
    if code == IDENT_NONE:
        raise _RowRefused(
            t.NO_IDENTIFIER,
            "the row has no identifier: set exactly one of EXTERNAL_ID, ALIAS_NAME+ALIAS_LABEL, "
            "BRAZE_ID, EMAIL, PHONE",
        )
    if code == IDENT_MULTIPLE:
        given = [c for c in IDENTIFIER_COLUMNS if _text(texts, c, i) is not None]
        raise _RowRefused(
            t.MULTIPLE_IDENTIFIERS,
            f"the row has more than one identifier ({', '.join(given)}); keep exactly one "
            "(EMAIL and PHONE together are allowed: EMAIL identifies)",
        )
    if code == IDENT_HALF_ALIAS:
        raise _RowRefused(
            t.INCOMPLETE_ALIAS, "an alias needs both ALIAS_NAME and ALIAS_LABEL; one is empty"
        )
    if (ext := _text(texts, "EXTERNAL_ID", i)) is not None:
        row.identifier = Identifier("external_id", ext)
    elif (alias := _text(texts, "ALIAS_NAME", i)) is not None:
        row.identifier = Identifier("alias", alias, _text(texts, "ALIAS_LABEL", i))
    elif (braze := _text(texts, "BRAZE_ID", i)) is not None:
        row.identifier = Identifier("braze_id", braze)
    else:
        email, phone = _text(texts, "EMAIL", i), _text(texts, "PHONE", i)
        if data_type is DataType.USER_DELETES:
            raise _RowRefused(
                t.INVALID_IDENTIFIER,
                "user deletes identify users by EXTERNAL_ID, alias or BRAZE_ID, not e-mail/phone",
            )
        if phone is not None and not PHONE_RE.match(phone):
            raise _RowRefused(t.INVALID_IDENTIFIER, f"PHONE {phone!r} is not a phone number")
        if email is not None:
            if not EMAIL_RE.match(email):
                raise _RowRefused(t.INVALID_IDENTIFIER, f"EMAIL {email!r} is not an e-mail address")
            row.identifier = Identifier("email", email.lower())
            row.phone = normalize_phone(phone) if phone is not None else None
        else:
            assert phone is not None
            row.identifier = Identifier("phone", normalize_phone(phone))


def decode_payload(raw: Any) -> Any:
    """PAYLOAD column value → Python object (text is JSON; native structs become JSON values)."""
    if isinstance(raw, str | bytes):
        try:
            # Integers past 64 bits exact, as a STRUCT payload's HUGEINT is kept.
            return exactjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _RowRefused(t.INVALID_JSON, f"PAYLOAD is not valid JSON: {exc}") from None
    if isinstance(raw, list) and raw and all(isinstance(p, tuple) for p in raw):
        raw = dict(raw)  # Arrow map type
    return native_json(raw)


def native_json(value: Any, path: str = "PAYLOAD") -> Any:
    """A native PAYLOAD value (a warehouse STRUCT / MAP / LIST) as the JSON value it stands for.

    Decimals are numbers (integral ones integers), timestamps ISO 8601 text (UTC), dates and
    times ISO text, bytes base64, keys text. NaN and infinite numbers have no JSON form:
    ``invalid_field`` naming where, rather than a value no store can keep.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _RowRefused(
                t.INVALID_FIELD, f"{path} is {value!r}: NaN and infinity are not JSON numbers"
            )
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _RowRefused(
                t.INVALID_FIELD, f"{path} is {value}: NaN and infinity are not JSON numbers"
            )
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(k): native_json(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [native_json(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, datetime):
        return _utc_text(value)
    if isinstance(value, date | dt_time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def _object_payload(
    raw: Any, pre: Any = UNDECODED, *, required: bool = True
) -> dict[str, Any] | None:
    if raw is None:
        if required:
            raise _RowRefused(t.MISSING_FIELD, "PAYLOAD is empty; it must be a JSON object")
        return None
    value = decode_payload(raw) if pre is UNDECODED else pre
    if not isinstance(value, dict):
        raise _RowRefused(
            t.PAYLOAD_NOT_OBJECT,
            f"PAYLOAD must be a JSON object, got {type(value).__name__ if value is not None else 'null'}",
        )
    return value


def _fill_payload(
    row: ValidRow,
    data_type: DataType,
    raw: Any,
    pre: Any,
    texts: dict[str, list[str | None]],
    cols: dict[str, list[Any]],
    i: int,
    options: SyncOptions,
) -> None:
    if data_type is DataType.USER_ATTRIBUTES:
        payload = _object_payload(raw, pre)
        assert payload is not None
        _check_subscriptions(payload)
        _check_contact_attributes(payload)
        row.payload = payload
    elif data_type is DataType.CUSTOM_EVENTS:
        payload = _object_payload(raw, pre)
        assert payload is not None
        name = payload.get("name")
        if name is None:
            raise _RowRefused(t.MISSING_FIELD, "the event PAYLOAD has no 'name'")
        if not isinstance(name, str) or not name.strip():
            raise _RowRefused(t.INVALID_FIELD, "the event 'name' must be a non-empty string")
        _time_field(payload)
        _properties(payload)
        row.payload = payload
    elif data_type is DataType.PURCHASES:
        payload = _object_payload(raw, pre)
        assert payload is not None
        _check_purchase(payload)
        row.payload = payload
    elif data_type is DataType.USER_DELETES:
        if raw is not None and str(raw).strip() not in ("", "{}", "null"):
            raise _RowRefused(
                t.UNEXPECTED_PAYLOAD, "user deletes take an identifier only, no PAYLOAD"
            )
    elif data_type in (DataType.CATALOG_ITEMS, DataType.ACCOUNTS):
        item_id = _text(texts, ID, i)
        if item_id is None:
            raise _RowRefused(t.MISSING_FIELD, "ID is empty")
        row.item_id = item_id
        row.deleted = _deleted(cols, i)
        payload = _object_payload(raw, pre, required=not row.deleted)
        row.payload = payload or {}
        if data_type is DataType.ACCOUNTS:
            # An empty NAME keeps an existing account's name; the destination refuses it
            # (missing_field) for an account it does not hold yet (a new one needs a name).
            row.name = _text(texts, NAME, i)
            if options.account_fields is not None:
                dropped = sorted(k for k in row.payload if k not in options.account_fields)
                if dropped:
                    row.payload = {
                        k: v for k, v in row.payload.items() if k in options.account_fields
                    }
                if dropped and not row.deleted:
                    # A delete applies no field: nothing of it is "dropped" to look at.
                    row.warnings.append(
                        (
                            t.UNKNOWN_FIELD,
                            f"fields not in the account schema were dropped: {', '.join(dropped)}",
                        )
                    )


def _deleted(cols: dict[str, list[Any]], i: int) -> bool:
    values = cols.get(DELETED)
    if values is None or values[i] is None:
        return False
    value = values[i]
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal) and value in (0, 1):
        return bool(value)  # also 1.0 / 0.00 from a DOUBLE or DECIMAL column
    text = str(value).strip().lower()
    # The spellings PostgreSQL's boolean input accepts (and CSV exports write).
    if text in ("true", "t", "1", "yes", "y", "on"):
        return True
    if text in ("false", "f", "0", "no", "n", "off", ""):
        return False
    if _DECIMAL_TEXT.fullmatch(text) and Decimal(text) in (0, 1):
        # 1.0 / 0.00 as text: a DOUBLE column exported to CSV or kept as VARCHAR (pandas
        # writes 1.0 for a column with gaps), as the same value read from a number column.
        return Decimal(text) == 1
    raise _RowRefused(t.INVALID_FIELD, f"DELETED must be true or false, got {value!r}")


_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
"""A plain decimal number as text (no exponent, no blanks inside)."""


def _time_field(payload: dict[str, Any]) -> None:
    value = payload.get("time")
    if value is None:
        raise _RowRefused(t.MISSING_FIELD, "the PAYLOAD has no 'time' (ISO 8601)")
    if not isinstance(value, str) or parse_timestamp_us(value) is None:
        raise _RowRefused(t.INVALID_FIELD, f"'time' {value!r} is not an ISO 8601 timestamp")


def _properties(payload: dict[str, Any]) -> None:
    props = payload.get("properties")
    if props is not None and not isinstance(props, dict):
        raise _RowRefused(t.INVALID_FIELD, "'properties' must be a JSON object")


def _check_purchase(payload: dict[str, Any]) -> None:
    for name in ("product_id", "currency", "price", "time"):
        if payload.get(name) is None:
            raise _RowRefused(t.MISSING_FIELD, f"the purchase PAYLOAD has no '{name}'")
    product = payload["product_id"]
    if not isinstance(product, str) or not product.strip():
        raise _RowRefused(t.INVALID_FIELD, "'product_id' must be a non-empty string")
    currency = payload["currency"]
    if not isinstance(currency, str) or currency.upper() not in ISO_4217:
        raise _RowRefused(t.INVALID_FIELD, f"'currency' {currency!r} is not an ISO 4217 code")
    payload["currency"] = currency.upper()
    price = payload["price"]
    if isinstance(price, bool) or not isinstance(price, int | float):
        raise _RowRefused(t.INVALID_FIELD, f"'price' must be a number, got {price!r}")
    if isinstance(price, float) and not math.isfinite(price):
        raise _RowRefused(t.INVALID_FIELD, f"'price' must be a finite number, got {price!r}")
    # An optional field written as null (json_build_object of a NULL column) is absent.
    quantity = payload.get("quantity")
    if quantity is None:
        quantity = 1
    # An integral number written with a fraction (2.0, 2.00 from a NUMERIC column turned to
    # JSON) is that integer, as it is in a native STRUCT payload; 1.5 stays refused.
    if isinstance(quantity, float) and math.isfinite(quantity) and quantity.is_integer():
        quantity = int(quantity)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise _RowRefused(
            t.INVALID_FIELD, f"'quantity' must be a positive integer, got {quantity!r}"
        )
    if quantity > MAX_QUANTITY:
        raise _RowRefused(
            t.INVALID_FIELD, f"'quantity' must be at most {MAX_QUANTITY}, got {quantity!r}"
        )
    payload["quantity"] = quantity
    _time_field(payload)
    _properties(payload)


def _check_contact_attributes(payload: dict[str, Any]) -> None:
    """The standard ``email`` / ``phone`` attributes (they set the profile's address, which
    e-mail and phone identifiers match): text of the identifier's form, blank (no address, as
    warehouses often write an unknown value) or ``null``."""
    email = payload.get("email")
    if email is not None and (
        not isinstance(email, str) or (email.strip() and not EMAIL_RE.match(email.strip()))
    ):
        raise _RowRefused(t.INVALID_FIELD, f"'email' {email!r} is not an e-mail address")
    phone = payload.get("phone")
    if phone is not None and (
        not isinstance(phone, str) or (phone.strip() and not PHONE_RE.match(phone.strip()))
    ):
        raise _RowRefused(t.INVALID_FIELD, f"'phone' {phone!r} is not a phone number")


def _check_subscriptions(payload: dict[str, Any]) -> None:
    for name in SUBSCRIPTION_FIELDS:
        value = payload.get(name)
        if value is not None and value not in SUBSCRIPTION_STATES:
            raise _RowRefused(
                t.INVALID_FIELD,
                f"'{name}' must be one of {', '.join(sorted(SUBSCRIPTION_STATES))}, got {value!r}",
            )
    groups = payload.get("subscription_groups")
    if groups is None:
        return
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise _RowRefused(t.INVALID_FIELD, "'subscription_groups' must be an array of objects")
    for group in groups:
        if not isinstance(group.get("subscription_group_id"), str) or (
            group.get("subscription_state") not in GROUP_STATES
        ):
            raise _RowRefused(
                t.INVALID_FIELD,
                "each subscription group needs 'subscription_group_id' and "
                "'subscription_state' (subscribed or unsubscribed)",
            )


# ------------------------------------------------------------------ raw rows for the log
def json_safe(value: Any) -> Any:
    """A JSON-serialisable version of a source value (datetimes ISO, bytes base64; NaN and
    infinite numbers as their text, which no JSON column refuses)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return _utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)


def _utc_text(value: datetime) -> str:
    """ISO 8601 text of the UTC instant (naive = UTC); as written when that instant is outside
    years 1-9999 (``9999-12-31 23:00-05:00``)."""
    try:
        return to_utc(value).isoformat()
    except OverflowError:
        return value.isoformat()


def raw_row(cols: dict[str, list[Any]], i: int) -> dict[str, Any]:
    """The source row ``i`` as a JSON-safe dict (kept with row errors)."""
    return {name: json_safe(values[i]) for name, values in cols.items()}


# ------------------------------------------------------------------ columnar fast path
_NUMBER_FORMS = "[0-9][eE][-+]?[0-9]|-0\\.0*([^0-9]|$)"
_EDGE_SPACE = "^[\\x1c-\\x1f\\x85]|[\\x1c-\\x1f\\x85]$"
"""Characters ``str.strip`` removes that Arrow's whitespace trim keeps."""


def _is_text(col: pa.Array) -> bool:
    return pa.types.is_string(col.type) or pa.types.is_large_string(col.type)


def _mask(values: pa.Array) -> np.ndarray:
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False).astype(bool)


def attribute_columns(
    batch: pa.RecordBatch,
    *,
    start_position: int,
    hashes: Sequence[str],
    updated_us: Sequence[int | None],
) -> tuple[t.AttributeRows, list[RowError]] | None:
    """Validate a ``user_attributes`` batch column-wise, or ``None`` for the per-row path.

    Applies when every row either is *simple* — identified by an external id only, with a
    ``UPDATED_AT``, and a one-line JSON object payload without subscription fields,
    ``email`` / ``phone`` attributes, very long digit runs or NUL escapes — or is refused. Simple rows are checked with vectorised Arrow
    kernels and one msgspec decode of their joined payloads, and stay columns; the others go
    through :func:`validate_batch` and must all come out as row errors (else ``None``: the
    caller validates the whole batch row by row, so mixed batches keep the exact semantics).
    """
    n = batch.num_rows
    names = batch.schema.names
    if n == 0 or "EXTERNAL_ID" not in names or PAYLOAD not in names:
        return None
    ext = batch.column("EXTERNAL_ID")
    payload = batch.column(PAYLOAD)
    if not _is_text(ext) or not _is_text(payload):
        return None
    code, present = identifier_verdicts(batch)
    upd = pa.array(updated_us, pa.int64())
    simple = (code == IDENT_OK) & present["EXTERNAL_ID"] & _mask(pc.is_valid(upd))
    simple &= _mask(pc.equal(ext, pc.utf8_trim_whitespace(ext)))
    simple &= ~_mask(pc.match_substring_regex(ext, _EDGE_SPACE))
    simple &= _mask(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(payload)), 0))
    # Each per-row search below runs only when the batch's payload bytes taken together hold
    # a match (none there: none in any row); Python's and numpy's whole-buffer scans cost a
    # fraction of Arrow's per-row kernels.
    text = _text_bytes(payload)
    raw = text.tobytes()
    # Subscription fields and the e-mail / phone attributes are checked per row.
    for needle in ("\n", "\r", "subscri", "\\u0000", '"email"', '"phone"'):
        if needle.encode() in raw:
            simple &= ~_mask(pc.match_substring(payload, needle))
    simple &= ~_mask(pc.match_substring_regex(payload, _LONG_DIGITS.pattern.decode()))
    # Numbers PostgreSQL's jsonb would read back differently (1e3 as 1000, -0.0 as 0.0).
    if b"-0." in raw or _has_exponent(text):
        simple &= ~_mask(pc.match_substring_regex(payload, _NUMBER_FORMS))
    if not simple.any():
        return None
    candidates = np.flatnonzero(simple)
    simple[candidates] = _object_mask(pc.filter(payload, pa.array(simple, pa.bool_())))
    simple_idx = np.flatnonzero(simple)
    if len(simple_idx) == 0:
        return None
    mask = pa.array(simple, pa.bool_())
    payloads = pc.filter(payload, mask)
    errors: list[RowError] = []
    other_idx = np.flatnonzero(~simple)
    if len(other_idx):
        others = batch.take(pa.array(other_idx))
        verdicts = validate_batch(
            DataType.USER_ATTRIBUTES,
            others,
            start_position=0,
            hashes=[hashes[i] for i in other_idx.tolist()],
            updated_us=[updated_us[i] for i in other_idx.tolist()],
        )
        for i, verdict in zip(other_idx.tolist(), verdicts, strict=True):
            if not isinstance(verdict, RowError):
                return None
            errors.append(replace(verdict, position=start_position + i))
    us = upd.to_numpy(zero_copy_only=False)
    rows = t.AttributeRows(
        positions=simple_idx.astype(np.int64) + start_position,
        hashes=list(hashes) if len(other_idx) == 0 else [hashes[i] for i in simple_idx.tolist()],
        updated_us=np.asarray(us[simple_idx], dtype=np.int64),
        external_ids=pc.filter(ext, mask),
        payloads=payloads,
    )
    return rows, errors


def _text_bytes(col: pa.Array) -> np.ndarray:
    """The UTF-8 bytes of a string array's values, end to end (``uint8``, no copy)."""
    _validity, offsets, data = col.buffers()
    if data is None or offsets is None or len(col) == 0:
        return np.zeros(0, dtype=np.uint8)
    kind = np.int64 if pa.types.is_large_string(col.type) else np.int32
    ends = np.frombuffer(offsets, dtype=kind)
    start, stop = int(ends[col.offset]), int(ends[col.offset + len(col)])
    return np.frombuffer(data, dtype=np.uint8)[start:stop]


def _is_digit(text: np.ndarray) -> np.ndarray:
    return (text >= ord("0")) & (text <= ord("9"))


def _has_exponent(text: np.ndarray) -> bool:
    """Whether ``text`` holds an ASCII digit followed by ``e`` or ``E``."""
    after = text[1:]
    return bool(np.any(((after == ord("e")) | (after == ord("E"))) & _is_digit(text[:-1])))


def _object_mask(payloads: pa.Array) -> np.ndarray:
    """Per (one-line, non-blank) payload: whether it is a JSON object msgspec decodes.

    One decode of the joined rows; only when that fails is each row decoded on its own.
    """
    rows = payloads if pa.types.is_large_string(payloads.type) else payloads.cast(pa.large_string())
    offsets = pa.array([0, len(rows)], pa.int64())
    joined = pc.binary_join(
        pa.LargeListArray.from_arrays(offsets, rows), pa.scalar("\n", pa.large_string())
    )
    _validity, offs, buf = joined.buffers()
    assert offs is not None
    start, end = np.frombuffer(offs, dtype=np.int64)[joined.offset : joined.offset + 2].tolist()
    data = memoryview(buf)[start:end] if buf is not None else b""
    with gc_paused():
        try:
            values = _LINES.decode_lines(data)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
            values = None
        if values is not None and len(values) == len(rows):
            return np.fromiter((type(v) is dict for v in values), dtype=bool, count=len(rows))
        out = np.zeros(len(rows), dtype=bool)
        for i, text in enumerate(rows.to_pylist()):
            with suppress(msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                out[i] = type(_LINES.decode(text)) is dict
        return out
