"""Request-scoped dependencies: the runtime, a state session, the authenticated caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from sqlalchemy.ext.asyncio import AsyncSession

from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.services import workspaces
from zerocopy.services.context import Runtime
from zerocopy.services.workspaces import Caller

BEARER_PREFIX = "bearer "

RuntimeDep = NamedDependency[Runtime]
SessionDep = NamedDependency[AsyncSession]
CallerDep = NamedDependency[Caller]
"""Handler parameter types: explicit named dependencies (Litestar 3 drops inferred ones)."""


def provide_runtime(state: State) -> Runtime:
    """The process-wide runtime the lifespan opened."""
    runtime: Runtime = state.runtime
    return runtime


async def provide_session(state: State) -> AsyncIterator[AsyncSession]:
    """One state-database session per request; services commit what they change."""
    runtime: Runtime = state.runtime
    async with runtime.db.session() as session:
        yield session


_CALLER_KEY = "zerocopy_caller"


async def authenticate_v1(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard on every ``/v1`` route: the API key is checked before the request body and query
    are parsed, so a caller without a key learns nothing about them (401 before 400)."""
    if connection.scope["path"].startswith("/v1/"):
        caller = await _authenticate(
            connection.headers.get("authorization", ""), connection.app.state
        )
        connection.state[_CALLER_KEY] = caller


async def provide_caller(request: Request[Any, Any, Any], state: State) -> Caller:
    """The workspace of the ``Authorization: Bearer zc_...`` API key, else ``unauthorized``."""
    cached = request.state.get(_CALLER_KEY)
    if isinstance(cached, Caller):
        return cached
    return await _authenticate(request.headers.get("authorization", ""), state)


async def _authenticate(header: str, state: State) -> Caller:
    if not header.lower().startswith(BEARER_PREFIX) or not header[len(BEARER_PREFIX) :].strip():
        raise ZerocopyError(
            errors.UNAUTHORIZED,
            "missing API key: send 'Authorization: Bearer <key>' "
            "(create one with 'zerocopy workspace create NAME')",
        )
    runtime: Runtime = state.runtime
    # Its own short session: a refused key must not leave the request's session half-used.
    async with runtime.db.session() as session:
        return await workspaces.authenticate(session, header[len(BEARER_PREFIX) :].strip())
