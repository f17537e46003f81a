"""Settings from the environment."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from zerocopy.errors import ZerocopyError
from zerocopy.settings import load_settings, normalise_database_url, redact_url


def test_defaults(tmp_path: Path) -> None:
    s = load_settings({"ZEROCOPY_DATA_DIR": str(tmp_path)})
    assert s.data_dir == tmp_path.resolve()
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'zerocopy.sqlite3'}"
    assert (s.log_level, s.log_format, s.host, s.port, s.max_concurrent_refreshes) == (
        "info",
        "json",
        "127.0.0.1",
        8000,
        4,
    )


def test_generated_key_file_is_private_and_stable(tmp_path: Path) -> None:
    s = load_settings({"ZEROCOPY_DATA_DIR": str(tmp_path / "d")})
    keys = s.secret_keys
    path = tmp_path / "d" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert s.secret_keys == keys and len(keys) == 1


def test_env_overrides_and_key_list(tmp_path: Path) -> None:
    s = load_settings(
        {
            "ZEROCOPY_DATA_DIR": str(tmp_path),
            "ZEROCOPY_DATABASE_URL": "postgresql://zc:pw@db:5432/zc",
            "ZEROCOPY_SECRET_KEY": "k1, k2",
            "ZEROCOPY_LOG_LEVEL": "DEBUG",
            "ZEROCOPY_LOG_FORMAT": "console",
            "ZEROCOPY_PORT": "9000",
            "ZEROCOPY_MAX_CONCURRENT_REFRESHES": "2",
        }
    )
    assert s.database_url == "postgresql+psycopg://zc:pw@db:5432/zc"
    assert s.secret_keys == ["k1", "k2"]
    assert (s.log_level, s.log_format, s.port, s.max_concurrent_refreshes) == (
        "debug",
        "console",
        9000,
        2,
    )
    assert "pw" not in repr(s) and "k1" not in repr(s)
    assert not (tmp_path / "secret.key").exists()


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"ZEROCOPY_PORT": "http"}, "ZEROCOPY_PORT"),
        ({"ZEROCOPY_MAX_CONCURRENT_REFRESHES": "0"}, "ZEROCOPY_MAX_CONCURRENT_REFRESHES"),
        ({"ZEROCOPY_LOG_FORMAT": "xml"}, "ZEROCOPY_LOG_FORMAT"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ZerocopyError, match=name):
        load_settings(env)


def test_url_helpers() -> None:
    assert normalise_database_url("postgres://a@h/d") == "postgresql+psycopg://a@h/d"
    assert normalise_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert normalise_database_url("postgresql+psycopg://a@h/d") == "postgresql+psycopg://a@h/d"
    assert redact_url("postgresql+psycopg://u:secret@h/d") == "postgresql+psycopg://u:***@h/d"
    assert redact_url("sqlite+aiosqlite:///x") == "sqlite+aiosqlite:///x"
