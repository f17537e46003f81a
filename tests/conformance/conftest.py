"""The conformance suite runs every test against every adapter kind in :data:`KINDS`.

To plug in a kind: write ``targets/<kind>.py`` (a session fixture ``<kind>_target`` and a
``CAN_SHOW`` constant), add the kind to ``KINDS`` and one import line below. See README.md.
"""

from __future__ import annotations

import importlib

import pytest

from tests.conformance.target import CAPABILITIES, ERROR_CODES, ConformanceTarget
from tests.conformance.targets.bigquery import bigquery_target  # noqa: F401
from tests.conformance.targets.databricks import databricks_target  # noqa: F401
from tests.conformance.targets.duckdb import duckdb_target  # noqa: F401
from tests.conformance.targets.fabric import fabric_target  # noqa: F401
from tests.conformance.targets.postgres import postgres_target  # noqa: F401
from tests.conformance.targets.redshift import redshift_target  # noqa: F401
from tests.conformance.targets.snowflake import snowflake_target  # noqa: F401

KINDS = ["duckdb", "bigquery", "databricks", "postgres", "redshift", "snowflake", "fabric"]


def _can_show(kind: str) -> frozenset[str]:
    module = importlib.import_module(f"tests.conformance.targets.{kind}")
    return frozenset(module.CAN_SHOW)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "capability(name): the test shows this behaviour; on peers that cannot, its id says "
        "peer_cannot_show_<name> and it checks only our side",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``target`` over KINDS; ids name what a peer cannot show."""
    if "target" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("capability")
    capabilities: list[str | None] = [marker.args[0] if marker else None]
    if "error_code" in metafunc.fixturenames:
        capabilities = list(ERROR_CODES)  # the code is the capability
    for capability in capabilities:
        if capability is not None and capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}")
    params = []
    for kind in KINDS:
        for capability in capabilities:
            shows = capability is None or capability in _can_show(kind)
            ident = kind if shows else f"{kind}-peer_cannot_show"
            values: tuple[str, ...] = (kind,)
            if "error_code" in metafunc.fixturenames:
                values = (kind, str(capability))
                ident += f"-{capability}" if shows else f"_{capability}"
            elif not shows:
                ident += f"_{capability}"
            # One xdist group per kind: a peer starts once per worker that runs its tests.
            params.append(pytest.param(*values, id=ident, marks=pytest.mark.xdist_group(kind)))
    names = ["target", "error_code"] if "error_code" in metafunc.fixturenames else ["target"]
    metafunc.parametrize(names, params, indirect=["target"])


@pytest.fixture
def target(request: pytest.FixtureRequest) -> ConformanceTarget:
    kind = request.param
    found: ConformanceTarget = request.getfixturevalue(f"{kind}_target")
    assert found.kind == kind
    assert found.can_show == _can_show(kind), f"{kind}: CAN_SHOW differs from target.can_show"
    return found
