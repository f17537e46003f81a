"""Functions of widely installed, harmless PostgreSQL extensions may be called unqualified.

An unqualified call of a function PostgreSQL does not have built in is refused (a user-defined
function is found through the search path, in any schema); the functions of common contrib
extensions that only compute on their arguments are the exception. PostGIS and earthdistance
are what a marketing team uses for "users near a store".
"""

from __future__ import annotations

import pytest

from tests.unit.sql.catalog import CATALOG, SCOPE
from zerocopy.sql import check_segment_sql


def _codes(sql: str) -> list[str]:
    result = check_segment_sql(
        sql, dialect="postgres", catalog=CATALOG, scope=SCOPE, target="postgres"
    )
    return [e.code for e in result.errors]


@pytest.mark.parametrize(
    "condition",
    [
        "ST_DWithin(ST_SetSRID(ST_MakePoint(lifetime_value, lifetime_value), 4326)::geography, "
        "ST_GeogFromText('POINT(2.35 48.85)'), 10000)",
        "ST_Distance(ST_Point(1, 2), ST_Point(3, 4)) < 5",
        "earth_distance(ll_to_earth(48.85, 2.35), ll_to_earth(lifetime_value, 0)) < 10000",
        "levenshtein(email, 'a@b.c') < 3",
    ],
)
def test_extension_functions_pass_unqualified(condition: str) -> None:
    assert _codes(f"SELECT external_user_id FROM users WHERE {condition}") == []


@pytest.mark.parametrize(
    "call",
    [
        # PostGIS management functions write; a raster function may read out-db files; any
        # other unknown name is a user function of some schema.
        "AddGeometryColumn('users', 'geom', 4326, 'POINT', 2)",
        "ST_AddBand(NULL::raster, '/etc/passwd'::text, ARRAY[1])",
        "my_distance(1, 2)",
    ],
)
def test_other_unqualified_functions_are_refused(call: str) -> None:
    assert _codes(f"SELECT external_user_id FROM users WHERE {call} IS NOT NULL") == [
        "forbidden_function"
    ]
