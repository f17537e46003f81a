"""The fast paths give exactly what the row-by-row paths give (payload decoding, ids, hashes)."""

from __future__ import annotations

import gc
import hashlib
import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pyarrow as pa
import pytest

from zerocopy.destinations.builtin import PROFILE_NAMESPACE, _sqlite_datetime, profile_id
from zerocopy.sync.types import DataType, Identifier, RowError, ValidRow
from zerocopy.sync.validate import (
    UNDECODED,
    decode_payload,
    decode_payloads,
    gc_paused,
    row_hashes,
    validate_batch,
)

PAYLOADS = [
    '{"a": 1}',
    '  {"b": [1, 2, {"c": null}]}  ',
    None,
    "",
    "   ",
    '{"pretty":\n 1}',
    "[1, 2]",
    '"text"',
    "null",
    '{"big": 123456789012345678901234567890}',
    '{"dup": 1, "dup": 2}',
    '{"x": 1.0000000000000002, "y": -0.0, "z": "é\\u00e9"}',
]


def _orjson_or_error(raw: str | None) -> object:
    try:
        return decode_payload(raw)
    except Exception as exc:
        return type(exc).__name__


@pytest.mark.parametrize("typ", [pa.string(), pa.large_string()])
def test_decode_payloads_matches_one_by_one(typ: pa.DataType) -> None:
    values = decode_payloads(pa.array(PAYLOADS, typ))
    for raw, value in zip(PAYLOADS, values, strict=True):
        expected = _orjson_or_error(raw)
        if value is UNDECODED:
            continue
        assert value == expected, raw
        assert orjson.dumps(value) == orjson.dumps(expected), raw
    # Blank, null, multi-line rows and integers past 64 bits are left to the one-by-one path.
    assert values[2] is UNDECODED and values[3] is UNDECODED and values[5] is UNDECODED
    assert values[9] is UNDECODED
    assert values[0] == {"a": 1} and values[6] == [1, 2] and values[8] is None


@pytest.mark.parametrize(
    "bad",
    [
        ['{"a": 1} {"b": 2}', '{"c": 3}'],  # two values in one row
        ["[1,", "2]"],  # rows that only parse joined
        ["[1,2", "3],4"],  # same count joined as rows, each invalid alone
        ['{"a": 1}', '{"a": '],
    ],
)
def test_rows_that_only_parse_joined_are_decoded_one_by_one(bad: list[str]) -> None:
    values = decode_payloads(pa.array(bad))
    assert all(v is UNDECODED for v in values)
    verdicts = validate_batch(
        DataType.USER_ATTRIBUTES,
        pa.RecordBatch.from_pydict(
            {
                "UPDATED_AT": [datetime(2026, 1, 1, tzinfo=UTC)] * len(bad),
                "EXTERNAL_ID": [f"u{i}" for i in range(len(bad))],
                "PAYLOAD": bad,
            }
        ),
        start_position=0,
    )
    for raw, verdict in zip(bad, verdicts, strict=True):
        try:
            ok = isinstance(orjson.loads(raw), dict)
        except orjson.JSONDecodeError:
            ok = False
        assert isinstance(verdict, ValidRow) == ok
        if not ok:
            assert isinstance(verdict, RowError)
            assert verdict.code in ("invalid_json", "payload_not_object")


def test_profile_id_is_uuid5() -> None:
    for ident in (
        Identifier("external_id", "u1"),
        Identifier("alias", "name", "label"),
        Identifier("email", "é@example.com"),
    ):
        key = f"ws|{ident.kind}|{ident.value}|{ident.label or ''}"
        assert profile_id("ws", ident) == str(uuid.uuid5(PROFILE_NAMESPACE, key))


def test_sqlite_datetime_text_matches_sqlalchemy() -> None:
    from sqlalchemy.dialects import sqlite

    from zerocopy.state.sync_models import StoreProfile

    dialect = sqlite.dialect()
    column = StoreProfile.__table__.c.updated_at  # type: ignore[attr-defined]
    bind = column.type.dialect_impl(dialect).bind_processor(dialect)
    for value in (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 3, 4, 5, 6, 7, 89, tzinfo=timezone(timedelta(hours=2))),
    ):
        assert _sqlite_datetime(value) == bind(value)
    with pytest.raises(ValueError):
        _sqlite_datetime(datetime(2026, 1, 1))


def test_row_hashes_are_blake2b_of_the_joined_text() -> None:
    batch = pa.RecordBatch.from_pydict({"A": ["x", None, "é"], "B": [1, 2, None]})
    expected = [
        hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        for text in ("x\x1f1", "\x00\x1f2", "é\x1f\x00")
    ]
    assert row_hashes(batch) == expected


def test_gc_paused_restores_the_collector() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # was off before: stays off
    finally:
        gc.enable()
