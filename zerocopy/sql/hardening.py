"""Refusals and rewrites added to `zerocopy.sql.check` after the red-team review (issue #4).

Each function takes the running check (`zerocopy.sql.check._Check`, untyped here to avoid an
import cycle) and is called from one line of the pipeline; none walks the whole tree again.
"""

from __future__ import annotations

import difflib
import itertools
import re
from typing import Any, cast

from sqlglot import Token, TokenType, exp, transforms
from sqlglot.dialects.dialect import NormalizationStrategy
from sqlglot.errors import ErrorLevel, OptimizeError, ParseError, TokenError
from sqlglot.optimizer.scope import Scope

from zerocopy.errors import (
    FORBIDDEN_FUNCTION,
    MISSING_ID_COLUMN,
    NOT_READ_ONLY,
    OUT_OF_SCOPE,
    PARSE_ERROR,
    UNKNOWN_COLUMN,
    UNSUPPORTED_IN_DIALECT,
)
from zerocopy.sql import qualification, targets

_STATEMENT_WORDS = frozenset({"SHOW", "DESCRIBE", "DESC", "SUMMARIZE"})


def refuse_unnamed_source(check: Any, table: exp.Table) -> bool:
    """A FROM item that is not a name the scope checks can resolve: Snowflake
    ``DIRECTORY(@stage)`` (lists a stage's files) and a string literal used as a table
    (``FROM '@stage/file.csv'``, ``FROM '/tmp/ids.csv'``, a replacement scan once emitted for
    DuckDB). Records the refusal and returns True; False for anything else."""
    this = table.this
    if isinstance(this, exp.Identifier):
        # DuckDB `FROM (SHOW TABLES)`: sqlglot reads a table SHOW aliased TABLES
        if (
            this.quoted
            or this.name.upper() not in _STATEMENT_WORDS
            or not isinstance(table.parent, exp.Subquery)
            or check.rules.sqlglot_dialect != "duckdb"
        ):
            return False
        check.source_refused = True
        check.issue(
            NOT_READ_ONLY,
            f"'{this.name.upper()}' inside the query is not allowed: segment queries may only "
            "read the source's tables. Remove it and keep a single SELECT.",
            check.node_position(table),
        )
        return True
    if isinstance(this, exp.DirectoryStage):
        stage = this.this.name if isinstance(this.this, exp.Expr) else str(this.this)
        message = (
            f"Reading the directory of the stage {stage} is not allowed: a segment may only "
            "read the source's tables."
        )
    elif isinstance(this, exp.Literal) and this.is_string:
        text = this.name
        if text.startswith("@"):
            message = (
                f"Reading the stage '{text[:80]}' is not allowed: a segment may only read the "
                "source's tables."
            )
        else:
            message = (
                f"A table given as the text '{text[:80]}' is not allowed (it reads a file or "
                "escapes the table checks): write the table name without quotes."
            )
    else:
        return False
    position = check.node_position(table)
    if position == (None, None) and isinstance(this, exp.DirectoryStage):
        position = check.token_position("DIRECTORY")
    check.source_refused = True
    check.issue(FORBIDDEN_FUNCTION, message, position)
    return True


def constant_id(
    query: exp.Query, match: exp.Expr, root: Scope | None, scopes: list[Scope]
) -> exp.Expr | None:
    """The projection that makes the id column a constant (``match`` itself, or the id
    position of a later set-operation branch), or None when every row's id comes from a table
    column.

    Constants are literals, NULL, a CASE choosing between literals, and columns passed up
    from literal rows: subqueries, CTEs and LATERAL subqueries returning a constant, literal
    ``VALUES``/``UNNEST`` rows, and table functions over literals only (``generate_series(1,
    1000)``, ``range(…)``, ``FLATTEN(PARSE_JSON('[…]'))``, ``SPLIT_TO_TABLE('a,b', ',')``). In
    a set operation every branch's projection at the id's position counts (names come from the
    first branch, rows from all of them).
    """
    if isinstance(query, exp.SetOperation) and root is not None:
        position = _position(query, match)
        if position is None:
            return match if _is_constant(match, root, scopes) else None
        for leaf in _leaf_scopes(root):
            selects = cast(exp.Query, leaf.expression).selects
            if position < len(selects) and _is_constant(selects[position], leaf, scopes):
                return selects[position]
        return None
    return match if _is_constant(match, root, scopes) else None


def _position(query: exp.Query, match: exp.Expr) -> int | None:
    """Index of ``match`` among the first branch's projections."""
    branch: exp.Expr = query
    while isinstance(branch, exp.SetOperation):
        branch = branch.this.unnest()
    if not isinstance(branch, exp.Query):
        return None
    return next((i for i, s in enumerate(branch.selects) if s is match), None)


def _leaf_scopes(scope: Scope, depth: int = 0) -> list[Scope]:
    """The SELECT scopes of a set operation's branches, in order."""
    if not scope.set_operation_scopes or depth > 50:
        return [scope] if isinstance(scope.expression, exp.Select) else []
    return [leaf for s in scope.set_operation_scopes for leaf in _leaf_scopes(s, depth + 1)]


def _generator_is_literal(node: exp.Expr) -> bool:
    """A table function reading only literals (no column of a table), and a built-in one: a
    user-defined table function of the source's schema (Snowflake ``TABLE(marketing.f())``)
    returns whatever rows it reads."""
    return node.find(exp.Column) is None and not any(
        isinstance(dot.expression, exp.Func) for dot in node.find_all(exp.Dot)
    )


def _is_constant(
    projection: exp.Expr, scope: Scope | None, scopes: list[Scope], depth: int = 0
) -> bool:
    """True when an output column carries no table column."""
    expression = projection.unalias() if isinstance(projection, exp.Alias) else projection
    # a TableColumn is a FROM item used as a value (BigQuery's `UNNEST(...) AS t`, then `t`)
    columns = [
        column
        for column in expression.find_all(exp.Column, exp.TableColumn)
        if not _only_orders(column, expression)
    ]
    if not columns:
        return True
    if _literal_case(expression):
        return True
    if scope is None or depth > 20:
        return False
    for column in columns:
        if isinstance(column, exp.Column) and _unpivot_name_column(scope, column):
            continue  # UNPIVOT (v FOR name IN (a, b)): `name` holds the texts 'a' and 'b'
        key = column.name if isinstance(column, exp.TableColumn) else column.text("table")
        source = scope.sources.get(key)
        if source is None and not key:  # Postgres `FROM generate_series(1, 9) AS g`, then `g`
            source = scope.sources.get(column.name)
            if source is None and len(scope.sources) == 1:
                # left unqualified because its source's columns are unknown (PostgreSQL's
                # `column1` of a VALUES list without column names): the only source has it
                source = next(iter(scope.sources.values()))
        if isinstance(source, exp.Table):
            if isinstance(source.this, exp.Func) and _generator_is_literal(source.this):
                continue  # generate_series(1, 1000), range(1000)
            return False
        if not isinstance(source, Scope):
            return False
        inner = source.expression
        if isinstance(inner, exp.Values | exp.Unnest | exp.TableFromRows):
            if _generator_is_literal(inner):
                continue  # rows or an array written out as literals
            return False
        if isinstance(inner, exp.Lateral):
            if isinstance(inner.this, exp.Subquery):
                select = inner.this.unnest()
                lateral = next((s for s in scopes if s.expression is select), None)
                if isinstance(select, exp.Query) and _column_constant(
                    select, lateral, column.name, scopes, depth
                ):
                    continue
                return False
            if _generator_is_literal(inner):
                continue  # LATERAL FLATTEN(PARSE_JSON('[…]'))
            return False
        if not isinstance(inner, exp.Query):
            return False
        if not _column_constant(inner, source, column.name, scopes, depth):
            return False
    return True


_FLATTEN_COLUMNS = ("SEQ", "KEY", "PATH", "INDEX", "VALUE", "THIS")


def flatten_default_columns(work: exp.Expr) -> None:
    """Snowflake's ``TABLE(FLATTEN(…))`` without a column list returns SEQ, KEY, PATH, INDEX,
    VALUE and THIS: written on the checked copy's alias (sqlglot's parser does it for
    ``LATERAL FLATTEN`` only), so an unqualified ``value`` resolves instead of failing
    qualification ("missing source schemas"). The output keeps the query as written."""
    for node in work.find_all(exp.TableFromRows):
        if not isinstance(node.this, exp.Explode):
            continue
        alias = node.args.get("alias")
        if isinstance(alias, exp.TableAlias) and alias.columns:
            continue
        name = alias.this if isinstance(alias, exp.TableAlias) and alias.this else None
        node.set(
            "alias",
            exp.TableAlias(
                this=name.copy() if name is not None else exp.to_identifier("_flattened"),
                columns=[exp.to_identifier(column) for column in _FLATTEN_COLUMNS],
            ),
        )


def value_table(check: Any, query: exp.Query) -> bool:
    """BigQuery's ``SELECT AS VALUE x``: a value table, whose one column has no name (the
    id-extracting ``zc_segment.external_user_id`` cannot reach it). Recorded as a missing id
    column; True then. (``SELECT AS STRUCT`` keeps its fields' names.)"""
    branch: exp.Expr = query
    while isinstance(branch, exp.SetOperation):
        branch = branch.this.unnest()
    if not isinstance(branch, exp.Select) or str(branch.args.get("kind") or "").upper() != "VALUE":
        return False
    check.issue(
        MISSING_ID_COLUMN,
        f"SELECT AS VALUE returns a value table with no column names, so it has no "
        f"'{check.id_column}' column: write SELECT {check.id_column} … (without AS VALUE).",
        check.node_position(branch),
    )
    return True


def _only_orders(column: exp.Expr, top: exp.Expr) -> bool:
    """Whether a column only partitions or orders rows inside ``top``: the PARTITION BY /
    ORDER BY of a window (``ROW_NUMBER() OVER (ORDER BY email)`` numbers rows, its values are
    1, 2, … whatever the emails) or the ORDER BY of ``WITHIN GROUP``. Its values never reach
    the result."""
    child, node = column, column.parent
    while node is not None and child is not top:
        if isinstance(node, exp.Window) and child.arg_key != "this":
            return True
        if isinstance(node, exp.WithinGroup) and child.arg_key == "expression":
            return True
        child, node = node, node.parent
    return False


def _unpivot_name_column(scope: Scope, column: exp.Column) -> bool:
    """Whether a column is the name column of an UNPIVOT in the scope's FROM (``UNPIVOT (v FOR
    channel IN (email, phone))``: ``channel`` holds the unpivoted columns' names, typed-in
    text, not values of a table)."""
    select = scope.expression
    if not isinstance(select, exp.Select):
        return False
    from_ = select.args.get("from_")
    items = [from_.this] if isinstance(from_, exp.From) else []
    items += [join.this for join in select.args.get("joins") or []]
    name, table = column.name.lower(), column.table
    for item in items:
        for pivot in item.args.get("pivots") or []:
            if not pivot.args.get("unpivot"):
                continue
            if table and table not in (item.alias_or_name, pivot.alias):
                continue
            for field in pivot.args.get("fields") or []:
                if isinstance(field, exp.In) and field.this.name.lower() == name:
                    return True
    return False


def _column_constant(
    query: exp.Query, scope: Scope | None, name: str, scopes: list[Scope], depth: int
) -> bool:
    """Whether the output column ``name`` of a subquery is a constant in any of its branches."""
    branch: exp.Expr = query
    while isinstance(branch, exp.SetOperation):
        branch = branch.this.unnest()
    if not isinstance(branch, exp.Query):
        return False
    position = next((i for i, s in enumerate(branch.selects) if s.alias_or_name == name), None)
    if position is None:
        return False
    if isinstance(query, exp.SetOperation):
        if scope is None:
            return False
        return any(
            position < len(cast(exp.Query, leaf.expression).selects)
            and _is_constant(
                cast(exp.Query, leaf.expression).selects[position], leaf, scopes, depth + 1
            )
            for leaf in _leaf_scopes(scope)
        )
    return _is_constant(branch.selects[position], scope, scopes, depth + 1)


def _literal_case(expression: exp.Expr) -> bool:
    """``CASE … THEN 'a' ELSE 'b' END`` (possibly cast): every id it yields is typed in."""
    while isinstance(expression, exp.Cast | exp.Paren):
        expression = expression.this
    if not isinstance(expression, exp.Case):
        return False
    results = [when.args.get("true") for when in expression.args.get("ifs") or []]
    results.append(expression.args.get("default"))
    return all(r is None or r.find(exp.Column, exp.TableColumn) is None for r in results)


def scope_columns(scope: Scope, check: Any) -> list[exp.Column]:
    """The columns of a SELECT to validate against its sources: sqlglot's ``scope.columns``
    plus the unqualified columns of HAVING and QUALIFY that name no output column (sqlglot
    leaves those out as possible select aliases, so a typo there, ``HAVING SUM(prise) > 100``,
    would only fail in the warehouse); only a SELECT with one of these clauses pays for the
    extra look (its already collected columns, no new walk). A SELECT reading a PIVOT keeps
    only the pivot's own columns (see `check_pivoted`)."""
    qualification.fill_columns(scope)
    columns = scope.columns
    expression = scope.expression
    pivoted = check_pivoted(check, scope)
    if pivoted is not None:
        return pivoted
    if not (expression.args.get("having") or expression.args.get("qualify")):
        return columns
    named = set(cast(exp.Query, expression).named_selects)
    seen = {id(c) for c in columns}
    extra = []
    for column in scope._raw_columns:
        if id(column) in seen or column.table or column.name in named:
            continue
        if isinstance(column.this, exp.Star):
            continue
        if not isinstance(
            column.find_ancestor(*qualification.COLUMN_ANCESTORS), exp.Having | exp.Qualify
        ):
            continue
        if _lambda_variable(column) or _outer_column(check, scope, column.name):
            continue
        extra.append(column)
    return columns + extra if extra else columns


def _outer_column(check: Any, scope: Scope, name: str) -> bool:
    """Whether an unqualified name is a column of a source of an enclosing query (a
    correlated reference, ``HAVING COUNT(*) > lifetime_value`` in an EXISTS subquery)."""
    outer = scope.parent
    while outer is not None:
        resolver = check.resolver(outer)
        for source in outer.sources:
            try:
                if name in resolver.get_source_columns(source):
                    return True
            except OptimizeError:
                continue
        outer = outer.parent
    return False


def _lambda_variable(column: exp.Column) -> bool:
    """Whether a column is a parameter of an enclosing lambda (``x -> x > 1``)."""
    node = column.parent
    name = column.name
    while node is not None and not isinstance(node, exp.Query):
        if isinstance(node, exp.Lambda) and any(
            p.name == name for p in node.expressions if isinstance(p, exp.Expr)
        ):
            return True
        node = node.parent
    return False


_CASE_INSENSITIVE = (
    NormalizationStrategy.CASE_INSENSITIVE,
    getattr(
        NormalizationStrategy, "CASE_INSENSITIVE_UPPERCASE", NormalizationStrategy.CASE_INSENSITIVE
    ),
)


def id_reference(match: exp.Expr | None, root: exp.Expr, target: Any, id_sql: str) -> str:
    """How the generated ``ids_sql`` names the query's id column: the configured name
    (``id_sql``), unless the query returns it under a quoted name that the target would not
    find unquoted (PostgreSQL ``AS "External_User_Id"``, Snowflake ``AS "external_user_id"``):
    then that quoted name, exactly as the query writes it.

    ``match`` is the id projection of the checked (normalized) copy; ``root`` the original
    query being emitted, whose projection at the same position carries the name as written.
    """
    if match is None or not isinstance(match.parent, exp.Select):
        return id_sql
    branch: exp.Expr = root.unnest() if isinstance(root, exp.Subquery) else root
    while isinstance(branch, exp.SetOperation):
        branch = branch.this.unnest()
    if not isinstance(branch, exp.Select) or not isinstance(match.index, int):
        return id_sql
    written = branch.expressions
    if len(written) != len(match.parent.expressions) or match.index >= len(written):
        return id_sql  # stars expanded in the copy: the name comes from the catalog
    original = written[match.index]
    if isinstance(original, exp.Alias):
        identifier = original.args.get("alias")
    else:
        identifier = original.this if isinstance(original, exp.Column) else None
    if not isinstance(identifier, exp.Identifier) or not identifier.quoted:
        return id_sql
    name = identifier.name
    if name.lower() != match.alias_or_name.lower() or target.normalization_strategy in (
        _CASE_INSENSITIVE
    ):
        return id_sql
    folded = target.normalize_identifier(exp.to_identifier(id_sql.strip('"`[]'), quoted=False))
    if folded.name == name:
        return id_sql
    return target.generate(exp.Identifier(this=name, quoted=True))


_QUANTIFIED_COMPARISONS = (
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Like,
    exp.ILike,
)

# ALL, SOME and ROW as words of their own in a query's text (see `restore_quantified_all`)
_QUANTIFIER_WORDS = re.compile(r"(?<![a-z_])(?:all|some)(?![a-z0-9_])", re.IGNORECASE)
_ROW_WORD = re.compile(r"(?<![a-z_])row(?![a-z0-9_])", re.IGNORECASE)


def restore_quantified_all(check: Any, statements: list[exp.Expr]) -> None:
    """PostgreSQL's ``x <> ALL (ARRAY['a', 'b'])`` and ``x = SOME (ARRAY[…])`` (and
    DuckDB's, Redshift's): sqlglot reads ``ANY (expr)`` and ``ALL (subquery)`` as the
    quantifiers they are but ``ALL (expr)`` and ``SOME (expr)`` as calls of functions named
    ALL and SOME, which the unqualified-function rule then refused as user functions
    (``forbidden_function``). An unquoted ``ALL(…)``/``SOME(…)`` with one argument on the right
    of a comparison is turned back into the quantifier, as sqlglot builds ``ANY (…)``
    (``SOME`` is ``ANY``); a quoted ``"all"(…)`` stays a function call.

    PostgreSQL's row constructor ``ROW(a, b) = ROW('x', 'y')`` is no function call either
    (ROW is a keyword there: no function is looked up): with two fields or more it is the
    tuple ``(a, b)`` it means, which every dialect writes and compares the same way. Only
    texts with one of the words pay for the walk."""
    lower = check.text_lower
    quantified = "all" in lower or "some" in lower
    rows = "row" in lower and check.rules.sqlglot_dialect in ("postgres", "redshift")
    # the words as names of their own (a function's name is one token's text, written as
    # is), not inside others (ROW_NUMBER, small, total): a name token never has a letter,
    # digit or underscore right after it, nor a letter or underscore right before it
    quantified = quantified and _QUANTIFIER_WORDS.search(check.text) is not None
    rows = rows and _ROW_WORD.search(check.text) is not None
    if not quantified and not rows:
        return
    for statement in statements:
        for node in list(statement.find_all(exp.Anonymous)):
            if not isinstance(node.this, str):
                continue  # a quoted name: a function of that name
            word = node.this.upper()
            if (
                quantified
                and word in ("ALL", "SOME")
                and len(node.expressions) == 1
                and isinstance(node.parent, _QUANTIFIED_COMPARISONS)
                and node.arg_key == "expression"
            ):
                kind = exp.All if word == "ALL" else exp.Any
                node.replace(kind(this=exp.Paren(this=node.expressions[0])))
            elif rows and word == "ROW" and len(node.expressions) >= 2:
                node.replace(exp.Tuple(expressions=list(node.expressions)))


def restore_json_arrows(check: Any, statements: list[exp.Expr]) -> None:
    """DuckDB ``col->'$.path'`` written as a function argument: sqlglot parses it as a lambda
    with a string body (``LAMBDA col : '$.path'``, which DuckDB refuses), so such a lambda is
    turned back into the JSON extraction it is (no real lambda has a bare string body). Only
    DuckDB input whose text has an arrow pays for the look.

    PostgreSQL has no lambdas at all: its ``json_array_length(col->'tags')`` is read the same
    way, which hid ``col`` from the column checks (an unknown column passed) and wrote
    ``LAMBDA col : 'tags'`` for DuckDB; every such lambda of a PostgreSQL query (a string or
    number body: a key or an index) is the JSON extraction."""
    read = check.rules.sqlglot_dialect
    if read not in ("duckdb", "postgres") or "->" not in check.text:
        return
    dialect = check.read_dialect
    for statement in statements:
        for node in list(statement.find_all(exp.Lambda)):
            body, params = node.this, node.expressions
            if not (
                isinstance(body, exp.Literal)
                and (body.is_string or read == "postgres")
                and len(params) == 1
                and isinstance(params[0], exp.Identifier)
            ):
                continue
            param = params[0]
            rebuilt = dialect.parse(f"{dialect.generate(param)} -> {dialect.generate(body)}")[0]
            if not isinstance(rebuilt, exp.JSONExtract):
                continue
            column = rebuilt.this
            if isinstance(column, exp.Column) and isinstance(column.this, exp.Identifier):
                column.this._meta = dict(param._meta) if param._meta else None
            node.replace(rebuilt)


def check_pivoted(check: Any, scope: Scope) -> list[exp.Column] | None:
    """A SELECT reading a PIVOT/UNPIVOT (``FROM (…) PIVOT (SUM(price) FOR currency IN …)``,
    DuckDB ``FROM (PIVOT t ON … USING …)``), whose output sqlglot does not model.

    The pivoted result has the source's columns minus the consumed ones (aggregated, the
    FOR/ON column, the UNPIVOT IN list) plus generated ones, named per dialect (``'EUR'``,
    ``EUR``, ``spend_eur``, an IN alias, the UNPIVOT name/value columns). A column outside the
    pivot is accepted when it is a remaining source column or looks like a generated one (its
    name contains an IN value or alias, or is a value/name column), and refused as unknown when
    the source's columns are known and it is neither (a consumed column included); with a
    source of unknown columns everything but a consumed column is accepted. Returns the
    columns left to the ordinary validation (the pivot's own, which read its source, and
    columns qualified by another source), or None when nothing is pivoted.
    """
    args = scope.expression.args
    from_, joins = args.get("from_"), args.get("joins")
    if not joins:  # the common case, without building lists
        first = from_.this if isinstance(from_, exp.From) else None
        if first is None or not (
            first.args.get("pivots")
            or (isinstance(first, exp.Subquery) and isinstance(first.this, exp.Pivot))
        ):
            return None
    items = [from_.this] if isinstance(from_, exp.From) else []
    items += [join.this for join in joins or []]
    pivots: list[exp.Pivot] = []
    pivoted_names: set[str] = set()
    statements: set[int] = set()  # DuckDB (PIVOT t ON …): its columns read t, no source here
    for item in items:
        found = list(item.args.get("pivots") or [])
        if isinstance(item, exp.Subquery) and isinstance(item.this, exp.Pivot):
            found.append(item.this)
            statements.add(id(item.this))
        if found:
            pivots += found
            pivoted_names.add(item.alias_or_name)
            pivoted_names.update(p.alias for p in found if p.alias)
    if not pivots:
        return None
    consumed: set[str] = set()
    generated: set[str] = set()  # fragments of generated column names
    names: set[str] = set()  # generated column names, as each dialect spells them
    loose = False  # names that cannot be spelled out here: any name with a fragment passes
    exact: set[str] = set()  # UNPIVOT name and value columns
    for pivot in pivots:
        generated.update(i.name.lower() for i in pivot.args.get("columns") or [] if i.name)
        if pivot.args.get("unpivot"):
            for field in pivot.args.get("fields") or []:
                if isinstance(field, exp.In):
                    consumed.update(c.name.lower() for c in field.find_all(exp.Column))
                    exact.add(field.this.name.lower())
            exact.update(e.name.lower() for e in pivot.expressions if e.name)
            continue
        aggregates = [p.alias.lower() for p in pivot.expressions if isinstance(p, exp.Alias)]
        generated.update(aggregates)
        if len(pivot.expressions) > 1 and len(aggregates) < len(pivot.expressions):
            loose = True  # EUR_sum(price): names spelled from the aggregate's SQL
        fields = [f for key in ("using", "fields") for f in pivot.args.get(key) or []]
        if len([f for f in fields if isinstance(f, exp.In)]) > 1:
            loose = True  # FOR a IN (…) b IN (…): names joined from several values
        values: set[str] = set()
        for key in ("expressions", "using", "fields"):
            for part in pivot.args.get(key) or []:
                if isinstance(part, exp.In):
                    for value in part.expressions:
                        if isinstance(value, exp.PivotAlias | exp.Alias) and value.alias:
                            values.add(value.alias.lower())
                            value = value.this
                        if isinstance(value, exp.Literal | exp.Column | exp.Identifier):
                            values.add(value.name.lower())
                            if isinstance(value, exp.Literal) and not value.is_string:
                                names.add(f"_{value.name}")  # BigQuery: IN (1, 2) -> _1, _2
                        else:
                            loose = True  # IN (ANY), IN (SELECT …): names known at run time
                    part = part.this
                elif key != "expressions":
                    loose = True
                consumed.update(c.name.lower() for c in part.find_all(exp.Column))
        generated |= values
        spelled = {c.name.lower() for c in pivot.args.get("columns") or [] if c.name}
        if spelled:  # sqlglot names them as the dialect does: Snowflake 'EUR', BigQuery
            names |= spelled  # spend_EUR, DuckDB EUR_spend, Spark EUR for one aggregate
        else:
            names.update(values)
            names.update(f"{v}_{a}" for v in values for a in aggregates)
            names.update(f"{a}_{v}" for v in values for a in aggregates)
    generated.discard("")
    # what the non-consumed source columns are, when every pivoted source's are known
    resolver = check.resolver(scope)
    remaining: set[str] | None = set()
    others: set[str] = set()
    for name in scope.sources:
        known = check.source_known(scope, name)
        columns = {c.lower() for c in resolver.get_source_columns(name)} if known else None
        if name in pivoted_names or not name:
            if columns is None or remaining is None:
                remaining = None
            else:
                remaining |= columns - consumed
        elif columns is None:
            remaining = None  # another source of unknown columns: cannot tell
        else:
            others |= columns
    if any(id(p) in statements for p in pivots):
        remaining = None  # DuckDB PIVOT statement: its grouping columns are not modelled
    inside = []
    renamed: list[exp.Column] = []
    for column in scope.columns:
        ancestor = column.find_ancestor(exp.Pivot)
        if ancestor is not None:
            if id(ancestor) not in statements:
                inside.append(column)
            continue
        table = column.table
        if table and table not in pivoted_names and table in scope.sources:
            inside.append(column)
            continue
        name = column.name.lower()
        if name in consumed and name not in exact:
            reason = "is consumed by the PIVOT/UNPIVOT (aggregated, pivoted or unpivoted)"
        elif (
            remaining is not None
            and name in names
            and name not in remaining
            and name not in others
            and name not in exact
        ):
            renamed.append(column)  # a generated column, named by the input dialect's rules
            continue
        elif (
            remaining is None
            or name in remaining
            or name in others
            or name in exact
            or name in names
            or (loose and any(fragment in name for fragment in generated))
        ):
            continue
        else:  # worded as for any unknown column
            candidates = [c for s in scope.sources for c in resolver.get_source_columns(s)]
            hint = _closest(column.name, candidates)
            check.issue(
                UNKNOWN_COLUMN,
                f"Column {check.written(column)} does not exist in any table of this query"
                + (f"; did you mean {hint}?" if hint else "."),
                check.node_position(column),
            )
            continue
        check.issue(
            UNKNOWN_COLUMN,
            f"Column {check.written(column)} {reason}: the result has the source's other "
            "columns and the generated value columns.",
            check.node_position(column),
        )
    if renamed:
        _pivot_names_in_target(check, [p for p in pivots if id(p) not in statements], renamed)
    return inside


def _pivot_names_in_target(check: Any, pivots: list[exp.Pivot], columns: list[exp.Column]) -> None:
    """Generated PIVOT columns named in the query keep the input dialect's spelling, but the
    target names them by its own rules (BigQuery ``spend_EUR``, DuckDB ``EUR_spend``,
    Snowflake ``'EUR'``): a name the target's PIVOT does not produce is unsupported there."""
    if check.write_rules.sqlglot_dialect == check.rules.sqlglot_dialect or not pivots:
        return
    target = check.write_dialect
    spelled: dict[str, str] = {}  # lower-case name -> as the target spells it
    for pivot in pivots:
        probe = exp.Select(
            expressions=[exp.Star()],
            from_=exp.From(this=exp.Table(this=exp.to_identifier("t"), pivots=[pivot.copy()])),
        )
        try:
            parsed = target.parse(target.generate(probe))[0]
        except Exception:  # the target cannot write this PIVOT: its generation says so
            return
        found = parsed.find(exp.Pivot) if isinstance(parsed, exp.Expr) else None
        names = [c.name for c in (found.args.get("columns") or [] if found else [])]
        if not names:
            return  # the target's names are not known here
        spelled.update((name.lower(), name) for name in names)
    for column in columns:
        if column.name.lower() in spelled or check.node_position(column) == (None, None):
            continue  # the target's name, or a column of an expanded star (emitted as *)
        check.issue(
            UNSUPPORTED_IN_DIALECT,
            f"The PIVOT column {check.written(column)} is named by {check.rules.name}'s rules; "
            f"{check.write_rules.name} names the pivoted columns "
            f"{', '.join(list(spelled.values())[:6])}. Select them with * or write the pivot with "
            "conditional aggregates (SUM(CASE WHEN … THEN … END) AS name).",
            check.node_position(column),
        )


def _closest(name: str, candidates: list[str]) -> str | None:
    """The candidate most like ``name`` (typo hint), or None (as the check's own hints)."""
    matches = difflib.get_close_matches(name, list(dict.fromkeys(candidates)), n=1, cutoff=0.75)
    return matches[0] if matches else None


def forbidden_cast(func: exp.Cast, read: Any, write: Any) -> str | None:
    """The type name when a cast targets a type the input or target dialect forbids
    (PostgreSQL/Redshift ``::regclass``, ``::regrole``…), else None."""
    to = func.args.get("to")
    if not isinstance(to, exp.DataType):
        return None
    kind = to.this  # a DataType.Type member, or an expression for a user-defined type
    name = (kind.name if isinstance(kind, exp.Expr) else str(getattr(kind, "value", kind))).lower()
    if kind == exp.DataType.Type.USERDEFINED:  # a type the dialect does not know (DuckDB)
        # schema-qualified (`::pg_catalog.regclass`: a Dot, or DuckDB's text
        # 'pg_catalog.regclass'): the type's own name decides
        written = to.args.get("kind")
        name = written.name if isinstance(written, exp.Dot) else to.text("kind")
        name = name.rsplit(".", 1)[-1].strip('"').lower()
    if name in read.forbidden_types or name in write.forbidden_types:
        return name.upper()
    return None


def cast_out_of_scope(check: Any, cast: exp.Cast) -> bool:
    """PostgreSQL ``NULL::finance.secrets``: a cast to a type of another schema (a table's row
    type there) probes that table and its columns (``json_populate_record(NULL::finance.t,
    …)``): refused like the table itself. Built-in namespaces (``pg_catalog``) and the
    source's schema are fine."""
    to = cast.args.get("to")
    if not isinstance(to, exp.DataType) or to.this != exp.DataType.Type.USERDEFINED:
        return False
    written = to.args.get("kind")
    if isinstance(written, exp.Dot):
        parts = [part.name for part in written.find_all(exp.Identifier)]
    elif isinstance(written, str) and "." in written:
        parts = [part.strip('"') for part in written.split(".")]
    else:
        return False
    qualifier = ".".join(parts[:-1]).lower()
    scope = check.scope_text.strip().lower() if isinstance(check.scope_text, str) else ""
    allowed = {scope, scope.rsplit(".", 1)[-1]} | check.rules.function_namespaces
    if qualifier in allowed or qualifier in check.write_rules.function_namespaces:
        return False
    check.issue(
        OUT_OF_SCOPE,
        f"Type {'.'.join(parts)} belongs to '{qualifier}', outside this source's scope "
        f"'{check.scope_text}': a cast to it reads that schema's catalog. Only types of "
        f"'{check.scope_text}' and built-in types can be used.",
        check.node_position(cast),
    )
    return True


def refuse_unparsed(check: Any, chunk: list[Token]) -> bool:
    """A statement sqlglot cannot parse that is still clearly refused for what it does, not
    for its syntax: ``SELECT … INTO #temp`` (Redshift), an anonymous procedure
    (``WITH p AS PROCEDURE … CALL p()``), a function on a deny-list called with a TABLE
    argument (BigQuery ``APPENDS(TABLE …)``). Records the refusals on the tokens (at depth 0 for the statement
    forms) and returns True when there was one, instead of a syntax error."""
    first = chunk[0].token_type
    depth = 0
    found = False
    reported: set[str] = set()
    read, write = check.rules, check.write_rules
    for index, token in enumerate(chunk):
        kind = token.token_type
        if kind == TokenType.L_PAREN:
            depth += 1
            continue
        if kind == TokenType.R_PAREN:
            depth = max(0, depth - 1)
            continue
        word = token.text.upper()
        if depth == 0 and kind == TokenType.INTO and first in (TokenType.SELECT, TokenType.WITH):
            what = "'SELECT … INTO'"
        elif depth == 0 and first == TokenType.WITH and word in ("PROCEDURE", "CALL"):
            what = "An anonymous procedure (WITH … AS PROCEDURE … CALL)"
        else:
            # a deny-listed table function over a TABLE argument, which sqlglot cannot parse
            # (BigQuery APPENDS(TABLE t, …), CHANGES(TABLE t, …))
            following = chunk[index + 1 : index + 3]
            if len(following) == 2 and [t.token_type for t in following] == [
                TokenType.L_PAREN,
                TokenType.TABLE,
            ]:
                name = token.text.lower()
                if _forbidden_word(name, read) or (
                    write is not read and _forbidden_word(name, write)
                ):
                    found = True
                    check.issue(
                        FORBIDDEN_FUNCTION,
                        f"Function {token.text}() is not allowed in a segment: it reads or "
                        "changes data outside the source's tables. Remove it.",
                        check.offset_position(token.start),
                    )
            continue
        if what in reported:
            continue
        reported.add(what)
        found = True
        check.issue(
            NOT_READ_ONLY,
            f"{what} is not allowed: segment queries may only read data. Remove it and keep "
            "a single SELECT.",
            check.offset_position(token.start),
        )
    return found or _refuse_unparsable_calls(check, chunk)


def _refuse_unparsable_calls(check: Any, chunk: list[Token]) -> bool:
    """A deny-listed function whose own arguments are what sqlglot cannot parse (T-SQL/Fabric
    ``OPENROWSET(BULK 'https://…', FORMAT = 'PARQUET')``, ``OPENROWSET(BULK '/x', SINGLE_CLOB)``):
    when the statement parses with each such call replaced by a plain name, the only syntax
    problem is inside calls that are refused anyway, so they are reported as
    ``forbidden_function`` (what they do), not as a syntax error. Runs only for a statement
    that did not parse."""
    read, write = check.rules, check.write_rules
    calls: list[tuple[int, int]] = []  # (name index, closing parenthesis index), outermost
    index = 0
    while index < len(chunk) - 1:
        token = chunk[index]
        name = token.text.lower()
        if chunk[index + 1].token_type != TokenType.L_PAREN or not (
            _forbidden_word(name, read) or (write is not read and _forbidden_word(name, write))
        ):
            index += 1
            continue
        end = _closing(chunk, index + 1)
        if end is None:
            return False
        if (
            end + 2 < len(chunk)
            and chunk[end + 1].token_type == TokenType.WITH
            and chunk[end + 2].token_type == TokenType.L_PAREN
        ):  # OPENROWSET(…) WITH (column type, …): the result's schema, part of the call
            end = _closing(chunk, end + 2) or end
        calls.append((index, end))
        index = end + 1
    if not calls:
        return False
    replaced: list[Token] = []
    ends = dict(calls)
    index = 0
    while index < len(chunk):
        token = chunk[index]
        if index in ends:
            replaced.append(
                Token(TokenType.VAR, "zc_call", token.line, token.col, token.start, token.end)
            )
            index = ends[index] + 1
            continue
        replaced.append(token)
        index += 1
    for start, _ in calls:
        token = chunk[start]
        check.issue(
            FORBIDDEN_FUNCTION,
            f"Function {token.text}() is not allowed in a segment: it reads or changes data "
            "outside the source's tables. Remove it.",
            check.offset_position(token.start),
        )
    try:
        trees = check.read_dialect.parser(error_level=ErrorLevel.RAISE, max_errors=1).parse(
            replaced, check.text
        )
    except (ParseError, TokenError):
        return False  # a syntax error outside the refused calls too: reported as well
    for tree in trees:
        # what the rest of the statement does still counts (WITH … DELETE … OPENROWSET(…))
        writes = tree.find(exp.DML, exp.DDL, exp.Insert, exp.Update, exp.Delete, exp.Merge)
        if isinstance(tree, exp.Expr) and (writes is not None or not isinstance(tree, exp.Query)):
            check.issue(
                NOT_READ_ONLY,
                "Only a read-only query (SELECT, WITH … SELECT, UNION …) is allowed: this "
                "statement changes data or is not a query. Keep a single SELECT.",
                check.offset_position(chunk[0].start),
            )
    return True


def _closing(chunk: list[Token], opening: int) -> int | None:
    """Index of the parenthesis closing the one at ``opening``, or None."""
    depth = 0
    for position in range(opening, len(chunk)):
        kind = chunk[position].token_type
        if kind == TokenType.L_PAREN:
            depth += 1
        elif kind == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                return position
    return None


def _forbidden_word(name: str, rules: Any) -> bool:
    """Whether a bare function name is on a dialect's deny-list (as `_forbidden_name`)."""
    if name in rules.allowed_functions:
        return False
    return name in rules.forbidden_functions or name.startswith(rules.forbidden_prefixes)


def after_parse(check: Any, statements: list[exp.Expr]) -> None:
    """Rewrites and refusals on the parsed statements, before they are copied and checked;
    each looks at the text first, so most queries pay one substring search."""
    restore_json_arrows(check, statements)
    restore_quantified_all(check, statements)
    refuse_system_variables(check, statements)
    refuse_duckdb_pivot_elsewhere(check, statements)
    refuse_variable_substitution(check)
    refuse_unicode_identifiers(check)
    refuse_streaming_reads(check, statements)
    refuse_stage_values(check, statements)
    refuse_forbidden_calls_in_scope(check, statements)
    refuse_quoted_qualified_calls(check, statements)
    refuse_sequence_values(check, statements)
    name_correlated_unnest_columns(check, statements)


# Dialects whose ``unnest(array) AS p`` names its one column ``p`` (PostgreSQL; DuckDB reads
# ``p`` as that column too).
_UNNEST_ALIAS_NAMES_COLUMN = frozenset({"postgres", "duckdb"})


def name_correlated_unnest_columns(check: Any, statements: list[exp.Expr]) -> None:
    """An ``UNNEST`` read in a subquery that refers to the outer query's columns, e.g.
    ``(SELECT count(*) FROM unnest(string_to_array(email, '@')) AS p)``: the column
    qualifier cannot tell the outer ``email`` from a column of the UNNEST when it does not
    know the UNNEST's columns, and reports it as unresolvable. The UNNEST's one column is named
    where the dialect names it anyway: PostgreSQL/DuckDB ``AS p`` becomes ``AS p(p)`` (the
    column PostgreSQL calls ``p``), and BigQuery's UNNEST without an alias (whose value has no
    name a query could use) gets the alias ``zc_unnest``. Nothing else changes: only texts
    with the word pay for the walk, and only UNNESTs in a subquery of an expression (scalar,
    EXISTS, IN) are named."""
    dialect = check.rules.sqlglot_dialect
    if (
        dialect not in _UNNEST_ALIAS_NAMES_COLUMN and dialect != "bigquery"
    ) or "unnest" not in check.text_lower:
        return
    for statement in statements:
        for unnest in statement.find_all(exp.Unnest):
            if len(unnest.expressions) != 1 or not isinstance(unnest.parent, exp.From | exp.Join):
                continue
            select = unnest.parent.parent
            container = select.parent if isinstance(select, exp.Select) else None
            if not (
                isinstance(container, exp.Exists)
                or (
                    isinstance(container, exp.Subquery)
                    and not isinstance(container.parent, exp.From | exp.Join | exp.Lateral)
                    and container.parent is not None
                )
            ):
                continue
            alias = unnest.args.get("alias")
            if dialect == "bigquery":
                if alias is None and not unnest.args.get("offset"):
                    # BigQuery's UNNEST alias names the value (a column alias)
                    unnest.set("alias", exp.TableAlias(columns=[exp.to_identifier("zc_unnest")]))
            elif isinstance(alias, exp.TableAlias) and alias.name and not alias.columns:
                alias.set("columns", [exp.to_identifier(alias.name)])


def refuse_forbidden_calls_in_scope(check: Any, statements: list[exp.Expr]) -> None:
    """``main.getenv('HOME')`` when the source's scope is ``main``: a call qualified with the
    scope's schema passes the qualifier check, but DuckDB looks ``main.`` up in every catalog
    of its search path, the built-ins' ``system.main`` too. A deny-listed name is refused
    whatever schema qualifies it (calls qualified with another schema are refused already)."""
    scope = check.scope_text.strip().lower() if isinstance(check.scope_text, str) else ""
    if not scope or "." not in check.text:
        return
    in_scope = {scope, scope.rsplit(".", 1)[-1]} - {""}
    lowered = check.text_lower
    if not any(name.rsplit(".", 1)[-1] in lowered for name in in_scope):
        return  # the schema's name is nowhere in the text: no call is qualified with it
    for statement in statements:
        for dot in statement.find_all(exp.Dot):
            func = dot.expression
            if not isinstance(func, exp.Func) or isinstance(dot.parent, exp.Table):
                continue
            qualifier = (
                ".".join(part.name for part in dot.this.find_all(exp.Identifier) if part.name)
                or dot.this.sql()
            )
            if qualifier.lower() not in in_scope:
                continue
            if isinstance(func, exp.Anonymous):
                names = {func.name.lower()}
            else:
                names = {func.key.lower(), *(n.lower() for n in type(func).sql_names())}
            rules = (check.rules, check.write_rules)
            if any(_forbidden_word(name, r) for name in names for r in rules):
                shown = func.name if isinstance(func, exp.Anonymous) else func.key.upper()
                check.issue(
                    FORBIDDEN_FUNCTION,
                    f"Function {qualifier}.{shown}() is not allowed in a segment: it reads or "
                    "changes data outside the source's tables, whatever schema names it. "
                    "Remove it.",
                    check.node_position(dot),
                )


def feeds_table_source(node: exp.Expr) -> bool:
    """Whether a refused call is an argument of a FROM item's table function (DuckDB
    ``FROM unnest(glob('*'))``, Snowflake ``TABLE(FLATTEN(INPUT => SYSTEM$ALLOWLIST()))``,
    PostgreSQL ``jsonb_array_elements(pg_read_file(…)::jsonb)``): the rows of that source come
    from outside the source's tables, so, as for a refused source, its columns are not checked
    (no missing_id_column besides the forbidden function). A call in a join's ON condition or
    in a subquery is not one."""
    child, current = node, node.parent
    while current is not None and not isinstance(current, exp.Query):
        if (
            isinstance(current, exp.Table | exp.Lateral | exp.TableFromRows | exp.From | exp.Join)
            and child is current.this
        ):
            return True
        child, current = current, current.parent
    return False


def refuse_quoted_qualified_calls(check: Any, statements: list[exp.Expr]) -> None:
    r"""BigQuery ``\`proj.finance.fn\`(x)``: a qualified function written as one quoted name,
    which sqlglot reads as a function literally named ``proj.finance.fn`` (so the qualifier
    check of ``finance.fn(x)`` never sees it). The name is split at its dots and checked like
    ``schema.fn(...)``: the source's schema or a built-in namespace (``AEAD``) only, and the
    function's own name against the deny-list. Table functions are refused by the allow-list."""
    quotes = check.read_dialect.tokenizer_class._IDENTIFIERS
    if (
        "." not in check.text
        or not any(quote in check.text for quote in quotes)  # no quoted name at all
        or not any(
            token.token_type == TokenType.IDENTIFIER and "." in token.text for token in check.tokens
        )
    ):
        return  # no quoted name holds a dot
    scope = check.scope_text.strip().lower() if isinstance(check.scope_text, str) else ""
    in_scope = {scope, scope.rsplit(".", 1)[-1]} - {""}
    rules = (check.rules, check.write_rules)
    for statement in statements:
        for func in statement.find_all(exp.Anonymous):
            name = func.name.lower()
            if "." not in name or isinstance(func.parent, exp.Table):
                continue
            if any(_forbidden_word(name, r) for r in rules):
                continue  # `ML.PREDICT`: refused by its whole name already
            qualifier, _, base = name.rpartition(".")
            namespaces = check.rules.function_namespaces | check.write_rules.function_namespaces
            allowed = qualifier in in_scope or qualifier in namespaces
            if allowed and not any(_forbidden_word(base, r) for r in rules):
                continue
            where = (
                "it reads or changes data outside the source's tables"
                if allowed
                else f"it belongs to '{qualifier}', outside this source's scope '{check.scope_text}'"
            )
            check.issue(
                FORBIDDEN_FUNCTION,
                f"Function {func.name}() is not allowed in a segment: {where}. Only built-in "
                "functions and functions of the source's schema can be used.",
                check.node_position(func),
            )


# Snowflake sequences are read as ``seq.NEXTVAL`` (a pseudo-column): each read advances the
# sequence, a change outside the source's tables like PostgreSQL's nextval('seq').
_SEQUENCE_PSEUDO_COLUMNS = frozenset({"nextval", "currval"})


def refuse_sequence_values(check: Any, statements: list[exp.Expr]) -> None:
    """Snowflake ``SELECT seq.NEXTVAL`` / ``marketing.seq.NEXTVAL``: refused as a forbidden
    function (what PostgreSQL's ``nextval('seq')`` is), not reported as an unknown column. A
    column named NEXTVAL of a table or alias of the query stays a column."""
    if check.rules.sqlglot_dialect != "snowflake" or not re.search(
        r"\.\s*(?:next|curr)val\b", check.text, re.IGNORECASE
    ):
        return
    for statement in statements:
        sources = {
            name.lower()
            for node in statement.find_all(exp.Table, exp.TableAlias, exp.CTE)
            for name in (node.alias_or_name, node.name)
            if name
        }
        for column in list(statement.find_all(exp.Column)):
            ident = column.this
            if (
                not isinstance(ident, exp.Identifier)
                or ident.quoted
                or ident.name.lower() not in _SEQUENCE_PSEUDO_COLUMNS
                or not column.table
                or column.table.lower() in sources
            ):
                continue
            sequence = ".".join(part.name for part in column.parts[:-1])
            check.issue(
                FORBIDDEN_FUNCTION,
                f"{sequence}.{ident.name} is not allowed in a segment: reading a sequence "
                "advances it, a change outside the source's tables. Remove it.",
                check.node_position(column),
            )
            column.replace(exp.Null())


def refuse_stage_values(check: Any, statements: list[exp.Expr]) -> None:
    """Snowflake ``@stage`` or ``DIRECTORY(@stage)`` used as a value, not a FROM item (those
    are refused by `refuse_unnamed_source`): a stage is files outside the source's tables,
    whatever function receives it. sqlglot reads ``@stage`` and the session variable ``$name``
    into the same node, so the names written after ``@`` are taken from the tokens."""
    if check.rules.sqlglot_dialect != "snowflake" or "@" not in check.text:
        return
    tokens = check.tokens
    stages = {
        following.text.lower()
        for token, following in itertools.pairwise(tokens)
        if token.token_type == TokenType.PARAMETER
        and token.text == "@"
        and following.start == token.end + 1
    }
    for statement in statements:
        for node in statement.find_all(exp.DirectoryStage, exp.Parameter):
            if isinstance(node, exp.Parameter) and not (
                isinstance(node.this, exp.Var) and node.this.name.lower() in stages
            ):
                continue  # `$1`, `$name`: a staged file's column or a session variable
            if node.find_ancestor(exp.Table, exp.DirectoryStage) or _inside_forbidden_call(
                check, node
            ):
                continue  # refused where it is read (FROM) or by the function's name
            if isinstance(node, exp.Parameter):
                name = f"@{node.name}"
            else:
                stage = node.this.name if isinstance(node.this, exp.Expr) else str(node.this)
                name = f"DIRECTORY({stage})"
            position = check.node_position(node)
            if position == (None, None):
                position = check.token_position("@", after=0)
            check.issue(
                FORBIDDEN_FUNCTION,
                f"The stage reference {name} is not allowed: a segment may only read the "
                "source's tables.",
                position,
            )


def _inside_forbidden_call(check: Any, node: exp.Expr) -> bool:
    """Whether a node is an argument of a function refused by name (``GET_PRESIGNED_URL``)."""
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.Anonymous) and _forbidden_word(parent.name.lower(), check.rules):
            return True
        parent = parent.parent
    return False


def refuse_unicode_identifiers(check: Any) -> None:
    """PostgreSQL ``U&"pg_sl\\0065ep"``: a name spelled with Unicode escapes, which sqlglot
    reads as the column ``U`` and-ed with another name (so no rule sees the real name)."""
    if check.rules.sqlglot_dialect != "postgres" or '&"' not in check.text:
        return
    tokens = check.tokens
    for i in range(len(tokens) - 2):
        u, amp, name = tokens[i], tokens[i + 1], tokens[i + 2]
        if (
            amp.token_type == TokenType.AMP
            and name.token_type == TokenType.IDENTIFIER
            and u.text in ("U", "u")
            and u.end + 1 == amp.start
            and amp.end + 1 == name.start
        ):
            check.issue(
                PARSE_ERROR,
                'A name written with Unicode escapes (U&"…") cannot be checked: write the '
                "name itself in double quotes.",
                check.offset_position(u.start),
            )
            check.parse_failed = True  # what sqlglot read is not the query: no column checks
            return


# Spark-family warehouses substitute ``${name}``, ``${env:NAME}``, ``${system:prop}`` and
# ``${hiveconf:key}`` in the statement text before parsing it, strings and names included
# (Spark's VariableSubstitution): the warehouse's environment and configuration.
SUBSTITUTING_DIALECTS = frozenset({"databricks", "spark", "spark2", "hive"})
_SUBSTITUTION_MESSAGE = (
    "'${{…}}' variable substitution ({where}) is not allowed in a segment: {warehouse} replaces "
    "it with a configuration value or environment variable of the warehouse before running "
    "the query. Write the value itself."
)


def refuse_variable_substitution(check: Any) -> None:
    """Databricks input that uses ``${…}`` anywhere but a comment (``FROM ${schema}.users``,
    ``'${env:TOKEN}'``): refused for what the warehouse would substitute, whatever target
    the query is emitted for (other warehouses would read it as something else)."""
    if check.rules.sqlglot_dialect not in SUBSTITUTING_DIALECTS or "${" not in check.text:
        return
    previous: Token | None = None
    for token in check.tokens:
        if "${" in token.text or (
            token.token_type == TokenType.L_BRACE
            and previous is not None
            and previous.text == "$"
            and previous.end + 1 == token.start
        ):
            brace = token.token_type == TokenType.L_BRACE
            start = previous.start if brace and previous is not None else token.start
            check.issue(
                FORBIDDEN_FUNCTION,
                _SUBSTITUTION_MESSAGE.format(where="written here", warehouse=check.rules.name),
                check.offset_position(start),
            )
            return
        previous = token


def substitution_in_output(check: Any, root: exp.Expr, *texts: str) -> bool:
    """The emitted SQL for a Spark-family warehouse holds ``${``: refused, it would be
    substituted there. A string from another dialect or spelled with escapes
    (``E'\\x24{env:HOME}'``) is forbidden_function; a parameter that sqlglot translates into
    ``${name}`` (Snowflake ``$since``, BigQuery ``@ids``) has no equivalent there.

    Also refuses clauses sqlglot writes for a target that does not have them
    (`_missing_clause`) and calls of functions the target does not have
    (`targets.refuse_unknown_functions`)."""
    if texts and (
        _missing_clause(check, texts[0]) or targets.refuse_unknown_functions(check, root, texts[0])
    ):
        return True
    if check.write_rules.sqlglot_dialect not in SUBSTITUTING_DIALECTS or not any(
        "${" in text for text in texts
    ):
        return False
    if "${" not in check.text and root.find(exp.Parameter, exp.Placeholder) is not None:
        check.issue(
            UNSUPPORTED_IN_DIALECT,
            f"This query's parameters or session variables cannot be expressed in "
            f"{check.write_rules.name}: they would become '${{…}}' substitutions of the "
            "warehouse's configuration. Write the values themselves.",
        )
        return True
    check.issue(
        FORBIDDEN_FUNCTION,
        _SUBSTITUTION_MESSAGE.format(
            where="in the query translated for it", warehouse=check.write_rules.name
        ),
    )
    return True


def refuse_duckdb_pivot_elsewhere(check: Any, statements: list[exp.Expr]) -> None:
    """DuckDB's ``PIVOT t ON … USING …`` form is emitted unchanged for other warehouses,
    which do not have it (their own parsers in sqlglot accept it): unsupported there."""
    if (
        check.rules.sqlglot_dialect != "duckdb"
        or check.write_rules.sqlglot_dialect == "duckdb"
        or "pivot" not in check.text_lower
    ):
        return
    for statement in statements:
        for node in statement.find_all(exp.Pivot):
            if isinstance(node.this, exp.Table):
                check.issue(
                    UNSUPPORTED_IN_DIALECT,
                    f"DuckDB's PIVOT … ON … USING statement has no equivalent in "
                    f"{check.write_rules.name}; write it with GROUP BY and conditional "
                    "aggregates (SUM(CASE WHEN … THEN … END)).",
                    check.node_position(node),
                )
                return


def refuse_system_variables(check: Any, statements: list[exp.Expr]) -> None:
    """BigQuery ``@@name`` system variables emitted for another warehouse become something
    else there (PostgreSQL ``$$a, $$`` is a string): refused as unsupported in the target."""
    if (
        check.rules.sqlglot_dialect != "bigquery"
        or check.write_rules.sqlglot_dialect == "bigquery"
        or "@@" not in check.text
    ):
        return
    for statement in statements:
        if not isinstance(statement, exp.Query):
            continue  # a SET @@… statement is refused as such
        for node in statement.find_all(exp.Parameter):
            if isinstance(node.this, exp.Parameter):
                check.issue(
                    UNSUPPORTED_IN_DIALECT,
                    f"BigQuery system variables (@@{node.this.name}) do not exist in "
                    f"{check.write_rules.name}; remove them from the query.",
                    check.node_position(node),
                )
                return


def check_set_op_widths(check: Any, scopes: list[Scope]) -> None:
    """Every branch of a UNION/INTERSECT/EXCEPT must return as many columns as the first
    (every warehouse refuses the query otherwise); branches with an unexpanded star are not
    compared."""
    for scope in scopes:
        if not scope.set_operation_scopes or not isinstance(scope.expression, exp.SetOperation):
            continue
        if isinstance(scope.parent, Scope) and scope.parent.expression is not None:
            parent = scope.parent.expression
            if isinstance(parent, exp.SetOperation) and scope in scope.parent.set_operation_scopes:
                continue  # a nested set operation: its outermost one compares all leaves
        widths: list[tuple[int, exp.Expr]] = []
        for leaf in _leaf_scopes(scope):
            selects = cast(exp.Query, leaf.expression).selects
            if any(s.is_star for s in selects):
                widths = []
                break
            widths.append((len(selects), leaf.expression))
        if len({w for w, _ in widths}) > 1:
            first = widths[0][0]
            other, branch = next((w, b) for w, b in widths if w != first)
            check.issue(
                PARSE_ERROR,
                f"The branches of this UNION/INTERSECT/EXCEPT return different numbers of "
                f"columns ({first} and {other}): every branch must return the same columns.",
                check.node_position(branch),
            )


def keyword_after_with(check: Any, keywords: set[str]) -> tuple[int | None, int | None] | None:
    """Where a statement that starts with ``WITH … AS (…)`` has its own keyword (``DELETE``,
    ``INSERT``…): the first such token outside parentheses, or None."""
    depth = 0
    for token in check.tokens:
        kind = token.token_type
        if kind == TokenType.L_PAREN:
            depth += 1
        elif kind == TokenType.R_PAREN:
            depth = max(0, depth - 1)
        elif kind == TokenType.SEMICOLON:
            return None
        elif depth == 0 and token.text.upper() in keywords:
            return check.offset_position(token.start)
    return None


def pivot_statement_as_query(check: Any, pivot: exp.Pivot) -> exp.Expr:
    """DuckDB's ``PIVOT t ON c USING agg GROUP BY id`` statement (a read-only query) as the
    equivalent ``SELECT * FROM (PIVOT …)``, which every later step understands; in another
    dialect, or without a table, it stays as parsed (refused as not a query)."""
    if check.rules.sqlglot_dialect != "duckdb" or not isinstance(pivot.this, exp.Table):
        return pivot
    return exp.select("*").from_(exp.Subquery(this=pivot), copy=False)


def star_over_pivot_keeps_id(branch: exp.Expr, wanted: str) -> bool:
    """``SELECT * FROM (PIVOT t ON … USING … GROUP BY id)``: the star returns the GROUP BY
    columns, so the id when it is one of them."""
    if not isinstance(branch, exp.Select):
        return False
    from_ = branch.args.get("from_")
    item = from_.this if isinstance(from_, exp.From) else None
    if not (isinstance(item, exp.Subquery) and isinstance(item.this, exp.Pivot)):
        return False
    group = item.this.args.get("group")
    return isinstance(group, exp.Group) and any(
        isinstance(c, exp.Column) and c.name.lower() == wanted for c in group.expressions
    )


def columns_regex_keeps_id(check: Any, query: exp.Query, wanted: str) -> bool:
    """DuckDB ``SELECT COLUMNS('external_user_id|email') FROM users``: the regular expression
    (matched anywhere in the name, as DuckDB does) selects the id column of a catalog table
    the SELECT reads. Only for DuckDB output: other warehouses have no COLUMNS()."""
    if check.write_rules.sqlglot_dialect != "duckdb":
        return False
    branch: exp.Expr = query
    while isinstance(branch, exp.SetOperation):
        branch = branch.this.unnest()
    if not isinstance(branch, exp.Select):
        return False
    patterns = []
    for select in branch.selects:
        if isinstance(select, exp.Alias):  # the qualifier names it _col_0
            select = select.this
        regex = select.this if isinstance(select, exp.Columns) else None
        if isinstance(regex, exp.Literal) and regex.is_string:
            patterns.append(regex.name)
    if not patterns:
        return False
    scope = next((s for s in check.scopes if s.expression is branch), None)
    if scope is None:
        return False
    for source in scope.sources.values():
        table = check.known_tables.get(id(source)) if isinstance(source, exp.Table) else None
        if table is None:
            continue
        for column in table.columns:
            if column.lower() != wanted:
                continue
            for pattern in patterns:
                try:
                    if re.search(pattern, column):
                        return True
                except re.error:
                    continue
    return False


def ambiguous_join_construct(check: Any, work: exp.Expr, scope_schema: str) -> None:
    """PostgreSQL/Redshift ``(users u JOIN events e ON …) AS t``: ``t`` keeps every column of
    the joined tables, so ``t.external_user_id`` is ambiguous when both have it (sqlglot's
    rewrite into ``(SELECT * …) AS t`` would keep one). Columns merged by ``USING`` are not."""
    if check.rules.sqlglot_dialect not in ("postgres", "redshift"):
        return
    for sub in work.find_all(exp.Subquery):
        first = sub.this
        if not (isinstance(first, exp.Table) and first.args.get("joins") and sub.alias):
            continue
        tables = [first, *(join.this for join in first.args["joins"])]
        counts: dict[str, int] = {}
        for table in tables:
            found = check.view.tables.get((scope_schema, table.name))
            if not isinstance(table, exp.Table) or found is None or table.args.get("db"):
                counts = {}
                break
            for column in found.columns:
                counts[column.lower()] = counts.get(column.lower(), 0) + 1
        merged = {
            using.name.lower()
            for join in first.args["joins"]
            for using in join.args.get("using") or []
        }
        duplicated = {name for name, n in counts.items() if n > 1} - merged
        if not duplicated:
            continue
        alias = sub.alias
        for column in work.find_all(exp.Column):
            if column.table == alias and column.name.lower() in duplicated:
                check.issue(
                    UNKNOWN_COLUMN,
                    f"Column {check.written(column)} is ambiguous: the joined tables of "
                    f"'{alias}' all have '{column.name}'. Join them with USING ({column.name}), "
                    "or drop the alias around the join and qualify the column with a table.",
                    check.node_position(column),
                )


def dataset_case_differs(check: Any, table: exp.Table, original: exp.Table | None) -> bool:
    """BigQuery dataset names are case-sensitive, but table references are matched without
    case (``table_names_fold_inconsistently``): ``MARKETING.users`` names another dataset
    than the scope ``marketing`` and is out of scope (the check would otherwise emit
    ``marketing.users``, a table the query did not name). Records the refusal."""
    if not check.rules.table_names_fold_inconsistently or not isinstance(original, exp.Table):
        return False
    written = original.args.get("db")
    if not isinstance(written, exp.Identifier) or not isinstance(check.scope_text, str):
        return False
    scope = check.scope_text.strip().split(".")[-1].strip()
    if written.name == scope or written.name.lower() != scope.lower():
        return False  # as configured, or another dataset altogether (resolve_table says so)
    check.issue(
        OUT_OF_SCOPE,
        f"Table {check.written_table(original)} is in the dataset '{written.name}', outside "
        f"this source's scope '{check.scope_text}' (BigQuery dataset names are "
        f"case-sensitive). Write '{scope}'.",
        check.node_position(table),
    )
    return True


# --- red-team round 3 ---------------------------------------------------------------------

# Functions whose ``AS`` inside the parentheses introduces a type (``CAST(x AS type)``).
_CAST_WORDS = frozenset({"CAST", "TRY_CAST", "SAFE_CAST"})


def before_parse(check: Any, chunk: list[Token]) -> list[Token]:
    """The tokens of one statement as the parser should see them: PostgreSQL/Redshift type
    names qualified with their built-in schema (``x::pg_catalog.date``, ``CAST(x AS
    pg_catalog.int4)``, what ``pg_dump`` and many BI tools write) lose the ``pg_catalog.``
    qualifier, which changes nothing in those warehouses. Redshift's parser in sqlglot has no
    qualified types at all (a syntax error), PostgreSQL's keeps them as user-defined types that
    no other warehouse has; without the qualifier both parse the built-in type, and a catalog
    probe (``::pg_catalog.regclass``) is refused as the unqualified one is. Only texts that
    name ``pg_catalog`` pay for the look.

    PostgreSQL's ``FOR READ ONLY`` (the SQL standard's way to say a query's cursor is not
    updatable; it changes nothing in a query) is dropped too: sqlglot has no such clause."""
    if check.rules.sqlglot_dialect == "postgres" and "read" in check.text_lower:
        chunk = _without_for_read_only(chunk)
    if check.rules.sqlglot_dialect in SUBSTITUTING_DIALECTS and "@" in check.text:
        chunk = _delta_version_suffixes(check, chunk)
    if "pg_catalog" not in check.rules.function_namespaces or "pg_catalog" not in (
        check.text_lower
    ):
        return chunk
    drop: set[int] = set()
    stack: list[str] = []  # the word before each open parenthesis
    for index, token in enumerate(chunk):
        kind = token.token_type
        if kind == TokenType.L_PAREN:
            stack.append(chunk[index - 1].text.upper() if index else "")
            continue
        if kind == TokenType.R_PAREN:
            if stack:
                stack.pop()
            continue
        if (
            token.text.lower() != "pg_catalog"
            or index == 0
            or index + 2 >= len(chunk)
            or chunk[index + 1].token_type != TokenType.DOT
        ):
            continue
        before = chunk[index - 1]
        if before.token_type == TokenType.DCOLON or (
            before.token_type == TokenType.ALIAS and stack and stack[-1] in _CAST_WORDS
        ):
            drop.update((index, index + 1))
    if not drop:
        return chunk
    return [token for index, token in enumerate(chunk) if index not in drop]


_DELTA_VERSION = re.compile(r"[vV](\d+)")
_DELTA_TIMESTAMP = re.compile(r"\d{17}")


def _delta_version_suffixes(check: Any, chunk: list[Token]) -> list[Token]:
    """Databricks' time-travel suffixes ``users@v3`` and ``users@20240101000000000``
    (``yyyyMMddHHmmssSSS``), written right after a table name: the tokens of ``VERSION AS OF
    3`` / ``TIMESTAMP AS OF '2024-01-01 00:00:00.000'`` (what they mean), which sqlglot
    parses; it cannot read the suffix form (the query was a parse error)."""
    out: list[Token] = []
    index = 0
    while index < len(chunk):
        token = chunk[index]
        following = chunk[index + 1] if index + 1 < len(chunk) else None
        previous = out[-1] if out else None
        if (
            token.token_type == TokenType.PARAMETER
            and token.text == "@"
            and following is not None
            and previous is not None
            and previous.end + 1 == token.start
            and token.end + 1 == following.start
            and previous.token_type in (TokenType.VAR, TokenType.IDENTIFIER)
        ):
            version = _DELTA_VERSION.fullmatch(following.text)
            stamp = following.token_type == TokenType.NUMBER and _DELTA_TIMESTAMP.fullmatch(
                following.text
            )
            if version or stamp:
                if version:
                    text = f"VERSION AS OF {version.group(1)}"
                else:
                    t = following.text
                    text = f"TIMESTAMP AS OF '{t[:4]}-{t[4:6]}-{t[6:8]} {t[8:10]}:{t[10:12]}:{t[12:14]}.{t[14:]}'"
                for new in check.read_dialect.tokenize(text):
                    out.append(
                        Token(
                            new.token_type,
                            new.text,
                            token.line,
                            token.col,
                            token.start,
                            following.end,
                        )
                    )
                index += 2
                continue
        out.append(token)
        index += 1
    return out


def _without_for_read_only(chunk: list[Token]) -> list[Token]:
    """The tokens without each ``FOR READ ONLY`` clause (three words in a row)."""
    drop: set[int] = set()
    for index in range(len(chunk) - 2):
        if (
            chunk[index].token_type == TokenType.FOR
            and chunk[index + 1].text.upper() == "READ"
            and chunk[index + 2].text.upper() == "ONLY"
        ):
            drop.update((index, index + 1, index + 2))
    if not drop:
        return chunk
    return [token for index, token in enumerate(chunk) if index not in drop]


def refuse_streaming_reads(check: Any, statements: list[exp.Expr]) -> None:
    """Databricks ``FROM STREAM(users)`` / ``FROM STREAM users``: a streaming read, which only
    a streaming table or pipeline can run; a segment is refreshed as a batch ``CREATE TABLE …
    AS SELECT``, where the warehouse refuses it. Refused as unsupported with the fix (read the
    table itself), after the STREAM is replaced by the table it reads, so the table and the
    columns are still checked and every other problem is reported at once."""
    if check.rules.sqlglot_dialect not in SUBSTITUTING_DIALECTS or "stream" not in (
        check.text_lower
    ):
        return  # only the Spark-family parsers read STREAM
    for statement in statements:
        for node in list(statement.find_all(exp.Stream)):
            inner = node.this
            table = inner.this if isinstance(inner, exp.Subquery) else inner
            if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
                continue  # STREAM read_files(…): the function's own check refuses it
            name = table.sql(dialect=check.read_dialect)
            check.issue(
                UNSUPPORTED_IN_DIALECT,
                f"STREAM({name}) reads the table as a stream, which only a streaming table or "
                "pipeline can do: a segment is refreshed as a batch query (CREATE TABLE … AS "
                f"SELECT). Read the table itself: FROM {name}.",
                check.node_position(node) if node._meta else check.node_position(table),
            )
            alias = inner.args.get("alias") if isinstance(inner, exp.Subquery) else None
            if alias is not None and table.args.get("alias") is None:
                table.set("alias", alias)
            node.replace(table)


def before_emit(check: Any, root: exp.Expr) -> bool:
    """Rewrites of the query about to be emitted for the target (after every check), or its
    refusal as unsupported there: True when refused (then nothing is emitted)."""
    # first, while the tree has the checked copy's shape
    # one walk finds the alias reads for both (nothing changes the tree in between)
    references = _alias_references(check, root) if _reads_aliases(check) else []
    if refuse_alias_references(check, references):
        return True
    alias_references(check, references)
    group_keys_for_tsql(check, root)
    targets.snowflake_temporal_to_char(check)  # first: refuse_lost_time_formats reads it
    if (
        refuse_star_modifiers(check, root)
        or refuse_untranslated_functions(check)
        or targets.refuse_struct_value_table(check, root)
        or targets.refuse_time_travel(check)
        or targets.refuse_sampling(check, root)
        or targets.refuse_engine_hashes(check)
        or targets.temporal_one_argument_calls(check)
        or targets.refuse_series_tables(check)
        or targets.refuse_snowflake_flatten(check)
        or targets.refuse_from_json_schemas(check)
        or targets.refuse_pivot_group(check, root)
        or targets.refuse_missing_types(check)
        or targets.refuse_postgres_untranslatable(check)
        or targets.refuse_array_exists_lambda(check)
        or targets.refuse_pattern_forms(check, root)
        or targets.regexp_extract_groups(check, root)
        or targets.set_operations_by_name(check, root)
        or targets.quantified_comparisons(check, root)
        or targets.split_part_for_bigquery(check)
        or targets.bigquery_instr(check)
        or targets.last_day_units(check)
        or targets.regexp_match_anchoring(check, root)
        or targets.refuse_lost_time_formats(check, root)
        or targets.postgres_round_half_even(check)
        or targets.add_months_semantics(check)
    ):
        return True
    targets.redundant_quotes(check, root)
    duckdb_own_approx_top_k(check)
    targets.drop_pg_catalog_qualifiers(check, root)
    targets.drop_materialization_hints(check, root)
    targets.bigquery_monday_weeks(check)
    targets.greatest_least_nulls(check)
    targets.integer_division(check, root)
    targets.day_of_week_numbering(check)
    targets.like_any_lists(check, root)
    if targets.like_escapes(check, root):  # after like_any_lists: the patterns it expands
        return True
    accessed = targets.snowflake_object_access(check, root)
    made = targets.path_literal_comparisons(check, accessed)
    made += targets.path_casts_read_text(check)
    targets.postgres_json_operators(check, accessed + made)
    targets.approximate_distinct_counts(check)
    targets.postgres_round_half_away(check)
    targets.count_if_totals(check)
    targets.json_array_sizes(check)
    targets.bigquery_timestamps_for_postgres(check)
    targets.substring_starts(check)
    targets.group_with_rollup(check, root)
    targets.date_part_aliases(check)
    targets.date_part_functions_for_postgres(check)
    targets.names_and_string_tests_for_postgres(check)
    targets.databricks_weekday(check)
    targets.split_for_postgres(check)  # first: its call is then put in parentheses
    targets.subscripted_calls_for_postgres(check, root)
    targets.derived_table_aliases(check, root)
    # first: they move sort keys that keep_null_ordering_for_bigquery reads
    if targets.ordered_array_aggregates(check) or targets.filter_clauses_for_redshift(check, root):
        return True
    redshift_listagg(check)
    inline_named_windows(check, root)  # first: keep_null_ordering_for_bigquery reads their keys
    keep_null_ordering_for_bigquery(check, root)
    keep_value_window_frames_for_snowflake(check)
    bigquery_timestamp_diff_elapsed(check)
    to_number_without_format(check, root)
    # after to_number_without_format, which turns TRY_TO_NUMBER into a TRY_CAST
    if targets.refuse_lost_safe_conversions(check, root):
        return True
    boundary_date_diffs(check)
    expand_group_by_all(check, root)
    if targets.expand_order_by_all(check, root) or targets.similar_to_regex(check, root):
        return True
    having_aliases(check, root)
    return False


def having_aliases(check: Any, root: exp.Expr) -> None:
    """``HAVING n > 2`` where ``n`` names an aggregate of the select list (Snowflake, DuckDB,
    BigQuery, Databricks accept it), emitted for PostgreSQL or Fabric, which only know the
    source columns there: the alias becomes its aggregate. Only aliases of an aggregate are
    replaced (a source column of that name could not be used ungrouped anyway)."""
    if check.write_rules.sqlglot_dialect not in ("postgres", "tsql", "fabric"):
        return
    if "having" not in check.text_lower:
        return
    columns = check.first_columns if root is getattr(check, "root", None) else None
    if columns is not None and all(column.table for column in columns):
        # every column of the query as written is qualified, and no rewrite before this one
        # writes an unqualified column of its own (they copy the query's columns, or fill
        # templates whose columns are all replaced): no HAVING has a bare column to replace,
        # and the walk for HAVINGs is skipped
        return
    for having in list(root.find_all(exp.Having)):
        select = having.parent
        if not isinstance(select, exp.Select):
            continue
        # the HAVING's bare columns first: with none (qualified columns only), the select
        # items are not searched for aggregates (a replacement moves no other column: the
        # list is the same as taken after it)
        bare = [column for column in having.find_all(exp.Column) if not column.table]
        if not bare:
            continue
        aggregates = {
            item.alias.lower(): item.this
            for item in select.expressions
            if isinstance(item, exp.Alias) and item.this.find(exp.AggFunc) is not None
        }
        if not aggregates:
            continue
        for column in bare:
            if column.find_ancestor(exp.Select) is not select:
                continue
            aggregate = aggregates.get(column.name.lower())
            if aggregate is not None:
                column.replace(aggregate.copy())


def expand_group_by_all(check: Any, root: exp.Expr) -> None:
    """``GROUP BY ALL`` (Snowflake, Databricks, DuckDB, BigQuery) emitted for PostgreSQL or
    Fabric, which do not have it (sqlglot writes it as is): the group becomes the select
    items without an aggregate or window, as those warehouses define ``ALL``. Only a text with
    the word pays for the walk."""
    if check.write_rules.sqlglot_dialect not in ("postgres", "tsql", "fabric"):
        return
    if "all" not in check.text_lower:
        return
    for group in list(root.find_all(exp.Group)):
        select = group.parent
        if not group.args.get("all") or not isinstance(select, exp.Select):
            continue
        keys = [
            item.unalias().copy()
            for item in select.expressions
            if item.find(exp.AggFunc, exp.Window) is None
            and not isinstance(item.unalias(), exp.Literal | exp.Null | exp.Boolean)
        ]
        if keys:
            select.set("group", exp.Group(expressions=keys))
        else:
            select.set("group", None)  # only aggregates: one group, as without GROUP BY


_TRUNCATED_UNITS = frozenset(
    {"YEAR", "QUARTER", "MONTH", "WEEK", "DAY", "HOUR", "MINUTE", "SECOND"}
)
_UNIT_SECONDS: dict[str, int] = {
    "SECOND": 1,
    "MINUTE": 60,
    "HOUR": 3600,
    "DAY": 86400,
    "WEEK": 604800,
}


def _postgres_elapsed(diff: exp.DateDiff, seconds: int) -> exp.Expr:
    """Whole fixed-length units elapsed from ``diff.expression`` to ``diff.this``, truncated
    toward zero, for PostgreSQL (sqlglot's ``CAST(… / n AS BIGINT)`` rounds: 13 days is 2
    weeks there)."""
    return targets.filled_template(
        "CAST(TRUNC(EXTRACT(EPOCH FROM (CAST(zc_later AS TIMESTAMP) - "
        f"CAST(zc_earlier AS TIMESTAMP))) / {seconds}) AS BIGINT)",
        "postgres",
        {"zc_later": diff.this, "zc_earlier": diff.expression},
    )


# Databricks' three-argument DATEDIFF/DATE_DIFF/TIMESTAMPDIFF in days (whole days elapsed),
# which sqlglot reads like the two-argument datediff(end, start) (days between the dates)
_THREE_ARGUMENT_DAY_DIFF = re.compile(
    r"\b(?:date_?diff|timestampdiff)\s*\(\s*['\"`]?(?:day|days|dd|d)\b", re.IGNORECASE
)


def _first_offset(node: exp.Expr) -> int | None:
    """Where ``node``'s text begins in the query (its first positioned part), if known."""
    offsets = [part.meta["start"] for part in node.walk() if "start" in part.meta]
    return min(offsets) if offsets else None


def _databricks_day_diff_elapsed(check: Any, node: exp.DateDiff) -> bool | None:
    """Whether Databricks' ``DATEDIFF``/``DATE_DIFF`` in days ``node`` was written with three
    arguments (``datediff(DAY, start, end)``: whole days elapsed, True) or two
    (``datediff(end, start)``: days between the dates, False); None when it cannot be told.
    sqlglot reads both alike (``this`` the end, ``expression`` the start): the end comes first
    in the text only in the two-argument form. Without positions, a text with no
    three-argument form in days has only two-argument ones."""
    end, start = node.this, node.expression
    end_at = _first_offset(end) if end is not None else None
    start_at = _first_offset(start) if start is not None else None
    if end_at is not None and start_at is not None and end_at != start_at:
        return start_at < end_at
    return False if not _THREE_ARGUMENT_DAY_DIFF.search(check.text) else None


def boundary_date_diffs(check: Any) -> None:
    """``DATEDIFF(unit, a, b)`` that counts unit boundaries crossed (Snowflake, Redshift,
    DuckDB: ``DATEDIFF(day, '… 23:00', '… 01:00')`` is 1), emitted where it would not.

    sqlglot reads Redshift's ``DATEDIFF`` as an elapsed-time difference (emitted for
    PostgreSQL as ``EXTRACT(epoch …) / 86400`` and for Databricks as ``UNIX_TIMESTAMP``
    arithmetic, and for DuckDB as ``DATE_DIFF('WEEK', …)``, which counts whole weeks): for
    these it is marked as the boundary count it is. Databricks' ``DATEDIFF(unit, …)`` is
    ``TIMESTAMPDIFF`` (whole units elapsed), and sqlglot's PostgreSQL week difference divides
    elapsed days: there both operands are truncated to the unit first, which makes the elapsed
    count equal the boundary count. An elapsed difference (DuckDB weeks, Databricks units) in
    fixed-length units is truncated for PostgreSQL instead of rounded (`_postgres_elapsed`)."""
    read = check.rules.sqlglot_dialect
    write = check.write_rules.sqlglot_dialect
    if write not in ("databricks", "postgres", "duckdb"):
        return  # the other targets' DATEDIFF counts boundaries (BigQuery's on DATETIMEs)
    for node in check.reading:
        if read == "redshift" and type(node) is exp.TsOrDsDiff and node.parent is not None:
            diff = exp.DateDiff(
                this=node.this,
                expression=node.expression,
                unit=node.args.get("unit"),
                date_part_boundary=True,
            )
            node.replace(diff)
            node = diff
        if not isinstance(node, exp.DateDiff):
            continue
        unit = node.args.get("unit")
        name = unit.name.upper() if isinstance(unit, exp.Expr) else ""
        if not node.args.get("date_part_boundary"):
            # Databricks' datediff(end, start) counts days between dates and sqlglot reads it
            # like DATEDIFF(DAY, start, end) (elapsed): told apart by the text, else
            # ambiguous and left as sqlglot writes it
            elapsed = (
                _databricks_day_diff_elapsed(check, node)
                if read == "databricks" and name == "DAY"
                else True  # any other difference sqlglot reads is elapsed
            )
            if elapsed is False and write == "postgres" and node.parent:
                # datediff(end, start): the days between the dates (a 23:00 to 01:00 night
                # is 1), as PostgreSQL's date - date
                node.replace(
                    exp.Sub(
                        this=exp.cast(node.this.copy(), exp.DType.DATE),
                        expression=exp.cast(node.expression.copy(), exp.DType.DATE),
                    )
                )
                continue
            if write == "postgres" and name in _UNIT_SECONDS and elapsed and node.parent:
                node.replace(_postgres_elapsed(node, _UNIT_SECONDS[name]))
            continue
        if write == "databricks" or (write == "postgres" and name.startswith("WEEK")):
            if name not in _TRUNCATED_UNITS or (name == "WEEK" and read == "bigquery"):
                continue  # BigQuery's weeks start on Sunday (WEEK(MONDAY) …): left to sqlglot
            for key in ("this", "expression"):
                operand = node.args.get(key)
                if isinstance(operand, exp.Literal) and operand.is_string:
                    # a bare string: PostgreSQL's DATE_TRUNC('WEEK', '2024-06-30') is ambiguous
                    operand = exp.cast(operand, exp.DType.TIMESTAMP)
                if operand is not None:
                    node.set(key, exp.TimestampTrunc(this=operand, unit=exp.Var(this=name)))


def to_number_without_format(check: Any, root: exp.Expr) -> None:
    """Snowflake ``TO_NUMBER(x [, p [, s]])`` / ``TRY_TO_NUMBER`` without a format model is a
    cast to ``NUMBER(p, s)`` (default ``(38, 0)``: ``'12.7'`` gives 13); sqlglot refuses it for
    every other target ("Conversion format is required"). It becomes ``CAST`` / ``TRY_CAST``
    to ``DECIMAL(p, s)`` there (where the target has no TRY_CAST, sqlglot's usual ``CAST``). A
    call with a format model is left as it is."""
    if check.write_rules.sqlglot_dialect == "snowflake" or "to_number" not in check.text_lower:
        return
    for node in list(root.find_all(exp.ToNumber)):
        if node.args.get("format") is not None or node.this is None:
            continue
        precision = node.args.get("precision") or exp.Literal.number(38)
        scale = node.args.get("scale") or exp.Literal.number(0)
        if not all(isinstance(a, exp.Literal) and not a.is_string for a in (precision, scale)):
            continue
        to = exp.DataType(
            this=exp.DataType.Type.DECIMAL,
            expressions=[
                exp.DataTypeParam(this=precision.copy()),
                exp.DataTypeParam(this=scale.copy()),
            ],
        )
        cast = exp.TryCast if node.args.get("safe") else exp.Cast
        if check.write_rules.sqlglot_dialect == "bigquery":
            # NUMERIC(p, s) needs p - s <= 29 and s <= 9 there: BIGNUMERIC, rounded to s.
            big = exp.DataType(this=exp.DataType.Type.BIGDECIMAL)
            node.replace(exp.Round(this=cast(this=node.this.copy(), to=big), decimals=scale.copy()))
            continue
        node.replace(cast(this=node.this.copy(), to=to))


def bigquery_timestamp_diff_elapsed(check: Any) -> None:
    """Differences that count whole units elapsed, emitted where DATEDIFF counts boundaries.

    BigQuery's ``TIMESTAMP_DIFF(b, a, unit)`` counts whole units elapsed (``HOUR`` between
    00:00:01 and 01:00:00 is 0); sqlglot writes it as the target's ``DATEDIFF``, which counts
    unit boundaries crossed (1 there) in Snowflake, Redshift and DuckDB, and as a function
    PostgreSQL does not have. For another target it becomes the boundary count ``n`` corrected
    where ``a`` moved by ``n`` units overshoots ``b``: ``CASE WHEN a <= b AND a + n > b THEN
    n - 1 WHEN a > b AND a + n < b THEN n + 1 ELSE n END`` (exact for BigQuery's fixed-length
    units, MICROSECOND to DAY; also right where the target's DATEDIFF already counts elapsed
    units, as in Databricks). The same for Databricks' ``DATEDIFF(HOUR, a, b)`` (its
    ``TIMESTAMPDIFF``) in fixed-length units other than DAY."""
    read, write = check.rules.sqlglot_dialect, check.write_rules.sqlglot_dialect
    if read == write or read not in ("bigquery", "databricks"):
        return
    for node in check.reading:
        if node.parent is None:
            continue
        bigquery_diff = read == "bigquery" and isinstance(node, exp.TimestampDiff)
        # Databricks' DATEDIFF(unit, a, b) is TIMESTAMPDIFF (elapsed); its datediff(b, a)
        # counts days between dates, and sqlglot reads both alike: DAY only when told apart
        unit = node.args.get("unit")
        name = unit.name.upper() if isinstance(unit, exp.Var) else ""
        databricks_diff = read == "databricks" and (
            (
                type(node) is exp.DateDiff
                and not node.args.get("date_part_boundary")
                and write != "postgres"  # elapsed differences are truncated there instead
                and (
                    name in _ELAPSED_UNITS
                    or (name == "DAY" and _databricks_day_diff_elapsed(check, node))
                )
            )
            or (type(node) is exp.TimestampDiff and name in _ELAPSED_UNITS | {"DAY"})
        )
        if not bigquery_diff and not databricks_diff:
            continue
        later, earlier = node.this, node.expression
        if later is None or earlier is None or unit is None:
            continue
        if databricks_diff and write == "postgres" and name in _UNIT_SECONDS:
            # Databricks' TIMESTAMPDIFF (PostgreSQL has no such function)
            node.replace(_postgres_elapsed(node, _UNIT_SECONDS[name]))
            continue
        node.replace(_elapsed_units(later, earlier, unit))


# Fixed-length units whose elapsed count the boundary count corrects exactly
_ELAPSED_UNITS = frozenset({"WEEK", "HOUR", "MINUTE", "SECOND"})


def _elapsed_units(later: exp.Expr, earlier: exp.Expr, unit: exp.Expr) -> exp.Expr:
    """Whole ``unit`` elapsed from ``earlier`` to ``later`` out of the boundary count ``n``:
    ``CASE WHEN a <= b AND a + n > b THEN n - 1 WHEN a > b AND a + n < b THEN n + 1 ELSE n
    END`` (right too where the target's DATEDIFF already counts elapsed units)."""
    count = exp.DateDiff(
        this=later.copy(), expression=earlier.copy(), unit=unit.copy(), date_part_boundary=True
    )
    moved = exp.DateAdd(this=earlier.copy(), expression=count.copy(), unit=unit.copy())
    forward = exp.and_(
        exp.LTE(this=earlier.copy(), expression=later.copy()),
        exp.GT(this=moved.copy(), expression=later.copy()),
    )
    backward = exp.and_(
        exp.GT(this=earlier.copy(), expression=later.copy()),
        exp.LT(this=moved, expression=later.copy()),
    )
    return exp.Paren(
        this=exp.Case(
            ifs=[
                exp.If(
                    this=forward,
                    true=exp.Sub(this=count.copy(), expression=exp.Literal.number(1)),
                ),
                exp.If(
                    this=backward,
                    true=exp.Add(this=count.copy(), expression=exp.Literal.number(1)),
                ),
            ],
            default=count,
        )
    )


# Star modifier -> (the Star arg that holds it, how users write it)
_STAR_MODIFIERS: dict[str, tuple[str, str]] = {
    "except": ("except_", "* EXCEPT/EXCLUDE (…)"),
    "replace": ("replace", "* REPLACE (…)"),
    "rename": ("rename", "* RENAME (…)"),
}


def refuse_star_modifiers(check: Any, root: exp.Expr) -> bool:
    """A star with a modifier the target does not have (``* EXCLUDE``/``* EXCEPT`` for
    PostgreSQL or Fabric, ``* REPLACE`` for Databricks, ``* RENAME`` for BigQuery …): sqlglot
    writes it there as is, which the warehouse refuses. Refused as unsupported (the user can
    list the columns). Returns True when refused. Only a text with one of the words pays for
    the walk."""
    missing = {
        key: value
        for key, value in _STAR_MODIFIERS.items()
        if key not in check.write_rules.star_modifiers
    }
    lower = check.text_lower
    if not missing or not any(word in lower for word in ("exclude", "except", "replace", "rename")):
        return False
    for star in root.find_all(exp.Star):
        for arg, written in missing.values():
            if star.args.get(arg):
                check.issue(
                    UNSUPPORTED_IN_DIALECT,
                    f"{check.write_rules.name} has no {written} on a star: this query cannot "
                    "be expressed there. List the columns to keep instead of the star.",
                    check.node_position(star),
                )
                return True
    return False


# What to write instead of a function the target does not have (by sqlglot expression key).
_UNTRANSLATED_HINTS: dict[str, str] = {
    "median": "PERCENTILE_CONT as a window function",
    "arrayagg": "LISTAGG/STRING_AGG into a text, or one row per value",
    "struct": "one column per field",
    "arrayuniqueagg": "LISTAGG(DISTINCT …) into a text, or one row per value",
}


def refuse_untranslated_functions(check: Any) -> bool:
    """A function the target does not have and sqlglot writes there as is (``MEDIAN`` for
    BigQuery or Fabric): refused as unsupported instead of failing in the warehouse. Returns
    True when refused."""
    missing = check.write_rules.untranslated_functions
    if not missing:
        return False
    for node in check.reading:
        if isinstance(node, exp.Func) and node.key in missing:
            shown = (type(node).sql_names() or [node.key.upper()])[0]
            check.issue(
                UNSUPPORTED_IN_DIALECT,
                f"{check.write_rules.name} has no {shown} function: this query "
                "cannot be expressed there. Rewrite that part with a construct both dialects "
                f"support (e.g. {_UNTRANSLATED_HINTS.get(node.key, 'a CASE expression')}).",
                check.node_position(node),
            )
            return True
    return False


_VALUE_WINDOWS = (exp.FirstValue, exp.LastValue, exp.NthValue)


def keep_value_window_frames_for_snowflake(check: Any) -> None:
    """``FIRST_VALUE``/``LAST_VALUE``/``NTH_VALUE … OVER (… ORDER BY …)`` without a frame,
    emitted for Snowflake from another dialect.

    Everywhere else such a window has the standard frame ``RANGE BETWEEN UNBOUNDED PRECEDING
    AND CURRENT ROW`` (``LAST_VALUE`` is the current row's peer); Snowflake gives these three
    functions the whole partition instead, and sqlglot writes the window as is, which changes
    the result. The standard frame is written out. (sqlglot reads Snowflake's own windows with
    their frame, so a Snowflake query is left alone.)"""
    if (
        check.write_rules.sqlglot_dialect != "snowflake"
        or check.rules.sqlglot_dialect == "snowflake"
    ):
        return
    for node in check.reading:
        if not isinstance(node, _VALUE_WINDOWS):
            continue
        window = node.parent
        if isinstance(window, exp.IgnoreNulls | exp.RespectNulls):
            window = window.parent
        if (
            not isinstance(window, exp.Window)
            or window.args.get("spec") is not None
            or window.args.get("order") is None
        ):
            continue
        window.set(
            "spec",
            exp.WindowSpec(
                kind="RANGE", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"
            ),
        )


def redshift_listagg(check: Any) -> None:
    """Redshift's ``LISTAGG([DISTINCT] x [, delimiter]) [WITHIN GROUP (ORDER BY …)]``.

    sqlglot's Redshift parser reads ``LISTAGG(DISTINCT x, ',')`` as the distinct *pair*
    ``(x, ',')`` with no delimiter (emitted as a row value elsewhere), leaves a missing delimiter
    unset (Redshift's default is none; other warehouses' is a comma) and keeps ``WITHIN GROUP``
    around the aggregate, which PostgreSQL's ``STRING_AGG`` does not have. The delimiter is
    split from the pair and made explicit, and for another target the order moves into the
    aggregate (the shape sqlglot reads from Snowflake and writes everywhere). For Redshift the
    reverse: an order inside the aggregate (from another dialect, which sqlglot writes as the
    invalid ``LISTAGG(x ORDER BY y, ',')``) becomes ``WITHIN GROUP``."""
    from_redshift = check.rules.sqlglot_dialect == "redshift"
    to_redshift = check.write_rules.sqlglot_dialect == "redshift"
    if from_redshift == to_redshift and not from_redshift:
        return
    for node in check.reading:
        if not isinstance(node, exp.GroupConcat):
            continue
        if from_redshift:
            this = node.this
            if (
                isinstance(this, exp.Distinct)
                and len(this.expressions) == 2
                and node.args.get("separator") is None
            ):
                separator = this.expressions[1]
                this.set("expressions", [this.expressions[0]])
                node.set("separator", separator)
            if node.args.get("separator") is None:
                node.set("separator", exp.Literal.string(""))
        parent = node.parent
        if (
            not to_redshift
            and isinstance(parent, exp.WithinGroup)
            and parent.this is node
            and isinstance(parent.expression, exp.Order)
        ):
            order = parent.expression
            node.set("this", exp.Order(this=node.this, expressions=list(order.expressions)))
            parent.replace(node)
        elif to_redshift and isinstance(node.this, exp.Order):
            order = node.this
            node.set("this", order.this)
            node.replace(
                exp.WithinGroup(
                    this=node.copy(), expression=exp.Order(expressions=list(order.expressions))
                )
            )


def duckdb_own_approx_top_k(check: Any) -> None:
    """DuckDB's ``approx_top_k(x, k)`` in a DuckDB query emitted for DuckDB: sqlglot refuses to
    write its own parse of it back (``APPROX_TOP_K cannot be transpiled to DuckDB due to
    incompatible return types``, meant for other dialects' APPROX_TOP_K), so a valid DuckDB
    query was refused as unsupported. It is written as the call it was."""
    if (
        check.rules.sqlglot_dialect != "duckdb"
        or check.write_rules.sqlglot_dialect != "duckdb"
        or "approx_top_k" not in check.text_lower
    ):
        return
    for node in check.reading:
        if isinstance(node, exp.ApproxTopK) and node.parent is not None:
            args = [node.this, node.expression, node.args.get("counters")]
            node.replace(
                exp.Anonymous(this="approx_top_k", expressions=[a for a in args if a is not None])
            )


def inline_named_windows(check: Any, root: exp.Expr) -> None:
    """A query's ``WINDOW w AS (…)`` clause emitted for another warehouse: each ``OVER w`` /
    ``OVER (w …)`` gets the named window's PARTITION BY, ORDER BY and frame written out (what
    it means), and the clause goes. The null-placement rewrites of window sort keys (BigQuery,
    Fabric) only see windows written out: sqlglot's own crashed on a named window with a frame
    (``AttributeError`` answered as parse_error, PostgreSQL's ``nth_value(x, 2) OVER w`` for
    BigQuery). Snowflake and Redshift, which have no WINDOW clause, were inlined by sqlglot
    already; every warehouse takes the written-out form."""
    if check.rules.sqlglot_dialect == check.write_rules.sqlglot_dialect:
        return
    if "window" not in check.text_lower:
        return
    for select in list(root.find_all(exp.Select)):
        if select.args.get("windows"):
            transforms.eliminate_window_clause(select)


def keep_null_ordering_for_bigquery(check: Any, root: exp.Expr) -> None:
    """Null placement in the sort keys of windows and aggregates, emitted for BigQuery.

    BigQuery sorts NULLs first ascending and last descending; a query from a warehouse that
    sorts them the other way (or that says ``NULLS LAST`` itself) needs the explicit clause,
    which BigQuery accepts in a query's ORDER BY, in numbering/navigation windows and in
    ``ROWS`` frames, but refuses for ``ASC NULLS LAST``/``DESC NULLS FIRST`` in ``RANGE`` frames
    (the implicit frame of an aggregate window with ORDER BY) and in aggregate functions
    (``ARRAY_AGG(x ORDER BY y)``). sqlglot refuses all window frames and aggregates alike. Such
    a key ``y`` becomes ``y IS NULL, y`` (``y IS NULL DESC, y`` for NULLS FIRST): the same order
    and the same peers (a RANGE frame keeps its rows), in BigQuery's own syntax. A RANGE frame
    with an offset needs its single numeric key, so it is left to be refused."""
    if check.write_rules.sqlglot_dialect != "bigquery" or "order" not in check.text_lower:
        return
    generator = check.write_dialect.generator_class
    handled = getattr(generator, "WINDOW_FUNCS_WITH_NULL_ORDERING", ())
    for ordered in _window_and_aggregate_keys(check.reading):
        desc = bool(ordered.args.get("desc"))
        nulls_first = bool(ordered.args.get("nulls_first"))
        if desc is not nulls_first or ordered.this is None or ordered.this.is_int:
            continue  # BigQuery's own placement (ASC NULLS FIRST, DESC NULLS LAST)
        window = ordered.find_ancestor(exp.Window, exp.Select)
        if isinstance(window, exp.Window):
            function = window.this
            if isinstance(function, exp.IgnoreNulls | exp.RespectNulls):
                function = function.this
            spec = window.args.get("spec")
            kind = spec.text("kind").upper() if isinstance(spec, exp.WindowSpec) else ""
            if isinstance(function, handled) and kind in ("", "ROWS"):
                continue  # sqlglot writes NULLS FIRST/LAST there, which BigQuery accepts
            if kind == "RANGE" and isinstance(spec, exp.WindowSpec) and not _unbounded_frame(spec):
                continue  # RANGE BETWEEN INTERVAL … PRECEDING: one key only; stays refused
            if not kind and not isinstance(function, exp.AggFunc):
                continue  # ROW_NUMBER() OVER (ORDER BY y NULLS LAST): written as is
        else:
            aggregate = ordered.find_ancestor(exp.AggFunc, exp.Select)
            if not isinstance(aggregate, exp.AggFunc):
                continue  # the query's own ORDER BY: NULLS FIRST/LAST is written as is
            argument = aggregate.this
            while isinstance(argument, exp.Order | exp.Distinct):
                argument = (
                    argument.expressions[0] if isinstance(argument, exp.Distinct) else argument.this
                )
            if argument == ordered.this:
                # STRING_AGG(x ORDER BY x): NULL values of x are dropped (ARRAY_AGG refuses
                # them in BigQuery), so their place does not matter; DISTINCT needs this form
                ordered.set("nulls_first", not desc)
                continue
            if aggregate.find(exp.Distinct) is not None:
                continue  # DISTINCT with another sort key: BigQuery refuses it anyway
        key = exp.Ordered(
            this=exp.Is(this=ordered.this.copy(), expression=exp.Null()),
            desc=nulls_first,  # NULLS FIRST: `y IS NULL` true first
            nulls_first=not nulls_first,  # BigQuery's default for that direction
        )
        ordered.set("nulls_first", not desc)  # BigQuery's default: no clause needed
        parent, arg_key = ordered.parent, ordered.arg_key
        siblings = parent.args.get(arg_key) if parent is not None and arg_key else None
        if (
            parent is not None
            and arg_key
            and isinstance(siblings, list)
            and ordered.index is not None
        ):
            siblings.insert(ordered.index, key)
            parent.set(arg_key, siblings)


def _window_and_aggregate_keys(reading: list[exp.Expr]) -> list[exp.Ordered]:
    """The sort keys of windows and of aggregates' ORDER BY, found from the functions the
    copy walk already listed (no walk of the whole tree)."""
    keys: list[exp.Ordered] = []
    for node in reading:
        if not isinstance(node, exp.Func):
            continue
        parent = node.parent
        if isinstance(parent, exp.IgnoreNulls | exp.RespectNulls):
            parent = parent.parent
        if isinstance(parent, exp.Window) and parent.this in (node, node.parent):
            order = parent.args.get("order")
            if isinstance(order, exp.Order):
                keys += [k for k in order.expressions if isinstance(k, exp.Ordered)]
        if isinstance(node, exp.AggFunc):
            keys += [
                k
                for k in node.find_all(exp.Ordered)
                if k.find_ancestor(exp.AggFunc, exp.Window, exp.Select) is node
            ]
    return keys


def _unbounded_frame(spec: exp.WindowSpec) -> bool:
    """A frame whose bounds are UNBOUNDED or CURRENT ROW (no offset)."""
    for side in ("start", "end"):
        bound = spec.args.get(side)
        if bound is None:
            continue
        if not isinstance(bound, str) or bound.upper() not in ("UNBOUNDED", "CURRENT ROW"):
            return False  # an offset: a literal, an INTERVAL …
    return True


# Aggregate clauses some warehouses do not have, though sqlglot writes them there (and its
# own parser for that dialect reads them back): target -> {(first word, second word): clause}.
_MISSING_CLAUSES: dict[str, dict[tuple[str, str], str]] = {
    "bigquery": {
        ("FILTER", "("): "FILTER (WHERE …) clause on aggregates",
        ("WITHIN", "GROUP"): "WITHIN GROUP (ORDER BY …) clause",
    },
}


def _missing_clause(check: Any, sql: str) -> bool:
    """The SQL emitted for the target holds a clause the target does not have (BigQuery has
    no ``FILTER (WHERE …)`` on aggregates and no ordered-set ``WITHIN GROUP``): refused as
    unsupported instead of failing in the warehouse. Only a text with the word pays for a
    look at its tokens (strings and names holding the words do not count)."""
    clauses = _MISSING_CLAUSES.get(check.write_rules.sqlglot_dialect)
    upper = sql.upper()
    if not clauses or not any(first in upper for first, _ in clauses):
        return False
    try:
        tokens = check.write_dialect.tokenize(sql)
    except Exception:  # the output did not tokenize: the re-parse check reports it
        return False
    for token, following in itertools.pairwise(tokens):
        if token.token_type in (TokenType.STRING, TokenType.IDENTIFIER):
            continue  # a text or a quoted name
        clause = clauses.get((token.text.upper(), following.text.upper()))
        if clause is None:
            continue
        check.issue(
            UNSUPPORTED_IN_DIALECT,
            f"{check.write_rules.name} has no {clause}: this query cannot be expressed there. "
            "Rewrite that part with a construct both dialects support (e.g. CASE inside the "
            "aggregate, or a window function).",
        )
        return True
    return False


# --- select-list aliases read in the same SELECT -------------------------------------------

# Where a select item's alias can be read in the same SELECT, by input dialect (the clause's
# arg name, "expressions" for a later select item): Snowflake, DuckDB, Redshift and Databricks
# read it in WHERE and later items; BigQuery in neither (HAVING, GROUP BY and ORDER BY only);
# PostgreSQL in none of them (GROUP BY and ORDER BY only).
_ALIAS_READ_IN: dict[str, frozenset[str]] = {
    "postgres": frozenset(),
    "bigquery": frozenset({"having"}),
}
_ALL_ALIAS_CLAUSES = frozenset({"where", "expressions", "having"})
# Targets that read an alias in WHERE and in later select items as the input dialects do
# (anywhere else the alias becomes its expression)
_ALIAS_KEPT_FOR = frozenset({"snowflake", "duckdb"})
# the node types the check's copy walk lists as reading (`check._kind`)
_READING_TYPES = (
    exp.Table,
    exp.Lateral,
    exp.TableFromRows,
    exp.Func,
    exp.Dot,
    exp.Subquery,
    exp.QueryTransform,
)


def _alias_references(check: Any, root: exp.Expr) -> list[tuple[exp.Column, str, exp.Expr]]:
    """The bare columns of ``root`` that read a select item's alias of their own SELECT (in
    WHERE, HAVING or a later select item), with the clause and the SELECT: those the checked
    copy replaced by the item's expression (sqlglot's alias expansion; a source column of the
    name keeps its place and stays a column). Only a SELECT whose aliases are named again in
    it pays for the walk."""
    work = getattr(check, "work", None)
    if work is None:
        return []
    # one walk lists the SELECTs (in `find_all`'s order) and the names of the bare columns: a
    # SELECT none of whose aliases is such a name has no alias read, and its clauses are not
    # walked (most queries qualify their columns: none is)
    selects: list[exp.Select]
    bare: set[str]
    known = getattr(check, "first_selects", None), getattr(check, "first_columns", None)
    if root is getattr(check, "root", None) and known[0] is not None and known[1] is not None:
        # the check's copy walk listed them, in walk order: between the copy and these
        # rewrites nothing adds or removes a SELECT or a column of the tree as written
        selects = known[0]
        bare = {column.name.lower() for column in known[1] if not column.table}
    else:
        selects, bare = [], set()
        for node in root.walk():
            if isinstance(node, exp.Select):
                selects.append(node)
            elif isinstance(node, exp.Column) and not node.table:
                bare.add(node.name.lower())
    found: list[tuple[exp.Column, str, exp.Expr]] = []
    for select in selects:
        aliases = {item.alias.lower() for item in select.expressions if isinstance(item, exp.Alias)}
        if aliases.isdisjoint(bare):
            continue
        # later items first: a WHERE reading an item built on an earlier alias copies it whole
        clauses: list[tuple[str, exp.Expr]] = []
        if not any(item.is_star for item in select.expressions):
            clauses.extend(("expressions", item) for item in select.expressions[1:])
        clauses.extend(
            (key, select.args[key]) for key in ("where", "having") if select.args.get(key)
        )
        candidates = [
            (key, clause, column)
            for key, clause in clauses
            for column in clause.find_all(exp.Column)
            if not column.table
            and column.name.lower() in aliases
            and column.find_ancestor(exp.Select) is select
        ]
        if not candidates:
            continue
        twin_select = targets._twin(select, root, work)
        if not isinstance(twin_select, exp.Select):
            continue
        for key, clause, column in candidates:
            if key == "expressions":
                index = select.expressions.index(clause)
                twin_clause: Any = twin_select.expressions[index]
                if isinstance(twin_clause, exp.Alias) and not isinstance(clause, exp.Alias):
                    twin_clause = twin_clause.this  # an item the qualification named
            else:
                twin_clause = twin_select.args.get(key)
            if not isinstance(twin_clause, exp.Expr) or type(twin_clause) is not type(clause):
                continue
            twin = targets.same_place(column, clause, twin_clause)
            # the alias's expression in its place (a column of another name when the item is
            # a plain column, which sqlglot writes without parentheses)
            if twin is not None and (
                not isinstance(twin, exp.Column) or twin.name.lower() != column.name.lower()
            ):
                found.append((column, key, select))
    return found


def _reads_aliases(check: Any) -> bool:
    """Whether `refuse_alias_references` or `alias_references` acts for this check's input and
    target dialects (else the walk for alias reads is skipped)."""
    return (
        check.rules.sqlglot_dialect in _ALIAS_READ_IN
        or check.write_rules.sqlglot_dialect not in _ALIAS_KEPT_FOR
    )


def refuse_alias_references(check: Any, references: list[tuple[exp.Column, str, exp.Expr]]) -> bool:
    """A select item's alias read in WHERE or a later select item in PostgreSQL or BigQuery
    (or in HAVING in PostgreSQL), which only know the sources' columns there: the warehouse
    fails with an unknown column, so does the check (sqlglot's qualification read it as the
    alias, as Snowflake does)."""
    allowed = _ALIAS_READ_IN.get(check.rules.sqlglot_dialect)
    if allowed is None:
        return False
    refused = False
    for column, key, _ in references:
        if key in allowed:
            continue
        refused = True
        where = {"where": "WHERE", "having": "HAVING", "expressions": "another select item"}
        check.issue(
            UNKNOWN_COLUMN,
            f"Column {check.written(column)} does not exist in any table of this query: it "
            f"names a select item's alias, which {check.rules.name} does not read in "
            f"{where[key]}. Repeat the item's expression there instead.",
            check.node_position(column),
        )
    return refused


def alias_references(check: Any, references: list[tuple[exp.Column, str, exp.Expr]]) -> None:
    """A select item's alias read in WHERE or a later select item (Snowflake, DuckDB,
    Redshift, Databricks), emitted for another warehouse: the reference becomes the item's
    expression, which every warehouse reads the same (PostgreSQL, BigQuery and T-SQL/Fabric
    fail on the alias; sqlglot writes it as is). HAVING is expanded for PostgreSQL and
    T-SQL/Fabric, which read only source columns there (an aggregate's alias later, by
    `having_aliases`, once the aggregate is translated). Later items are expanded first, so
    an item built on an earlier alias carries its whole expression."""
    target = check.write_rules.sqlglot_dialect
    if target in _ALIAS_KEPT_FOR:
        return
    having = target in ("postgres", "tsql", "fabric")
    for column, key, select in references:
        if key == "having" and not having:
            continue
        # the item's expression as it stands (an earlier item's references already replaced)
        expressions = {
            item.alias.lower(): item.this
            for item in select.expressions
            if isinstance(item, exp.Alias)
        }
        expression = expressions.get(column.name.lower())
        if expression is None or (key == "having" and expression.find(exp.AggFunc)):
            continue  # an aggregate's alias in HAVING: `having_aliases`, after the rewrites
        copied = expression.copy()
        if isinstance(copied, exp.Binary | exp.Unary | exp.Between | exp.In):
            copied = exp.paren(copied, copy=False)
        column.replace(copied)
        # the rewrites after this one walk the copy's reading nodes as they walk the item's
        reading = getattr(check, "reading", None)
        if isinstance(reading, list):
            reading.extend(node for node in copied.walk() if isinstance(node, _READING_TYPES))


def group_keys_for_tsql(check: Any, root: exp.Expr) -> None:
    """``GROUP BY 1`` or ``GROUP BY alias`` emitted for T-SQL/Fabric, which group only by
    expressions of the sources (a position is a constant there, an alias unknown: the
    warehouse fails): each such key becomes the select item's expression. A key that is a
    source column stays (the checked copy, where sqlglot expanded positions and aliases,
    still has the column there)."""
    if check.write_rules.sqlglot_dialect not in ("tsql", "fabric"):
        return
    work = getattr(check, "work", None)
    for select in list(root.find_all(exp.Select)):
        group = select.args.get("group")
        if group is None or not group.expressions:
            continue
        items = select.expressions
        aliases = {item.alias.lower(): item for item in items if isinstance(item, exp.Alias)}
        twin: Any = None
        for index, key in enumerate(list(group.expressions)):
            item: exp.Expr | None = None
            if isinstance(key, exp.Literal) and key.is_int:
                position = int(key.name)
                if 1 <= position <= len(items) and not items[position - 1].is_star:
                    item = items[position - 1]
            elif isinstance(key, exp.Column) and not key.table and key.name.lower() in aliases:
                if twin is None:
                    twin = targets._twin(select, root, work) if work is not None else False
                twin_group = twin.args.get("group") if isinstance(twin, exp.Select) else None
                twin_keys = twin_group.expressions if twin_group is not None else []
                twin_key = twin_keys[index] if index < len(twin_keys) else None
                if not (
                    isinstance(twin_key, exp.Column) and twin_key.name.lower() == key.name.lower()
                ):
                    item = aliases[key.name.lower()]
            if item is not None:
                key.replace(item.unalias().copy())
