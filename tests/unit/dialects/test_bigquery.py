"""BigQuery adapter, pure parts: credential checks, labels and ids, DDL, types, error mapping.

Error mapping is fed the exceptions the driver itself builds from BigQuery's HTTP error
bodies (``google.api_core.exceptions.from_http_response``), not hand-made stand-ins.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import sqlglot
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.cloud import bigquery

from dialects.bigquery import (
    BigQueryAdapter,
    _is_loopback,
    _should_retry,
    _standard_type,
    job_labels,
    label_value,
    new_job_id,
)
from dialects.protocol import ConnectionConfig, QueryHandle, QueryTag, Scope
from zerocopy import errors
from zerocopy.errors import ZerocopyError


def _pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


PEM = _pem()


def key_json(**overrides: Any) -> str:
    info: dict[str, Any] = {
        "type": "service_account",
        "project_id": "acme-analytics",
        "private_key_id": "abc123",
        "private_key": PEM,
        "client_email": "zerocopy@acme-analytics.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    for k, v in overrides.items():
        if v is None:
            info.pop(k, None)
        else:
            info[k] = v
    return json.dumps(info)


def adapter(**settings: Any) -> BigQueryAdapter:
    return BigQueryAdapter(
        ConnectionConfig(
            settings={"project": "acme-analytics", "location": "EU", **settings},
            secrets={"service_account_json": key_json()},
            scope=Scope(schema="marketing", database="acme-analytics"),
            max_runtime_s=120,
        )
    )


# --------------------------------------------------------------------------- credentials
def test_a_complete_service_account_key_passes() -> None:
    BigQueryAdapter.check_credential(
        {"project": "acme-analytics"}, {"service_account_json": key_json()}
    )


@pytest.mark.parametrize("missing", ["project_id", "client_email", "private_key"])
def test_a_key_missing_a_field_names_it(missing: str) -> None:
    with pytest.raises(ZerocopyError) as info:
        BigQueryAdapter.check_credential({}, {"service_account_json": key_json(**{missing: None})})
    assert info.value.code == errors.INVALID_CREDENTIAL
    assert info.value.details["field"] == missing
    assert missing in info.value.message


def test_a_key_of_another_type_is_rejected() -> None:
    with pytest.raises(ZerocopyError) as info:
        BigQueryAdapter.check_credential(
            {}, {"service_account_json": key_json(type="authorized_user")}
        )
    assert info.value.details["field"] == "type"
    assert "service_account" in info.value.message


@pytest.mark.parametrize(
    "private_key",
    [
        "not a key",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ],
)
def test_a_private_key_that_is_not_a_readable_pem_is_rejected_without_echoing_it(
    private_key: str,
) -> None:
    with pytest.raises(ZerocopyError) as info:
        BigQueryAdapter.check_credential(
            {}, {"service_account_json": key_json(private_key=private_key)}
        )
    assert info.value.details["field"] == "private_key"
    assert private_key.strip() not in json.dumps(info.value.to_dict())


def test_no_secret_text_in_any_credential_error() -> None:
    body = PEM.splitlines()[3]
    for bad in (key_json(client_email=None), key_json(type="x"), "{not json"):
        with pytest.raises(ZerocopyError) as info:
            BigQueryAdapter.check_credential({}, {"service_account_json": bad})
        assert body not in json.dumps(info.value.to_dict())


def test_the_key_must_not_be_sent_as_a_setting() -> None:
    with pytest.raises(ZerocopyError) as info:
        BigQueryAdapter.check_credential({"service_account_json": key_json()}, {})
    assert info.value.details["field"] == "service_account_json"


def test_without_a_key_only_a_loopback_endpoint_is_accepted() -> None:
    BigQueryAdapter.check_credential(
        {"project": "p-emulator", "api_endpoint": "http://127.0.0.1:9050"}, {}
    )
    for settings in (
        {"project": "p"},
        {"project": "p", "api_endpoint": "https://bigquery.googleapis.com"},
        {"project": "p", "api_endpoint": "https://10.0.0.5:9050"},
    ):
        with pytest.raises(ZerocopyError) as info:
            BigQueryAdapter.check_credential(settings, {})
        assert info.value.details["field"] == "service_account_json"


def test_anonymous_credentials_are_refused_for_a_non_loopback_endpoint() -> None:
    config = ConnectionConfig(
        settings={"project": "p", "api_endpoint": "https://bq.example.com"},
        secrets={},
        scope=Scope(schema="d", database="p"),
    )
    with pytest.raises(ZerocopyError) as info:
        BigQueryAdapter(config).client()
    assert info.value.code == errors.INVALID_CREDENTIAL


def test_a_remote_endpoint_must_use_tls() -> None:
    secrets = {"service_account_json": key_json()}
    BigQueryAdapter.check_credential({"api_endpoint": "https://bq.internal.example"}, secrets)
    for bad in ("http://bq.internal.example", "ftp://127.0.0.1"):
        with pytest.raises(ZerocopyError) as info:
            BigQueryAdapter.check_credential({"api_endpoint": bad}, secrets)
        assert info.value.details["field"] == "api_endpoint"


@pytest.mark.parametrize("value", ["-5", "lots", 0])
def test_maximum_bytes_billed_must_be_a_positive_integer(value: object) -> None:
    with pytest.raises(ZerocopyError) as info:
        BigQueryAdapter.check_credential(
            {"maximum_bytes_billed": value}, {"service_account_json": key_json()}
        )
    assert info.value.details["field"] == "maximum_bytes_billed"


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:9050", True),
        ("http://localhost:1", True),
        ("http://[::1]:9050", True),
        ("127.0.0.1:9060", True),
        ("https://bigquery.googleapis.com", False),
        ("http://127.0.0.1.evil.example:80", False),
        ("http://192.168.1.2", False),
    ],
)
def test_loopback_detection(url: str, loopback: bool) -> None:
    assert _is_loopback(url) is loopback


def test_the_project_defaults_to_the_key_and_the_scope_names_the_dataset() -> None:
    a = BigQueryAdapter(
        ConnectionConfig(
            settings={}, secrets={"service_account_json": key_json()}, scope=Scope(schema="mk")
        )
    )
    assert (a.project, a.job_project, a.dataset) == ("acme-analytics", "acme-analytics", "mk")
    assert a.quote_table("zc_tmp_1") == "`acme-analytics`.`mk`.`zc_tmp_1`"


# --------------------------------------------------------------------------- jobs and DDL
def test_labels_are_label_safe_and_name_zerocopy_segment_and_run() -> None:
    tag = QueryTag(run_id="8F2C-77aa.B", segment_id="Seg Ünï 42", workspace_id="W1")
    labels = job_labels(tag)
    assert labels == {
        "zerocopy": "refresh",
        "run": "8f2c-77aa_b",
        "segment": "seg_n_42",
        "workspace": "w1",
    }
    assert label_value("x" * 100) == "x" * 63


def test_job_ids_are_ours_valid_and_unique() -> None:
    tag = QueryTag(run_id="run-1/2")
    first, second = new_job_id(tag), new_job_id(tag)
    assert first != second
    assert first.startswith("zerocopy_refresh_run-1_2_")
    assert all(c.isalnum() or c in "_-" for c in first) and len(first) <= 1024


def test_ctas_expires_after_max_runtime_plus_grace_and_parses_as_bigquery() -> None:
    a = adapter()
    sql = a.ctas_sql(
        "zc_tmp_abc",
        "SELECT DISTINCT id FROM `acme-analytics`.`marketing`.`users`",
        QueryTag(run_id="abc", segment_id="s1"),
    )
    assert sql == (
        "CREATE TABLE `acme-analytics`.`marketing`.`zc_tmp_abc`\n"
        "OPTIONS(expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 3720 SECOND), "
        "description = 'zerocopy temporary result (zerocopy:refresh run=abc segment=s1)', "
        "labels = [('zerocopy', 'refresh'), ('run', 'abc'), ('segment', 's1')])\n"
        "AS SELECT DISTINCT id FROM `acme-analytics`.`marketing`.`users`"
    )
    assert 120 + BigQueryAdapter.EXPIRY_GRACE_S == 3720
    parsed = sqlglot.parse_one(sql, dialect="bigquery")
    assert parsed.key == "create"


def test_job_config_carries_labels_timeout_and_cost_cap() -> None:
    config = adapter(maximum_bytes_billed="5000000").job_config(QueryTag(run_id="r"), 12.0001)
    api = config.to_api_repr()
    assert api["labels"] == {"zerocopy": "refresh", "run": "r"}
    assert api["jobTimeoutMs"] == "12001"
    assert api["query"]["maximumBytesBilled"] == "5000000"
    assert api["query"]["useLegacySql"] is False


def test_schema_types_are_spelled_in_googlesql() -> None:
    field = bigquery.SchemaField(
        "events",
        "RECORD",
        mode="REPEATED",
        fields=[bigquery.SchemaField("n", "INTEGER"), bigquery.SchemaField("ok", "BOOLEAN")],
    )
    assert _standard_type(field) == "ARRAY<STRUCT<n INT64, ok BOOL>>"
    assert _standard_type(bigquery.SchemaField("x", "FLOAT")) == "FLOAT64"


# --------------------------------------------------------------------------- errors
def http_error(status: int, message: str, reason: str, method: str = "POST") -> Exception:
    """The exception google-cloud-bigquery raises for this BigQuery error response."""
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": "global", "reason": reason}],
            }
        }
    ).encode()
    response.request = requests.Request(
        method, "https://bigquery.googleapis.com/bigquery/v2/projects/acme-analytics/jobs"
    ).prepare()
    return gexc.from_http_response(response)


@pytest.mark.parametrize(
    ("exc", "code", "needle"),
    [
        (
            http_error(401, "Request had invalid authentication credentials.", "authError"),
            errors.AUTH_FAILED,
            "new JSON key",
        ),
        (
            auth_exc.RefreshError(
                "invalid_grant: Invalid JWT Signature.", {"error": "invalid_grant"}
            ),
            errors.AUTH_FAILED,
            "Invalid JWT Signature",
        ),
        (
            http_error(
                403,
                "Access Denied: Project acme-analytics: User does not have bigquery.jobs.create "
                "permission in project acme-analytics.",
                "accessDenied",
            ),
            errors.PERMISSION_DENIED,
            "roles/bigquery.jobUser on the project acme-analytics",
        ),
        (
            http_error(
                403,
                "Access Denied: Dataset acme-analytics:marketing: Permission bigquery.tables.create "
                "denied on dataset acme-analytics:marketing (or it may not exist).",
                "accessDenied",
            ),
            errors.PERMISSION_DENIED,
            "roles/bigquery.dataEditor on the dataset acme-analytics.marketing",
        ),
        (
            http_error(
                403,
                "Quota exceeded: Your project exceeded quota for concurrent queries.",
                "quotaExceeded",
            ),
            errors.WAREHOUSE_BUSY,
            "quota",
        ),
        (
            http_error(404, "Not found: Dataset acme-analytics:marketing", "notFound", "GET"),
            errors.SCOPE_NOT_FOUND,
            "acme-analytics.marketing was not found in location EU",
        ),
        (
            http_error(400, "Job execution was cancelled: User requested cancellation", "stopped"),
            errors.CANCELLED,
            "cancelled",
        ),
        (
            http_error(400, "Job timed out after 120 s", "timeout"),
            errors.TIMED_OUT,
            "max runtime",
        ),
        (
            http_error(
                400,
                "Query exceeded limit for bytes billed: 1000. 10485760 or higher required.",
                "bytesBilledLimitExceeded",
            ),
            errors.WAREHOUSE_ERROR,
            "maximum_bytes_billed",
        ),
        (
            http_error(400, "Syntax error: Unexpected keyword FROM at [1:8]", "invalidQuery"),
            errors.WAREHOUSE_ERROR,
            "Syntax error: Unexpected keyword FROM at [1:8]",
        ),
        (
            requests.exceptions.ConnectionError("HTTPConnectionPool: Connection refused"),
            errors.UNREACHABLE,
            "cannot reach BigQuery",
        ),
        (
            auth_exc.TransportError("Failed to resolve 'oauth2.googleapis.com'"),
            errors.UNREACHABLE,
            "cannot reach BigQuery",
        ),
    ],
)
def test_driver_errors_map_to_stable_codes(exc: Exception, code: str, needle: str) -> None:
    mapped = adapter().map_error(exc, QueryHandle(query_id="zerocopy_refresh_r_1"))
    assert mapped.code == code, mapped.message
    assert needle in mapped.message
    assert mapped.details["query_id"] == "zerocopy_refresh_r_1"


def test_a_failed_job_names_its_id_and_the_warehouse_message_without_the_http_prefix() -> None:
    exc = http_error(400, "Unrecognized name: nope at [1:8]", "invalidQuery")
    mapped = adapter().map_error(exc, QueryHandle(query_id="zerocopy_refresh_r_9"))
    assert (
        mapped.message
        == "BigQuery job zerocopy_refresh_r_9 failed: Unrecognized name: nope at [1:8]"
    )


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (requests.exceptions.ConnectionError("[Errno 111] Connection refused"), False),
        (requests.exceptions.ConnectionError("Connection aborted."), True),
        (http_error(503, "backend unavailable", "backendError"), True),
        (http_error(400, "Syntax error", "invalidQuery"), False),
        (requests.exceptions.SSLError("bad cert"), False),
    ],
)
def test_retries_transient_errors_but_fails_fast_on_a_refused_connection(
    exc: Exception, retry: bool
) -> None:
    assert _should_retry(exc) is retry
