"""Per-dialect rules: one module per dialect, each exporting ``RULES`` (a `DialectRules`)."""

from __future__ import annotations

import importlib
from functools import cache

from zerocopy.sql.rules.base import DialectRules

# zerocopy dialect name -> module in this package. Adding a dialect is one module + one line.
MODULES: dict[str, str] = {
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "redshift": "redshift",
    "databricks": "databricks",
    "duckdb": "duckdb",
    "postgres": "postgres",
    "postgresql": "postgres",
    "tsql": "tsql",
    "fabric": "fabric",
}

# The dialects the product supports as warehouses (inputs and targets); tsql/fabric are inputs in progress.
WAREHOUSE_DIALECTS: tuple[str, ...] = (
    "snowflake",
    "bigquery",
    "redshift",
    "databricks",
    "duckdb",
    "postgres",
)


@cache
def rules_for(dialect: str) -> DialectRules | None:
    """The rules of a dialect (case-insensitive name), or None when it is unknown."""
    module = MODULES.get(dialect.strip().lower()) if isinstance(dialect, str) else None
    if module is None:
        return None
    rules: DialectRules = importlib.import_module(f"{__name__}.{module}").RULES
    return rules


__all__ = ["MODULES", "WAREHOUSE_DIALECTS", "DialectRules", "rules_for"]
