"""Every identifier and payload rule, each with the exact row-error code it produces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pytest

from zerocopy.sync.types import DataType, RowError, ValidRow
from zerocopy.sync.validate import (
    SyncOptions,
    canonical_columns,
    missing_columns,
    row_hashes,
    updated_micros,
    validate_batch,
)
from zerocopy.sync.watermark import to_micros

T = datetime(2026, 1, 1, 12, 0)
IDS = ("EXTERNAL_ID", "ALIAS_NAME", "ALIAS_LABEL", "BRAZE_ID", "EMAIL", "PHONE")


def one(
    data_type: DataType, options: SyncOptions | None = None, **cols: Any
) -> ValidRow | RowError:
    """Validate a single row given as ``COLUMN=value``."""
    cols.setdefault("UPDATED_AT", T)
    if data_type.is_user_type:
        for name in IDS:
            cols.setdefault(name, None)
    fields = {k: [v] for k, v in cols.items()}
    schema = pa.schema(
        [
            pa.field(
                k,
                pa.timestamp("us")
                if k == "UPDATED_AT" and isinstance(v[0], datetime | type(None))
                else pa.string(),
            )
            if k in IDS or k in ("UPDATED_AT", "PAYLOAD", "ID", "NAME")
            else pa.field(k, pa.infer_type(v))
            for k, v in fields.items()
        ]
    )
    batch = pa.RecordBatch.from_pydict(fields, schema=schema)
    (verdict,) = validate_batch(data_type, batch, start_position=7, options=options)
    return verdict


def code(verdict: ValidRow | RowError) -> str | None:
    return verdict.code if isinstance(verdict, RowError) else None


ATTR = DataType.USER_ATTRIBUTES
OK = '{"plan": "pro"}'


@pytest.mark.parametrize(
    ("cols", "expected"),
    [
        ({"EXTERNAL_ID": "u1"}, None),
        ({"ALIAS_NAME": "a1", "ALIAS_LABEL": "crm"}, None),
        ({"BRAZE_ID": "bz1"}, None),
        ({"EMAIL": "x@example.com"}, None),
        ({"PHONE": "+15551234567"}, None),
        ({"EMAIL": "x@example.com", "PHONE": "+15551234567"}, None),
        ({}, "no_identifier"),
        ({"EXTERNAL_ID": "  "}, "no_identifier"),
        ({"EXTERNAL_ID": "u1", "EMAIL": "x@example.com"}, "multiple_identifiers"),
        ({"EXTERNAL_ID": "u1", "BRAZE_ID": "bz"}, "multiple_identifiers"),
        ({"ALIAS_NAME": "a", "ALIAS_LABEL": "l", "PHONE": "+1555"}, "multiple_identifiers"),
        ({"ALIAS_NAME": "a1"}, "incomplete_alias"),
        ({"ALIAS_LABEL": "crm"}, "incomplete_alias"),
        ({"EMAIL": "not-an-email"}, "invalid_identifier"),
        ({"PHONE": "call me"}, "invalid_identifier"),
    ],
)
def test_identifier_rules(cols: dict[str, str], expected: str | None) -> None:
    assert code(one(ATTR, PAYLOAD=OK, **cols)) == expected


def test_email_identifies_when_email_and_phone_come_together() -> None:
    row = one(ATTR, PAYLOAD=OK, EMAIL="X@Example.com", PHONE="+15551234567")
    assert isinstance(row, ValidRow)
    assert row.identifier is not None and row.identifier.kind == "email"
    assert row.identifier.value == "x@example.com" and row.phone == "+15551234567"


def test_alias_keeps_both_halves() -> None:
    row = one(ATTR, PAYLOAD=OK, ALIAS_NAME="a1", ALIAS_LABEL="crm")
    assert isinstance(row, ValidRow) and row.identifier is not None
    assert (row.identifier.kind, row.identifier.value, row.identifier.label) == (
        "alias",
        "a1",
        "crm",
    )


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (OK, None),
        ('{"nested": {"a": [1, {"b": 2}]}, "pets": [{"name": "x"}]}', None),
        ('{"first_name": null}', None),
        ('{"email_subscribe": "opted_in", "push_subscribe": "unsubscribed"}', None),
        (
            '{"subscription_groups": [{"subscription_group_id": "g", "subscription_state": "subscribed"}]}',
            None,
        ),
        ('{"email_subscribe": "maybe"}', "invalid_field"),
        (
            '{"subscription_groups": [{"subscription_group_id": "g", "subscription_state": "x"}]}',
            "invalid_field",
        ),
        ('{"subscription_groups": "g"}', "invalid_field"),
        ('{"plan": ', "invalid_json"),
        ("not json", "invalid_json"),
        ("[1, 2]", "payload_not_object"),
        ('"text"', "payload_not_object"),
        ("null", "payload_not_object"),
        (None, "missing_field"),
    ],
)
def test_attribute_payloads(payload: str | None, expected: str | None) -> None:
    assert code(one(ATTR, EXTERNAL_ID="u1", PAYLOAD=payload)) == expected


def test_null_attribute_value_is_kept_as_a_removal() -> None:
    row = one(ATTR, EXTERNAL_ID="u1", PAYLOAD='{"first_name": null, "plan": "pro"}')
    assert isinstance(row, ValidRow) and row.payload == {"first_name": None, "plan": "pro"}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ('{"name": "login", "time": "2026-01-01T00:00:00Z"}', None),
        ('{"name": "login", "time": "2026-01-01T00:00:00", "properties": {"a": 1}}', None),
        ('{"time": "2026-01-01T00:00:00Z"}', "missing_field"),
        ('{"name": "", "time": "2026-01-01T00:00:00Z"}', "invalid_field"),
        ('{"name": 3, "time": "2026-01-01T00:00:00Z"}', "invalid_field"),
        ('{"name": "login"}', "missing_field"),
        ('{"name": "login", "time": "soon"}', "invalid_field"),
        ('{"name": "login", "time": 1700000000}', "invalid_field"),
        ('{"name": "login", "time": "2026-01-01T00:00:00Z", "properties": []}', "invalid_field"),
        ("[]", "payload_not_object"),
        ("{", "invalid_json"),
    ],
)
def test_event_payloads(payload: str, expected: str | None) -> None:
    assert code(one(DataType.CUSTOM_EVENTS, EXTERNAL_ID="u1", PAYLOAD=payload)) == expected


BUY = {"product_id": "sku", "currency": "USD", "price": 9.5, "time": "2026-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, None),
        ({"quantity": 3, "properties": {"size": "L"}}, None),
        ({"currency": "eur"}, None),
        ({"product_id": None}, "missing_field"),
        ({"currency": None}, "missing_field"),
        ({"price": None}, "missing_field"),
        ({"time": None}, "missing_field"),
        ({"product_id": ""}, "invalid_field"),
        ({"currency": "EURO"}, "invalid_field"),
        ({"currency": "ABC"}, "invalid_field"),
        ({"price": "9.5"}, "invalid_field"),
        ({"price": True}, "invalid_field"),
        ({"quantity": 0}, "invalid_field"),
        ({"quantity": 1.5}, "invalid_field"),
        ({"quantity": -2}, "invalid_field"),
        ({"quantity": 0.0}, "invalid_field"),
        ({"quantity": 2.0}, None),  # an integer written with a fraction (NUMERIC → JSON)
        ({"quantity": 1e300}, "invalid_field"),  # integral, but past the store's 32 bits
        ({"time": "2026-13-01"}, "invalid_field"),
        ({"properties": "x"}, "invalid_field"),
    ],
)
def test_purchase_payloads(changes: dict[str, Any], expected: str | None) -> None:
    import json

    payload = {k: v for k, v in {**BUY, **changes}.items() if v is not None}
    verdict = one(DataType.PURCHASES, EXTERNAL_ID="u1", PAYLOAD=json.dumps(payload))
    assert code(verdict) == expected
    if expected is None:
        assert isinstance(verdict, ValidRow)
        assert verdict.payload["quantity"] == changes.get("quantity", 1)
        assert type(verdict.payload["quantity"]) is int
        assert verdict.payload["currency"] == verdict.payload["currency"].upper()


@pytest.mark.parametrize(
    ("cols", "expected"),
    [
        ({"EXTERNAL_ID": "u1"}, None),
        ({"ALIAS_NAME": "a", "ALIAS_LABEL": "l"}, None),
        ({"BRAZE_ID": "bz"}, None),
        ({"EMAIL": "x@example.com"}, "invalid_identifier"),
        ({"PHONE": "+15551234567"}, "invalid_identifier"),
        ({}, "no_identifier"),
        ({"EXTERNAL_ID": "u1", "BRAZE_ID": "bz"}, "multiple_identifiers"),
        ({"EXTERNAL_ID": "u1", "PAYLOAD": '{"a": 1}'}, "unexpected_payload"),
        ({"EXTERNAL_ID": "u1", "PAYLOAD": "{}"}, None),
    ],
)
def test_user_deletes(cols: dict[str, str], expected: str | None) -> None:
    assert code(one(DataType.USER_DELETES, **cols)) == expected


@pytest.mark.parametrize(
    ("cols", "expected", "deleted"),
    [
        ({"ID": "sku-1", "PAYLOAD": '{"title": "Mug"}'}, None, False),
        ({"ID": "sku-1", "PAYLOAD": None, "DELETED": True}, None, True),
        ({"ID": "sku-1", "PAYLOAD": None, "DELETED": "true"}, None, True),
        ({"ID": "sku-1", "PAYLOAD": '{"a": 1}', "DELETED": "false"}, None, False),
        ({"ID": "sku-1", "PAYLOAD": '{"a": 1}', "DELETED": "perhaps"}, "invalid_field", False),
        ({"ID": None, "PAYLOAD": '{"a": 1}'}, "missing_field", False),
        ({"ID": "sku-1", "PAYLOAD": None}, "missing_field", False),
        ({"ID": "sku-1", "PAYLOAD": "[]"}, "payload_not_object", False),
        ({"ID": "sku-1", "PAYLOAD": "{x"}, "invalid_json", False),
    ],
)
def test_catalog_items(cols: dict[str, Any], expected: str | None, deleted: bool) -> None:
    verdict = one(DataType.CATALOG_ITEMS, **cols)
    assert code(verdict) == expected
    if expected is None:
        assert isinstance(verdict, ValidRow) and verdict.deleted is deleted


def test_accounts_drop_and_report_fields_outside_the_schema() -> None:
    options = SyncOptions(account_fields=frozenset({"plan"}))
    verdict = one(
        DataType.ACCOUNTS, options, ID="a1", NAME="Acme", PAYLOAD='{"plan": "pro", "color": "red"}'
    )
    assert isinstance(verdict, ValidRow)
    assert verdict.payload == {"plan": "pro"}
    assert verdict.warnings == [
        ("unknown_field", "fields not in the account schema were dropped: color")
    ]
    # An empty NAME passes validation: it keeps an existing account's name; the store
    # refuses it (missing_field) only for an account it does not hold yet.
    unnamed = one(DataType.ACCOUNTS, ID="a1", NAME=None, PAYLOAD="{}")
    assert isinstance(unnamed, ValidRow) and unnamed.name is None
    assert code(one(DataType.ACCOUNTS, ID="a1", NAME="Acme", PAYLOAD=None)) == "missing_field"
    deleted = one(DataType.ACCOUNTS, ID="a1", NAME=None, PAYLOAD=None, DELETED=True)
    assert isinstance(deleted, ValidRow) and deleted.deleted


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "invalid_updated_at"),
        ("yesterday", "invalid_updated_at"),
        ("", "invalid_updated_at"),
        ("2026-01-01T12:00:00", None),
        ("2026-01-01T13:00:00+01:00", None),
        ("2026-01-01 12:00:00Z", None),
    ],
)
def test_updated_at_text(value: str | None, expected: str | None) -> None:
    batch = pa.RecordBatch.from_pydict(
        {"UPDATED_AT": pa.array([value], pa.string()), "EXTERNAL_ID": ["u1"], "PAYLOAD": [OK]}
    )
    (verdict,) = validate_batch(ATTR, batch, start_position=0)
    assert code(verdict) == expected
    if expected is None:
        assert verdict.updated_us == to_micros(datetime(2026, 1, 1, 12, tzinfo=UTC))


def test_timestamps_naive_are_utc_and_zoned_are_converted() -> None:
    naive = pa.array([datetime(2026, 1, 1, 12)], pa.timestamp("us"))
    paris = pa.array(
        [datetime(2026, 1, 1, 13, tzinfo=timezone(timedelta(hours=1)))],
        pa.timestamp("ns", tz="Europe/Paris"),
    )
    millis = pa.array([datetime(2026, 1, 1, 12)], pa.timestamp("ms"))
    expected = to_micros(datetime(2026, 1, 1, 12, tzinfo=UTC))
    assert updated_micros(naive) == updated_micros(paris) == updated_micros(millis) == [expected]


def test_row_hash_is_content_and_null_aware() -> None:
    batch = pa.RecordBatch.from_pydict(
        {"A": ["x", "x", None, ""], "B": ["1", "1", "1", "1"], "C": [None, None, None, None]}
    )
    h = row_hashes(batch)
    assert h[0] == h[1] and len({h[0], h[2], h[3]}) == 3


def test_columns_are_case_insensitive_and_required_per_type() -> None:
    cols = canonical_columns(["updated_at", "External_Id", "payload", "other"], ATTR)
    assert cols == {"UPDATED_AT": "updated_at", "EXTERNAL_ID": "External_Id", "PAYLOAD": "payload"}
    assert missing_columns(cols, ATTR) == []
    assert missing_columns({"UPDATED_AT", "PAYLOAD"}, ATTR) == [
        "one of EXTERNAL_ID, ALIAS_NAME, ALIAS_LABEL, BRAZE_ID, EMAIL, PHONE"
    ]
    assert missing_columns({"UPDATED_AT", "ID"}, DataType.ACCOUNTS) == ["NAME", "PAYLOAD"]
    assert missing_columns({"ID", "PAYLOAD"}, DataType.CATALOG_ITEMS, with_updated_at=False) == []
