"""Pure helpers of the refresh engine."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.refresh import catalog_mapping
from zerocopy.refresh.engine import _json_safe, _status_for, warehouse_column_name
from zerocopy.state.models import RunStatus


def test_catalog_mapping_groups_by_schema() -> None:
    rows = [
        SimpleNamespace(
            schema="marketing",
            name="users",
            columns=[{"name": "external_user_id", "data_type": "VARCHAR"}, {"name": "age"}],
        ),
        SimpleNamespace(schema="marketing", name="events", columns=[]),
        SimpleNamespace(schema="other", name="t", columns=None),
    ]
    assert catalog_mapping(rows) == {
        "marketing": {"users": {"external_user_id": "VARCHAR", "age": ""}, "events": {}},
        "other": {"t": {}},
    }


def test_status_for_codes() -> None:
    assert _status_for(ZerocopyError(errors.TIMED_OUT, "x")) == RunStatus.TIMED_OUT
    assert _status_for(ZerocopyError(errors.CANCELLED, "x")) == RunStatus.CANCELLED
    assert _status_for(ZerocopyError(errors.AUTH_FAILED, "x")) == RunStatus.FAILED


def test_json_safe_details() -> None:
    assert _json_safe({"a": 1}, 2, 3) == {"a": 1, "line": 2, "column": 3}
    assert _json_safe({"a": object()}, None, None)["a"].startswith("<object")


@pytest.mark.parametrize(
    ("column", "dialect", "stored"),
    [
        ("external_user_id", "snowflake", "EXTERNAL_USER_ID"),
        ("external_user_id", "duckdb", "external_user_id"),
        ("ExternalId", "postgres", "externalid"),
        ("ExternalId", "redshift", "externalid"),
        ("user id", "snowflake", "user id"),  # needs quoting: case kept
        (" external_user_id ", "bigquery", "external_user_id"),
    ],
)
def test_warehouse_column_name_follows_case_folding(column: str, dialect: str, stored: str) -> None:
    assert warehouse_column_name(column, dialect) == stored
