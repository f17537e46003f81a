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
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import sqlglot.generator as _generator_module
from sqlglot import exp, transforms
from sqlglot.generator import Generator

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


def _name(function: Any) -> str:
    return f"{getattr(function, '__module__', '')}:{getattr(function, '__qualname__', '')}"


def _guarded(transform: Transform, types: tuple[type[exp.Expr], ...]) -> Transform:
    """``transform``, skipped for a SELECT that contains none of ``types``."""

    def run(expression: exp.Expr) -> exp.Expr:
        if isinstance(expression, exp.Select) and expression.find(*types) is None:
            return expression
        return transform(expression)

    run.__qualname__ = f"guarded({_name(transform)})"
    run.__wrapped__ = transform  # type: ignore[attr-defined]
    return run


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
    select_handler = transforms.preprocess(guarded, final)
    select_handler._zerocopy_guarded = True  # type: ignore[attr-defined]
    # TRANSFORMS is this class's own dict (sqlglot builds one per generator class)
    base.TRANSFORMS[exp.Select] = select_handler
    dispatch = getattr(_generator_module, "_DISPATCH_CACHE", {}).get(base)
    if dispatch is not None and dispatch.get(exp.Select) is handler:
        dispatch[exp.Select] = select_handler
    return True
