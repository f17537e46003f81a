"""``zerocopy profile ...`` reads the built-in profile store a sync filled, as the API does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import sqlalchemy as sa
from litestar.testing import TestClient

from api.app import create_app
from tests.acceptance.test_cli_resources import error, out, zc
from tests.acceptance.test_sync_cli import setup_workspace
from zerocopy.services import profiles, syncs, workspaces
from zerocopy.services.context import open_runtime
from zerocopy.settings import load_settings
from zerocopy.state.sync_models import StoreProfile


def test_profiles_from_a_sync(tmp_path: Path) -> None:
    env, source_id = setup_workspace(tmp_path)  # fixture warehouse, active DuckDB source
    ws_id = env["ZEROCOPY_WORKSPACE"]

    async def fill() -> tuple[dict[str, Any], str]:
        """Run a user_attributes sync in-process; one stored profile and an API key."""
        async with open_runtime(load_settings(env), start_runner=False) as rt:
            async with rt.db.session() as s:
                sync = await syncs.create_sync(
                    s, ws_id, name="attrs", data_type="user_attributes",
                    source_id=source_id, table="users_attributes_sync",
                )  # fmt: skip
                await syncs.test_sync(s, rt, ws_id, sync.id)
                await syncs.activate_sync(s, ws_id, sync.id)
                run = await syncs.start_run(s, rt, ws_id, sync.id, trigger="cli")
            assert (await syncs.execute_run(rt, run.id)).rows_delivered > 0
            async with rt.db.session() as s:
                first = await s.scalar(
                    sa.select(StoreProfile)
                    .where(StoreProfile.external_id.is_not(None))
                    .order_by(StoreProfile.external_id)
                    .limit(1)
                )
                assert first is not None
                stored = await profiles.get_profile(s, ws_id, first.id)
                key = await workspaces.create_api_key(s, ws_id, "test")
            return stored, key

    stored, key = anyio.run(fill)
    found = out(zc(env, "profile", "find", "--external-id", stored["external_id"]))
    assert (found["id"], found["attributes"]) == (stored["id"], stored["attributes"])
    assert found["attributes"]  # a user_attributes sync stored some
    assert out(zc(env, "profile", "events", found["id"])) == []  # no events were synced
    missing = zc(env, "profile", "find", "--email", "nobody@example.com", code=1)
    assert error(missing)["code"] == "not_found"

    with TestClient(create_app(load_settings(env))) as api:
        api.headers["Authorization"] = f"Bearer {key}"
        assert api.get("/v1/profiles", params={"external_id": found["external_id"]}).json() == found
