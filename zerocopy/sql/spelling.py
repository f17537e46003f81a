"""Names as the warehouse stores them: matching quoted stored spellings, emitting stored ones.

The catalog matches a single-case stored name like an unquoted identifier of the query's
dialect (`zerocopy.sql.catalog._normalize`): PostgreSQL's unquoted ``external_id`` means a
column stored ``EXTERNAL_ID`` (created quoted). The warehouse itself does not: it folds the
unquoted name and finds nothing. So

- a quoted name spelled exactly as stored (``"EXTERNAL_ID"``) means that table or column too
  (`match_quoted`, on the work copy before qualification);
- a quoted name in the case the dialect folds to, but stored otherwise (PostgreSQL's
  ``"external_id"`` for ``EXTERNAL_ID``) names nothing the warehouse has, and is refused with
  the stored spelling (`wrong_case_table`, `refuse_wrong_case_columns`);
- before emitting, every reference to such a table or column (and to a column a derived
  table or CTE passes on from one, e.g. through a star) is written as stored, quoted where
  the target folds unquoted names to lower case (`respell`): PostgreSQL. Snowflake is left
  as written: a lower-case name in a Snowflake catalog is read as its ordinary upper-case
  stored name (`zerocopy.sql.catalog._QUOTED_KEEPS_CASE`).
  Case-insensitive targets (DuckDB, BigQuery columns, Databricks, Redshift, T-SQL) are left
  as they are.

Everything here is gated on the catalog having such names (a typical lower-case PostgreSQL
catalog has none), so ordinary checks pay one dict lookup.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import NormalizationStrategy
from sqlglot.optimizer.scope import Scope

from zerocopy.errors import UNKNOWN_COLUMN, UNKNOWN_TABLE

# The metadata key marking an identifier written as the catalog stores it.
STORED = "zc_stored"


def match_quoted(check: Any, identifiers: list[exp.Identifier]) -> None:
    """On the normalized work copy: a quoted name spelled as a catalog table or column is
    stored (``"EXTERNAL_ID"``) takes that entry's normalized name; a quoted name equal to
    such an entry's normalized name but not its stored spelling (``"external_id"``) is kept
    as a suspect, refused if it names a catalog table or column (same dialect only: written
    for another dialect, quotes follow that dialect's habits)."""
    view = check.view
    quoted = view.quoted
    if not quoted or '"' not in check.text:
        return
    respelled = view.respelled
    suspects: set[int] = set()
    for identifier in identifiers:
        if not identifier.args.get("quoted"):
            continue
        name = identifier.this
        key = quoted.get(name)
        if key is not None:
            identifier.args["this"] = key
        elif name in respelled:
            suspects.add(id(identifier))
    if suspects and check.rules.sqlglot_dialect == check.write_rules.sqlglot_dialect:
        check.case_suspects = suspects


def _stored_as(check: Any, what: str, stored: str) -> str:
    """The end of a wrong-case refusal: the stored spelling and how to write it in the
    query's dialect (quoted as stored, or unquoted)."""
    quoted = check.read_dialect.generate(exp.Identifier(this=stored, quoted=True))
    return (
        f"quoted names are case-sensitive in {check.rules.name}, and the {what} is stored as "
        f"{stored}. Write {quoted} (exactly as stored) or the name unquoted."
    )


def wrong_case_table(check: Any, table: exp.Table, found: Any) -> bool:
    """A catalog table named by a quoted suspect (`match_quoted`): refused, True."""
    name = table.this
    if not isinstance(name, exp.Identifier) or id(name) not in check.case_suspects:
        return False
    if name.this == found.name:
        return False
    check.issue(
        UNKNOWN_TABLE,
        f"Table {check.written_table(table)} does not exist in '{check.scope_text}': "
        + _stored_as(check, "table", found.name),
        check.node_position(table),
    )
    return True


def refuse_wrong_case(check: Any, scopes: list[Scope]) -> bool:
    """`refuse_wrong_case_columns` and `refuse_wrong_case_star_names`; True when a star's
    name was refused."""
    refuse_wrong_case_columns(check, scopes)
    return refuse_wrong_case_star_names(check, scopes)


def refuse_wrong_case_columns(check: Any, scopes: list[Scope]) -> None:
    """Columns named by a quoted suspect (`match_quoted`) that resolve to a catalog table's
    column stored in another case: refused as unknown, naming the stored spelling."""
    suspects = check.case_suspects
    for scope in scopes:
        for column in scope.columns:
            name = column.this
            if not isinstance(name, exp.Identifier) or id(name) not in suspects:
                continue
            table = _catalog_table(check, scope, column.table)
            stored = table.spellings.get(name.this) if table is not None else None
            if stored is None or stored == name.this:
                continue
            check.issue(
                UNKNOWN_COLUMN,
                f"Column {check.written(column)} does not exist in {table.name}: "
                + _stored_as(check, "column", stored),
                check.node_position(column),
            )


def refuse_wrong_case_star_names(check: Any, scopes: list[Scope]) -> bool:
    """`refuse_wrong_case_columns` for the names of star modifiers (``* EXCLUDE ("EMAIL")``
    over a column stored ``email``); True when one is refused (the star's expansion in the
    work copy then left out a column the warehouse would not: the id column is not checked)."""
    refused = False
    suspects = check.case_suspects
    by_select = {id(scope.expression): scope for scope in scopes}
    for entry in check.star_modifiers:
        scope = by_select.get(id(entry.select))
        if scope is None:
            continue
        for identifier in entry.names:
            if id(identifier) not in suspects:
                continue
            for table in _star_tables(check, scope, entry.qualifier):
                stored = table.spellings.get(identifier.this)
                if stored is not None and stored != identifier.this:
                    check.issue(
                        UNKNOWN_COLUMN,
                        f"Column {check.written(identifier)} named in {entry.keyword} (…) does "
                        f"not exist in {table.name}: " + _stored_as(check, "column", stored),
                        check.node_position(identifier),
                    )
                    refused = True
                    break
    return refused


def _star_tables(check: Any, scope: Scope, qualifier: str) -> list[Any]:
    """The catalog tables a star of ``scope`` covers (``qualifier``: ``u.*``)."""
    names = [qualifier] if qualifier else list(scope.selected_sources)
    found = []
    for name in names:
        source = scope.sources.get(name)
        if isinstance(source, exp.Table):
            table = check.known_tables.get(id(source))
            if table is not None:
                found.append(table)
    return found


def _source(scope: Scope, name: str) -> Any:
    """The source a column qualifier names, in its scope or an enclosing one."""
    while scope is not None:
        source = scope.sources.get(name)
        if source is not None:
            return source
        scope = scope.parent  # type: ignore[assignment]
    return None


def _catalog_table(check: Any, scope: Scope, qualifier: str) -> Any:
    """The catalog table a column qualifier names (None for anything else)."""
    if not qualifier:
        return None
    source = _source(scope, qualifier)
    if isinstance(source, exp.Table):
        return check.known_tables.get(id(source))
    return None


def needed(check: Any) -> Any:
    """The target's fold of unquoted names (``str.lower``: the target folds to lower case)
    when some catalog table of the query has a name not stored in lower case, else None."""
    if check.write_dialect.normalization_strategy is not NormalizationStrategy.LOWERCASE:
        return None
    if all(table.lower for table in check.known_tables.values()):
        return None
    return str.lower


def respell(check: Any, root: exp.Expr) -> None:
    """Write catalog tables and columns as stored in the tree about to be emitted (see the
    module's docstring); the respelled identifiers' ids go to ``check.respelled``."""
    fold = needed(check)
    if fold is None:
        return
    done: set[int] = set()
    check.respelled = done
    # tables: as stored; an unaliased one that a column names (``users.email``) keeps its
    # name as written as its alias
    qualifiers: set[str] | None = None  # the columns' qualifiers, lower case (on first use)
    for work_id, table in check.known_tables.items():
        original = check.originals.get(work_id)
        if not isinstance(original, exp.Table):
            continue
        identifier = original.this
        if not isinstance(identifier, exp.Identifier):
            continue
        written = exp.Identifier(this=identifier.this, quoted=identifier.args.get("quoted"))
        if _respell(identifier, table.name, fold, done) and not original.args.get("alias"):
            if qualifiers is None:
                qualifiers = {
                    str(column.args["table"].this).lower()
                    for column in check.first_columns or ()
                    if isinstance(column.args.get("table"), exp.Identifier)
                }
            if str(written.this).lower() in qualifiers:
                original.set("alias", exp.TableAlias(this=written))
    originals = dict(zip(map(id, check.identifiers), check.identifier_originals, strict=True))
    outputs: dict[int, dict[str, str]] = {}
    # queries whose outputs a column list names (``WITH t(id) AS (…)``, ``AS t(id)``): sqlglot
    # pops the list into the projections' aliases, the outputs are the list's names
    renamed = {
        id(identifier.parent.parent.this)
        for identifier in check.identifiers
        if identifier.arg_key == "columns"
        and isinstance(identifier.parent, exp.TableAlias)
        and identifier.parent.parent is not None
    }
    seen: set[int] = set()  # original identifiers of columns resolved in the work copy
    for scope in check.scopes:
        for column in scope.columns:
            name = column.this
            if not isinstance(name, exp.Identifier):
                continue
            original = originals.get(id(name))
            if original is None:
                continue
            seen.add(id(original))
            stored = _stored(check, scope, column, outputs)
            if stored is not None:
                _respell(original, stored, fold, done)
        if id(scope.expression) not in renamed:
            outputs[id(scope)] = _outputs(check, scope, outputs, originals)
    _respell_unresolved(check, root, fold, done, seen)
    if check.star_modifiers:
        _respell_star_modifiers(check, originals, fold, done)
    root_scope = check.root_scope
    match = getattr(check, "id_match", None)
    if root_scope is not None and match is not None:
        stored = outputs.get(id(root_scope), {}).get(match.alias_or_name)
        if stored is not None and fold(stored) != stored:
            check.id_spelling = stored


def _stored(
    check: Any, scope: Scope, column: exp.Column, outputs: dict[int, dict[str, str]]
) -> Any:
    """The stored spelling a (qualified) column of the work copy must be emitted with."""
    qualifier = column.table
    if not qualifier:
        return None
    source = _source(scope, qualifier)
    if isinstance(source, exp.Table):
        table = check.known_tables.get(id(source))
        if table is None:
            return None
        name = column.name
        return table.spellings.get(name, name if name in table.columns else None)
    if isinstance(source, Scope):
        return outputs.get(id(source), {}).get(column.name)
    return None


def _outputs(
    check: Any, scope: Scope, outputs: dict[int, dict[str, str]], originals: dict[int, Any]
) -> dict[str, str]:
    """The scope's output columns that the emitted query returns under a stored spelling:
    a projection that is a column the query does not rename (as written, or from a star)."""
    expression = scope.expression
    if isinstance(expression, exp.SetOperation):
        left = scope.set_operation_scopes[0] if scope.set_operation_scopes else None
        return outputs.get(id(left), {}) if left is not None else {}
    if not isinstance(expression, exp.Select):
        return {}
    found: dict[str, str] = {}
    for projection in expression.selects:
        inner = projection
        if isinstance(projection, exp.Alias):
            alias = projection.args.get("alias")
            if id(alias) in originals:
                continue  # renamed by the query: the output is its alias as written
            inner = projection.this
            if isinstance(inner, exp.Coalesce) and isinstance(inner.this, exp.Column):
                inner = inner.this  # a USING column, expanded: named like the joined ones
        if isinstance(inner, exp.Column):
            stored = _stored(check, scope, inner, outputs)
            if stored is not None:
                found[projection.alias_or_name] = stored
    return found


def _respell(identifier: exp.Identifier, stored: str, fold: Any, done: set[int]) -> bool:
    """Write ``identifier`` as ``stored`` unless the target already reads it so; True when
    changed."""
    name = identifier.this
    quoted = bool(identifier.args.get("quoted"))
    if not isinstance(name, str) or (name if quoted else fold(name)) == stored:
        return False
    identifier.set("this", stored)
    identifier.set("quoted", quoted or fold(stored) != stored)
    identifier.meta[STORED] = True  # kept by copies (`targets.redundant_quotes` reads it)
    done.add(id(identifier))
    return True


def _respell_star_modifiers(
    check: Any, originals: dict[int, Any], fold: Any, done: set[int]
) -> None:
    """The columns a star modifier names (``* EXCLUDE (email)``, ``RENAME``, ``REPLACE``), as
    the star's catalog tables store them."""
    by_select = {id(scope.expression): scope for scope in check.scopes}
    for entry in check.star_modifiers:
        scope = by_select.get(id(entry.select))
        if scope is None:
            continue
        tables = _star_tables(check, scope, entry.qualifier)
        for identifier in entry.names:
            original = originals.get(id(identifier))
            key = identifier.this
            if original is None or not isinstance(key, str):
                continue
            for table in tables:
                if key in table.columns:
                    _respell(original, table.spellings.get(key, key), fold, done)
                    break


def _key(check: Any, identifier: exp.Identifier) -> str:
    """The name an identifier of the query as written matches catalog names by."""
    name = identifier.this
    quoted = identifier.args.get("quoted")
    key = check.read_dialect.normalize_identifier(exp.Identifier(this=name, quoted=quoted)).name
    return str(check.view.quoted.get(name, key) if quoted else key)


def _respell_unresolved(
    check: Any, root: exp.Expr, fold: Any, done: set[int], seen: set[int]
) -> None:
    """Names the work copy does not pair with the query as written: ``JOIN … USING (id)``
    (each name as the joined catalog table stores it) and the unqualified columns of that
    SELECT naming it (qualification replaced them by a COALESCE); an ORDER BY naming an
    output column (replaced by the projection) takes that projection's spelling."""
    using: dict[int, dict[str, str]] = {}  # original SELECT id -> USING key -> stored
    if "using" in check.text_lower:
        tables = {
            id(check.originals.get(work_id)): table for work_id, table in check.known_tables.items()
        }
        for join in root.find_all(exp.Join):
            names = join.args.get("using")
            table = tables.get(id(join.this)) if names else None
            if table is None or not names:
                continue
            for identifier in names:
                if not isinstance(identifier, exp.Identifier):
                    continue
                key = _key(check, identifier)
                stored = table.spellings.get(key, key if key in table.columns else None)
                if stored is not None:
                    _respell(identifier, stored, fold, done)
                    if isinstance(join.parent, exp.Select):
                        using.setdefault(id(join.parent), {})[key] = stored
    for column in check.first_columns or ():
        name = column.this
        if column.table or not isinstance(name, exp.Identifier) or id(name) in seen:
            continue
        select = column.parent
        ordered = False
        while select is not None and not isinstance(select, exp.Select):
            ordered = ordered or isinstance(select, exp.Order)
            select = select.parent
        if select is None:
            continue
        key = _key(check, name)
        stored = using.get(id(select), {}).get(key)
        if stored is None and ordered:
            stored = _projection_spelling(check, select, key)
        if stored is not None:
            _respell(name, stored, fold, done)


def _projection_spelling(check: Any, select: exp.Select, key: str) -> str | None:
    """The stored spelling a SELECT's bare-column projection named ``key`` was given."""
    for projection in select.expressions:
        if (
            isinstance(projection, exp.Column)
            and id(projection.this) in check.respelled
            and _key(check, projection.this) == key
        ):
            return str(projection.this.this)
    return None


def id_reference(check: Any, ref: str, id_sql: str) -> str:
    """The ids query's reference to the id column when the query returns it under its stored
    spelling (``SELECT *`` of a table storing ``EXTERNAL_USER_ID`` on PostgreSQL)."""
    stored = getattr(check, "id_spelling", None)
    if stored is None or ref != id_sql:
        return ref
    return str(check.write_dialect.generate(exp.Identifier(this=stored, quoted=True)))
