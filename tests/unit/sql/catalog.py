"""The fixture warehouse's shape (schema ``marketing``) as a catalog for SQL-check tests."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import yaml

CORPUS = pathlib.Path(__file__).resolve().parents[2] / "sql_corpus"

MARKETING: dict[str, dict[str, str]] = {
    "users": {
        "external_user_id": "VARCHAR",
        "email": "VARCHAR",
        "phone": "VARCHAR",
        "first_name": "VARCHAR",
        "country": "VARCHAR",
        "created_at": "TIMESTAMP",
        "updated_at": "TIMESTAMP",
        "plan": "VARCHAR",
        "lifetime_value": "DOUBLE",
        "is_subscribed": "BOOLEAN",
        "attributes": "JSON",
    },
    "events": {
        "event_id": "VARCHAR",
        "external_user_id": "VARCHAR",
        "name": "VARCHAR",
        "occurred_at": "TIMESTAMP",
        "properties": "JSON",
    },
    "purchases": {
        "purchase_id": "VARCHAR",
        "external_user_id": "VARCHAR",
        "product_id": "VARCHAR",
        "currency": "VARCHAR",
        "price": "DOUBLE",
        "quantity": "INT",
        "purchased_at": "TIMESTAMP",
    },
    "subscriptions": {
        "external_user_id": "VARCHAR",
        "subscription_group": "VARCHAR",
        "state": "VARCHAR",
        "updated_at": "TIMESTAMP",
    },
    "accounts": {
        "account_id": "VARCHAR",
        "name": "VARCHAR",
        "plan": "VARCHAR",
        "created_at": "TIMESTAMP",
        "deleted": "BOOLEAN",
    },
    "users_attributes_sync": {
        "UPDATED_AT": "TIMESTAMP",
        "EXTERNAL_ID": "VARCHAR",
        "ALIAS_NAME": "VARCHAR",
        "ALIAS_LABEL": "VARCHAR",
        "BRAZE_ID": "VARCHAR",
        "EMAIL": "VARCHAR",
        "PHONE": "VARCHAR",
        "PAYLOAD": "JSON",
    },
}

CATALOG: dict[str, dict[str, dict[str, str]]] = {"marketing": MARKETING}
SCOPE = "marketing"

DIALECTS: tuple[str, ...] = (
    "snowflake",
    "bigquery",
    "redshift",
    "databricks",
    "duckdb",
    "postgres",
    "fabric",
)


PG_TYPES: dict[str, str] = {"VARCHAR": "TEXT", "DOUBLE": "DOUBLE PRECISION"}
"""The fixture types PostgreSQL spells otherwise."""


def marketing_ddl(types: dict[str, str] | None = None) -> list[str]:
    """``CREATE SCHEMA marketing`` and its empty tables, types renamed through ``types``
    (DuckDB takes the fixture's types as they are)."""
    rename = types or {}
    statements = ["CREATE SCHEMA marketing"]
    for table, columns in MARKETING.items():
        body = ", ".join(f'"{name}" {rename.get(kind, kind)}' for name, kind in columns.items())
        statements.append(f"CREATE TABLE marketing.{table} ({body})")
    return statements


def corpus_cases(
    corpus: pathlib.Path = CORPUS,
) -> Iterator[tuple[pathlib.Path, dict[str, Any], str]]:
    """Every corpus case once per input dialect it names (``all``: every dialect), in file
    order: ``(file, case, dialect)``."""
    for path in sorted(corpus.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text())["cases"]:
            dialects = case["dialect"]
            if dialects == "all":
                dialects = list(DIALECTS)
            elif isinstance(dialects, str):
                dialects = [dialects]
            for dialect in dialects:
                yield path, case, dialect
