"""Adapter kind → class, imported lazily so a driver loads only when its warehouse is used."""

from __future__ import annotations

import importlib

from dialects.base import BaseAdapter
from dialects.protocol import ConnectionConfig
from zerocopy import errors
from zerocopy.errors import ZerocopyError

ADAPTERS: dict[str, str] = {
    "duckdb": "dialects.duckdb:DuckDBAdapter",
    "bigquery": "dialects.bigquery:BigQueryAdapter",
    "postgres": "dialects.postgres:PostgresAdapter",
    "redshift": "dialects.redshift:RedshiftAdapter",
    "databricks": "dialects.databricks:DatabricksAdapter",
    "snowflake": "dialects.snowflake:SnowflakeAdapter",
    "fabric": "dialects.fabric:FabricAdapter",
}
"""Add a warehouse here: ``kind -> "module:Class"``."""


def adapter_class(kind: str) -> type[BaseAdapter]:
    try:
        target = ADAPTERS[kind]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ZerocopyError(
            errors.VALIDATION_ERROR, f"unknown warehouse kind {kind!r}; known kinds: {known}"
        ) from None
    module_name, _, cls_name = target.partition(":")
    cls: type[BaseAdapter] = getattr(importlib.import_module(module_name), cls_name)
    return cls


def create_adapter(kind: str, config: ConnectionConfig) -> BaseAdapter:
    return adapter_class(kind)(config)


def kinds() -> list[str]:
    return sorted(ADAPTERS)
