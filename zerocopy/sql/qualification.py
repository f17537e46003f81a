"""sqlglot's ``qualify_columns``, without its USING expansion when the query has no USING.

For every scope, sqlglot's qualifier first expands ``JOIN … USING`` and ``NATURAL JOIN``
(`_expand_using`): it searches the whole scope for joins (a walk of every node in it) and,
when one of them joins that way, rewrites the conditions. A query without such a join still
pays for the search in every scope, and it is the only effect left is a refusal: a scope whose
every selected source is a join name ("Joins … missing source table").

`qualify_columns` below is sqlglot's, step for step, with the options the check uses; when
the caller knows (from its own walk over the tree) that every join of the query hangs directly
off a SELECT's ``joins`` and none is USING or NATURAL, a scope's joins are exactly its SELECT's
``joins`` list (every nested SELECT starts a scope of its own), and `_plain_joins` answers the
same as `_expand_using` without the walk. Any other query, or another sqlglot version than the
one this mirrors, runs sqlglot's own ``qualify_columns``.

It also reports when the scopes' collections (each a walk of the scope) still describe the
qualified tree, so that the check uses them without walking every scope again
(`reusable_scopes`): sqlglot's star expansion drops them even for a SELECT without a star.
"""

from __future__ import annotations

import itertools
from typing import Any, cast

import sqlglot
import sqlglot.optimizer.qualify_columns as _qc
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.scope import Scope, ScopeType, find_all_in_scope, traverse_scope
from sqlglot.schema import Schema, ensure_schema

# The sqlglot release whose ``qualify_columns`` body is mirrored below (checked against
# sqlglot/optimizer/qualify_columns.py of that release).
MIRRORED_VERSION = "30.30.0"
_STEPS = (
    "pushdown_cte_alias_columns",
    "_separate_pseudocolumns",
    "_qualify_comprehensions",
    "_pop_table_column_aliases",
    "_expand_using",
    "_expand_alias_refs",
    "_convert_columns_to_dots",
    "_qualify_columns",
    "_expand_stars",
    "qualify_outputs",
    "_expand_group_by",
    "_expand_order_by_and_distinct_on",
    "Resolver",
    "TypeAnnotator",
)
MIRRORED = sqlglot.__version__ == MIRRORED_VERSION and all(hasattr(_qc, name) for name in _STEPS)


def qualify_columns(
    expression: exp.Expr,
    schema: Schema,
    *,
    dialect: Dialect,
    plain_joins: bool,
    scopes: list[Scope] | None = None,
    current: set[int] | None = None,
) -> exp.Expr:
    """``sqlglot.optimizer.qualify_columns.qualify_columns(expression, schema,
    expand_alias_refs=True, expand_stars=True, allow_partial_qualification=True,
    dialect=dialect)``, the same tree and the same errors.

    ``plain_joins``: every join of ``expression`` is an item of a SELECT's ``joins`` and none
    is USING or NATURAL.

    ``scopes``: when given, receives the scopes the qualification walked (only on the mirrored
    path; see `reusable_scopes`).

    ``current``: when given, receives the ids of all the walked scopes when their collections
    (made by the traversal: a walk of each scope for its columns, tables, stars …) still
    describe the qualified tree. sqlglot's steps that replace or add nodes clear the scope's
    collection (a new one is made when next asked), except the expansion of positional and
    alias references in GROUP BY / ORDER BY / DISTINCT ON, checked here (the collection is
    then cleared too), and star expansion, which clears it even when there is no star: then
    `_expand_no_stars` does the same without clearing it. So when no scope's collection was
    ever cleared or made again (its list is the traversal's), no node of any scope was
    replaced, and the check need not walk the scopes again.
    """
    if not (plain_joins and MIRRORED):
        return _qc.qualify_columns(
            expression,
            schema,
            expand_alias_refs=True,
            expand_stars=True,
            allow_partial_qualification=True,
            dialect=dialect,
        )
    qc = _qc
    schema = ensure_schema(schema, dialect=dialect)
    annotator = qc.TypeAnnotator(schema)
    dialect = schema.dialect or Dialect()
    pseudocolumns = dialect.PSEUDOCOLUMNS
    unannotated_scopes: list[Scope] = []
    traversed = traverse_scope(expression)
    if scopes is not None:
        scopes.extend(traversed)
    # each scope's collection as the traversal made it (a new list whenever it is cleared or
    # made again)
    collections = [scope._raw_columns for scope in traversed]
    for scope in traversed:
        if dialect.PREFER_CTE_ALIAS_COLUMN:
            qc.pushdown_cte_alias_columns(scope)
        is_select = isinstance(scope.expression, exp.Select)
        if pseudocolumns:  # it reads the scope's columns (BigQuery, Snowflake)
            fill_columns(scope)
        qc._separate_pseudocolumns(scope, pseudocolumns)
        # it clears the scope's collection when it replaced a column (it collected it first)
        pseudocolumns_made = bool(pseudocolumns) and not scope._collected
        resolver = qc.Resolver(scope, schema)
        qc._qualify_comprehensions(scope, resolver)
        qc._pop_table_column_aliases(scope.ctes)
        qc._pop_table_column_aliases(scope.derived_tables)
        using_column_tables, using_columns = _plain_joins(scope)
        if dialect.FORCE_EARLY_ALIAS_REF_EXPANSION:
            qc._expand_alias_refs(
                scope,
                resolver,
                dialect,
                expand_only_groupby=dialect.EXPAND_ONLY_GROUP_ALIAS_REF,
            )
        fill_columns(scope)
        qc._convert_columns_to_dots(scope, resolver)
        qc._qualify_columns(scope, resolver, allow_partial_qualification=True)
        scope.clear_column_cache()
        if is_select and not _no_stars(scope):
            qc._expand_stars(
                scope,
                resolver,
                using_column_tables,
                using_columns,
                pseudocolumns,
                annotator,
                unannotated_scopes,
            )
        elif is_select:
            _expand_no_stars(scope)
        if not (is_select and _alias_refs_moot(scope, dialect, pseudocolumns_made)):
            qc._expand_alias_refs(scope, resolver, dialect)
        if is_select:
            qc.qualify_outputs(scope, dialect=dialect)
        before = _expansion_targets(scope.expression)
        qc._expand_group_by(scope, dialect)
        qc._expand_order_by_and_distinct_on(scope, resolver)
        after = _expansion_targets(scope.expression)
        if len(before) != len(after) or any(a is not b for a, b in zip(before, after, strict=True)):
            scope.clear_cache()  # a node replaced: the collection no longer describes the tree
        if dialect.ANNOTATE_ALL_SCOPES:
            annotator.annotate_scope(scope)
        elif dialect.SUPPORTS_STRUCT_STAR_EXPANSION:
            unannotated_scopes.append(scope)
    if current is not None and all(
        scope._collected and scope._raw_columns is collected
        for scope, collected in zip(traversed, collections, strict=True)
    ):
        current.update(id(scope) for scope in traversed)
    return expression


# The ancestors sqlglot's ``Scope.columns`` classifies an unqualified column by.
COLUMN_ANCESTORS: tuple[type[exp.Expr], ...] = (
    exp.Select,
    exp.Qualify,
    exp.Order,
    exp.Cluster,
    exp.Having,
    exp.Hint,
    exp.Table,
    exp.Star,
    exp.Distinct,
)


def fill_columns(scope: Scope) -> None:
    """Compute sqlglot's ``scope.columns`` (when not cached) the way it does, except that a
    qualified column is kept without looking for its ancestor.

    sqlglot keeps every column of the scope's collection (and the external columns of its
    subqueries, table functions and correlatable derived tables) that has a qualifier, or
    whose nearest SELECT/QUALIFY/ORDER/… ancestor makes it a source column rather than a
    select alias; it searches that ancestor first for every column (``find_ancestor`` over
    nine classes, most of a check's cost of the property), though a qualifier alone decides.
    Here the search is made only for unqualified columns, with the same conditions, so the
    list is the same, in the same order. After qualification every column is qualified.
    Does nothing on another sqlglot version than the mirrored one.
    """
    if scope._columns is not None or not MIRRORED:
        return
    scope._ensure_collected()
    external = [
        column
        for child in itertools.chain(
            scope.subquery_scopes,
            scope.udtf_scopes,
            (dts for dts in scope.derived_table_scopes if dts.can_be_correlated),
        )
        for column in child.external_columns
    ]
    expression = scope.expression
    named_selects: set[str] | None = None
    found: list[exp.Column] = []
    for column in itertools.chain(scope._raw_columns, external):
        if column.table:
            found.append(column)
            continue
        ancestor = column.find_ancestor(*COLUMN_ANCESTORS)
        if not ancestor or isinstance(ancestor, exp.Select):
            found.append(column)
        elif isinstance(ancestor, exp.Table):
            if not isinstance(ancestor.this, exp.Func):
                found.append(column)
        elif isinstance(ancestor, exp.Order | exp.Cluster | exp.Distinct):
            if named_selects is None:
                named_selects = (
                    set(expression.named_selects) if isinstance(expression, exp.Query) else set()
                )
            if (
                isinstance(ancestor.parent, exp.Window | exp.WithinGroup)
                or not isinstance(ancestor.parent, exp.Select)
                or column.name not in named_selects
            ):
                found.append(column)
        elif isinstance(ancestor, exp.Star) and column.arg_key != "except_":
            found.append(column)
    scope._columns = found


def _no_stars(scope: Scope) -> bool:
    """Whether a SELECT scope has no star at all to expand: no projection is one, and its
    collection holds none (struct stars)"""
    for projection in cast(exp.Select, scope.expression).selects:
        if isinstance(projection, exp.Star) or projection.is_star:
            return False
    return not scope.stars


def _expand_no_stars(scope: Scope) -> None:
    """sqlglot's ``_expand_stars`` for a SELECT scope with no star (`_no_stars`): it keeps
    every projection, sets the same list again (unless a PIVOT without columns stops it first)
    and clears the scope's cache; the nodes are the same, so the collection still describes
    the tree and is kept (the caches derived from it are dropped)."""
    expression = cast(exp.Select, scope.expression)
    if any(
        not pivot.unpivot and pivot.args.get("columns") == [] and not pivot.alias_column_names
        for pivot in scope.pivots
    ):
        return
    selections = list(expression.selects)
    if selections:
        expression.set("expressions", selections)
        _clear_derived(scope)


def _clear_derived(scope: Scope) -> None:
    """``Scope.clear_cache`` without the collection: what is computed from the collection and
    the tree (sources, columns, pivots, references) is computed again when asked."""
    scope._selected_sources = None
    scope._columns = None
    scope._external_columns = None
    scope._local_columns = None
    scope._pivots = None
    scope._references = None


def _expansion_targets(expression: exp.Expr) -> list[exp.Expr]:
    """The nodes ``_expand_group_by`` and ``_expand_order_by_and_distinct_on`` may replace
    (positional and alias references): GROUP BY's and DISTINCT ON's expressions, what ORDER BY
    orders by; compared by identity before and after them."""
    args = expression.args
    found: list[exp.Expr] = []
    group = args.get("group")
    if group is not None:
        found += group.expressions
    order = args.get("order")
    if isinstance(order, exp.Expr):
        found += [ordered.this for ordered in order.expressions]
    distinct = args.get("distinct")
    if isinstance(distinct, exp.Distinct):
        on = distinct.args.get("on")
        if isinstance(on, exp.Expr):
            found += on.expressions
    return found


def _alias_refs_moot(scope: Scope, dialect: Dialect, pseudocolumns_made: bool) -> bool:
    """Whether sqlglot's ``_expand_alias_refs(scope, resolver, dialect)``, where it runs after
    columns are qualified, would change nothing; when so, what it would still do (BigQuery's
    marking of shadowed qualifiers) is done here instead.

    It walks the SELECT's projections, WHERE, GROUP BY, HAVING, QUALIFY (and joins where the
    dialect lets them name aliases) within the scope, and acts only on a column (an
    ``exp.Column``, or its subclass ``Pseudocolumn``) without a table qualifier: it qualifies
    it or replaces it by the aliased expression. Every other step of it only reads (the
    recursive-CTE case, skipped here, too). So it changes nothing when every column of the
    scope is qualified. Those are read from the scope's own collection (no walk): every
    column of the scope (all of ``exp.Column`` exactly) as collected, which is the tree's when
    the collection is current (``_collected``: the qualifier's steps that replace columns
    clear it, except star expansion, hence no star projection), with no ``Pseudocolumn`` made
    (not collected), and no projection that starts a scope of its own (a walk from it would
    enter it).

    ``pseudocolumns_made``: ``_separate_pseudocolumns`` replaced a column in this scope.
    """
    expression = scope.expression
    if dialect.DISABLES_ALIAS_REF_EXPANSION or pseudocolumns_made or not scope._collected:
        return False
    node = expression.parent
    while node is not None:
        if isinstance(node, exp.With) and node.args.get("recursive"):
            return False
        node = node.parent
    selects = cast(exp.Select, expression).selects
    for projection in selects:
        if isinstance(projection, exp.Star | exp.CTE | exp.Query) or projection.is_star:
            return False
    for column in scope._raw_columns:
        if not column.table:
            return False
    for star in scope._stars:
        if isinstance(star, exp.Column) and not star.table:
            return False
    if dialect.PROJECTION_ALIASES_SHADOW_SOURCE_NAMES:
        args = expression.args
        projections = {s.alias_or_name for s in selects}
        for clause in (args.get("group"), args.get("having"), args.get("qualify")):
            if not clause:
                continue
            for found in find_all_in_scope(clause, exp.Column):
                if found.table and not found.db:
                    found.set("shadow", found.table in projections or None)
    return True


def reusable_scopes(scopes: list[Scope], current: set[int] | None = None) -> list[Scope] | None:
    """The scopes `qualify_columns` walked, reset, when a new ``traverse_scope`` of the
    qualified tree would build the same ones; else None (traverse again).

    A traversal builds scopes from the SELECTs, set operations, CTEs, derived tables and
    table functions, their aliases and their column aliases. On this path qualification
    renames no table or alias and moves no source; what it writes elsewhere (qualified
    columns, expanded stars, output aliases, GROUP BY / ORDER BY / alias references replaced
    by copies of projections) holds a query only when a projection does, and every query
    inside an expression is a SUBQUERY scope. The column aliases of CTEs and derived tables
    (a scope's ``outer_columns``) are popped by qualification: a new traversal would see
    none. So with no SUBQUERY scope and no outer columns, the scopes are the same ones, in
    the same order, with the same sources; only their cached contents (columns, stars,
    selected sources …) describe the tree before qualification, and `Scope.clear_cache`
    drops them all.

    ``current``: the ids of scopes whose collection (the nodes a walk of the scope finds:
    columns, tables, stars …) `qualify_columns` found still describing the tree; only what
    is derived from it is dropped (the walk is not made again).
    """
    if not scopes:
        return None
    subquery = ScopeType.SUBQUERY
    for scope in scopes:
        if scope.scope_type is subquery or scope.outer_columns:
            return None
    for scope in scopes:
        if current and id(scope) in current:
            _clear_derived(scope)
        else:
            scope.clear_cache()
    return scopes


def _plain_joins(scope: Scope) -> tuple[dict[str, Any], list[str]]:
    """sqlglot's ``_expand_using`` for a scope whose joins are its SELECT's ``joins`` list and
    none is USING or NATURAL: nothing to expand, the same refusal when a join has no source to
    join to."""
    expression = scope.expression
    joins = expression.args.get("joins") if isinstance(expression, exp.Select) else None
    if not joins:
        return {}, []
    names = {join.alias_or_name for join in joins}
    ordered = [key for key in scope.selected_sources if key not in names]
    if names and not ordered:
        raise OptimizeError(f"Joins {names} missing source table {scope.expression}")
    return {}, []


def plain_joins(joins: list[exp.Expr]) -> bool:
    """Whether every one of ``joins`` (all the joins of a tree) is an item of a SELECT's
    ``joins`` and joins neither with USING nor NATURAL."""
    for join in joins:
        if (
            not isinstance(join, exp.Join)
            or not isinstance(join.parent, exp.Select)
            or join.arg_key != "joins"
            or join.args.get("using")
            or join.method == "NATURAL"
        ):
            return False
    return True
