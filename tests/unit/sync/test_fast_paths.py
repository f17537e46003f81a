"""The vectorised fast paths give exactly what the per-value code gave (ids, hashes, times)."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from zerocopy.destinations import builtin
from zerocopy.state.sync_models import braze_id_of, profile_id_of_braze
from zerocopy.sync import validate
from zerocopy.sync.types import Identifier

UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0}


def test_profile_ids_in_bulk_equal_profile_id() -> None:
    ext = [f"u{i}" for i in range(500)] + ["é∂ü", "a\tb", "x\\y", "", "😀" * 10]
    ws = "0b6a3c1e-0000-4000-8000-000000000001"
    expected = [builtin.profile_id(ws, Identifier("external_id", e)) for e in ext]
    assert builtin._profile_ids(ws, ext) == expected
    assert builtin._profile_ids_arrow(ws, pa.array(ext)).to_pylist() == expected
    assert builtin._profile_ids(ws, []) == []


def test_braze_ids_map_back_to_their_profile_id() -> None:
    pid = builtin.profile_id("ws", Identifier("external_id", "u1"))
    assert profile_id_of_braze(braze_id_of(pid)) == pid
    for other in ("", "bz-1", pid, braze_id_of(pid).upper(), braze_id_of(pid)[:-1] + "g"):
        assert profile_id_of_braze(other) is None


def test_copy_escape_only_copies_when_needed() -> None:
    plain = pa.array(["abc", '{"a": 1}', None])
    assert builtin._copy_escape(plain) is plain
    mixed = pa.array(["a\\b", "t\tx", "n\nx", "r\rx", "ok", None])
    assert builtin._copy_escape(mixed).to_pylist() == [
        "a\\\\b",
        "t\\tx",
        "n\\nx",
        "r\\rx",
        "ok",
        None,
    ]
    assert bytes(builtin._copy_data(pa.array(["a\tb", "c"]))) == b"a\tb\nc\n"


def _micros_per_value(col: pa.Array) -> list[int | None]:
    """The per-value conversion ``updated_micros`` replaced (the reference)."""
    typ = col.type
    if pa.types.is_timestamp(typ):
        raw, per = col.view(pa.int64()), UNITS[typ.unit]
    else:
        raw = col.view(pa.int32() if typ.bit_width == 32 else pa.int64())
        per = 86_400_000_000 if typ.bit_width == 32 else 1_000
    out: list[int | None] = []
    for v in raw.to_pylist():
        if v is None:
            out.append(None)
            continue
        us = v // 1_000 if per == 0 else v * per
        out.append(us if validate._MIN_US <= us <= validate._MAX_US else None)
    return out


@pytest.mark.parametrize("unit", list(UNITS))
@pytest.mark.parametrize("tz", [None, "UTC"])
def test_updated_micros_vectorised_equals_per_value(unit: str, tz: str | None) -> None:
    rng = random.Random(7)
    big = 2**63 - 1
    values = [None, 0, -1, 1, big, -big] + [rng.randint(-(2**62), 2**62) for _ in range(300)]
    values += [rng.randint(-(10**13), 10**13) for _ in range(300)]
    col = pa.array(values, pa.int64()).cast(pa.timestamp(unit, tz=tz))
    assert validate.updated_micros(col) == _micros_per_value(col)


def test_updated_micros_of_dates_equals_per_value() -> None:
    rng = random.Random(8)
    d32 = pa.array(
        [None, 0, -5, 2**31 - 1, -(2**31)] + [rng.randint(-(2**31), 2**31 - 1) for _ in range(200)],
        pa.int32(),
    ).cast(pa.date32())
    d64 = pa.array(
        [None, 0, -5, 2**63 - 1] + [rng.randint(-(2**62), 2**62) for _ in range(200)], pa.int64()
    ).cast(pa.date64())
    for col in (d32, d64):
        assert validate.updated_micros(col) == _micros_per_value(col)


@pytest.mark.parametrize("unit", list(UNITS))
def test_utc_timestamps_as_text_equal_arrows_cast(unit: str) -> None:
    """Row hashes hash this text: it must not change (stored watermarks keep hashes)."""
    rng = random.Random(9)
    per = UNITS[unit]
    lo, hi = (
        (-(2**63) + 1, 2**63 - 1)
        if per == 0
        else (-(-validate._MIN_US // per), validate._MAX_US // per)
    )
    values = [None, lo, hi, 0, -1, 1] + [rng.randint(lo, hi) for _ in range(3000)]
    col = pa.array(values, pa.int64()).cast(pa.timestamp(unit, tz="UTC"))
    fast = validate._utc_as_text(col)
    assert fast is not None and fast.equals(pc.cast(col, pa.string()))
    if per:  # out of years 1-9999: Arrow's own (slow) cast, whatever it prints
        beyond = pa.array([0, hi + 1], pa.int64()).cast(pa.timestamp(unit, tz="UTC"))
        assert validate._utc_as_text(beyond) is None
        assert validate._as_text(beyond).equals(pc.cast(beyond, pa.string()))
    zoned = pa.array([0], pa.int64()).cast(pa.timestamp(unit, tz="Europe/Paris"))
    assert validate._utc_as_text(zoned) is None
