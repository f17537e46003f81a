"""PostgreSQL target: psycopg 3 against the test PostgreSQL server, on a scratch database.

Built by :func:`tests.peers.redshift_proxy.fixtures.pglike_conformance_target`, shared with the
Redshift target; ``auth_failed`` comes from a private cluster that checks md5 passwords.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance.target import ConformanceTarget
from tests.peers.redshift_proxy.fixtures import CAN_SHOW_PGLIKE, pglike_conformance_target

CAN_SHOW = CAN_SHOW_PGLIKE


@pytest.fixture(scope="session")
def postgres_target(postgres_server: str) -> Iterator[ConformanceTarget]:
    with pglike_conformance_target("postgres", postgres_server) as target:
        yield target
