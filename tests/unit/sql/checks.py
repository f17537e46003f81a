"""Shorthands of the SQL red-team tests: check a segment over the fixture catalog, its error
codes, the SQL it emits for a target, and the sorted ids a query returns on an engine."""

from __future__ import annotations

from typing import Any

from tests.unit.sql.catalog import CATALOG, SCOPE
from zerocopy.sql import SqlCatalog, check_segment_sql

_CATALOG = SqlCatalog(CATALOG)


def check_sql(sql: str, dialect: str, target: str | None = None) -> Any:
    """The check's result for ``sql`` written in ``dialect``, run on ``target``."""
    return check_segment_sql(sql, dialect=dialect, catalog=_CATALOG, scope=SCOPE, target=target)


def error_codes(sql: str, dialect: str, target: str | None = None) -> list[str]:
    """The error codes of the check (``[]``: valid)."""
    return [e.code for e in check_sql(sql, dialect, target).errors]


def emitted_sql(sql: str, dialect: str, target: str) -> str:
    """The ids SQL emitted for ``target``; the check must pass."""
    result = check_sql(sql, dialect, target)
    assert result.valid, [e.to_dict() for e in result.errors]
    assert result.ids_sql
    return str(result.ids_sql)


def sorted_ids(con: Any, sql: str) -> list[str]:
    """The first column of ``sql``'s rows on ``con`` (DuckDB or psycopg), sorted."""
    return sorted(row[0] for row in con.execute(sql).fetchall())
