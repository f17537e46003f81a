"""Columns named by star modifiers must exist (``* EXCLUDE (…)``, ``* EXCEPT (…)``, ``* RENAME
(… AS …)``, ``* REPLACE (… AS name)``).

sqlglot's star expansion skips a name that matches no column, so ``SELECT * EXCLUDE (emial)``
would pass the check and only fail in the warehouse (Snowflake, BigQuery, DuckDB and
Databricks all refuse a modifier naming a column the star does not cover). The names are
collected on the work copy before qualification expands the stars, and checked against the
columns of the star's sources once the scopes are known (only sources whose columns are exact:
catalog tables and star-free subqueries).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from zerocopy.errors import MISSING_ID_COLUMN, UNKNOWN_COLUMN

# A star followed by a modifier (a text without one does not pay for a walk).
_MODIFIER = re.compile(r"\*\s*(?:exclude|except|rename|replace|ilike)\b", re.IGNORECASE)


class StarNames(NamedTuple):
    """The column names one star modifier refers to, with the SELECT the star belongs to."""

    select: exp.Select
    qualifier: str
    """The star's table (``u.* EXCEPT (…)``), or empty for a bare ``*``."""
    names: list[exp.Identifier]
    """The columns named (EXCLUDE/EXCEPT items, RENAME sources, REPLACE targets)."""
    keyword: str


def collect(text: str, work: exp.Expr) -> list[StarNames]:
    """The star modifiers of the (normalized, not yet qualified) work copy."""
    if "*" not in text or _MODIFIER.search(text) is None:
        return []
    found: list[StarNames] = []
    for star in work.find_all(exp.Star):
        args = star.args
        if not (args.get("except_") or args.get("rename") or args.get("replace")):
            continue
        select = star.find_ancestor(exp.Select)
        if select is None:
            continue
        parent = star.parent
        qualifier = parent.table if isinstance(parent, exp.Column) else ""
        for key, keyword in (("except_", "EXCLUDE/EXCEPT"), ("rename", "RENAME")):
            names = [
                item.this if isinstance(item, exp.Alias) else item for item in args.get(key) or []
            ]
            identifiers = [
                n.this if isinstance(n, exp.Column) else n
                for n in names
                if (isinstance(n, exp.Column) and not n.table) or isinstance(n, exp.Identifier)
            ]
            if identifiers:
                found.append(StarNames(select, qualifier, identifiers, keyword))
        replaced = [
            item.args["alias"]
            for item in args.get("replace") or []
            if isinstance(item, exp.Alias) and isinstance(item.args.get("alias"), exp.Identifier)
        ]
        if replaced:
            found.append(StarNames(select, qualifier, replaced, "REPLACE"))
    return found


def check(check: Any, found: list[StarNames], scopes: list[Scope]) -> None:
    """Record an unknown column for each name no source of its star has."""
    if not found:
        return
    by_select = {id(scope.expression): scope for scope in scopes}
    for entry in found:
        scope = by_select.get(id(entry.select))
        if scope is None:
            continue
        sources = [entry.qualifier] if entry.qualifier else list(scope.selected_sources)
        if not sources or not all(
            name in scope.sources and check.source_known(scope, name) for name in sources
        ):
            continue
        resolver = check.resolver(scope)
        columns: list[str] = []
        for name in sources:
            got = resolver.get_source_columns(name)
            if not got or "*" in got:
                return
            columns.extend(got)
        known = set(columns)
        where = ", ".join(name for name in sources if name) or "the subquery"
        for identifier in entry.names:
            if identifier.name in known:
                continue
            check.issue(
                UNKNOWN_COLUMN,
                f"Column {check.written(identifier)} named in * {entry.keyword} (…) does not "
                f"exist in {where}; the warehouse refuses a star modifier naming a column "
                f"the star does not return. Available: {', '.join(sorted(known)[:12])}.",
                check.node_position(identifier),
            )


def pivot_group_decides_id(check: Any, root: exp.Expr | None, wanted: str) -> bool:
    """``SELECT * FROM t PIVOT (agg FOR col IN (…) GROUP BY g)`` (DuckDB's standard PIVOT with
    its own GROUP BY): the star returns the GROUP BY columns and the pivoted ones only, so the
    id column is returned exactly when it is grouped by. sqlglot's expansion ignores that
    GROUP BY (it keeps every other column but the grouped ones). Decided on the query as
    written; True when decided (a missing id is recorded)."""
    if root is None:
        return False
    branch: exp.Expr = root.unnest() if isinstance(root, exp.Subquery) else root
    while isinstance(branch, exp.SetOperation):
        branch = branch.this.unnest()
    if not isinstance(branch, exp.Select) or branch.args.get("joins"):
        return False
    selects = branch.selects
    if len(selects) != 1 or not isinstance(selects[0], exp.Star):
        return False
    from_ = branch.args.get("from_")
    table = from_.this if isinstance(from_, exp.From) else None
    pivots = table.args.get("pivots") if isinstance(table, exp.Table | exp.Subquery) else None
    if not pivots or len(pivots) != 1:
        return False
    pivot = pivots[0]
    group = pivot.args.get("group")
    if pivot.args.get("unpivot") or not isinstance(group, exp.Group):
        return False
    names = [c.name for c in group.expressions if isinstance(c, exp.Column)]
    if any(name.lower() == wanted for name in names):
        return True
    check.issue(
        MISSING_ID_COLUMN,
        f"This PIVOT … GROUP BY returns only its GROUP BY columns ({', '.join(names)}) and the "
        f"pivoted ones, not '{check.id_column}': add {check.id_column} to the PIVOT's GROUP BY.",
        check.node_position(pivot),
    )
    return True
