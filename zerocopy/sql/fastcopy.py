"""Cheaper copies of sqlglot trees, with exactly the same result.

sqlglot's ``Expression.__deepcopy__`` copies each node's metadata dict (token positions) and
comment list with ``copy.deepcopy``, whose generic machinery costs more per node than the
rest of the copy; the parser copies tables while parsing (implicit UNNEST in BigQuery and
Redshift) and generators copy subtrees, so this shows in every check. A dict or list whose
items are all immutable scalars deep-copies to a plain shallow copy, so this module routes
those through ``dict(x)`` / ``list(x)`` and everything else to ``copy.deepcopy`` unchanged,
except a whole node (``Expr.copy()``, a node's type): its own ``__deepcopy__`` is called
directly, which is all ``copy.deepcopy`` would do for it (sqlglot's ignores the memo), without
the dispatch and memo bookkeeping (BigQuery's and Redshift's parsers copy tables of every join).

`install()` points sqlglot's expression module at `deepcopy` below; it is idempotent, and a
no-op when sqlglot no longer looks ``deepcopy`` up there.
"""

from __future__ import annotations

import copy
from typing import Any

import sqlglot.expressions.core as _core

_Expr = _core.Expr
_SCALARS = frozenset({int, str, bool, float, type(None)})
_deepcopy = copy.deepcopy


def deepcopy(value: Any, memo: dict[int, Any] | None = None, _nil: Any = None) -> Any:
    """``copy.deepcopy``, short-cut for flat dicts and lists of scalars and for nodes (same
    result)."""
    if memo is None and isinstance(value, _Expr):
        return value.__deepcopy__({})
    kind = type(value)
    if kind is dict:
        for item in value.values():
            if type(item) not in _SCALARS:
                return _deepcopy(value, memo)
        return dict(value)
    if kind is list:
        for item in value:
            if type(item) not in _SCALARS:
                return _deepcopy(value, memo)
        return list(value)
    return _deepcopy(value, memo)


def install() -> bool:
    """Use `deepcopy` for sqlglot's node copies; True when it is (or already was) in place."""
    current = getattr(_core, "deepcopy", None)
    if current is deepcopy:
        return True
    if current is not _deepcopy:  # sqlglot changed how it copies: leave it alone
        return False
    _core.deepcopy = deepcopy  # type: ignore[assignment]
    return True
