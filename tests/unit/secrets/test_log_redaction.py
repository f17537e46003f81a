"""Logs never carry secrets: canaries under secret keys, registered values, exception text."""

from __future__ import annotations

import io
import json

from dialects.protocol import Scope
from zerocopy.connections import connection_config
from zerocopy.logging import bound_context, configure_logging, get_logger, redact
from zerocopy.secrets import SecretBox
from zerocopy.state.models import Credential, Source

CANARY = "CANARY-s3cr3t-9f8e7d"
PEM_LINE = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7canary"


def capture() -> io.StringIO:
    out = io.StringIO()
    configure_logging("debug", "json", stream=out)
    return out


def test_secret_looking_keys_are_redacted_at_any_depth() -> None:
    out = capture()
    log = get_logger("t")
    log.info(
        "connecting",
        password="pw-1",
        settings={"user": "bob", "private_key": "pk", "nested": [{"api_key": "ak"}]},
        Authorization="Bearer xyz",
        client_secret="cs",
        token="tk",
    )
    line = json.loads(out.getvalue())
    assert line["password"] == "***" and line["Authorization"] == "***"
    assert line["settings"]["user"] == "bob"
    assert line["settings"]["private_key"] == "***"
    assert line["settings"]["nested"][0]["api_key"] == "***"
    for leaked in ["pw-1", '"pk"', '"ak"', "xyz", '"cs"', '"tk"']:
        assert leaked not in out.getvalue()


def test_registered_credential_secrets_never_reach_the_logs() -> None:
    box = SecretBox([SecretBox.generate_key()])
    pem = f"-----BEGIN PRIVATE KEY-----\n{PEM_LINE}\n-----END PRIVATE KEY-----\n"
    credential = Credential(
        id="c1",
        name="wh",
        kind="duckdb",
        settings={"path": "/tmp/x.duckdb"},
        secret_ciphertext=box.encrypt({"password": CANARY, "private_key": pem}),
    )
    source = Source(id="s1", name="wh", kind="duckdb", scope="main", max_runtime_s=60)
    config = connection_config(source, credential, box)  # decrypts and registers
    assert config.secrets["password"] == CANARY and config.scope == Scope("main")

    out = capture()
    log = get_logger("t")
    with bound_context(run_id="r1", segment_id="g1", source_id="s1", workspace_id="w1"):
        log.info(f"driver said: login failed for secret {CANARY}")
        log.warning("retry", detail=f"dsn=...;pwd={CANARY};", line=PEM_LINE)
        try:
            raise RuntimeError(f"auth error with {CANARY} and {PEM_LINE}")
        except RuntimeError:
            log.exception("failed")
    text = out.getvalue()
    assert CANARY not in text and PEM_LINE not in text
    lines = [json.loads(x) for x in text.splitlines()]
    assert all(x["run_id"] == "r1" and x["workspace_id"] == "w1" for x in lines)
    assert "***" in lines[0]["event"]
    assert "RuntimeError" in lines[2]["exception"]


def test_redact_leaves_ordinary_values() -> None:
    assert redact({"user": "bob", "count": 3, "passes": None}) == {
        "user": "bob",
        "count": 3,
        "passes": None,
    }
