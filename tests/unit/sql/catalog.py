"""The fixture warehouse's shape (schema ``marketing``) as a catalog for SQL-check tests."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import psycopg
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


Seed = Mapping[str, tuple[str, Sequence[Sequence[Any]]]]
"""Rows to load into the fixture warehouse: table -> (its columns, comma-separated; rows)."""


def _inserts(seed: Seed, mark: str) -> Iterator[tuple[str, Sequence[Sequence[Any]]]]:
    for table, (columns, rows) in seed.items():
        marks = ", ".join([mark] * len(columns.split(",")))
        yield f"INSERT INTO marketing.{table} ({columns}) VALUES ({marks})", rows


def duckdb_marketing(seed: Seed) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the fixture warehouse's tables with ``seed``'s rows."""
    con = duckdb.connect()
    for statement in marketing_ddl():
        con.execute(statement)
    for insert, rows in _inserts(seed, "?"):
        con.executemany(insert, rows)
    return con


@contextmanager
def postgres_marketing(url: str, seed: Seed) -> Iterator[psycopg.Connection[Any]]:
    """The fixture warehouse's tables (schema ``marketing``, made anew) with ``seed``'s rows
    in the PostgreSQL database at ``url``."""
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("DROP SCHEMA IF EXISTS marketing CASCADE")
        for statement in marketing_ddl({**PG_TYPES, "JSON": "JSONB"}):
            con.execute(statement)
        with con.cursor() as cur:
            for insert, rows in _inserts(seed, "%s"):
                cur.executemany(insert, rows)
        yield con


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
