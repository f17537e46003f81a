"""Process settings, read once from ``ZEROCOPY_*`` environment variables.

================================== ======================================= ==========================
Variable                           Meaning                                 Default
================================== ======================================= ==========================
``ZEROCOPY_DATA_DIR``              where the embedded state lives          ``./zerocopy-data``
``ZEROCOPY_DATABASE_URL``          SQLAlchemy URL of the state database    SQLite file in the data dir
``ZEROCOPY_SECRET_KEY``            Fernet key(s), comma separated          key file in the data dir
``ZEROCOPY_LOG_LEVEL``             ``debug`` / ``info`` / ``warning`` ...  ``info``
``ZEROCOPY_LOG_FORMAT``            ``json`` or ``console``                 ``json``
``ZEROCOPY_HOST``                  address ``zerocopy serve`` binds        ``127.0.0.1``
``ZEROCOPY_PORT``                  port ``zerocopy serve`` binds           ``8000``
``ZEROCOPY_MAX_CONCURRENT_REFRESHES`` refreshes one process runs at once    ``4``
================================== ======================================= ==========================
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from zerocopy import errors
from zerocopy.errors import ZerocopyError

SECRET_KEY_FILE = "secret.key"
"""Name of the generated Fernet key file inside the data directory."""

LOG_FORMATS = ("json", "console")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a zerocopy process is configured with (no secrets in ``repr``)."""

    data_dir: Path
    database_url: str
    secret_key_env: str | None
    log_level: str = "info"
    log_format: str = "json"
    host: str = "127.0.0.1"
    port: int = 8000
    max_concurrent_refreshes: int = 4

    def __repr__(self) -> str:
        return (
            f"Settings(data_dir={str(self.data_dir)!r}, database_url={redact_url(self.database_url)!r}, "
            f"log_level={self.log_level!r}, log_format={self.log_format!r}, host={self.host!r}, "
            f"port={self.port}, max_concurrent_refreshes={self.max_concurrent_refreshes})"
        )

    @property
    def secret_keys(self) -> list[str]:
        """Fernet keys, newest first: the env value, else the key file (created 0600 on first use)."""
        if self.secret_key_env:
            keys = [k.strip() for k in self.secret_key_env.split(",") if k.strip()]
            if keys:
                return keys
        return [load_or_create_key_file(self.data_dir / SECRET_KEY_FILE)]

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests, CLI flags)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def normalise_database_url(url: str) -> str:
    """Pick the async driver: ``postgresql://`` → ``postgresql+psycopg://``, ``sqlite://`` → aiosqlite."""
    url = url.strip()
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    if url.startswith("postgresql+psycopg2://"):
        return "postgresql+psycopg://" + url[len("postgresql+psycopg2://") :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path.resolve()}"


def redact_url(url: str) -> str:
    """The URL with its password replaced, for logs and ``repr``."""
    head, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user, colon, _ = creds.partition(":")
    return f"{head}://{user}{':***' if colon else ''}@{host}"


def load_or_create_key_file(path: Path) -> str:
    """Read the Fernet key at ``path``; generate it (mode 0600) when missing."""
    from cryptography.fernet import Fernet

    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    # O_EXCL: two processes starting together must not write two different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ZerocopyError(
            errors.VALIDATION_ERROR, f"{name} must be an integer, got {raw!r}"
        ) from None
    if value < minimum:
        raise ZerocopyError(errors.VALIDATION_ERROR, f"{name} must be at least {minimum}")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``env`` (default ``os.environ``)."""
    env = os.environ if env is None else env
    data_dir = Path(env.get("ZEROCOPY_DATA_DIR") or "./zerocopy-data").expanduser().resolve()
    url = env.get("ZEROCOPY_DATABASE_URL") or sqlite_url(data_dir / "zerocopy.sqlite3")
    log_format = (env.get("ZEROCOPY_LOG_FORMAT") or "json").lower()
    if log_format not in LOG_FORMATS:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"ZEROCOPY_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}",
        )
    return Settings(
        data_dir=data_dir,
        database_url=normalise_database_url(url),
        secret_key_env=env.get("ZEROCOPY_SECRET_KEY") or None,
        log_level=(env.get("ZEROCOPY_LOG_LEVEL") or "info").lower(),
        log_format=log_format,
        host=env.get("ZEROCOPY_HOST") or "127.0.0.1",
        port=_int(env, "ZEROCOPY_PORT", 8000),
        max_concurrent_refreshes=_int(env, "ZEROCOPY_MAX_CONCURRENT_REFRESHES", 4),
    )


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` in tests)."""
    return load_settings()
