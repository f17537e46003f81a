"""Which ``UPDATED_AT`` column types hold instants and which hold naive (UTC) values.

A sync compares a naive column with a naive UTC watermark and a zoned one with an aware
watermark; taking ``TIMESTAMP_NTZ`` (Snowflake, Databricks) for a zoned type because its name
ends in ``TZ`` bound an aware value against naive values.
"""

from __future__ import annotations

import pytest

from dialects.protocol import ColumnInfo, TableInfo
from zerocopy.sync.engine import is_zoned_type, resolve_table
from zerocopy.sync.types import DataType

ZONED = [
    "TIMESTAMPTZ",
    "timestamp with time zone",
    "TIMESTAMP WITH TIME ZONE",
    "TIMESTAMP(6) WITH TIME ZONE",
    "TIMESTAMP_TZ",
    "TIMESTAMP_TZ(9)",
    "TIMESTAMP_LTZ",
    "timestamp_ltz(3)",
    "TIMESTAMP WITH LOCAL TIME ZONE",
    "datetimeoffset",
    "DATETIMEOFFSET(7)",
]
NAIVE = [
    "TIMESTAMP_NTZ",
    "TIMESTAMP_NTZ(9)",
    "timestamp_ntz",
    "timestamp without time zone",
    "TIMESTAMP(3) WITHOUT TIME ZONE",
    "TIMESTAMP",
    "TIMESTAMP_NS",
    "TIMESTAMP_MS",
    "DATETIME",
    "datetime2",
    "smalldatetime",
    "DATE",
]


@pytest.mark.parametrize("type_name", ZONED)
def test_zoned_types(type_name: str) -> None:
    assert is_zoned_type(type_name)


@pytest.mark.parametrize("type_name", NAIVE)
def test_naive_types_are_not_zoned(type_name: str) -> None:
    assert not is_zoned_type(type_name)


def _table(updated_type: str) -> list[TableInfo]:
    columns = (
        ColumnInfo("updated_at", updated_type),
        ColumnInfo("external_id", "VARCHAR"),
        ColumnInfo("payload", "VARCHAR"),
    )
    return [TableInfo(name="USERS", kind="table", columns=columns)]


@pytest.mark.parametrize(
    ("type_name", "zoned", "text"),
    [
        ("TIMESTAMP_NTZ(9)", False, False),
        ("TIMESTAMP_LTZ(9)", True, False),
        ("TIMESTAMP_TZ(9)", True, False),
        ("VARCHAR(30)", False, True),
        ("DATE", False, False),
    ],
)
def test_resolve_table_reads_the_updated_at_type(type_name: str, zoned: bool, text: bool) -> None:
    resolved = resolve_table(_table(type_name), "users", DataType.USER_ATTRIBUTES)
    assert (resolved.updated_at_tz, resolved.updated_at_text) == (zoned, text)
