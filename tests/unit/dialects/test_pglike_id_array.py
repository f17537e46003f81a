"""Ids read by the Postgres-like adapters become Arrow without ``pa.array`` for text."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from dialects.pglike import _id_array

TEXT_OID = 25


@settings(deadline=None)
@given(st.lists(st.text(), max_size=50))
def test_text_ids_equal_what_pa_array_builds(values: list[str]) -> None:
    got = _id_array(values, TEXT_OID)
    got.validate(full=True)
    assert got.type == pa.string()
    assert got.to_pylist() == values


def test_nulls_and_non_text_take_the_general_path() -> None:
    assert _id_array(["a", None], TEXT_OID).to_pylist() == ["a", None]
    assert _id_array([3, 1], 20).to_pylist() == [3, 1]
    assert _id_array([], TEXT_OID).to_pylist() == []
