"""``zerocopy sync reset-watermark`` as a subprocess (setup shared with the manage commands)."""

from __future__ import annotations

from tests.acceptance.test_sync_cli_manage import Env, cli, env, out  # noqa: F401


def test_reset_watermark_to_a_timestamp_then_to_null(env: Env) -> None:  # noqa: F811
    before = out(cli(env, "show", env.ran_sync_id))["watermark"]
    assert before is not None

    record = out(cli(env, "reset-watermark", env.ran_sync_id, "--to", "2000-01-01T02:00:00+02:00"))
    assert (record["trigger"], record["status"]) == ("watermark_reset", "success")
    assert record["watermark_before"] == before
    assert record["watermark_after"] == "2000-01-01T00:00:00Z"
    assert out(cli(env, "show", env.ran_sync_id))["watermark"] == "2000-01-01T00:00:00Z"
    assert out(cli(env, "runs", env.ran_sync_id))[0]["id"] == record["id"]

    record = out(cli(env, "reset-watermark", env.ran_sync_id))
    assert (record["watermark_before"], record["watermark_after"]) == (
        "2000-01-01T00:00:00Z",
        None,
    )
    run = out(cli(env, "run", env.ran_sync_id))
    assert run["status"] in ("success", "partial_success") and run["rows_read"] > 0, run
    assert run["watermark_after"] == before

    # The ISO 8601 spellings syncs read everywhere: an ordinal date with 24:00 = 2000-01-02.
    record = out(cli(env, "reset-watermark", env.ran_sync_id, "--to", "2000-001T24:00Z"))
    assert record["watermark_after"] == "2000-01-02T00:00:00Z"
    assert out(cli(env, "reset-watermark", env.ran_sync_id))["watermark_after"] is None
    out(cli(env, "run", env.ran_sync_id))

    usage = cli(env, "reset-watermark", env.ran_sync_id, "--to", "yesterday", code=2)
    assert "--to 'yesterday' is not an ISO 8601 timestamp" in usage.stderr
    assert out(cli(env, "show", env.ran_sync_id))["watermark"] == before
