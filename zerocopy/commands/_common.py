"""What every resource command shares: the workspace option, the runtime, JSON in and out.

Conventions (the same as ``zerocopy sync``): JSON on stdout, logs on stderr, errors as
``{"error": {...}}`` on stderr with exit 1, usage errors exit 2 (click's own, or
:func:`usage`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

import anyio
import click

from zerocopy.errors import ZerocopyError

# The same exit codes and workspace option as ``zerocopy sync``.
from zerocopy.sync.cli import EXIT_FAILED as EXIT_FAILED
from zerocopy.sync.cli import EXIT_USAGE as EXIT_USAGE
from zerocopy.sync.cli import workspace_option as workspace_option


def usage(message: str) -> click.UsageError:
    """A usage error (exit 2) to ``raise``."""
    return click.UsageError(message)


def _scrub(value: Any) -> Any:
    """``value`` with every registered secret replaced (strings at any depth)."""
    from zerocopy.logging import redact_text

    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def fail(exc: ZerocopyError) -> NoReturn:
    """Print ``{"error": ...}`` on stderr and exit 1."""
    print_error(exc)
    sys.exit(EXIT_FAILED)


def print_error(exc: ZerocopyError) -> None:
    """Print ``{"error": ...}`` on stderr, secrets scrubbed."""
    # The API's error body exactly: all five keys, ``null`` line/column, ``{}`` details.
    body = {
        "code": exc.code,
        "message": exc.message,
        "line": exc.line,
        "column": exc.column,
        "details": exc.details or {},
    }
    click.echo(json.dumps({"error": _scrub(body)}, default=str), err=True)


def run(fn: Callable[[Any], Awaitable[Any]], workspace_id: str | None = None) -> Any:
    """Open the runtime (state database, secret box, engine), check the workspace, run ``fn``.

    No runner is started: commands that refresh choose how to execute (``segment refresh``).
    """
    from zerocopy.logging import configure_logging
    from zerocopy.services import workspaces
    from zerocopy.services.context import open_runtime
    from zerocopy.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)  # stderr: stdout stays JSON

    async def main() -> Any:
        async with open_runtime(settings, start_runner=False) as runtime:
            if workspace_id is not None:
                async with runtime.db.session() as s:
                    await workspaces.get_workspace(s, workspace_id)
            return await fn(runtime)

    try:
        return anyio.run(main)
    except ZerocopyError as exc:
        fail(exc)


def to_json(data: Any) -> Any:
    """API DTOs (msgspec structs, lists of them) as plain JSON data, as the API encodes them."""
    import msgspec

    return msgspec.to_builtins(data)


def echo(data: Any) -> None:
    """Print ``data`` (DTOs or plain data) as indented JSON on stdout."""
    click.echo(json.dumps(to_json(data), indent=2, default=str))


def hint(text: str) -> None:
    """A line for the human on stderr (stdout stays one JSON document)."""
    click.echo(text, err=True)


# ----------------------------------------------------------------------------- input
def split_pair(raw: str, option: str) -> tuple[str, str]:
    """``key=value`` (the value may contain ``=``); a usage error otherwise."""
    key, sep, value = raw.partition("=")
    if not sep or not key.strip():
        raise usage(f"{option} takes KEY=VALUE, got {raw!r}")
    return key.strip(), value


def setting_value(text: str) -> Any:
    """A setting's value: JSON when it parses as JSON (numbers, true/false, objects), else text.

    Quote to force a string: ``--setting 'database="2024"'``.
    """
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_settings(pairs: Iterable[str], settings_json: str | None) -> dict[str, Any]:
    """``--settings-json`` (an object) with ``--setting KEY=VALUE`` pairs over it."""
    out: dict[str, Any] = {}
    if settings_json is not None:
        try:
            doc = json.loads(settings_json)
        except ValueError as exc:
            raise usage(f"--settings-json is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise usage("--settings-json must be a JSON object")
        out.update(doc)
    for raw in pairs:
        key, value = split_pair(raw, "--setting")
        out[key] = setting_value(value)
    return out


def _read_secret_file(key: str, path: str) -> str:
    if path == "-":
        if sys.stdin.isatty():
            value: str = click.prompt(f"{key}", hide_input=True, err=True)
            return value
        return sys.stdin.read().rstrip("\r\n")
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise usage(f"cannot read the {key!r} secret from {path!r}: {reason}") from None


def parse_secrets(
    pairs: Iterable[str], files: Iterable[str], env_pairs: Iterable[str]
) -> dict[str, str]:
    """Secrets from ``--secret K=V``, ``--secret-file K=PATH`` (``-``: stdin, hidden prompt on
    a terminal) and ``--secret-env K=VAR``; each value is redacted from logs and errors."""
    from zerocopy.logging import register_secret

    out: dict[str, str] = {}
    for raw in pairs:
        key, value = split_pair(raw, "--secret")
        out[key] = value
    stdin_used = False
    for raw in files:
        key, path = split_pair(raw, "--secret-file")
        if path == "-":
            if stdin_used:
                raise usage("only one --secret-file may read stdin ('-')")
            stdin_used = True
        out[key] = _read_secret_file(key, path)
    for raw in env_pairs:
        key, var = split_pair(raw, "--secret-env")
        if var not in os.environ:
            raise usage(f"--secret-env {key}={var}: environment variable {var} is not set")
        out[key] = os.environ[var]
    for value in out.values():
        register_secret(value)
    return out


def secret_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--secret``, ``--secret-file`` and ``--secret-env`` (all repeatable)."""
    fn = click.option(
        "--secret-env", "secret_envs", multiple=True, metavar="KEY=VAR",
        help="Secret from an environment variable (repeatable).",
    )(fn)  # fmt: skip
    fn = click.option(
        "--secret-file", "secret_files", multiple=True, metavar="KEY=PATH",
        help="Secret from a file; '-' reads stdin (hidden prompt on a terminal). Repeatable.",
    )(fn)  # fmt: skip
    fn = click.option(
        "--secret", "secret_pairs", multiple=True, metavar="KEY=VALUE",
        help="Secret value (lands in shell history: prefer --secret-file/--secret-env).",
    )(fn)  # fmt: skip
    return fn


def read_text_arg(value: str | None, what: str) -> str:
    """SQL given as an argument, or ``-`` (or nothing, off a terminal) for stdin."""
    if value is None or value == "-":
        if value is None and sys.stdin.isatty():
            raise usage(f"give the {what} as an argument or '-' to read it from stdin")
        value = sys.stdin.read()
    if not value.strip():
        raise usage(f"no {what} given")
    return value


def read_file_arg(path: str, what: str) -> str:
    """The text of ``path`` (``-``: stdin); a usage error when it cannot be read."""
    if path == "-":
        return read_text_arg("-", what)
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise usage(f"cannot read {what} file {path!r}: {reason}") from None


def parse_json_option(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise usage(f"{option} is not valid JSON: {exc}") from None
