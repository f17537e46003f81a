"""Faster SQL generation for checked queries: sqlglot's SELECT rewrites, skipped when moot.

Before it renders each SELECT, a sqlglot generator runs the dialect's rewrites of that SELECT
(``transforms.preprocess``). Several of them look for one construct (``EXPLODE`` in the
projection, an ``UNNEST`` source, ``GENERATE_DATE_ARRAY``, ``ANY``) by building scopes or
searching every nested SELECT, and change nothing when it is absent; for a 40-line Snowflake
query those searches cost more than rendering the SQL. `guard_select_rewrites` replaces a
generator class's SELECT handler by the same list of rewrites, each one in `_GUARDS` wrapped
by a search for its construct: it runs exactly when it could act, so the SQL is the same.

sqlglot's compiled generators cannot be subclassed from Python (instances refuse), so the
handler is swapped in the class's ``TRANSFORMS`` (and its dispatch cache) for every user of
that generator in the process; the output is unchanged by construction. A sqlglot whose
SELECT handler cannot be read this way is left untouched.

Where a generator has several guarded rewrites (Snowflake four, BigQuery and Redshift two),
one search per SELECT decides for all of them: a gate placed first in the list looks once for
any of their node types, and when there is none each guard skips without its own search. That
holds while the rewrites before a guard cannot create those nodes: each unguarded rewrite of
such a list must be in `_INERT` (verified against its source), else every guard searches for
itself as before.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from functools import cache
from typing import Any

import sqlglot.generator as _generator_module
from sqlglot import exp, transforms
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel
from sqlglot.generator import Generator
from sqlglot.helper import name_sequence

Transform = Callable[[exp.Expr], exp.Expr]

# "module:qualname" of a SELECT rewrite -> the node types without which it changes nothing
# (each verified against its source: it only acts on nodes it finds of these types).
_GUARDS: dict[str, tuple[type[exp.Expr], ...]] = {
    "sqlglot.transforms:explode_projection_to_unnest.<locals>._explode_projection_to_unnest": (
        exp.Explode,
        exp.ExplodeOuter,
    ),
    "sqlglot.transforms:unqualify_unnest": (exp.Unnest,),
    "sqlglot.transforms:unnest_generate_date_array_using_recursive_cte": (exp.Unnest,),
    "sqlglot.transforms:any_to_exists": (exp.Any,),
    "sqlglot.generators.snowflake:_transform_generate_date_array": (exp.GenerateDateArray,),
    "sqlglot.generators.snowflake:_qualify_unnested_columns": (exp.Unnest,),
    "sqlglot.generators.snowflake:_eliminate_dot_variant_lookup": (exp.Unnest,),
}


# Unguarded SELECT rewrites that create no node of any type in `_GUARDS` (each verified against
# its source: they move, copy or wrap what the SELECT already holds, or add windows, joins of
# existing tables, EXISTS, aliases, columns).
_INERT: frozenset[str] = frozenset(
    {
        "sqlglot.transforms:eliminate_window_clause",
        "sqlglot.transforms:eliminate_distinct_on",
        "sqlglot.transforms:eliminate_semi_and_anti_joins",
        "sqlglot.transforms:eliminate_qualify",
        "sqlglot.generators.bigquery:_unnest_explode_generate_series",
        "sqlglot.generators.bigquery:_alias_ordered_group",
    }
)

# The SELECT the gate last found free of every guarded node type (per thread: generators run
# in threads). A guard trusts it only for that very object; anything else searches itself.
_gate = threading.local()


def _name(function: Any) -> str:
    return f"{getattr(function, '__module__', '')}:{getattr(function, '__qualname__', '')}"


def _guarded(transform: Transform, types: tuple[type[exp.Expr], ...]) -> Transform:
    """``transform``, skipped for a SELECT that contains none of ``types``."""

    def run(expression: exp.Expr) -> exp.Expr:
        if isinstance(expression, exp.Select) and (
            getattr(_gate, "select", None) is expression or expression.find(*types) is None
        ):
            return expression
        return transform(expression)

    run.__qualname__ = f"guarded({_name(transform)})"
    run.__wrapped__ = transform  # type: ignore[attr-defined]
    return run


def _gate_for(types: tuple[type[exp.Expr], ...]) -> Transform:
    """First rewrite of a gated list: one search for all the guarded node types; it changes
    nothing, only records the SELECT when none of them is in it."""

    def gate(expression: exp.Expr) -> exp.Expr:
        trusted = getattr(_gate, "trusted", None)
        found = (trusted is not None and trusted.get(id(expression)) is expression) or (
            isinstance(expression, exp.Select) and expression.find(*types) is None
        )
        _gate.select = expression if found else None
        return expression

    gate._zerocopy_gate = True  # type: ignore[attr-defined]
    return gate


def _ungate(expression: exp.Expr) -> exp.Expr:
    """Last rewrite of a gated list: forget the SELECT (do not keep its tree alive)."""
    _gate.select = None
    return expression


_ungate._zerocopy_gate = True  # type: ignore[attr-defined]


# Generator classes whose SELECT rewrites start with a gate (see `_gated`).
_GATED: set[type[Generator]] = set()


def gated(base: type[Generator]) -> bool:
    """Whether ``base``'s SELECT rewrites are gated (after `guard_select_rewrites`)."""
    return base in _GATED


def guarded_types() -> tuple[type[exp.Expr], ...]:
    """Every node type a guarded rewrite acts on (of any generator)."""
    return _GUARDED_TYPES


_GUARDED_TYPES: tuple[type[exp.Expr], ...] = tuple(
    dict.fromkeys(t for types in _GUARDS.values() for t in types)
)


class FreeSelects:
    """While rendering, the gates take these SELECT nodes as free of every guarded node type
    without searching them (one search per SELECT, a walk of its whole subtree).

    For a caller that knows, from its own walk over the tree it renders, that no node of
    `guarded_types` is in it, and that nothing since has put one in: then neither do these
    SELECTs when their rewrites run, because what runs before them adds none either (a
    gated list's rewrites are guarded, skipped on a tree without those nodes, or `_INERT`).
    Only these very objects are trusted: a SELECT built while rendering is searched as
    before. ``None`` trusts nothing."""

    __slots__ = ("previous", "trusted")

    def __init__(self, selects: list[exp.Expr] | None) -> None:
        self.trusted = {id(select): select for select in selects} if selects else None
        self.previous: dict[int, exp.Expr] | None = None

    def __enter__(self) -> None:
        self.previous = getattr(_gate, "trusted", None)
        _gate.trusted = self.trusted

    def __exit__(self, *exc: object) -> None:
        _gate.trusted = self.previous


def _gated(rewrites: list[Transform], names: list[str]) -> list[Transform]:
    """``rewrites`` (guards already applied) with a gate first, when sound and worth it: two
    guards or more, and every unguarded rewrite before the last guard is `_INERT`."""
    guarded = [i for i, name in enumerate(names) if name in _GUARDS]
    if len(guarded) < 2:
        return rewrites
    if any(name not in _GUARDS and name not in _INERT for name in names[: guarded[-1]]):
        return rewrites
    types = tuple(dict.fromkeys(t for i in guarded for t in _GUARDS[names[i]]))
    return [_gate_for(types), *rewrites, _ungate]


def _select_rewrites(
    handler: Any,
) -> tuple[list[Transform], Callable[..., str] | None] | None:
    """The rewrite list and final generator a ``transforms.preprocess`` handler closes over."""
    code = getattr(handler, "__code__", None)
    cells = getattr(handler, "__closure__", None)
    if code is None or cells is None or code.co_name != "_to_sql":
        return None
    free = dict(zip(code.co_freevars, (cell.cell_contents for cell in cells), strict=True))
    rewrites, final = free.get("transforms"), free.get("generator")
    if not isinstance(rewrites, list) or not all(callable(r) for r in rewrites):
        return None
    return rewrites, final


@cache
def guard_select_rewrites(base: type[Generator]) -> bool:
    """Guard ``base``'s SELECT rewrites (once per class); True when a rewrite was guarded."""
    handler = base.TRANSFORMS.get(exp.Select)
    if handler is None or getattr(handler, "_zerocopy_guarded", False):
        return False
    found = _select_rewrites(handler)
    if found is None:
        return False
    rewrites, final = found
    guarded = [
        _guarded(rewrite, _GUARDS[_name(rewrite)]) if _name(rewrite) in _GUARDS else rewrite
        for rewrite in rewrites
    ]
    if all(new is old for new, old in zip(guarded, rewrites, strict=True)):
        return False
    guarded = _gated(guarded, [_name(rewrite) for rewrite in rewrites])
    if getattr(guarded[0], "_zerocopy_gate", False):
        _GATED.add(base)
    select_handler = transforms.preprocess(guarded, final)
    select_handler._zerocopy_guarded = True  # type: ignore[attr-defined]
    # TRANSFORMS is this class's own dict (sqlglot builds one per generator class)
    base.TRANSFORMS[exp.Select] = select_handler
    dispatch = getattr(_generator_module, "_DISPATCH_CACHE", {}).get(base)
    if dispatch is not None and dispatch.get(exp.Select) is handler:
        dispatch[exp.Select] = select_handler
    return True


# Per thread: (id of the dialect, escape table dropped) -> a generator to reuse. sqlglot builds
# a generator from a dozen settings each time (10-17 µs, twice a check); its state between two
# `generate` calls is reset by `_fresh` (generators are not reentrant, hence one per thread).
_GENERATORS = threading.local()


def generator_for(
    dialect: Dialect, sources: Callable[[], tuple[str, ...]] | None = None
) -> Generator:
    """A generator of ``dialect`` for checked queries (no comments, unsupported constructs
    raise), as fresh as a new one.

    ``sources`` gives all the texts the names of the trees it renders can come from (called
    only for a dialect that escapes characters inside quoted names). When none of them holds
    such a character (BigQuery: ``\\`` and control characters), the escape table is dropped:
    sqlglot's ``identifier_sql`` runs one ``str.replace`` per entry (35 for BigQuery) on every
    name it renders, each a no-op then, so the SQL is the same. With no ``sources`` the
    generator renders names as sqlglot's own.
    """
    cache: dict[tuple[int, bool], Generator] | None = getattr(_GENERATORS, "by_key", None)
    if cache is None:
        cache = _GENERATORS.by_key = {}
    generator = _cached(cache, dialect, plain=True)
    escapes = getattr(generator, "_identifier_escaped_sequences", None)
    if escapes and sources is not None and not _holds_any(sources(), escapes):
        generator = _cached(cache, dialect, plain=False)
    return _fresh(generator)


# The last answer of `_holds_any` (per thread): a check asks twice for the same texts (its
# memoized `name_sources` tuple) and the same escape table.
_LAST_ESCAPE_TEST = threading.local()


def _holds_any(texts: tuple[str, ...], escapes: dict[str, str]) -> bool:
    """Whether any of ``texts`` contains any key of ``escapes``: one regular-expression search
    per text (an alternation of the keys, built once per table) instead of a substring search
    per key and text (35 keys for BigQuery)."""
    last = getattr(_LAST_ESCAPE_TEST, "value", None)
    if last is not None and last[0] is texts and last[1] is escapes:
        return bool(last[2])
    pattern = _escape_pattern(tuple(escapes))
    found = any(pattern.search(text) is not None for text in texts)
    _LAST_ESCAPE_TEST.value = (texts, escapes, found)
    return found


@cache
def _escape_pattern(keys: tuple[str, ...]) -> re.Pattern[str]:
    """A pattern that finds any of ``keys`` (as literal text)."""
    return re.compile("|".join(re.escape(key) for key in keys))


def _cached(
    cache: dict[tuple[int, bool], Generator], dialect: Dialect, *, plain: bool
) -> Generator:
    """The thread's generator of ``dialect``, with (``plain``) or without its escape table."""
    key = (id(dialect), plain)
    generator = cache.get(key)
    if generator is None or generator.dialect is not dialect:
        generator = dialect.generator(comments=False, unsupported_level=ErrorLevel.RAISE)
        if not plain:
            # a sqlglot that no longer lets it be set keeps its own (same SQL, slower)
            with contextlib.suppress(AttributeError, TypeError):
                generator._identifier_escaped_sequences = {}
        cache[key] = generator
    return generator


def _fresh(generator: Generator) -> Generator:
    """Reset what a generator changes while it renders to what its constructor sets: the
    name sequence of generated aliases, and the flags some renderings switch and restore
    (not restored when a rendering raised)."""
    generator._next_name = name_sequence("_t")
    generator._quote_json_path_key_using_brackets = True
    generator.identify = False
    generator.unsupported_messages = []
    return generator
