"""The Litestar application factory: ``api.app:create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

import zerocopy
from api.controllers.credential_keys import CredentialKeyController
from api.controllers.credentials import CredentialController
from api.controllers.health import health
from api.controllers.metrics import liveness, prometheus_metrics, readiness
from api.controllers.profiles import ProfileController
from api.controllers.runs import RunController
from api.controllers.schedules import (
    ScheduleController,
    SyncScheduleController,
    member_read_middleware,
)
from api.controllers.segments import SegmentController
from api.controllers.sources import SourceController
from api.controllers.syncs import SyncController, SyncRunController
from api.controllers.workspaces import WorkspaceController
from api.deps import authenticate_v1, provide_caller, provide_runtime, provide_session
from api.errors import EXCEPTION_HANDLERS
from api.schemas.common import StrictStructSchemaPlugin
from zerocopy.logging import configure_logging
from zerocopy.scheduling.service import open_scheduling
from zerocopy.services.context import open_runtime
from zerocopy.state.membership import use_refresh_pool_everywhere


def _load_settings() -> Any:
    from zerocopy.settings import get_settings

    return get_settings()


def create_app(settings: Any = None) -> Litestar:
    """Build the API. Its lifespan migrates the state database and starts the refresh runner."""
    settings = settings or _load_settings()
    configure_logging(settings.log_level, settings.log_format)
    use_refresh_pool_everywhere()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_runtime(settings, start_runner=False) as runtime, open_scheduling(runtime):
            app.state.runtime = runtime
            yield

    openapi = OpenAPIConfig(
        title="zerocopy",
        version=getattr(zerocopy, "__version__", "0.1.0"),
        description=(
            "Segments computed in your warehouse; membership served from here. "
            "Authenticate with 'Authorization: Bearer <API key>'."
        ),
        path="/schema",
        render_plugins=[SwaggerRenderPlugin()],
        components=Components(
            security_schemes={
                "BearerAuth": SecurityScheme(
                    type="http", scheme="bearer", description="A workspace API key (zc_...)."
                )
            }
        ),
        security=[{"BearerAuth": []}],
        use_handler_docstrings=True,
    )
    return Litestar(
        route_handlers=[
            health,
            WorkspaceController,
            CredentialController,
            CredentialKeyController,
            SourceController,
            SegmentController,
            RunController,
            SyncController,
            SyncRunController,
            ProfileController,
            ScheduleController,
            SyncScheduleController,
            prometheus_metrics,
            liveness,
            readiness,
        ],
        middleware=[member_read_middleware],
        guards=[authenticate_v1],
        dependencies={
            "runtime": Provide(provide_runtime, sync_to_thread=False),
            "session": Provide(provide_session),
            "caller": Provide(provide_caller),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi,
        plugins=[StrictStructSchemaPlugin()],
        lifespan=[lifespan],
        # Logging is zerocopy's structlog setup (zerocopy.logging), not Litestar's default.
        logging_config=None,
    )
