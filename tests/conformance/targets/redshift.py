"""Redshift target: redshift_connector against PostgreSQL behind the Redshift proxy.

The proxy (tests/peers/redshift_proxy) only drops the startup parameters PostgreSQL rejects and
rewrites ``server_version``; everything else is the driver's real wire protocol. Redshift-only
behaviour the peer cannot show (late-binding views, WLM, leader-node cursors) is listed in
the README's limits; ``pg_get_late_binding_view_cols()`` is emulated per scratch database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance.target import ConformanceTarget
from tests.peers.redshift_proxy.fixtures import CAN_SHOW_PGLIKE, pglike_conformance_target

CAN_SHOW = CAN_SHOW_PGLIKE


@pytest.fixture(scope="session")
def redshift_target(postgres_server: str) -> Iterator[ConformanceTarget]:
    with pglike_conformance_target("redshift", postgres_server) as target:
        yield target
