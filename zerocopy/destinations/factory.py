"""Which destination a sync delivers to: the built-in store (default) or the HTTP endpoint.

The HTTP endpoint is a deployment setting (URL + bearer key), read from the settings object
(``http_destination_url`` / ``http_destination_key``) or, failing that, from the environment
(``ZEROCOPY_HTTP_DESTINATION_URL`` / ``ZEROCOPY_HTTP_DESTINATION_KEY``); the key never goes
into the state database.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from zerocopy import errors
from zerocopy.destinations.builtin import BuiltinStore
from zerocopy.destinations.protocol import Destination
from zerocopy.errors import ZerocopyError
from zerocopy.state.db import Database
from zerocopy.state.sync_models import Sync


def destination_factory(db: Database, settings: Any = None) -> Callable[..., Destination]:
    """``factory(sync, *, deadline=None) -> Destination`` for the sync engine."""

    def build(sync: Sync, *, deadline: float | None = None) -> Destination:
        if sync.destination == "builtin":
            return BuiltinStore(db)
        if sync.destination == "http":
            from zerocopy.destinations.http import HttpDestination, HttpDestinationConfig

            url = getattr(settings, "http_destination_url", None) or os.environ.get(
                "ZEROCOPY_HTTP_DESTINATION_URL"
            )
            key = getattr(settings, "http_destination_key", None) or os.environ.get(
                "ZEROCOPY_HTTP_DESTINATION_KEY"
            )
            if not url or not key:
                raise ZerocopyError(
                    errors.VALIDATION_ERROR,
                    "the HTTP destination is not configured: set ZEROCOPY_HTTP_DESTINATION_URL "
                    "and ZEROCOPY_HTTP_DESTINATION_KEY",
                )
            options = (sync.settings or {}).get("http") or {}
            config = HttpDestinationConfig(url=url, api_key=key, **options)
            return HttpDestination(config, deadline=deadline)
        raise ZerocopyError(errors.VALIDATION_ERROR, f"unknown destination {sync.destination!r}")

    return build
