"""A small segment's chunk is stored uncompressed; a big one with zstd; both read back alike."""

from __future__ import annotations

import pyarrow as pa
import pytest

from zerocopy.state.membership import RAW_CHUNK_ROWS, decode_chunk, encode_chunk, encode_chunks


def ids(n: int) -> pa.Array:
    return pa.array([f"user-{i:07d}" for i in range(n)], pa.string())


def test_a_small_chunk_holds_its_ids_as_plain_bytes() -> None:
    chunk = encode_chunk(ids(500), 0)
    assert b"user-0000000user-0000001user-0000002" in chunk.blob  # not compressed
    assert decode_chunk(chunk.blob).to_pylist() == ids(500).to_pylist()
    assert (chunk.first_id, chunk.last_id, chunk.count) == ("user-0000000", "user-0000499", 500)


def test_a_full_chunk_is_compressed() -> None:
    chunk = encode_chunk(ids(RAW_CHUNK_ROWS), 0)
    assert b"user-0000000user-0000001user-0000002" not in chunk.blob
    assert len(chunk.blob) < RAW_CHUNK_ROWS * len("user-0000000") / 2
    assert decode_chunk(chunk.blob).to_pylist() == ids(RAW_CHUNK_ROWS).to_pylist()


@pytest.mark.parametrize("n", [1, RAW_CHUNK_ROWS - 1, RAW_CHUNK_ROWS, 3 * RAW_CHUNK_ROWS + 5])
def test_versions_mixing_both_encodings_read_back_in_order(n: int) -> None:
    chunks = encode_chunks(ids(n), RAW_CHUNK_ROWS)
    assert [v for c in chunks for v in decode_chunk(c.blob).to_pylist()] == ids(n).to_pylist()
