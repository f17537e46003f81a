"""The whole-batch shortcuts of the columnar paths agree with the per-row code they skip."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.compute as pc

from zerocopy.destinations import builtin
from zerocopy.state.sync_models import braze_id_of
from zerocopy.sync import validate
from zerocopy.sync.types import Identifier

PIECES = ['{"a": 1}', "1e3", "2E-1", "e1", "x9", "-0.0", "-0.5", "subscri", "\n", "é", "", " "]


def _random_texts(rng: random.Random, n: int) -> list[str | None]:
    out: list[str | None] = []
    for _ in range(n):
        if rng.random() < 0.1:
            out.append(None)
        else:
            out.append("".join(rng.choice(PIECES) for _ in range(rng.randint(0, 3))))
    return out


def test_text_bytes_are_the_values_of_a_slice_end_to_end() -> None:
    values = ["ab", None, "cé", "", "d"]
    for typ in (pa.string(), pa.large_string()):
        arr = pa.array(values, typ)
        for start in range(len(values)):
            for stop in range(start, len(values) + 1):
                piece = arr.slice(start, stop - start)
                expected = "".join(v for v in values[start:stop] if v is not None).encode()
                assert validate._text_bytes(piece).tobytes() == expected


def test_exponent_scan_agrees_with_the_per_row_regex() -> None:
    rng = random.Random(8)
    for _ in range(300):
        arr = pa.array(_random_texts(rng, rng.randint(0, 6)), pa.string())
        piece = arr.slice(rng.randint(0, len(arr)))
        per_row = pc.any(pc.match_substring_regex(piece, "[0-9][eE]")).as_py() or False
        if per_row:  # a row holds one, so the joined bytes do (the converse need not hold)
            assert validate._has_exponent(validate._text_bytes(piece))
        if not validate._has_exponent(validate._text_bytes(piece)):
            assert not per_row


def _fast(batch: pa.RecordBatch) -> list[int] | None:
    n = batch.num_rows
    got = validate.attribute_columns(
        batch, start_position=0, hashes=[f"h{i}" for i in range(n)], updated_us=list(range(n))
    )
    return None if got is None else got[0].positions.tolist()


def test_a_row_that_needs_the_per_row_path_is_found_and_rows_around_it_stay_fast() -> None:
    plain = ['{"a": 1}', '{"b": "x"}']
    special = [
        '{"n": 1e3}',
        '{"n": 2E-1}',
        '{"n": -0.0}',
        '{"subscribed": true}',
        '{"email": "a@b.c"}',
        '{"phone": "+1555"}',
        '{"s": "\\u0000"}',
        '{"n": 12345678901234567890}',
    ]
    for text in special:
        payloads = [*plain, text, *plain]
        batch = pa.RecordBatch.from_pydict(
            {"EXTERNAL_ID": [f"u{i}" for i in range(len(payloads))], "PAYLOAD": payloads}
        )
        assert _fast(batch) is None, text  # the row goes through the per-row validation
        assert _fast(batch.slice(1, 3)) is None, text  # also from a slice holding it
        # A slice without it (the bytes of the whole column still hold it) stays columnar.
        assert _fast(batch.slice(0, 2)) == [0, 1], text
        assert _fast(batch.slice(3, 2)) == [0, 1], text


def test_profile_and_braze_ids_in_bulk() -> None:
    ext = [f"u{i}" for i in range(50)] + ["é∂ü", "a\tb", ""]
    ws = "0b6a3c1e-0000-4000-8000-000000000001"
    pids, brazes = builtin._profile_and_braze_ids(ws, pa.array(ext))
    expected = [builtin.profile_id(ws, Identifier("external_id", e)) for e in ext]
    assert pids.to_pylist() == expected
    assert brazes.to_pylist() == [braze_id_of(p) for p in expected]
    assert builtin._profile_and_braze_ids(ws, pa.array([], pa.string()))[0].to_pylist() == []


def test_copy_stamps_are_the_strftime_text() -> None:
    micros = [0, 1, -62_135_596_800_000_000, 253_402_300_799_999_999, 1_767_225_600_123_456]
    naive = pa.array(micros, pa.int64()).cast(pa.timestamp("us"))
    expected = [f"{t}+00" for t in pc.strftime(naive, format="%Y-%m-%d %H:%M:%S").to_pylist()]
    assert builtin._utc_stamps(micros).to_pylist() == expected
