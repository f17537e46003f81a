"""`ctas_sql`: the CREATE TABLE … AS around a checked query's ``ids_sql`` (adapters may build their own)."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from zerocopy.sql.rules import rules_for


def ctas_sql(ids_sql: str, table: str, *, target: str) -> str:
    """``CREATE TABLE <table> AS <ids_sql>`` in the target dialect; ``table`` may be qualified.

    Raises:
        ValueError: for an unknown target dialect or an empty table name.
    """
    rules = rules_for(target)
    if rules is None:
        raise ValueError(f"unknown dialect {target!r}")
    parts = [p for p in table.split(".") if p]
    if not parts:
        raise ValueError("empty table name")
    dialect = Dialect.get_or_raise(rules.sqlglot_dialect)
    name = ".".join(dialect.generate(exp.to_identifier(p)) for p in parts)
    return f"CREATE TABLE {name} AS {ids_sql}"
