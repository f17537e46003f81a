"""Segment SQL checks: one read-only query, in scope, with the id column, for the warehouse.

Public entry point (CLI, API and refresh engine)::

    from zerocopy.sql import check_segment_sql, SqlCatalog
    result = check_segment_sql(sql, dialect="snowflake", catalog=catalog, scope="marketing")
    result.valid, result.errors, result.sql, result.ids_sql, result.tables, result.to_dict()
"""

from zerocopy.sql.catalog import SqlCatalog
from zerocopy.sql.check import check_segment_sql, transpile_sql
from zerocopy.sql.ctas import ctas_sql
from zerocopy.sql.result import CODE_ORDER, CheckResult, SqlIssue
from zerocopy.sql.rules import WAREHOUSE_DIALECTS

__all__ = [
    "CODE_ORDER",
    "WAREHOUSE_DIALECTS",
    "CheckResult",
    "SqlCatalog",
    "SqlIssue",
    "check_segment_sql",
    "ctas_sql",
    "transpile_sql",
]
