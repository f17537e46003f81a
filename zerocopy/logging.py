"""structlog setup: JSON (or console) logs, context ids bound per run, secrets redacted.

Use ``log = get_logger(__name__)`` and ``with bound_context(run_id=..., segment_id=...):``.
Two redaction rules run last, on every event:

* any value under a secret-looking key (``password``, ``secret``, ``token``, ``private_key``,
  ``api_key``, ``authorization`` …, at any nesting depth) becomes ``"***"``;
* any string containing a value registered with :func:`register_secret` (every decrypted
  credential secret is registered by :mod:`zerocopy.connections`) has it replaced by ``***``,
  wherever it appears (messages, exception text, driver errors).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import structlog

REDACTED = "***"

SECRET_KEY_PATTERN = re.compile(
    r"pass(word|wd|phrase)?|secret|token|private[_-]?key|api[_-]?key|authori[sz]ation|"
    r"credential[_-]?secret|client[_-]?secret|access[_-]?key|session[_-]?key|cookie|dsn",
    re.IGNORECASE,
)
"""Keys whose values are always redacted, whatever they hold."""

MIN_SECRET_LENGTH = 4
"""Shorter registered values are ignored: replacing ``"a"`` everywhere would shred the logs."""

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_secret_re: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Redact ``value`` from every log line from now on (process-wide)."""
    global _secret_re
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        # Multi-line secrets (PEM keys) are also matched line by line.
        _secrets.update(line for line in value.splitlines() if len(line) >= 16)
        # Longest first so a secret containing another is replaced whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_re = re.compile("|".join(re.escape(s) for s in ordered))


def shown_url(url: str, *, path: bool = True) -> str:
    """``url`` as messages and logs show it: no user, password, query or fragment (where
    keys and tokens travel: ``https://u:p@host/in?token=…``), and with ``path=False`` no
    path either (a webhook's path is often its secret: ``/services/T0/B0/xyz``)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(a malformed URL)"
    if ":" in host:
        host = f"[{host}]"
    shown = f"{parts.scheme}://{host}{f':{port}' if port else ''}"
    if path:
        shown += parts.path
    elif parts.path not in ("", "/"):
        shown += "/…"
    return shown


def redact_text(text: str) -> str:
    pattern = _secret_re
    return pattern.sub(REDACTED, text) if pattern is not None else text


def redact(value: Any, key: str | None = None) -> Any:
    """``value`` with secret keys and registered secret values replaced (recursive)."""
    if key is not None and SECRET_KEY_PATTERN.search(key) and value not in (None, "", {}, []):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(v) for v in value]
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return value


def redact_processor(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor applying :func:`redact` to every field (the event text included)."""
    return {
        k: (redact_text(v) if k == "event" and isinstance(v, str) else redact(v, k))
        for k, v in event_dict.items()
    }


def configure_logging(level: str = "info", fmt: str = "json", stream: Any = None) -> None:
    """Configure structlog (and stdlib logging through it) once per process."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_processor,  # last before rendering: sees exception text too
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None, **initial: Any) -> Any:
    return structlog.get_logger(name, **initial) if name else structlog.get_logger(**initial)


@contextmanager
def bound_context(**ids: Any) -> Iterator[None]:
    """Bind ids (run_id, segment_id, source_id, workspace_id …) to every log line inside."""
    values = {k: v for k, v in ids.items() if v is not None}
    with structlog.contextvars.bound_contextvars(**values):
        yield
