"""Per-dialect rules: one module per dialect, each exporting ``RULES`` (a `DialectRules`)."""

from __future__ import annotations

import importlib
import pathlib
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


@cache
def builtin_functions(name: str) -> frozenset[str]:
    """The lower-case built-in function names of a list in ``functions/`` (empty when the
    dialect has none), read once."""
    if not name:
        return frozenset()
    path = pathlib.Path(__file__).with_name("functions") / f"{name}.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


__all__ = ["MODULES", "WAREHOUSE_DIALECTS", "DialectRules", "builtin_functions", "rules_for"]
