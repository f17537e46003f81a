"""JSON that keeps integers past 64 bits exact, fast in the common case.

orjson (our fast path) reads an integer past 64 bits as a float (99999999999999999999 became
1e20) and refuses to write a Python ``int`` past 64 bits; a warehouse payload can hold either
(a JSON text, or a HUGEINT / DECIMAL(38, 0) inside a STRUCT). A text with a run of 19 or more
digits is read again with msgspec, which keeps the integers exact; a value orjson cannot
write is written by the standard library.
"""

from __future__ import annotations

import json
import re
from contextlib import suppress
from typing import Any

import msgspec
import orjson

LONG_DIGITS = re.compile(rb"[0-9]{19}")
"""A digit run that may be an integer past 64 bits (orjson reads those as floats)."""

_EXACT = msgspec.json.Decoder()


def loads(data: str | bytes) -> Any:
    """Decode JSON (``orjson.JSONDecodeError`` if invalid), integers past 64 bits exact."""
    value = orjson.loads(data)
    raw = data.encode() if isinstance(data, str) else data
    if LONG_DIGITS.search(raw) is not None:
        with suppress(msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            value = _EXACT.decode(raw)
    return value


def dumps(value: Any, *, default: Any = None) -> bytes:
    """Compact JSON bytes: orjson, or the standard library for integers orjson refuses."""
    try:
        return orjson.dumps(value, default=default)
    except TypeError:
        return json.dumps(
            value, default=default, ensure_ascii=False, separators=(",", ":")
        ).encode()
