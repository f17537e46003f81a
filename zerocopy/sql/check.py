"""`check_segment_sql`: the engine's front door for user SQL (issue #4).

Pipeline, each step a small pure function over the sqlglot tree:

1. dialects → rules modules (`zerocopy.sql.rules`), unknown → ``unknown_dialect``;
2. tokenize and count statements on tokens (comments and strings cannot hide a ``;``);
3. parse (all parse errors, with positions);
4. safety on every statement: read-only node types, forbidden functions, table functions,
   stages and path tables;
5. scope: each table is a CTE reference, an in-scope catalog table, out of scope or unknown;
6. columns: sqlglot's qualifier on a normalized copy, then our own validation of every column
   (all unknown columns are reported, not just the first);
7. the id column must be a real output column of the query;
8. transpile to the target, refusing what the target cannot express; build ``ids_sql``.

The function never raises: whatever goes wrong inside is reported as an issue.
"""

from __future__ import annotations

import functools
import gc
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from functools import cache, lru_cache
from typing import Any, NamedTuple

from sqlglot import Token, TokenType, exp
from sqlglot.dialects.dialect import (
    ASCII_LOWER,
    ASCII_UPPER,
    Dialect,
    NormalizationStrategy,
)
from sqlglot.errors import ErrorLevel, OptimizeError, ParseError, TokenError, UnsupportedError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify_tables import qualify_tables
from sqlglot.optimizer.resolver import Resolver
from sqlglot.optimizer.scope import Scope, traverse_scope

from zerocopy.errors import (
    FORBIDDEN_FUNCTION,
    MISSING_ID_COLUMN,
    MULTIPLE_STATEMENTS,
    NOT_READ_ONLY,
    OUT_OF_SCOPE,
    PARSE_ERROR,
    UNKNOWN_COLUMN,
    UNKNOWN_DIALECT,
    UNKNOWN_TABLE,
    UNSUPPORTED_IN_DIALECT,
)
from zerocopy.sql import (
    fastcopy,
    generation,
    hardening,
    qualification,
    spelling,
    star_names,
    targets,
)
from zerocopy.sql.catalog import CatalogTable, DialectView, SqlCatalog
from zerocopy.sql.generation import generator_for, guard_select_rewrites
from zerocopy.sql.result import CheckResult, SqlIssue
from zerocopy.sql.rules import MODULES, DialectRules, builtin_functions, rules_for

_IN_CHECK = threading.local()
fastcopy.install()


class _QuietDuringCheck(logging.Filter):
    """sqlglot logs warnings while parsing and scoping odd SQL (a statement kept as an opaque
    Command, a scope it cannot traverse); the check reports those cases as issues itself, so
    its own calls stay silent (a pure function has no output). Other sqlglot use is untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_IN_CHECK, "active", False)


logging.getLogger("sqlglot").addFilter(_QuietDuringCheck())

# Statement and clause node types that write, change session state or leave the query's
# read-only world. Anything sqlglot could only keep as an opaque ``Command`` is refused too.
_NOT_READ_ONLY_TYPES: tuple[type[exp.Expr], ...] = tuple(
    getattr(exp, name)
    for name in [
        "DDL",
        "DML",
        "Insert",
        "Update",
        "Delete",
        "Merge",
        "Create",
        "Drop",
        "Alter",
        "AlterRename",
        "TruncateTable",
        "Command",
        "Copy",
        "Into",
        "Lock",
        "Set",
        "Use",
        "Show",
        "Describe",
        "Transaction",
        "Commit",
        "Rollback",
        "Grant",
        "Revoke",
        "Pragma",
        "Cache",
        "Uncache",
        "LoadData",
        "Refresh",
        "Analyze",
        "Export",
        "Attach",
        "Detach",
        "Install",
        "Summarize",
        "Kill",
        "Declare",
        "Execute",
        "ExecuteSql",
        "Comment",
        "Put",
        "Get",
        "Undrop",
        "Return",
        "Block",
        "IfBlock",
        "WhileBlock",
    ]
    if hasattr(exp, name)
)

# Readable names for the refusal message (else the node's SQL keyword is used).
_STATEMENT_NAMES: dict[str, str] = {
    "into": "SELECT … INTO",
    "lock": "SELECT … FOR UPDATE/SHARE",
    "command": "this statement",
    "set": "SET",
    "use": "USE",
    "show": "SHOW",
    "describe": "DESCRIBE",
    "transaction": "BEGIN/START TRANSACTION",
    "commit": "COMMIT",
    "rollback": "ROLLBACK",
    "truncatetable": "TRUNCATE",
    "loaddata": "LOAD DATA",
    "export": "EXPORT DATA",
    "executesql": "EXECUTE",
    "altername": "ALTER … RENAME",
}

_QUERY_ROOTS = (exp.Select, exp.SetOperation, exp.Subquery, exp.Values)
# First tokens of a query (a TABLE query in some dialects, DuckDB's FROM-first).
_QUERY_START_TOKENS = frozenset(
    {TokenType.SELECT, TokenType.WITH, TokenType.L_PAREN, TokenType.VALUES, TokenType.FROM}
)
# First words of statements that are not queries, in any supported dialect: a statement that
# starts with one is refused as not read-only even when sqlglot cannot parse the rest.
_COMMAND_WORDS = frozenset(
    " ".join(
        [
            "INSERT UPDATE DELETE MERGE UPSERT REPLACE CREATE DROP ALTER TRUNCATE RENAME",
            "UNDROP GRANT REVOKE DENY COPY UNLOAD EXPORT IMPORT LOAD CALL EXEC EXECUTE DO",
            "SET RESET UNSET USE SHOW DESCRIBE DESC EXPLAIN BEGIN START COMMIT ROLLBACK",
            "ABORT END SAVEPOINT RELEASE ATTACH DETACH INSTALL FORCE PRAGMA VACUUM ANALYZE",
            "ANALYSE CHECKPOINT OPTIMIZE REFRESH CACHE UNCACHE CLEAR MSCK ADD LIST LS PUT",
            "GET REMOVE RM LOCK UNLOCK DECLARE PREPARE DEALLOCATE LISTEN NOTIFY UNLISTEN",
            "DISCARD REINDEX CLUSTER COMMENT SECURITY SUMMARIZE KILL WAITFOR BULK RESTORE",
            "BACKUP ASSERT RAISE RETURN LOOP WHILE IF REPEAT FOR FETCH CLOSE MOVE OPEN",
            "FLUSH REPAIR SIGNAL RESIGNAL HANDLER TABLE CANCEL LET BREAK CONTINUE LEAVE ITERATE",
            "REASSIGN SYNC GENERATE FSCK CONVERT REORG",
        ]
    ).split()
)
_PATH_CHARS = frozenset("/\\:*?")
_FILE_SUFFIXES = (
    ".csv",
    ".tsv",
    ".parquet",
    ".json",
    ".jsonl",
    ".ndjson",
    ".gz",
    ".zst",
    ".txt",
    ".xlsx",
    ".db",
    ".duckdb",
    ".arrow",
    ".avro",
    ".orc",
)
# Longest SQL text checked: keeps a pasted dump from tying up a worker (a segment query of a
# few hundred lines is ~20 KB).
MAX_SQL_CHARS = 200_000
# Bound on issues per code, so a pathological input (thousands of bad columns) stays cheap.
_MAX_ISSUES_PER_CODE = 50


def check_segment_sql(
    sql: str,
    *,
    dialect: str,
    catalog: SqlCatalog | Mapping[str, Any],
    scope: str,
    id_column: str = "external_user_id",
    target: str | None = None,
) -> CheckResult:
    """Check a segment query and compile it for the warehouse; never raises.

    Args:
        sql: the user's query text.
        dialect: the dialect the user wrote in (snowflake, bigquery, redshift, databricks,
            duckdb, postgres; tsql/fabric accepted as input).
        catalog: the source's tables ``{schema: {table: {column: type}}}`` or a prebuilt
            `SqlCatalog` (cache it per source: it keeps the normalized schema).
        scope: the schema the source connects (``marketing``), or ``database.schema``.
        id_column: the column that identifies a user (compared case-insensitively).
        target: the warehouse dialect to emit; defaults to ``dialect``.

    Returns:
        A `CheckResult`; ``sql`` and ``ids_sql`` are set only when the query is valid.
    """
    dialect_name = dialect.strip().lower() if isinstance(dialect, str) else str(dialect)
    target_name = target.strip().lower() if isinstance(target, str) and target.strip() else None
    target_name = target_name or dialect_name
    result = CheckResult(dialect=dialect_name, target=target_name)
    _IN_CHECK.active = True
    # The trees of a check are cyclic (parent links), so only the cyclic GC frees them. A
    # collection in the middle of a check finds them alive and promotes them to older
    # generations, whose collections then cost milliseconds (the check's p99). With the GC
    # paused for the check (~2 ms), they are garbage by the next young collection and freed
    # there. Only a caller that found the GC enabled pauses it and turns it back on, so
    # concurrent checks in threads always leave it enabled.
    paused_gc = gc.isenabled()
    if paused_gc:
        gc.disable()
    try:
        _Check(sql, dialect_name, target_name, catalog, scope, id_column, result).run()
    except RecursionError:
        result.errors.append(
            SqlIssue(
                PARSE_ERROR,
                "The query nests too deeply (hundreds of levels of parentheses or subqueries) "
                "to be checked; simplify it, e.g. with CTEs or IN lists.",
            )
        )
    except Exception as exc:  # the front door must answer, whatever sqlglot does inside
        result.errors.append(
            SqlIssue(
                PARSE_ERROR,
                "zerocopy could not analyse this query "
                f"({type(exc).__name__}: {str(exc)[:200]}); simplify the construct "
                "it points at or rewrite the query.",
            )
        )
        result.sql = result.ids_sql = None
    finally:
        _IN_CHECK.active = False
        if paused_gc:
            gc.enable()
    result.errors.sort(key=SqlIssue.sort_key)
    if result.errors:
        result.sql = result.ids_sql = None
    return result


def transpile_sql(sql: str, *, dialect: str, target: str) -> tuple[str | None, list[SqlIssue]]:
    """Transpile one query between dialects with the same refusal rules, without a catalog.

    Used by the TPC-H round trip and by callers that only need the target SQL.
    """
    _IN_CHECK.active = True
    try:
        return _transpile(sql, dialect, target)
    finally:
        _IN_CHECK.active = False


def _transpile(sql: str, dialect: str, target: str) -> tuple[str | None, list[SqlIssue]]:
    """`transpile_sql` without the logging guard."""
    try:
        read, write = rules_for(dialect), rules_for(target)
        if read is None or write is None:
            bad = dialect if read is None else target
            return None, [_unknown_dialect(bad)]
        parsed = _dialect(read.sqlglot_dialect).parse(sql)
        trees = [t for t in parsed if t is not None and not isinstance(t, exp.Semicolon)]
        if not trees:
            return None, [SqlIssue(PARSE_ERROR, "The query is empty.")]
        if len(trees) > 1:
            return None, [SqlIssue(MULTIPLE_STATEMENTS, "Only one statement can be transpiled.")]
        if not isinstance(trees[0], _QUERY_ROOTS):
            return None, [SqlIssue(NOT_READ_ONLY, "Only a read-only query can be transpiled.")]
        target_dialect = _dialect(write.sqlglot_dialect)
        out, issues = _generate(trees[0], target_dialect, write)
        if out is not None and read is not write and not _parses_in(out, target_dialect):
            return None, [
                SqlIssue(
                    UNSUPPORTED_IN_DIALECT,
                    f"This query cannot be expressed in {write.name}: the translation is not "
                    "valid there.",
                )
            ]
        return out, issues
    except (ParseError, TokenError) as exc:
        return None, [SqlIssue(PARSE_ERROR, f"The query could not be parsed: {exc}")]
    except Exception as exc:
        return None, [SqlIssue(PARSE_ERROR, f"zerocopy could not transpile this query: {exc}")]


def _generate(
    tree: exp.Expr,
    target: Dialect,
    rules: DialectRules,
    *,
    sources: Callable[[], tuple[str, ...]] | None = None,
) -> tuple[str | None, list[SqlIssue]]:
    """Render a tree in the target dialect; sqlglot's 'unsupported' warnings become issues.

    ``sources``: every text the tree's names can come from (see `generation.generator_for`);
    empty when unknown.
    """
    try:
        # copy=False: the tree is ours and discarded after; comments are dropped from the
        # warehouse SQL (they carry nothing the warehouse needs).
        guard_select_rewrites(target.generator_class)
        generator = generator_for(target, sources)
        sql = generator.generate(tree, copy=False)
        return sql, []
    except UnsupportedError as exc:
        issues = [
            SqlIssue(
                UNSUPPORTED_IN_DIALECT,
                f"{rules.name} cannot express part of this query: {message.strip()}. "
                "Rewrite that part with a construct both dialects support.",
            )
            for message in str(exc).split("\n")
            if message.strip()
        ]
        return None, issues or [
            SqlIssue(UNSUPPORTED_IN_DIALECT, f"{rules.name} cannot express this query.")
        ]


def _unknown_dialect(name: object) -> SqlIssue:
    """The issue for a dialect no rules module covers."""
    known = ", ".join(sorted(set(MODULES)))
    return SqlIssue(UNKNOWN_DIALECT, f"Unknown SQL dialect {name!r}; use one of: {known}.")


class _Check:
    """One run of the pipeline; holds the text, tokens and trees it shares between steps."""

    def __init__(
        self,
        sql: Any,
        dialect: str,
        target: str,
        catalog: SqlCatalog | Mapping[str, Any],
        scope: Any,
        id_column: Any,
        result: CheckResult,
    ) -> None:
        self.text = sql
        self.dialect_name = dialect
        self.target_name = target
        self.catalog = catalog
        self.scope_text = scope
        self.id_column = id_column
        self.result = result
        self.issues = result.errors
        self.tokens: list[Token] = []
        self._line_starts: list[int] | None = None
        self.root_scope: Scope | None = None
        self.root: exp.Expr | None = None  # the statement checked (the first), as written
        self.tables_ok = False
        self.known_tables: dict[int, CatalogTable] = {}  # in-scope catalog tables, by node id
        self.reading: list[exp.Expr] = []
        self.refused_starts: set[int] = set()  # offsets of refused table functions
        self.refused_calls: set[int | None] = set()  # offsets of refused scalar functions
        self.scopes: list[Scope] = []
        self.parse_failed = False  # a statement did not parse: only safety rules apply
        self.source_refused = False  # a FROM item reads a file/stage/function: no columns
        self.scope_ids: list[exp.Identifier] = []  # the scope, normalized
        self.originals: dict[int, exp.Table] = {}  # work-tree table id -> original table
        # per scope (by id; the scopes live as long as the check): resolvers, known sources
        self._resolvers: dict[int, Resolver] = {}
        self._known: dict[tuple[int, str], bool] = {}
        self.name_chars = ""  # every character of the catalog's names
        self.identifiers: list[exp.Identifier] = []  # the work copy's, see `name_sources`
        self.identifier_originals: list[exp.Identifier] = []  # the originals, in that order
        # `spelling`: quoted names in the wrong case (ids of work identifiers), respelled ids
        self.case_suspects: set[int] = set()
        self.respelled: set[int] = set()
        self.id_spelling: str | None = None
        self.star_modifiers: list[star_names.StarNames] = []
        self._name_sources: tuple[str, ...] | None = None
        self.work: exp.Expr | None = None  # the normalized, qualified copy (stars expanded)
        self.joins: list[exp.Expr] = []  # the work copy's joins, as copied
        self.joins_as_copied = True  # no rewrite of the work copy before qualifying moved them
        # the output tree's SELECTs, when its gated SELECT rewrites have nothing to act on
        self.free_selects: list[exp.Expr] | None = None
        self.first_reading: list[exp.Expr] = []  # the first statement's `_Copied.reading`
        # the first statement's SELECTs and columns as the copy walk found them (None before)
        self.first_selects: list[exp.Select] | None = None
        self.first_columns: list[exp.Column] | None = None
        self._token_types: frozenset[TokenType] | None = None

    @functools.cached_property
    def text_lower(self) -> str:
        """The SQL text lower-cased, once per check (many rewrites test it for a keyword)."""
        text: str = self.text
        return text.lower()

    # --- helpers ------------------------------------------------------------------------

    def issue(
        self, code: str, message: str, position: tuple[int | None, int | None] = (None, None)
    ) -> None:
        """Record an issue (bounded per code so a pathological input stays cheap)."""
        if sum(1 for i in self.issues if i.code == code) >= _MAX_ISSUES_PER_CODE:
            return
        line, column = position
        issue = SqlIssue(code, message, line, column)
        if issue not in self.issues:
            self.issues.append(issue)

    def offset_position(self, offset: int | None) -> tuple[int | None, int | None]:
        """1-based (line, column) of a character offset into the SQL text."""
        if offset is None or not isinstance(offset, int) or offset < 0:
            return (None, None)
        if self._line_starts is None:
            starts = [0]
            text = self.text
            index = text.find("\n")
            while index != -1:
                starts.append(index + 1)
                index = text.find("\n", index + 1)
            self._line_starts = starts
        starts = self._line_starts
        lo, hi = 0, len(starts) - 1
        while lo < hi:  # last line start <= offset
            mid = (lo + hi + 1) // 2
            if starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return (lo + 1, offset - starts[lo] + 1)

    def node_position(self, node: exp.Expr | None) -> tuple[int | None, int | None]:
        """Where a node starts in the text, from its own or its first identifier's metadata."""
        if node is None:
            return (None, None)
        start = _start_offset(node)
        return self.offset_position(start) if start is not None else (None, None)

    def written(self, node: exp.Expr) -> str:
        """A node as the user typed it (its text span), else as sqlglot names it."""
        spans = [
            (c._meta["start"], c._meta["end"])
            for c in node.walk()
            if c._meta and isinstance(c._meta.get("end"), int) and "start" in c._meta
        ]
        if spans:
            start, end = min(a for a, _ in spans), max(b for _, b in spans)
            text: str = self.text[start : end + 1]
            if 0 < len(text) <= 200:
                return text
        if isinstance(node, exp.Column):
            return ".".join(part.name for part in node.parts)
        return node.sql()

    def written_table(self, table: exp.Table) -> str:
        """A table reference as typed (without its alias)."""
        spans = [
            (p._meta["start"], p._meta["end"])
            for p in table.parts
            if p._meta and isinstance(p._meta.get("end"), int) and "start" in p._meta
        ]
        if len(spans) == len(table.parts) and spans:
            text: str = self.text[min(a for a, _ in spans) : max(b for _, b in spans) + 1]
            if 0 < len(text) <= 200:
                return text
        return _written_name(table)

    def token_position(self, text: str, *, after: int = 0) -> tuple[int | None, int | None]:
        """Where a token with this text (case-insensitive) first appears."""
        wanted = text.lower()
        for token in self.tokens:
            if token.start >= after and token.text.lower() == wanted:
                return self.offset_position(token.start)
        return (None, None)

    def token_types(self) -> frozenset[TokenType]:
        """The types of the text's tokens (memoized): a construct the parser builds only at a
        token of some type (a set operation at UNION/EXCEPT/INTERSECT) is in no tree parsed
        from a text without one, and a rewrite's walk for it can be skipped."""
        found = self._token_types
        if found is None:
            found = self._token_types = frozenset(token.token_type for token in self.tokens)
        return found

    # --- pipeline -----------------------------------------------------------------------

    def run(self) -> None:
        """Run every step, stopping where later steps would only repeat an earlier refusal."""
        read = rules_for(self.dialect_name) if isinstance(self.dialect_name, str) else None
        write = rules_for(self.target_name) if isinstance(self.target_name, str) else None
        if read is None:
            self.issues.append(_unknown_dialect(self.dialect_name))
        if write is None and self.target_name != self.dialect_name:
            self.issues.append(_unknown_dialect(self.target_name))
        if read is None or write is None:
            return
        if not isinstance(self.text, str):
            self.issue(PARSE_ERROR, "The SQL must be text.")
            return
        if len(self.text) > MAX_SQL_CHARS:
            self.issue(
                PARSE_ERROR,
                f"The query is {len(self.text):,} characters long; segment queries are limited "
                f"to {MAX_SQL_CHARS:,}. Move long literal lists into a table of the source.",
            )
            return
        self.rules, self.write_rules = read, write
        self.read_dialect = _dialect(read.sqlglot_dialect)
        self.write_dialect = _dialect(write.sqlglot_dialect)

        statements = self.parse()
        if not statements:
            return
        hardening.after_parse(self, statements)
        copies: list[_Copied] = []
        for statement in statements:
            # one walk copies the statement (the copy is normalized and qualified later; the
            # original stays as written for the output) and finds what the safety rules check
            copied = _copy_tree(statement)
            copies.append(copied)
            self.reading = copied.reading
            before = len(self.issues)
            self.check_read_only(statement, copied.refused)
            if len(self.issues) == before:  # what a refused statement calls adds nothing
                self.check_functions(copied.reading)
        if self.parse_failed or not isinstance(statements[0], _QUERY_ROOTS):
            return
        root = self.root = statements[0]
        if any(i.code == NOT_READ_ONLY for i in self.issues):
            return

        scope = self.parse_scope()
        if scope is None:
            return
        catalog = SqlCatalog.of(self.catalog if self.catalog is not None else {})
        self.view: DialectView = catalog.view(self.read_dialect)
        self.name_chars = catalog.name_chars
        if len(copies) > 1:
            # every query after the first is refused as such, and its tables are checked too:
            # all of a query's issues are reported together
            for copied in copies[1:]:
                self.check_extra_statement(copied, scope)
        work, table_pairs = copies[0].tree, copies[0].tables
        self.joins = copies[0].joins
        self.free_selects = copies[0].free_selects
        self.first_reading = copies[0].reading
        self.first_selects = copies[0].selects
        self.first_columns = copies[0].columns
        self.identifiers = copies[0].identifiers
        self.identifier_originals = copies[0].identifier_originals
        if copies[
            0
        ].verbatim:  # a `sqlglot.meta case_sensitive` comment: sqlglot's own walk honours it
            work = normalize_identifiers(work, dialect=self.read_dialect)
        else:
            _normalize_names(self.read_dialect, copies[0].identifiers)
        spelling.match_quoted(self, copies[0].identifiers)
        # before qualification moves nodes: each work table with the original it copies
        self.originals = {id(copy): original for original, copy in table_pairs}
        work_tables = [copy for _, copy in table_pairs]  # in walk order
        if self.rules.table_names_fold_inconsistently:
            # match table names case-insensitively, like the catalog's (folded) names
            for table in work_tables:
                for part in table.parts:
                    if isinstance(part, exp.Identifier):
                        part.set("this", part.name.lower())
        # Qualify first, then one scope traversal serves tables and columns alike: the schema
        # holds only the scope's tables, so lookups need no database/schema on the tables.
        # BigQuery annotates every scope with types while qualifying, for UNNEST sources
        # only: without one, the (costly) annotation changes nothing the check uses
        annotate = any(isinstance(node, exp.Unnest) for node in self.reading)
        self.schema = self.view.scope_schema(scope[-1].name, annotate=annotate)
        self.scope_ids = scope
        if self.rules.sqlglot_dialect == "snowflake" and any(
            isinstance(node, exp.TableFromRows) for node in self.reading
        ):
            hardening.flatten_default_columns(work)
            self.joins_as_copied = False
        if any(join.args.get("using") for join in self.joins) and any(
            _unaliased_derived_table(node) for node in self.first_reading
        ):
            _name_derived_tables(work)
        star_modifiers = self.star_modifiers = star_names.collect(self.text, work)
        walked: list[Scope] = []
        current: set[int] = set()  # scopes whose collection still describes the tree
        work, optimizer_error = self.qualify(work, scope[-1].name, walked, current)
        self.work = work
        # the qualification's own scopes when a new traversal would build the same ones
        scopes = qualification.reusable_scopes(walked, current) if optimizer_error is None else None
        if scopes is None:
            scopes = self.traverse(work)
        tables_ok = self.tables_ok = self.check_tables(root, work_tables, scope, scopes)
        if self.source_refused:
            return  # sources that read files/stages have no columns to check against
        if optimizer_error is not None:
            if tables_ok:
                self.column_error_from_optimizer(optimizer_error)
        elif scopes is not None:
            for each in scopes:
                self.validate_scope_columns(each)
            hardening.check_set_op_widths(self, scopes)
            star_names.check(self, star_modifiers, scopes)
            self.root_scope = scopes[-1] if scopes else None
            self.scopes = scopes
            if not (self.case_suspects and spelling.refuse_wrong_case(self, scopes)):
                self.check_id_column(work)
        if self.issues:
            return
        self.emit(root)

    def check_extra_statement(self, copied: _Copied, scope: list[exp.Identifier]) -> None:
        """The tables of a query after the first one (itself reported as a second statement):
        out of scope or unknown, like the first query's (CTE names shadow tables)."""
        if not isinstance(copied.tree, _QUERY_ROOTS):
            return
        if copied.verbatim:
            normalize_identifiers(copied.tree, dialect=self.read_dialect)
        else:
            _normalize_names(self.read_dialect, copied.identifiers)
        scope_db = scope[0].name if len(scope) == 2 else None
        for _, table in copied.tables:
            if (
                not isinstance(table.this, exp.Identifier)
                or _reads_files(table, self.rules)
                or isinstance(table.parent, exp.JoinHint)
                or (not table.args.get("db") and _is_cte_reference(table))
            ):
                continue
            if self.rules.table_names_fold_inconsistently:
                for part in table.parts:
                    if isinstance(part, exp.Identifier):
                        part.set("this", part.name.lower())
            self.resolve_table(table, scope[-1].name, scope_db)

    def qualify(
        self, work: exp.Expr, scope_schema: str, walked: list[Scope], current: set[int]
    ) -> tuple[exp.Expr, OptimizeError | None]:
        """sqlglot's column qualification against the scope's tables (stars expanded);
        ``walked`` receives the scopes it walked, when it is the mirrored one, and ``current``
        those whose collection still describes the tree (`qualification.reusable_scopes`)."""
        # joins as copied (no rewrite since): USING expansion has nothing to do when plain
        plain = self.joins_as_copied and qualification.plain_joins(self.joins)
        try:
            if any(_is_join_construct(node) for node in self.reading):
                # (a JOIN b) AS t: sqlglot rewrites it into a subquery first
                hardening.ambiguous_join_construct(self, work, scope_schema)
                work = qualify_tables(work, dialect=self.read_dialect)
                plain = False
            work = qualification.qualify_columns(
                work,
                self.schema,
                dialect=self.read_dialect,
                plain_joins=plain,
                scopes=walked,
                current=current,
            )
        except OptimizeError as exc:
            return work, exc
        return work, None

    @staticmethod
    def traverse(work: exp.Expr) -> list[Scope] | None:
        """sqlglot's scopes of the tree, or None when it cannot scope it."""
        try:
            return traverse_scope(work)
        except OptimizeError:
            return None

    def parse(self) -> list[exp.Expr]:
        """Tokenize, count statements, parse; returns the non-empty statements."""
        text = self.text
        try:
            self.tokens = _tokenize(self.read_dialect, text)
        except TokenError as exc:
            self.token_error(exc)
            return []
        chunks: list[list[Token]] = [[]]
        if ";" not in text:  # no SEMICOLON token (only ';' makes one): one statement
            chunks = [list(self.tokens)]
        else:
            for token in self.tokens:
                if token.token_type == TokenType.SEMICOLON:
                    chunks.append([])
                else:
                    chunks[-1].append(token)
        chunks = [chunk for chunk in chunks if chunk]
        if not chunks:
            self.issue(
                PARSE_ERROR,
                "The query is empty: write one SELECT that returns the id column.",
                (1, 1),
            )
            return []
        if len(chunks) > 1:
            second = chunks[1][0]
            self.issue(
                MULTIPLE_STATEMENTS,
                f"Only one statement is allowed, but {len(chunks)} were found (the second "
                f"starts with '{second.text[:40]}'); remove everything after the first query.",
                self.offset_position(second.start),
            )
        statements: list[exp.Expr] = []
        failed = False
        for chunk in chunks:
            statement = self.parse_chunk(chunk)
            if statement is None:
                failed = True
            else:
                statements.append(statement)
        self.parse_failed = failed
        return statements

    def parse_chunk(self, chunk: list[Token]) -> exp.Expr | None:
        """Parse one statement's tokens; None (with its issue recorded) when it is not one
        read-only query sqlglot understands.

        A statement that starts like a command (``CREATE SECRET …``, ``EXPORT DATABASE …``)
        is refused as not read-only even where sqlglot cannot parse the rest of it: what it
        does matters more than its syntax. Anything else that does not parse is a syntax
        error, and an expression that is not a statement at all (``users``, ``1``) too.
        """
        first = chunk[0]
        word = first.text.upper()
        command = word in _COMMAND_WORDS and first.token_type not in _QUERY_START_TOKENS
        try:
            parsed = self.read_dialect.parser(error_level=ErrorLevel.RAISE, max_errors=5).parse(
                hardening.before_parse(self, chunk), self.text
            )
        except ParseError as exc:
            if command:
                self.refuse_command(first)
            elif hardening.refuse_unparsed(self, chunk):
                pass  # refused for what it does (SELECT … INTO #t, APPENDS(…)), not its syntax
            else:
                # the first error only: sqlglot's later ones mostly follow from it
                error = (exc.errors or [{"description": str(exc)}])[0]
                self.issue(PARSE_ERROR, *_parse_error(error, self))
            return None
        except TokenError as exc:
            self.token_error(exc)
            return None
        trees = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
        tree = trees[0] if len(trees) == 1 else None
        if isinstance(tree, exp.Pivot):  # DuckDB `PIVOT t ON … USING …` statement
            tree = hardening.pivot_statement_as_query(self, tree)
        if tree is not None and isinstance(tree, (*_QUERY_ROOTS, *_NOT_READ_ONLY_TYPES)):
            return tree
        if command or (tree is not None and first.token_type in _QUERY_START_TOKENS):
            # a statement sqlglot reads as something else (CHECKPOINT, ASSERT …, TABLE t
            # where the dialect has no TABLE query)
            self.refuse_command(first)
        else:
            self.issue(
                PARSE_ERROR,
                f"Syntax error near '{first.text[:40]}': this is not a query. Write one SELECT "
                "that returns the id column.",
                self.offset_position(first.start),
            )
        return None

    def refuse_command(self, first: Token) -> None:
        """A statement that is not a read-only query, named by its first word."""
        self.issue(
            NOT_READ_ONLY,
            f"'{first.text.upper()[:40]}' statements are not allowed: segment queries may only "
            "read data. Write a single SELECT.",
            self.offset_position(first.start),
        )

    def token_error(self, exc: TokenError) -> None:
        """A tokenizer failure: find the construct left open to point at it."""
        tokenizer = self.read_dialect.tokenizer_class
        found = _unterminated(
            self.text,
            quotes=[q for q in (*tokenizer._QUOTES, *tokenizer._IDENTIFIERS) if len(q) == 1],
            escapes=set(tokenizer.STRING_ESCAPES) - {"'"},
        )
        if found is None:
            self.issue(PARSE_ERROR, _token_error_message(exc))
            return
        offset, what = found
        self.issue(
            PARSE_ERROR,
            f"Unterminated {what}: it is opened here and never closed. Close it (or remove "
            "the stray quote/comment marker).",
            self.offset_position(offset),
        )

    def check_read_only(self, statement: exp.Expr, refused: list[exp.Expr]) -> None:
        """Refuse anything that is not a plain read-only query, at any depth."""
        if not isinstance(statement, (*_QUERY_ROOTS, *_NOT_READ_ONLY_TYPES)):
            self.issue(
                NOT_READ_ONLY,
                f"Only a read-only query (SELECT, WITH … SELECT, UNION …) is allowed; "
                f"'{_statement_name(statement)}' is not one.",
                self.node_position(statement),
            )
        reported: list[exp.Expr] = []
        for node in refused:
            if any(_is_inside(node, outer) for outer in reported):
                continue  # one refusal per statement: MERGE's UPDATE is part of the MERGE
            reported.append(node)
            what = _statement_name(node)
            where = "" if node is statement else " inside the query"
            position = self.statement_position(node)
            self.issue(
                NOT_READ_ONLY,
                f"'{what}'{where} is not allowed: segment queries may only read data. "
                "Remove it and keep a single SELECT.",
                position,
            )

    def statement_position(self, node: exp.Expr) -> tuple[int | None, int | None]:
        """Where a refused statement or clause starts: its keyword (the last one at or before
        the node's first positioned part), else the node's first part."""
        if isinstance(node, exp.Command):
            keywords = {str(node.this).split()[0].upper()} if str(node.this).split() else set()
        else:
            keywords = {
                "into": {"INTO"},
                "lock": {"FOR"},
                "transaction": {"BEGIN", "START"},
                "executesql": {"EXECUTE"},
                "export": {"EXPORT"},
            }.get(node.key) or {_statement_name(node).split()[0].split("/")[0].upper()}
        if node.args.get("with_") is not None:  # WITH … DELETE: the keyword after the CTEs
            found = hardening.keyword_after_with(self, keywords)
            if found is not None:
                return found
        content = _start_offset(node)
        best: Token | None = None
        for token in self.tokens:
            if content is not None and token.start > content:
                break
            if token.text.upper() in keywords:
                best = token
                if content is None:
                    break
        if best is not None:
            return self.offset_position(best.start)
        return self.node_position(node)

    def check_functions(self, reading: list[exp.Expr]) -> None:
        """Refuse functions that reach outside the source, table functions not allow-listed,
        stages, and file paths used as tables."""
        rules = self.rules
        table_funcs: set[int] = set()
        for node in reading:
            if isinstance(node, exp.Table):
                self.check_table_source(node, table_funcs)
            elif isinstance(node, exp.Lateral | exp.TableFromRows) and isinstance(
                node.this, exp.Func
            ):
                self.check_table_function(node.this, table_funcs)
            elif isinstance(node, exp.TableFromRows) and not isinstance(
                node.this, exp.Query | exp.Dot
            ):
                # Snowflake TABLE('schema.name'): a table named by a string escapes every check
                self.source_refused = True
                self.issue(
                    FORBIDDEN_FUNCTION,
                    "TABLE(...) with a table name given as text is not allowed: write the table "
                    "name directly so it can be checked against the source.",
                    self.node_position(node),
                )
            elif isinstance(node, exp.QueryTransform):
                # Hive/Spark SELECT TRANSFORM(...) USING 'script': runs a program, and its
                # output columns are whatever the script prints
                self.source_refused = True
                self.issue(
                    FORBIDDEN_FUNCTION,
                    "SELECT TRANSFORM(...) USING '...' runs an external script and is not "
                    "allowed in a segment; compute the columns with SQL functions.",
                    self.node_position(node),
                )
            elif isinstance(node, exp.Dot):
                if isinstance(node.expression, exp.Func):
                    table_funcs.add(id(node.expression))  # one issue for `schema.fn()`
                    self.check_qualified_function(node)
            elif isinstance(node, exp.Func) and id(node) not in table_funcs:
                if isinstance(node, exp.DynamicIdentifier) and node.expressions:
                    # Snowflake IDENTIFIER('SYSTEM$WAIT')(1): a function named by text
                    self.issue(
                        FORBIDDEN_FUNCTION,
                        "A function named by IDENTIFIER(...) is not allowed: call the function "
                        "by its name so it can be checked.",
                        self.node_position(node),
                    )
                    continue
                name = _forbidden_in(node, rules, self.write_rules)
                if name:
                    self.refuse_function(name, node, source=hardening.feeds_table_source(node))
                elif isinstance(node, exp.Cast):
                    hardening.cast_out_of_scope(self, node)
                elif rules.qualified_user_functions and isinstance(node, exp.Anonymous):
                    self.check_user_function(node)

    def check_user_function(self, func: exp.Anonymous) -> None:
        """An unqualified call of a function the input dialect does not have built in: a
        user-defined function found through the search path, in whatever schema holds it."""
        name = func.name.lower()
        rules = self.rules
        if (
            not name
            or "\\" in name  # a U&"…" name, refused as such (parse_error)
            or name in builtin_functions(rules.builtin_functions)
            or name in rules.extension_functions
            or (name in rules.call_syntax and isinstance(func.this, str))  # unquoted keyword
            or not builtin_functions(rules.builtin_functions)
        ):
            return
        self.refused_calls.add(_start_offset(func))
        self.issue(
            FORBIDDEN_FUNCTION,
            f"Function {func.name}() is not a built-in {rules.name} function: a user-defined "
            "function is found through the search path, in any schema, and may read or change "
            f"data outside the source. Qualify it with the source's schema "
            f"({self.scope_text}.{func.name}(…)) if it lives there, or use a built-in function.",
            self.node_position(func),
        )

    def refuse_function(self, name: str, func: exp.Expr, *, source: bool) -> None:
        """A function on the deny-list; ``source`` when it is what a FROM item reads."""
        self.source_refused = self.source_refused or source
        self.refused_calls.add(_start_offset(func))
        self.issue(
            FORBIDDEN_FUNCTION,
            f"Function {name}() is not allowed in a segment: it reads or changes "
            "data outside the source's tables. Remove it.",
            self.node_position(func),
        )

    def check_qualified_function(self, dot: exp.Dot) -> None:
        """``schema.fn(...)``: a user function must live in the source's schema."""
        func = dot.expression
        qualifier = (
            ".".join(part.name for part in dot.this.find_all(exp.Identifier) if part.name)
            or dot.this.sql()
        )
        scope = self.scope_text.strip().lower() if isinstance(self.scope_text, str) else ""
        allowed = {scope, scope.rsplit(".", 1)[-1]} - {""}
        if qualifier.lower() in allowed:
            return
        if qualifier.lower() in self.rules.function_namespaces:
            # a built-in namespace (pg_catalog.lower, HLL_COUNT.MERGE): the deny-list applies
            name = _forbidden_in(func, self.rules, self.write_rules)
            if name:
                self.refuse_function(f"{qualifier}.{name}", func, source=_is_source(dot))
            return
        start = _start_offset(func)
        if start is not None:
            self.refused_starts.add(start)
        self.source_refused = self.source_refused or _is_source(dot)
        self.issue(
            FORBIDDEN_FUNCTION,
            f"Function {qualifier}.{_display_name(func)}() is outside this source's scope "
            f"'{self.scope_text}'; only built-in functions and functions of the source's "
            "schema can be used.",
            self.node_position(dot),
        )

    def check_table_source(self, table: exp.Table, table_funcs: set[int]) -> None:
        """Classify what a FROM item reads: a function, a stage, a file path, or a table."""
        rules = self.rules
        this = table.this
        if isinstance(this, exp.Func):
            self.check_table_function(this, table_funcs)
            return
        if hardening.refuse_unnamed_source(self, table):
            return
        if isinstance(this, exp.Var) and str(this.this).startswith("@"):
            self.source_refused = True
            self.issue(
                FORBIDDEN_FUNCTION,
                f"Reading the stage {this.this} is not allowed: a segment may only read the "
                "source's tables.",
                self.token_position(str(this.this)[:1], after=0)
                if not this._meta
                else self.node_position(this),
            )
            return
        name = table.name
        if not _reads_files(table, rules):
            return
        if rules.path_tables and not table.args.get("db"):
            message = f"Reading the file '{name}' is not allowed"
        else:
            message = f"Reading files with {table.db}.`{name}` is not allowed"
        self.source_refused = True
        self.issue(
            FORBIDDEN_FUNCTION,
            f"{message}: a segment may only read the source's tables.",
            self.node_position(table),
        )

    def check_table_function(self, func: exp.Func, table_funcs: set[int]) -> None:
        """Table-valued functions must be on the dialect's allow-list."""
        table_funcs.add(id(func))
        rules = self.rules
        names = _function_names(func)
        if isinstance(func, exp.Unnest | exp.Explode | exp.Posexplode | exp.Inline) and not (
            names & rules.forbidden_functions
        ):
            return
        forbidden = _forbidden_in(func, rules, self.write_rules)
        if forbidden is None and names & rules.table_functions:
            return
        shown = forbidden or _display_name(func)
        start = _start_offset(func)
        if start is not None:
            self.refused_starts.add(start)
        self.source_refused = True
        self.issue(
            FORBIDDEN_FUNCTION,
            f"Table function {shown}() is not allowed in a segment; allowed table functions in "
            f"{rules.name}: {', '.join(sorted(rules.table_functions)) or 'none'}.",
            self.node_position(func),
        )

    def parse_scope(self) -> list[exp.Identifier] | None:
        """The source's scope as normalized identifiers (``[schema]`` or ``[database, schema]``)."""
        text = self.scope_text
        if not isinstance(text, str) or not text.strip():
            self.issue(OUT_OF_SCOPE, "The source has no schema configured to check tables against.")
            return None
        parts = [p.strip() for p in text.strip().split(".")]
        if not all(parts) or len(parts) > 2:
            self.issue(
                OUT_OF_SCOPE,
                f"The source's scope {text!r} must be 'schema' or 'database.schema'.",
            )
            return None
        return [
            self.read_dialect.normalize_identifier(exp.Identifier(this=p, quoted=False))
            for p in parts
        ]

    def check_tables(
        self,
        root: exp.Expr,
        work_tables: list[exp.Table],
        scope: list[exp.Identifier],
        scopes: list[Scope] | None,
    ) -> bool:
        """Resolve each table reference; qualify in-scope tables of the output. True if all ok."""
        scope_schema = scope[-1].name
        scope_db = scope[0].name if len(scope) == 2 else None
        ok = True
        seen: list[str] = []
        scope_parts_written = self.scope_text.strip().split(".")
        for table in self.real_tables(scopes, work_tables):
            if not isinstance(table.this, exp.Identifier) or _reads_files(table, self.rules):
                continue  # functions, stages, file paths: refused by check_functions
            if self.refused_starts and self.inside_refused_function(table):
                continue  # e.g. ML.PREDICT(MODEL m, ...): the function is already refused
            original = self.originals.get(id(table))
            if hardening.dataset_case_differs(self, table, original):
                ok = False
                continue
            found = self.resolve_table(table, scope_schema, scope_db)
            if (
                isinstance(found, CatalogTable)
                and self.case_suspects
                and spelling.wrong_case_table(self, table, found)
            ):
                found = None
            if isinstance(found, CatalogTable):
                if found.display not in seen:
                    seen.append(found.display)
                self.known_tables[id(table)] = found
                if isinstance(original, exp.Table):
                    _qualify_output_table(original, scope_parts_written)
                    if self.write_rules.sqlglot_dialect == "bigquery":
                        # BigQuery table names are case-sensitive, and the check matched this
                        # one case-insensitively: write it as the catalog spells it
                        name = original.this
                        if isinstance(name, exp.Identifier) and name.name != found.name:
                            original.set(
                                "this",
                                exp.Identifier(this=found.name, quoted=name.args.get("quoted")),
                            )
            else:
                ok = False
        self.result.tables = seen
        return ok

    def inside_refused_function(self, table: exp.Table) -> bool:
        """Whether a table reference is an argument of a refused table function."""
        node = table.parent
        while node is not None:
            if isinstance(node, exp.Func) and _start_offset(node) in self.refused_starts:
                return True
            node = node.parent
        return False

    def real_tables(
        self, scopes: list[Scope] | None, tables: list[exp.Table]
    ) -> Iterator[exp.Table]:
        """Table nodes that name a stored table (not a CTE in scope, not a function)."""
        if not scopes:  # sqlglot could not scope it: every table counts (CTEs then look unknown)
            yield from tables
            return
        seen: set[int] = set()
        for scope in scopes:
            for table in scope.tables:
                if id(table) in seen:
                    continue
                seen.add(id(table))
                if isinstance(table.parent, exp.JoinHint):
                    continue  # /*+ BROADCAST(p) */ names a relation of the query, reads nothing
                if isinstance(scope.sources.get(table.alias_or_name), Scope):
                    continue  # a CTE reference: the name is shadowed in this scope
                yield table
        # tables outside any SELECT scope (e.g. under VALUES) still have to be checked
        for table in tables:
            if (
                id(table) in seen
                or not isinstance(table.this, exp.Identifier)
                or isinstance(table.parent, exp.JoinHint)
            ):
                continue
            if table.args.get("db") or not _is_cte_reference(table):
                yield table

    def resolve_table(
        self, table: exp.Table, scope_schema: str, scope_db: str | None
    ) -> CatalogTable | None:
        """Classify one stored-table reference; records its issue and returns None if refused."""
        rules = self.rules
        db, catalog, name = table.db, table.catalog, table.name
        extra = table.parts[:-3] if len(table.parts) > 3 else []
        # `database..table` (Snowflake) names the database's default schema, PUBLIC
        default_schema = bool(catalog) and not db and scope_schema.lower() != "public"
        if (
            extra
            or default_schema
            or (catalog and catalog != scope_db)
            or (db and db != scope_schema)
        ):
            where = ".".join(p.name for p in table.parts[:-1])
            system = _is_system(table, rules)
            reason = "a system catalog" if system else f"the schema/database '{where}'"
            self.issue(
                OUT_OF_SCOPE,
                f"Table {self.written_table(table)} is in {reason}, outside this source's scope "
                f"'{self.scope_text}'. Only tables in '{self.scope_text}' can be used.",
                self.node_position(table),
            )
            return None
        found = self.view.tables.get((scope_schema, name))
        if found is None and (
            _is_system(table, rules)
            or (not db and name.lower().startswith(rules.system_table_prefixes))
            or name.lower() in rules.system_tables
        ):
            self.issue(
                OUT_OF_SCOPE,
                f"Table {self.written_table(table)} is a system catalog table, outside this source's scope "
                f"'{self.scope_text}'. Only tables in '{self.scope_text}' can be used.",
                self.node_position(table),
            )
            return None
        if found is None:
            hint = _closest(name, [t for (s, t) in self.view.tables if s == scope_schema])
            self.issue(
                UNKNOWN_TABLE,
                f"Table {self.written_table(table)} does not exist in '{self.scope_text}'"
                + (f"; did you mean {hint}?" if hint else ".")
                + " Check the source's table list (refresh the catalog if it was just created).",
                self.node_position(table),
            )
            return None
        return found

    def column_error_from_optimizer(self, exc: OptimizeError) -> None:
        """Turn sqlglot's qualification refusal into an issue naming the column."""
        message = str(exc).split("\n")[0]
        self.issue(
            UNKNOWN_COLUMN,
            f"A column could not be resolved: {message}. Qualify it with its table alias or "
            "check its spelling.",
        )

    def validate_scope_columns(self, scope: Scope) -> None:
        """Every column of a SELECT must come from one of its sources (or an outer scope).

        What a qualifier resolves to (its owning scope, whether that source's columns are
        known, and which) is looked up once per qualifier; unqualified names search the
        scope's sources once for all of them."""
        if not isinstance(scope.expression, exp.Select):
            return
        resolver = self.resolver(scope)
        known_sources = self.source_names_known(scope)
        # qualifier -> None (nothing to check), False (names no source) or its columns
        qualifiers: dict[str, Any] = {}
        source_columns: list[tuple[str, Any]] | None = None
        for column in hardening.scope_columns(scope, self):
            name = column.name
            if not name or isinstance(column.this, exp.Star):
                continue
            if column.args.get("db") and self.column_out_of_scope(column):
                continue
            if name.upper() == "ALL" and _is_all_keyword(column):
                continue  # ORDER BY ALL / GROUP BY ALL, read as a column by some dialects
            table = column.table
            if table:
                if table in qualifiers:
                    known = qualifiers[table]
                else:
                    known = qualifiers[table] = self.qualifier_columns(
                        scope, resolver, table, known_sources
                    )
                if known is None:
                    continue
                if known is False:
                    # a qualifier naming no source: a struct/record path (BigQuery a.b.c) is a Dot
                    self.issue(
                        UNKNOWN_COLUMN,
                        f"{self.written(column)}: '{table}' is not a table or alias in this query.",
                        self.node_position(column),
                    )
                    continue
                columns, names = known
                if name not in names:
                    hint = _closest(name, list(columns))
                    self.issue(
                        UNKNOWN_COLUMN,
                        f"Column {self.written(column)} does not exist in {table}"
                        + (f"; did you mean {hint}?" if hint else ".")
                        + f" Available: {_short_list(columns)}.",
                        self.node_position(column),
                    )
            elif known_sources:
                if source_columns is None:
                    source_columns = [(s, resolver.get_source_columns(s)) for s in scope.sources]
                owners = [s for s, columns in source_columns if name in columns]
                if len(owners) == 1:
                    continue  # left unqualified by sqlglot (e.g. under a PIVOT) but known
                if len(owners) > 1:
                    self.issue(
                        UNKNOWN_COLUMN,
                        f"Column {self.written(column)} is ambiguous: it exists in "
                        f"{', '.join(sorted(owners))}. Qualify it with one of these aliases.",
                        self.node_position(column),
                    )
                    continue
                candidates = [c for _, columns in source_columns for c in columns]
                hint = _closest(name, candidates)
                self.issue(
                    UNKNOWN_COLUMN,
                    f"Column {self.written(column)} does not exist in any table of this "
                    "query" + (f"; did you mean {hint}?" if hint else ".") + "",
                    self.node_position(column),
                )

    def qualifier_columns(
        self, scope: Scope, resolver: Resolver, table: str, known_sources: bool
    ) -> Any:
        """What a column qualifier of ``scope`` is checked against: None when nothing can be
        checked (an unknown source, columns not exact or with a star), False when it names no
        source of this query, else (its columns, the same as a set)."""
        owner = _owning_scope(scope, table)
        if owner is None:
            # maybe a struct column of a source whose columns are unknown
            return None if not known_sources else False
        resolver_for = self.resolver(owner) if owner is not scope else resolver
        if not self.source_known(owner, table):
            return None
        columns = resolver_for.get_source_columns(table)
        if not columns or "*" in columns:
            return None
        return columns, frozenset(columns)

    def column_out_of_scope(self, column: exp.Column) -> bool:
        """``schema.table.column`` naming another schema (or database) than the scope's:
        recorded as out of scope, True."""
        scope = self.scope_ids
        schema_ok = column.text("db") == scope[-1].name
        catalog = column.text("catalog")
        catalog_ok = not catalog or (len(scope) == 2 and catalog == scope[0].name)
        if schema_ok and catalog_ok:
            return False
        where = ".".join(p for p in (catalog, column.text("db")) if p)
        self.issue(
            OUT_OF_SCOPE,
            f"Column {self.written(column)} refers to the schema/database '{where}', outside "
            f"this source's scope '{self.scope_text}'. Qualify columns with their table alias.",
            self.node_position(column),
        )
        return True

    def resolver(self, scope: Scope) -> Resolver:
        """One sqlglot resolver per scope for the whole validation (it caches source columns;
        the work tree no longer changes once columns are validated)."""
        found = self._resolvers.get(id(scope))
        if found is None:
            found = self._resolvers[id(scope)] = Resolver(scope, self.schema)
        return found

    def source_names_known(self, scope: Scope) -> bool:
        """True when every source's columns are known (so an unresolved column is an error)."""
        return all(self.source_known(scope, name) for name in scope.sources)

    def source_known(self, scope: Scope, name: str) -> bool:
        """Whether a source's column list is exact: a catalog table or a star-free subquery
        (memoized per scope and name: asked for every column)."""
        key = (id(scope), name)
        known = self._known.get(key)
        if known is None:
            known = self._known[key] = self._source_known(scope, name)
        return known

    def _source_known(self, scope: Scope, name: str) -> bool:
        """`source_known`, computed."""
        source = scope.sources.get(name)
        if isinstance(source, exp.Table):
            return id(source) in self.known_tables
        if isinstance(source, Scope):
            expression = source.expression
            if isinstance(expression, exp.Query):
                return not any(isinstance(s, exp.Star) or s.is_star for s in expression.selects)
            return False
        return False

    def check_id_column(self, work: exp.Expr) -> None:
        """The query's output must carry the id column as a real (non-constant) column."""
        wanted = str(self.id_column).strip().lower() if self.id_column else ""
        if not wanted:
            self.issue(MISSING_ID_COLUMN, "The source has no id column configured.")
            return
        query = work.unnest() if isinstance(work, exp.Subquery) else work
        if isinstance(query, exp.Values):
            self.issue(
                MISSING_ID_COLUMN,
                f"A bare VALUES list has no '{self.id_column}' column of a table: select the "
                "users from the source's tables.",
                self.node_position(query),
            )
            return
        if not isinstance(query, exp.Query):
            return
        if hardening.value_table(self, query):
            return
        if star_names.pivot_group_decides_id(self, self.root, wanted):
            return
        selects = query.selects
        if any(s.is_star for s in selects):
            if self.star_reaches_id(query, wanted):
                return
            if self.tables_ok and not any(i.code == UNKNOWN_COLUMN for i in self.issues):
                self.issue(
                    MISSING_ID_COLUMN,
                    f"The columns of this SELECT * cannot be determined, so '{self.id_column}' "
                    "cannot be found: list the id column explicitly.",
                    self.node_position(selects[0]),
                )
            return  # else the stars could not be expanded because of a reported error
        matches = [s for s in selects if s.alias_or_name.lower() == wanted]
        match = self.id_match = matches[0] if matches else None
        if len(matches) > 1:
            self.issue(
                MISSING_ID_COLUMN,
                f"The query returns '{self.id_column}' {len(matches)} times (e.g. SELECT * over "
                "a join): the warehouse cannot tell which one is meant. Select it once, "
                "qualified with its table alias.",
                self.node_position(matches[1]),
            )
            return
        if match is None and hardening.columns_regex_keeps_id(self, query, wanted):
            return  # DuckDB COLUMNS('regex') selecting the id column of a catalog table
        if match is None:
            returned = ", ".join(s.alias_or_name or s.sql() for s in selects[:12])
            position = self.node_position(selects[0] if selects else query)
            if position == (None, None) and self.tokens:  # expanded stars have no position
                position = self.offset_position(self.tokens[0].start)
            self.issue(
                MISSING_ID_COLUMN,
                f"The query must return the id column '{self.id_column}' (a user id column of "
                f"a table, not renamed); it returns: {returned or 'nothing'}. Add "
                f"'{self.id_column}' to the SELECT list.",
                position,
            )
            return
        constant = hardening.constant_id(query, match, self.root_scope, self.scopes)
        if constant is not None and not any(
            _start_offset(func) in self.refused_calls for func in constant.find_all(exp.Func)
        ):  # an id computed by a refused function: that refusal says it all
            what = (
                "a number computed by a window function (no table column's value reaches it)"
                if constant.find(exp.Window) is not None
                else "a constant"
            )
            self.issue(
                MISSING_ID_COLUMN,
                f"'{match.alias_or_name}' is {what}, not the id column of a table: the "
                f"segment would not contain real users. Select the table's "
                f"'{self.id_column}' column.",
                self.node_position(constant),
            )

    def star_reaches_id(self, query: exp.Query, wanted: str) -> bool:
        """An unexpanded star (a source with unknown columns, e.g. a table function) still
        returns the id when one of the sources it covers is a catalog table that has it."""
        branch: exp.Expr = query
        while isinstance(branch, exp.SetOperation):
            branch = branch.this.unnest()
        if hardening.star_over_pivot_keeps_id(branch, wanted):
            return True
        scope = next((s for s in self.scopes if s.expression is branch), None)
        if scope is None or not isinstance(branch, exp.Select):
            return False
        for star in branch.selects:
            if not star.is_star:
                continue
            names = (
                [star.table]
                if isinstance(star, exp.Column) and star.table
                else list(scope.selected_sources)
            )
            for name in names:
                source = scope.sources.get(name)
                if isinstance(source, exp.Table):
                    table = self.known_tables.get(id(source))
                    if table and any(c.lower() == wanted for c in table.columns):
                        return True
        return False

    def emit(self, root: exp.Expr) -> None:
        """Transpile to the target and wrap the query into the id-extracting SELECT."""
        target, rules = self.write_dialect, self.write_rules
        spelling.respell(self, root)  # first: later rewrites copy the names as stored
        if hardening.before_emit(self, root):
            return  # refused as unsupported in the target
        with_ = root.args.get("with_") if isinstance(root, exp.Query) else None
        if with_ is not None:
            root.set("with_", None)
        try:
            ids_body, ids_issues = self.unordered_body(root)
            sources = self.name_sources
            # The copy walk found no node of a type a guarded SELECT rewrite acts on (after
            # after_parse, which runs before it), and nothing since builds one: no search
            # of the tree's own SELECTs while rendering (`generation.FreeSelects`).
            with generation.FreeSelects(self.selects_to_trust()):
                body, issues = _generate(root, target, rules, sources=sources)
                with_sql, with_issues = (
                    _generate(with_, target, rules, sources=sources) if with_ else ("", [])
                )
        finally:
            if with_ is not None:
                root.set("with_", with_)
        issues += with_issues + ids_issues
        if issues or body is None or with_sql is None:
            # The id-extracting body is the same query without its ORDER BY: its refusals
            # repeat the body's, reported once.
            self.issues.extend(dict.fromkeys(issues))
            return
        prefix = f"{with_sql} " if with_sql else ""
        sql = prefix + body
        if self.target_name != self.dialect_name and not _parses_in(sql, target):
            # sqlglot emitted SQL its own target parser rejects (e.g. Snowflake FLATTEN for
            # DuckDB): refuse rather than send broken SQL to the warehouse
            self.issue(
                UNSUPPORTED_IN_DIALECT,
                f"This query cannot be expressed in {rules.name} from {self.rules.name}: the "
                "translation is not valid there. Rewrite the semi-structured or dialect-specific "
                "parts with constructs both dialects support.",
            )
            return
        if hardening.substitution_in_output(self, root, sql, ids_body or ""):
            return
        self.result.sql = sql
        id_sql = _id_sql(self.write_rules.sqlglot_dialect, str(self.id_column).strip())
        alias = "zc_segment"
        string_type = rules.string_type
        ref = hardening.id_reference(getattr(self, "id_match", None), root, target, id_sql)
        ref = spelling.id_reference(self, ref, id_sql)
        self.result.ids_sql = (
            f"{prefix}SELECT DISTINCT CAST({alias}.{ref} AS {string_type}) AS {id_sql} "
            f"FROM ({ids_body or body}) AS {alias} WHERE {alias}.{ref} IS NOT NULL"
        )

    def selects_to_trust(self) -> list[exp.Expr] | None:
        """The output tree's SELECTs for `generation.FreeSelects` when the target's SELECT
        rewrites are gated and the copy walk found no node they act on, else None."""
        selects = self.free_selects
        if not selects:
            return None
        generator_class = self.write_dialect.generator_class
        guard_select_rewrites(generator_class)  # once per class: the gate is in place
        if not generation.gated(generator_class):
            return None
        types = generation.guarded_types()
        if any(isinstance(node, types) for node in self.first_reading):
            return None
        return selects

    def unordered_body(self, root: exp.Expr) -> tuple[str | None, list[SqlIssue]]:
        """The query without an ORDER BY that only orders (no LIMIT/OFFSET/FETCH): the ids
        are DISTINCT anyway, and some warehouses refuse ORDER BY in a derived table."""
        order = root.args.get("order")
        if order is None or any(root.args.get(k) for k in ("limit", "offset", "fetch")):
            return None, []
        root.set("order", None)
        try:
            return _generate(
                root.copy(), self.write_dialect, self.write_rules, sources=self.name_sources
            )
        finally:
            root.set("order", order)

    def name_sources(self) -> tuple[str, ...]:
        """Every text the output tree's names can come from: its identifiers (as parsed, the
        copy's: normalizing only folds case), the query's tokens (names and the strings a
        rewrite may turn into names), the scope written into its tables, the catalog's names
        (memoized: asked once per generated part)."""
        found = self._name_sources
        if found is None:
            names = "".join(i.this for i in self.identifiers if isinstance(i.this, str))
            tokens = "".join(token.text for token in self.tokens)
            found = self._name_sources = (names, tokens, str(self.scope_text), self.name_chars)
        return found


# --- small pure helpers -------------------------------------------------------------------


# How each identifier normalization strategy folds an unquoted name (CASE_SENSITIVE: never).
_FOLDS: dict[NormalizationStrategy, Callable[[str], str]] = {
    NormalizationStrategy.LOWERCASE: str.lower,
    NormalizationStrategy.CASE_INSENSITIVE: str.lower,
    NormalizationStrategy.UPPERCASE: str.upper,
    NormalizationStrategy.CASE_INSENSITIVE_UPPERCASE: str.upper,
    NormalizationStrategy.CASE_SENSITIVE: lambda name: name,
}


def _normalize_names(dialect: Dialect, identifiers: list[exp.Identifier]) -> None:
    """``dialect.normalize_identifier`` on each identifier (exactly `exp.Identifier` nodes).

    Normalizing only ever folds case, so a name already folded is left as it is. For a dialect
    that keeps sqlglot's generic rule (all but BigQuery), the rule is applied here, without a
    Python call per name (Snowflake folds every unquoted lower-case name: ~90 a check).
    """
    strategy = dialect.normalization_strategy
    fold = _FOLDS.get(strategy)
    normalize = dialect.normalize_identifier
    if fold is None or type(dialect).normalize_identifier is not Dialect.normalize_identifier:
        for identifier in identifiers:  # the dialect's own rule (BigQuery)
            name = identifier.this
            if fold is None or not isinstance(name, str) or fold(name) != name:
                normalize(identifier)
        return
    if strategy is NormalizationStrategy.CASE_SENSITIVE:
        return
    # sqlglot's Dialect.normalize_identifier, inlined
    quoted_too = strategy in (
        NormalizationStrategy.CASE_INSENSITIVE,
        NormalizationStrategy.CASE_INSENSITIVE_UPPERCASE,
    )
    ascii_only = dialect.ASCII_ONLY_NORMALIZATION
    table = ASCII_UPPER if fold is str.upper else ASCII_LOWER
    for identifier in identifiers:
        name = identifier.this
        if not isinstance(name, str):
            normalize(identifier)
            continue
        folded = fold(name)
        if folded == name or (not quoted_too and identifier.args.get("quoted")):
            continue
        if ascii_only:
            folded = name.translate(table)
            if folded == name:
                continue
        identifier.set("this", folded)


@cache
def _dialect(name: str) -> Dialect:
    """One sqlglot dialect instance per name (``Dialect.get_or_raise`` builds a new one on
    every call; instances hold only settings, so sharing them is safe).

    The instance's ``tokenize`` reuses the thread's tokenizer (`_tokenize`): sqlglot's parsers
    tokenize small texts again while parsing (Snowflake: twice for the bench query) through
    ``dialect.tokenize``, which builds a tokenizer each time (~20 µs); the tokens are the
    same. Only these private instances are changed.
    """
    dialect = Dialect.get_or_raise(name)
    dialect.tokenize = functools.partial(_dialect_tokenize, dialect)  # type: ignore[method-assign]
    folded = _already_folded(dialect)
    if folded is not None:
        dialect.normalize_identifier = functools.partial(  # type: ignore[method-assign]
            _normalize_identifier, type(dialect).normalize_identifier, dialect, folded
        )
    if getattr(type(dialect).can_quote, "__qualname__", "") == "Snowflake.can_quote":
        dialect.can_quote = functools.partial(  # type: ignore[method-assign]
            _snowflake_can_quote, type(dialect).can_quote, dialect
        )
    return dialect


def _snowflake_can_quote(
    method: Callable[..., bool], dialect: Dialect, identifier: Any, identify: Any = "safe"
) -> bool:
    """Snowflake's ``can_quote``, answered at once when ``identify`` is off (how checked
    queries are generated): sqlglot's rule then answers whether the name is quoted, and
    Snowflake's own exception (an unquoted DUAL table name) never applies to a quoted one, so
    the answer is the same. The generator asks for every name it renders (~90 a check),
    and Snowflake's rule costs a ``super()`` call each time."""
    if not identify:
        return bool(identifier.quoted)
    return method(dialect, identifier, identify)


def _already_folded(dialect: Dialect) -> Callable[[str], bool] | None:
    """For a dialect whose ``normalize_identifier`` is sqlglot's generic rule or BigQuery's
    (each only ever replaces an identifier's name by its case fold, or leaves it), a test that
    a name is its own fold, so normalizing leaves it as it is; None for any other rule.

    ``str.lower(name) == name`` implies the ASCII-only fold changes nothing either (it folds a
    subset of the letters); likewise for upper case.
    """
    method = type(dialect).normalize_identifier
    if method is not Dialect.normalize_identifier and (
        method.__qualname__ != "BigQuery.normalize_identifier"
    ):
        return None
    strategy = dialect.normalization_strategy
    if strategy is NormalizationStrategy.CASE_SENSITIVE:
        return lambda name: True
    if strategy in (NormalizationStrategy.LOWERCASE, NormalizationStrategy.CASE_INSENSITIVE):
        return lambda name: name.lower() == name
    if strategy in (
        NormalizationStrategy.UPPERCASE,
        NormalizationStrategy.CASE_INSENSITIVE_UPPERCASE,
    ):
        return lambda name: name.upper() == name
    return None


def _normalize_identifier(
    method: Callable[[Dialect, Any], Any],
    dialect: Dialect,
    folded: Callable[[str], bool],
    node: Any,
) -> Any:
    """``dialect.normalize_identifier(node)``, returning at once when the node is an identifier
    whose name is already folded (the rule would leave it as it is). sqlglot calls it for every
    identifier it normalizes (the BigQuery and Redshift parsers for each joined table, the
    qualifier for each output alias), a Python method each time."""
    if type(node) is exp.Identifier:
        name = node.this
        if type(name) is str and folded(name):
            return node
    return method(dialect, node)


def _dialect_tokenize(dialect: Dialect, sql: str, other: Any = None) -> list[Token]:
    """``Dialect.tokenize`` of ``dialect``, with the thread's tokenizer when it is the
    dialect's own (no ``dialect`` argument)."""
    if other is not None:
        return Dialect.tokenize(dialect, sql, other)
    return _tokenize(dialect, sql)


_TOKENIZERS = threading.local()


def _tokenize(dialect: Dialect, text: str) -> list[Token]:
    """``dialect.tokenize(text)`` with one tokenizer per dialect and thread: building one sets
    up its scanner from three dozen settings each time, and tokenizing resets all its state
    (it returns a new list of tokens on every call; it is reset after each call too)."""
    tokenizers: dict[int, Any] | None = getattr(_TOKENIZERS, "by_dialect", None)
    if tokenizers is None:
        tokenizers = _TOKENIZERS.by_dialect = {}
    tokenizer = tokenizers.get(id(dialect))
    if tokenizer is None:  # dialect instances are the cached, never freed ones of `_dialect`
        tokenizer = tokenizers[id(dialect)] = dialect.tokenizer()
    try:
        tokens: list[Token] = tokenizer.tokenize(text)
    finally:
        core = getattr(tokenizer, "_core", None)
        if core is not None:  # keep neither the text nor its tokens alive until the next call
            core.reset()
    return tokens


@lru_cache(maxsize=256)
def _id_sql(dialect: str, name: str) -> str:
    """The id column as an identifier of the target dialect (quoted when it must be)."""
    return _dialect(dialect).generate(exp.to_identifier(name))


class _Copied(NamedTuple):
    """A statement's working copy and what one walk over it found."""

    tree: exp.Expr
    identifiers: list[exp.Identifier]
    """The copy's identifiers, to normalize."""
    identifier_originals: list[exp.Identifier]
    """The original of each of ``identifiers``, in the same order."""
    tables: list[tuple[exp.Table, exp.Table]]
    """(original, copy) for every table node."""
    verbatim: bool
    """Whether a node asks to keep its case (a ``sqlglot.meta case_sensitive`` comment)."""
    refused: list[exp.Expr]
    """Original nodes that are not read-only (statements, INTO, FOR UPDATE…)."""
    reading: list[exp.Expr]
    """Original nodes that read something: tables, functions, laterals, derived tables."""
    joins: list[exp.Expr]
    """The copy's joins (see `qualification.plain_joins`)."""
    free_selects: list[exp.Expr] | None
    """The original's SELECT nodes, unless a node of it outside ``reading`` is of a type a
    guarded SELECT rewrite acts on (`generation.FreeSelects`): then None."""
    selects: list[exp.Select]
    """The original's SELECT nodes (in ``Expr.walk()`` order)."""
    columns: list[exp.Column]
    """The original's columns (in ``Expr.walk()`` order)."""


def _copy_tree(root: exp.Expr) -> _Copied:
    """A copy of ``root`` for the checks to normalize and qualify, made in one breadth-first
    walk that also classifies the original's nodes (the order of ``Expr.walk()``).

    sqlglot's ``copy()`` deep-copies every node's metadata dict with ``copy.deepcopy``, which
    costs more than parsing again; metadata holds positions and flags (immutable values), so
    a shallow copy of it is exact and several times cheaper.
    """
    expr = exp.Expr
    kinds, kind_of, primitive = _KINDS, _kind, _PRIMITIVE
    top = root.__class__()
    identifiers: list[exp.Identifier] = []
    identifier_originals: list[exp.Identifier] = []
    tables: list[tuple[exp.Table, exp.Table]] = []
    refused: list[exp.Expr] = []
    reading: list[exp.Expr] = []
    joins: list[exp.Expr] = []
    selects: list[exp.Expr] = []
    columns: list[exp.Column] = []
    guarded = False  # a node of a type a guarded SELECT rewrite acts on, outside `reading`
    verbatim = False
    queue: list[tuple[exp.Expr, exp.Expr]] = [(root, top)]
    push = queue.append
    for node, copy in queue:  # breadth first: the list grows while it is walked
        cls = node.__class__
        kind = kinds.get(cls)
        if kind is None:
            kind = kind_of(cls)
        if kind:
            if kind == _KIND_IDENTIFIER:
                identifiers.append(copy)  # type: ignore[arg-type]
                identifier_originals.append(node)  # type: ignore[arg-type]
            elif kind == _KIND_READING:
                reading.append(node)
            elif kind == _KIND_TABLE:
                reading.append(node)
                tables.append((node, copy))  # type: ignore[arg-type]
            elif kind == _KIND_JOIN:
                joins.append(copy)
            elif kind == _KIND_COLUMN:
                columns.append(node)  # type: ignore[arg-type]
            elif kind == _KIND_SELECT:
                selects.append(node)
            elif kind == _KIND_GUARDED:
                guarded = True
            else:
                refused.append(node)
        if node.comments is not None:
            copy.comments = list(node.comments)
        if node._type is not None:
            copy._type = node._type.copy()
        meta = node._meta
        if meta is not None:
            copy._meta = dict(meta)
            verbatim = verbatim or bool(meta.get("case_sensitive"))
        if cls in primitive:  # names, literals: no child node among the args
            copy.args = dict(node.args)
            continue
        args = copy.args
        for key, value in node.args.items():
            if isinstance(value, expr):
                child = value.__class__()
                child.parent, child.arg_key = copy, key
                args[key] = child
                push((value, child))
            elif type(value) is list:
                items: list[Any] = []
                for i, item in enumerate(value):
                    if isinstance(item, expr):
                        child = item.__class__()
                        child.parent, child.arg_key, child.index = copy, key, i
                        items.append(child)
                        push((item, child))
                    else:
                        items.append(item)
                args[key] = items
            else:
                args[key] = value
    free = _TRUST_GUARDED_KINDS and not guarded
    return _Copied(
        top,
        identifiers,
        identifier_originals,
        tables,
        verbatim,
        refused,
        reading,
        joins,
        selects if free else None,
        selects,  # type: ignore[arg-type]
        columns,
    )


def _unaliased_derived_table(node: exp.Expr) -> bool:
    """A query in FROM or JOIN without an alias (not a PIVOT's source, named by its PIVOT)."""
    return targets.unaliased_derived_table(node) and isinstance(node.this, exp.Query)


def _name_derived_tables(work: exp.Expr) -> None:
    """Give the work copy's unaliased derived tables names no name of the query uses (as
    sqlglot's ``qualify_tables`` does), so that columns resolve against them like against any
    source: with no name, a column a ``USING`` join shares was taken for one of two sources
    (only queries with such a join are renamed: other messages say "the subquery")."""
    bare = [n for n in work.find_all(exp.Subquery) if _unaliased_derived_table(n)]
    targets.name_derived_tables(work, bare)


def _parses_in(sql: str, dialect: Dialect) -> bool:
    """Whether the target dialect's own parser accepts generated SQL as one statement."""
    try:
        statements = [s for s in dialect.parse(sql) if s is not None]
    except (ParseError, TokenError):
        return False
    return len(statements) == 1


def _start_offset(node: exp.Expr) -> int | None:
    """Character offset where a node starts: its own position, else its earliest part's
    (a Column ``u.email`` has no position of its own, its identifiers do)."""
    meta = node._meta
    if meta and "start" in meta:
        return int(meta["start"])
    starts = [
        candidate._meta["start"]
        for candidate in node.walk()
        if candidate._meta and "start" in candidate._meta
    ]
    return min(starts) if starts else None


# What the copy walk does with a node: nothing, refuse it, read it (tables, functions…),
# normalize it (exactly `exp.Identifier`), read it and pair it with its copy (exactly
# `exp.Table`), note its copy (a join, for `qualification.plain_joins`) or note it (exactly
# `exp.Select`, for `generation.FreeSelects` and `hardening.before_emit`; a column, for
# `hardening.before_emit`).
_KIND_OTHER, _KIND_REFUSED, _KIND_READING, _KIND_IDENTIFIER, _KIND_TABLE = 0, 1, 2, 3, 4
_KIND_JOIN, _KIND_SELECT, _KIND_GUARDED, _KIND_COLUMN = 5, 6, 7, 8
# Whether every class of `generation.guarded_types` met so far is found by the copy walk (a
# `_KIND_READING` or `_KIND_GUARDED` node); a class of another kind turns the trust off.
_TRUST_GUARDED_KINDS = True
_KINDS: dict[type, int] = {}
# Node classes sqlglot keeps free of child nodes (``is_primitive``: their constructor links no
# child): the copy takes their args as they are (``_kind`` adds each class it meets).
_PRIMITIVE: set[type] = set()


def _kind(cls: type) -> int:
    """What the safety checks and the copy walk care about for a node class (cached: the walk
    is hot)."""
    kind = _KINDS.get(cls)
    if kind is None:
        if issubclass(cls, _NOT_READ_ONLY_TYPES):
            kind = _KIND_REFUSED
        elif cls is exp.Table:
            kind = _KIND_TABLE
        elif issubclass(
            cls,
            exp.Table
            | exp.Lateral
            | exp.TableFromRows
            | exp.Func
            | exp.Dot
            | exp.Subquery
            | exp.QueryTransform,
        ):
            kind = _KIND_READING
        elif cls is exp.Identifier:
            kind = _KIND_IDENTIFIER
        elif issubclass(cls, exp.Join):
            kind = _KIND_JOIN
        elif cls is exp.Select:
            kind = _KIND_SELECT
        elif issubclass(cls, exp.Column):
            kind = _KIND_COLUMN
        elif issubclass(cls, generation.guarded_types()):
            kind = _KIND_GUARDED
        else:
            kind = _KIND_OTHER
        if issubclass(cls, generation.guarded_types()) and kind not in (
            _KIND_READING,
            _KIND_GUARDED,
        ):
            global _TRUST_GUARDED_KINDS
            _TRUST_GUARDED_KINDS = False
        if getattr(cls, "is_primitive", False) is True:
            _PRIMITIVE.add(cls)
        _KINDS[cls] = kind
    return kind


def _statement_name(node: exp.Expr) -> str:
    """A readable name for a refused statement or clause."""
    if isinstance(node, exp.Command):
        return str(node.this).upper() if node.this else "command"
    key = node.key
    if key in _STATEMENT_NAMES:
        return _STATEMENT_NAMES[key]
    if isinstance(node, exp.Create | exp.Drop | exp.Alter):
        kind = node.args.get("kind")
        return f"{key.upper()} {kind}" if kind else key.upper()
    return key.upper()


_CLASS_NAMES: dict[type, set[str]] = {}


def _function_names(func: exp.Func) -> set[str]:
    """Every lower-case name a function node may be known by (as typed, sqlglot's names)."""
    if isinstance(func, exp.Anonymous):
        return {func.name.lower()}  # the identifier's text: a quoted name is the same function
    cls = type(func)
    names = _CLASS_NAMES.get(cls)
    if names is None:
        names = {func.key.lower(), *(n.lower() for n in cls.sql_names())}
        _CLASS_NAMES[cls] = names
    return names


def _display_name(func: exp.Func) -> str:
    """The function's name as the user most likely typed it."""
    if isinstance(func, exp.Anonymous):
        return func.name
    return type(func).sql_names()[0] if type(func).sql_names() else func.key.upper()


def _forbidden_name(func: exp.Func, rules: DialectRules) -> str | None:
    """The name under which a function is forbidden in ``rules``, or None."""
    names = _function_names(func)
    if names & rules.allowed_functions:
        return None
    for name in sorted(names):
        if name in rules.forbidden_functions or name.startswith(rules.forbidden_prefixes):
            return _display_name(func) if isinstance(func, exp.Anonymous) else name.upper()
    return None


def _forbidden_in(func: exp.Func, read: DialectRules, write: DialectRules) -> str | None:
    """The name under which a function is forbidden by the input dialect's rules or, when the
    query runs in another dialect, by the target warehouse's (what it will execute there)."""
    if isinstance(func, exp.Cast) and (read.forbidden_types or write.forbidden_types):
        return hardening.forbidden_cast(func, read, write)
    return _forbidden_name(func, read) or (None if write is read else _forbidden_name(func, write))


def _unterminated(text: str, *, quotes: list[str], escapes: set[str]) -> tuple[int, str] | None:
    """Offset and kind of the first string, quoted name, comment or $$ block never closed."""
    i, n = 0, len(text)
    while i < n:
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end == -1 else end + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end == -1:
                return i, "comment"
            i = end + 2
        elif text.startswith("$$", i):
            end = text.find("$$", i + 2)
            if end == -1:
                return i, "$$ string"
            i = end + 2
        elif text[i] in quotes:
            quote, j = text[i], i + 1
            while j < n:
                if text[j] in escapes:
                    j += 2
                elif text[j] == quote and j + 1 < n and text[j + 1] == quote:
                    j += 2  # doubled quote inside the string
                elif text[j] == quote:
                    break
                else:
                    j += 1
            if j >= n:
                return i, "string" if quote == "'" else "quoted name or string"
            i = j + 1
        else:
            i += 1
    return None


def _token_error_message(exc: TokenError) -> str:
    """A tokenizer failure explained (sqlglot gives the text up to the failure)."""
    detail = str(exc).split("\n")[0][:160]
    return (
        f"The query could not be read: an unterminated string, quoted name or comment? ({detail})"
    )


def _parse_error(
    error: Mapping[str, Any], check: _Check
) -> tuple[str, tuple[int | None, int | None]]:
    """Message and position for one of sqlglot's parse errors."""
    description = str(error.get("description") or "syntax error")
    # sqlglot prints tokens as "<Token token_type: …, text: X, …>": keep only the text
    description = _strip_token_repr(description)
    highlight = str(error.get("highlight") or "").strip()
    line, column = error.get("line"), error.get("col")
    if isinstance(line, int) and isinstance(column, int):
        # sqlglot reports the column where the highlighted token ends
        if highlight and "\n" not in highlight:
            column = max(1, column - len(highlight) + 1)
    else:
        line = column = None
    near = f" near '{highlight[:40]}'" if highlight else ""
    return (f"Syntax error{near}: {description}.", (line, column))


def _strip_token_repr(text: str) -> str:
    """Replace sqlglot's token reprs in messages by the token text."""
    out = []
    rest = text
    while "<Token " in rest:
        head, _, tail = rest.partition("<Token ")
        body, _, rest = tail.partition(">")
        marker = "text: "
        value = body.split(marker, 1)[1].split(", line:", 1)[0] if marker in body else "?"
        out.append(head + ("end of input" if value == "SENTINEL" else f"'{value}'"))
    out.append(rest)
    return "".join(out).rstrip(".")


def _reads_files(table: exp.Table, rules: DialectRules) -> bool:
    """Whether a table reference is really a file read: DuckDB's ``FROM 'path.csv'``
    replacement scans, Databricks' ``fmt.`path```."""
    this = table.this
    if not isinstance(this, exp.Identifier) or not this.quoted:
        return False
    name = this.name
    looks_like_path = bool(_PATH_CHARS & set(name)) or name.lower().endswith(_FILE_SUFFIXES)
    if rules.path_tables and not table.args.get("db") and looks_like_path:
        return True
    return bool(rules.file_formats) and table.db.lower() in rules.file_formats


def _is_join_construct(node: exp.Expr) -> bool:
    """A derived table wrapping joins directly, ``(a JOIN b) AS t``: sqlglot's qualify_tables
    must rewrite it into a subquery before columns can be qualified."""
    return (
        isinstance(node, exp.Subquery)
        and isinstance(node.this, exp.Table)
        and bool(node.this.args.get("joins"))
    )


def _is_all_keyword(column: exp.Column) -> bool:
    """An unquoted, unqualified ``ALL`` that is a whole ORDER BY / GROUP BY item."""
    this = column.this
    return (
        isinstance(this, exp.Identifier)
        and not this.quoted
        and this.name.upper() == "ALL"
        and not column.table
        and isinstance(column.parent, exp.Ordered | exp.Group)
    )


def _is_source(node: exp.Expr) -> bool:
    """Whether a node is (part of) a FROM item rather than an expression of its query."""
    current = node.parent
    while current is not None and not isinstance(current, exp.Query):
        if isinstance(current, exp.Table | exp.Lateral | exp.TableFromRows | exp.From | exp.Join):
            return True
        current = current.parent
    return False


def _is_inside(node: exp.Expr, outer: exp.Expr) -> bool:
    """Whether ``node`` is ``outer`` or one of its descendants."""
    current: exp.Expr | None = node
    while current is not None:
        if current is outer:
            return True
        current = current.parent
    return False


def _is_system(table: exp.Table, rules: DialectRules) -> bool:
    """Whether any part of a table reference names a system schema (``information_schema``…)."""
    for part in table.parts:
        for piece in part.name.lower().split("."):
            if piece in rules.system_schemas:
                return True
    return False


def _written_name(table: exp.Table) -> str:
    """The table reference as the user wrote it (without alias)."""
    return ".".join(part.name for part in table.parts) or table.name


def _qualify_output_table(table: exp.Table, scope_parts: list[str]) -> None:
    """Write the scope into an in-scope table reference of the output tree."""
    schema = scope_parts[-1].strip()
    table.set("db", exp.to_identifier(schema))
    if len(scope_parts) == 2:
        table.set("catalog", exp.to_identifier(scope_parts[0].strip()))
    else:
        table.set("catalog", None)


def _is_cte_reference(table: exp.Table) -> bool:
    """Whether an unqualified table names a CTE of an enclosing WITH (fallback when unscoped)."""
    name = table.name
    node: exp.Expr | None = table.parent
    while node is not None:
        with_ = node.args.get("with_") if isinstance(node, exp.Query) else None
        if with_ is not None and any(cte.alias_or_name == name for cte in with_.expressions):
            return True
        node = node.parent
    return False


def _owning_scope(scope: Scope, table: str) -> Scope | None:
    """The scope (this one or an enclosing one) where a qualifier names a source."""
    current: Scope | None = scope
    while current is not None:
        if table in current.sources:
            return current
        current = current.parent
    return None


def _short_list(names: Any) -> str:
    """Up to 12 names, for messages."""
    items = sorted(str(n) for n in names)
    more = f", … (+{len(items) - 12})" if len(items) > 12 else ""
    return ", ".join(items[:12]) + more


def _closest(name: str, candidates: list[str]) -> str | None:
    """The candidate most like ``name`` (typo hint), or None."""
    import difflib

    matches = difflib.get_close_matches(name, list(dict.fromkeys(candidates)), n=1, cutoff=0.75)
    return matches[0] if matches else None
