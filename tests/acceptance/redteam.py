"""What the API red-team tests share: SQLite state only (the request and lifecycle rules do not
depend on the state backend; the flow tests run on both) and a DuckDB credential on the
fixture warehouse.

A test module takes the fixture with ``from tests.acceptance.redteam import state_url``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.acceptance.conftest import Api

UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"
ERROR_KEYS = {"code", "message", "line", "column", "details"}


def assert_refused(resp: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    """The response is the API's error shape with this status and code (and, when given, the
    ``details.field`` it names); returns the error."""
    assert resp.status_code == status, resp.text
    err: dict[str, Any] = resp.json()["error"]
    assert set(err) == ERROR_KEYS and err["code"] == code, err
    if field is not None:
        assert err["details"]["field"] == field, err
    return err


@pytest.fixture(params=["sqlite"])
def state_url(request: pytest.FixtureRequest, migrated_sqlite_path: Any) -> str:
    """Overrides the acceptance conftest's state backends with SQLite alone (a copy of the
    session's migrated state file)."""
    return f"sqlite:///{migrated_sqlite_path}"


async def create_credential(api: Api, name: str = "Warehouse") -> str:
    """A DuckDB credential on the test's warehouse file; its id."""
    resp = await api.post(
        "/v1/credentials",
        {"name": name, "kind": "duckdb", "settings": {"path": str(api.warehouse)}},
    )
    assert resp.status_code == 201, resp.text
    cred_id: str = resp.json()["id"]
    return cred_id
