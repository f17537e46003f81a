"""The one error → HTTP status map covers every stable code, and errors keep their JSON shape."""

from __future__ import annotations

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from api.errors import EXCEPTION_HANDLERS, STATUS_BY_CODE, status_for
from zerocopy import errors
from zerocopy.errors import ZerocopyError

ALL_CODES = sorted(
    value
    for name, value in vars(errors).items()
    if name.isupper() and isinstance(value, str) and not name.startswith("_")
)


def test_every_error_code_has_an_http_status() -> None:
    missing = [code for code in ALL_CODES if code not in STATUS_BY_CODE]
    assert missing == [], f"add these codes to api/errors.py STATUS_BY_CODE: {missing}"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (errors.UNAUTHORIZED, 401),
        (errors.NOT_FOUND, 404),
        (errors.REFRESH_IN_PROGRESS, 409),
        (errors.CREDENTIAL_IN_USE, 409),
        (errors.UNKNOWN_TABLE, 422),
        (errors.AUTH_FAILED, 422),
        (errors.UNREACHABLE, 502),
        (errors.TIMED_OUT, 504),
        ("some_future_code", 500),
    ],
)
def test_status_for(code: str, status: int) -> None:
    assert status_for(code) == status


def test_handlers_render_every_error_in_one_shape() -> None:
    @get("/zc")
    async def zc() -> None:
        raise ZerocopyError(
            errors.UNKNOWN_COLUMN, "no column x", line=2, column=5, details={"column": "x"}
        )

    @get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret-ish internals")

    app = Litestar([zc, boom], exception_handlers=EXCEPTION_HANDLERS, logging_config=None)
    with TestClient(app) as client:
        resp = client.get("/zc")
        assert resp.status_code == 422
        assert resp.json() == {
            "error": {
                "code": "unknown_column",
                "message": "no column x",
                "line": 2,
                "column": 5,
                "details": {"column": "x"},
            }
        }
        resp = client.get("/boom")
        assert resp.status_code == 500
        assert resp.json()["error"]["code"] == "internal_error"
        assert "internals" not in resp.text
