"""BigQuery adapter on ``google-cloud-bigquery`` (REST) and, for ids, the Storage Read API.

Scope = ``project.dataset``. Every job zerocopy runs carries a job id chosen *before* it is
submitted (so a cancel can land before the first response), labels naming zerocopy, the run
and the segment, ``job_timeout_ms`` (BigQuery's own deadline) and the source's optional
``maximum_bytes_billed``. Temporary result tables are created with CTAS DDL and an
``expiration_timestamp``, so BigQuery deletes an orphan by itself even if zerocopy dies.

Credentials: a service-account JSON key (secret ``service_account_json``). For a local
emulator only, ``api_endpoint`` may point at a loopback URL and the key may be omitted; the
client then uses anonymous credentials (never for a non-loopback endpoint).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import math
import re
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn
from urllib.parse import urlsplit

import pyarrow as pa
import requests.exceptions
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import bigquery
from google.oauth2 import service_account

from dialects.base import TEMP_TABLE_PREFIX, BaseAdapter
from dialects.protocol import (
    ColumnInfo,
    ConnectionConfig,
    QueryHandle,
    QueryTag,
    TableInfo,
    Watermark,
)
from zerocopy import errors
from zerocopy.errors import ZerocopyError

log = logging.getLogger(__name__)

SCOPES = ("https://www.googleapis.com/auth/bigquery",)
SECRET_FIELD = "service_account_json"
_PEM_KEY = re.compile(
    r"-----BEGIN (?:RSA )?PRIVATE KEY-----\s+[A-Za-z0-9+/=\s]+-----END (?:RSA )?PRIVATE KEY-----"
)
_LABEL_BAD = re.compile(r"[^a-z0-9_-]+")
_LEGACY_TYPES = {
    "INTEGER": "INT64",
    "FLOAT": "FLOAT64",
    "BOOLEAN": "BOOL",
    "RECORD": "STRUCT",
}
_VIEW_TYPES = frozenset({"VIEW", "MATERIALIZED_VIEW"})
_RETRYABLE_REASONS = frozenset({"rateLimitExceeded", "backendError", "internalError", "badGateway"})
_FATAL_CONNECT = re.compile(
    r"connection refused|failed to resolve|name or service not known|nodename nor servname|"
    r"no route to host|getaddrinfo failed",
    re.IGNORECASE,
)
# Which role grants the permission BigQuery says is missing (first match wins).
_ROLE_FOR_PERMISSION: tuple[tuple[str, str], ...] = (
    ("bigquery.jobs.create", "roles/bigquery.jobUser on the project {project}"),
    ("bigquery.readsessions", "roles/bigquery.readSessionUser on the project {project}"),
    ("bigquery.tables.create", "roles/bigquery.dataEditor on the dataset {scope}"),
    ("bigquery.tables.delete", "roles/bigquery.dataEditor on the dataset {scope}"),
    ("bigquery.tables.updateData", "roles/bigquery.dataEditor on the dataset {scope}"),
    ("bigquery.tables.getData", "roles/bigquery.dataViewer on the dataset {scope}"),
    ("bigquery.tables", "roles/bigquery.dataViewer on the dataset {scope}"),
    ("bigquery.datasets", "roles/bigquery.dataViewer on the dataset {scope}"),
)


_NO_RETRY = Retry(predicate=lambda _exc: False)


def _is_loopback(url: str) -> bool:
    """True for ``http(s)://localhost|127.x|[::1][:port]`` (where only a test peer can live)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def label_value(text: str) -> str:
    """A BigQuery label value: lowercase letters, digits, ``_`` and ``-``, at most 63 chars."""
    return _LABEL_BAD.sub("_", text.lower())[:63]


def job_labels(tag: QueryTag) -> dict[str, str]:
    """Labels every zerocopy job carries: who it is for (shown in the console and billing export)."""
    labels = {"zerocopy": label_value(tag.purpose), "run": label_value(tag.run_id)}
    for key, value in (
        ("segment", tag.segment_id),
        ("sync", tag.sync_id),
        ("workspace", tag.workspace_id),
    ):
        if value:
            labels[key] = label_value(value)
    return labels


def new_job_id(tag: QueryTag) -> str:
    """``zerocopy_<purpose>_<run>_<random>``: chosen by us before submitting, unique per attempt."""
    run = re.sub(r"[^A-Za-z0-9_-]", "_", tag.run_id)[:64]
    return f"zerocopy_{tag.purpose}_{run}_{uuid.uuid4().hex[:12]}"


def _should_retry(exc: BaseException) -> bool:
    """BigQuery's own retry policy, except that a refused connection or unknown host fails fast."""
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    if isinstance(exc, (requests.exceptions.ConnectionError, auth_exc.TransportError)):
        return not _FATAL_CONNECT.search(str(exc))
    reason = _reason(exc)
    if reason is not None:
        return reason in _RETRYABLE_REASONS
    return isinstance(
        exc,
        (
            ConnectionError,
            gexc.TooManyRequests,
            gexc.InternalServerError,
            gexc.BadGateway,
            gexc.ServiceUnavailable,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.Timeout,
        ),
    )


def _reason(exc: BaseException) -> str | None:
    try:
        reason = exc.errors[0]["reason"]  # type: ignore[attr-defined]
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    return str(reason) if reason else None


def _standard_type(field_: bigquery.SchemaField) -> str:
    """GoogleSQL spelling of a schema field's type (``ARRAY<STRUCT<a INT64>>`` …)."""
    base = _LEGACY_TYPES.get(field_.field_type, field_.field_type)
    if base == "STRUCT":
        inner = ", ".join(f"{f.name} {_standard_type(f)}" for f in field_.fields)
        base = f"STRUCT<{inner}>"
    return f"ARRAY<{base}>" if field_.mode == "REPEATED" else base


@dataclass(slots=True)
class _JobState:
    """What :meth:`BigQueryAdapter._cancel` needs besides the job id (kept in ``handle.native``)."""

    location: str | None
    cancel_requested: threading.Event = field(default_factory=threading.Event)


class BigQueryAdapter(BaseAdapter):
    """Google BigQuery: jobs with our own ids, labels and ``job_timeout_ms``; ids via Storage Read."""

    KIND = "bigquery"
    SQLGLOT_DIALECT = "bigquery"
    SUPPORTS_SERVER_TIMEOUT = True  # job_timeout_ms
    SUPPORTS_SERVER_CANCEL = True  # jobs.cancel on the job id chosen before submitting
    SECRET_FIELDS = frozenset({SECRET_FIELD})

    EXPIRY_GRACE_S: ClassVar[float] = 3600.0
    """Temporary tables expire this long after the max runtime (time to read the ids back)."""

    API_TIMEOUT_S: ClassVar[float] = 60.0
    """Per-HTTP-request timeout of metadata calls (list, get, cancel, delete)."""

    API_RETRY_S: ClassVar[float] = 30.0
    """How long transient API errors (5xx, rate limits, dropped connections) are retried."""

    CANCEL_GRACE_S = 0.25
    """BigQuery cancels asynchronously: after ``jobs.cancel`` the job's poller does not come back
    promptly, so waiting long for it buys nothing (the engine drops the table in every outcome)."""

    CANCEL_TIMEOUT_S: ClassVar[float] = 1.0
    """First ``jobs.cancel`` attempt, inline; if it fails, it is retried in the background."""

    CATALOG_THREADS: ClassVar[int] = 8
    """Parallel ``tables.get`` calls while listing the catalog (one per table)."""

    def __init__(self, config: ConnectionConfig) -> None:
        super().__init__(config)
        settings = config.settings
        info = self._key_info(config.secrets)
        self.project: str = (
            config.scope.database or settings.get("project") or (info or {}).get("project_id", "")
        )
        self.job_project: str = settings.get("project") or self.project
        self.location: str | None = settings.get("location") or None
        self.dataset: str = config.scope.schema
        mbb = settings.get("maximum_bytes_billed")
        self.maximum_bytes_billed: int | None = int(mbb) if mbb not in (None, "") else None
        self.api_endpoint: str | None = settings.get("api_endpoint") or None
        self.storage_endpoint: str | None = settings.get("storage_api_endpoint") or None
        self.use_storage_api: bool = bool(settings.get("use_storage_api", True))
        self._key = info
        self._lock = threading.Lock()
        self._bq: bigquery.Client | None = None
        self._read: Any = None
        self._storage_failed = False
        self.retry = Retry(predicate=_should_retry, timeout=self.API_RETRY_S)

    # ------------------------------------------------------------------ credentials
    @staticmethod
    def _key_info(secrets: Any) -> dict[str, Any] | None:
        raw = secrets.get(SECRET_FIELD) if secrets else None
        if not raw:
            return None
        try:
            info = json.loads(raw)
        except ValueError:
            return None
        return info if isinstance(info, dict) else None

    @classmethod
    def check_credential(cls, settings: dict[str, Any], secrets: dict[str, str]) -> None:
        """Validate the key's shape (type, project, e-mail, PEM private key) and the settings."""
        super().check_credential(settings, secrets)
        endpoint = settings.get("api_endpoint")
        if endpoint and not str(endpoint).startswith(("http://", "https://")):
            cls._invalid("api_endpoint", "'api_endpoint' must be an http(s) URL")
        if endpoint and str(endpoint).startswith("http://") and not _is_loopback(str(endpoint)):
            # Access tokens must not cross a network in clear text.
            cls._invalid("api_endpoint", "'api_endpoint' must use https (http only on loopback)")
        mbb = settings.get("maximum_bytes_billed")
        if mbb not in (None, ""):
            try:
                ok = int(mbb) > 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                cls._invalid(
                    "maximum_bytes_billed", "'maximum_bytes_billed' must be a positive integer"
                )
        raw = secrets.get(SECRET_FIELD)
        if not raw:
            if endpoint and _is_loopback(str(endpoint)):
                if not settings.get("project"):
                    cls._invalid("project", "bigquery credential needs setting 'project'")
                return  # local emulator: anonymous credentials, see module docstring
            cls._invalid(
                SECRET_FIELD,
                f"bigquery credential needs secret {SECRET_FIELD!r}: the service account's JSON key "
                "(IAM → Service accounts → Keys → Add key → JSON)",
            )
        try:
            info = json.loads(raw)
        except ValueError:
            info = None
        if not isinstance(info, dict):
            cls._invalid(
                SECRET_FIELD, f"{SECRET_FIELD!r} is not a JSON object (upload the key file)"
            )
        if info.get("type") != "service_account":
            cls._invalid(
                "type",
                f'{SECRET_FIELD!r} must be a service-account key ("type": "service_account"), '
                f"got type {str(info.get('type'))[:40]!r}",
            )
        for name in ("project_id", "client_email", "private_key"):
            if not isinstance(info.get(name), str) or not info[name].strip():
                cls._invalid(name, f"the service-account key is missing {name!r}")
        if not _PEM_KEY.search(info["private_key"]):
            cls._invalid(
                "private_key",
                "the service-account key's 'private_key' is not a PEM private key "
                "(-----BEGIN PRIVATE KEY----- …); download a new JSON key",
            )
        try:
            service_account.Credentials.from_service_account_info(cls._with_token_uri(info))
        except Exception:
            # The driver's message may quote key material: say only what is wrong.
            cls._invalid(
                "private_key",
                "the service-account key's 'private_key' cannot be read as an RSA key; "
                "download a new JSON key",
            )

    @staticmethod
    def _with_token_uri(info: dict[str, Any]) -> dict[str, Any]:
        return {"token_uri": "https://oauth2.googleapis.com/token", **info}

    @staticmethod
    def _invalid(name: str, message: str) -> NoReturn:
        raise ZerocopyError(errors.INVALID_CREDENTIAL, message, details={"field": name})

    def _credentials(self) -> Credentials:
        if self._key is not None:
            creds: Credentials = service_account.Credentials.from_service_account_info(
                self._with_token_uri(self._key), scopes=SCOPES
            )
            return creds
        if self.api_endpoint and _is_loopback(self.api_endpoint):
            return AnonymousCredentials()  # type: ignore[no-untyped-call]
        raise ZerocopyError(
            errors.INVALID_CREDENTIAL,
            f"bigquery needs secret {SECRET_FIELD!r} (anonymous access is only for a loopback "
            "api_endpoint)",
            details={"field": SECRET_FIELD},
        )

    # ------------------------------------------------------------------ clients
    def client(self) -> bigquery.Client:
        """The REST client (created once, thread-safe for concurrent calls)."""
        with self._lock:
            if self._bq is None:
                options = (
                    ClientOptions(api_endpoint=self.api_endpoint) if self.api_endpoint else None
                )
                self._bq = bigquery.Client(
                    project=self.job_project,
                    credentials=self._credentials(),
                    location=self.location,
                    client_options=options,
                )
            return self._bq

    def _storage(self) -> Any:
        """The Storage Read client, or ``None`` when it is off or unreachable for this source."""
        if not self.use_storage_api or self._storage_failed:
            return None
        if self.api_endpoint and not self.storage_endpoint:
            return None  # a custom REST endpoint without a storage endpoint: page over REST
        with self._lock:
            if self._read is None:
                from google.cloud.bigquery_storage_v1 import BigQueryReadClient

                creds = self._credentials()
                if self.storage_endpoint and _is_loopback(self.storage_endpoint):
                    import grpc
                    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
                        BigQueryReadGrpcTransport,
                    )

                    # A loopback peer speaks plaintext gRPC; real endpoints always use TLS.
                    channel = grpc.insecure_channel(self.storage_endpoint)
                    self._read = BigQueryReadClient(
                        transport=BigQueryReadGrpcTransport(channel=channel)
                    )
                else:
                    options = (
                        ClientOptions(api_endpoint=self.storage_endpoint)
                        if self.storage_endpoint
                        else None
                    )
                    self._read = BigQueryReadClient(credentials=creds, client_options=options)
            return self._read

    def _close(self) -> None:
        with self._lock:
            if self._bq is not None:
                self._bq.close()
                self._bq = None
            if self._read is not None:
                with contextlib.suppress(Exception):
                    self._read._transport.close()
                self._read = None

    # ------------------------------------------------------------------ SQL rendering
    @property
    def scope_text(self) -> str:
        return f"{self.project}.{self.dataset}"

    def table_ref(self, table: str) -> bigquery.TableReference:
        return bigquery.DatasetReference(self.project, self.dataset).table(table)

    def quote_table(self, table: str) -> str:
        """```project`.`dataset`.`table``` (the project is always explicit)."""
        return ".".join(f"`{part}`" for part in (self.project, self.dataset, table))

    def expiry_seconds(self) -> int:
        return math.ceil(self.config.max_runtime_s + self.EXPIRY_GRACE_S)

    def ctas_sql(self, table: str, select_sql: str, tag: QueryTag) -> str:
        """CTAS whose table expires by itself (max runtime + grace) and names its run."""
        labels = ", ".join(f"('{k}', '{v}')" for k, v in job_labels(tag).items())
        description = f"zerocopy temporary result ({tag.as_text()})".replace("'", "")
        return (
            f"CREATE TABLE {self.quote_table(table)}\n"
            f"OPTIONS(expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), "
            f"INTERVAL {self.expiry_seconds()} SECOND), "
            f"description = '{description}', labels = [{labels}])\n"
            f"AS {select_sql}"
        )

    def job_config(self, tag: QueryTag, timeout_s: float, **extra: Any) -> bigquery.QueryJobConfig:
        """Labels, BigQuery's own deadline and the cost cap, on every job we run."""
        config = bigquery.QueryJobConfig(
            labels=job_labels(tag),
            job_timeout_ms=max(1, math.ceil(timeout_s * 1000)),
            use_legacy_sql=False,
            **extra,
        )
        if self.maximum_bytes_billed is not None:
            config.maximum_bytes_billed = self.maximum_bytes_billed
        return config

    # ------------------------------------------------------------------ catalog
    def _list_tables(self) -> list[TableInfo]:
        client = self.client()
        self._check_dataset(client)
        items = list(
            client.list_tables(
                bigquery.DatasetReference(self.project, self.dataset),
                retry=self.retry,
                timeout=self.API_TIMEOUT_S,
            )
        )

        def get(item: Any) -> bigquery.Table | None:
            try:
                return client.get_table(
                    item.reference, retry=self.retry, timeout=self.API_TIMEOUT_S
                )
            except gexc.NotFound:
                return None  # dropped between list and get (e.g. another run's temp table)

        with ThreadPoolExecutor(max_workers=max(1, min(self.CATALOG_THREADS, len(items)))) as pool:
            tables = [t for t in pool.map(get, items) if t is not None]
        return sorted((self._table_info(t) for t in tables), key=lambda t: t.name)

    def _check_dataset(self, client: bigquery.Client) -> None:
        """The dataset exists (listing a missing one is not an error everywhere) and its
        location matches the source's, which BigQuery would otherwise report as "not found"."""
        dataset = client.get_dataset(
            bigquery.DatasetReference(self.project, self.dataset),
            retry=self.retry,
            timeout=self.API_TIMEOUT_S,
        )
        found = (dataset.location or "").lower()
        if self.location and found and found != self.location.lower():
            raise ZerocopyError(
                errors.SCOPE_NOT_FOUND,
                f"BigQuery dataset {self.scope_text} is in location {dataset.location}, but the "
                f"source says {self.location}; set the source's location to {dataset.location}",
                details={"warehouse": self.KIND, "location": dataset.location},
            )
        if not self.location and dataset.location:
            self.location = dataset.location

    def _job_location(self, client: bigquery.Client) -> str | None:
        """The source's location, else the dataset's (looked up once): ``jobs.cancel`` needs it
        outside the US/EU multi-regions, and a cancel may be sent before BigQuery answers."""
        if not self.location:
            self._check_dataset(client)
        return self.location

    def _table_info(self, table: bigquery.Table) -> TableInfo:
        columns = tuple(
            ColumnInfo(
                name=f.name,
                data_type=_standard_type(f),
                description=f.description or None,
                nullable=f.mode != "REQUIRED",
            )
            for f in table.schema
        )
        return TableInfo(
            name=table.table_id,
            kind="view" if table.table_type in _VIEW_TYPES else "table",
            columns=columns,
            description=table.description or None,
            schema=self.dataset,
        )

    def _list_temp_tables(self, prefix: str) -> list[str]:
        items = self.client().list_tables(
            bigquery.DatasetReference(self.project, self.dataset),
            retry=self.retry,
            timeout=self.API_TIMEOUT_S,
        )
        return sorted(t.table_id for t in items if t.table_id.lower().startswith(prefix))

    # ------------------------------------------------------------------ jobs
    def _execute_ctas(
        self, sql: str, handle: QueryHandle, timeout_s: float, tag: QueryTag
    ) -> int | None:
        client = self.client()
        job_id = new_job_id(tag)
        state = _JobState(location=self._job_location(client))
        # Recorded before submitting: a cancel from now on targets this exact job id.
        handle.query_id = job_id
        handle.native = state
        job = client.query(
            sql,
            job_config=self.job_config(tag, timeout_s),
            job_id=job_id,
            location=self.location,
            retry=self.retry,
            timeout=self.API_TIMEOUT_S,
            job_retry=None,  # a job id is used once; retrying is the refresh's business
        )
        state.location = job.location or self.location
        if state.cancel_requested.is_set():
            # The cancel may have reached BigQuery before the job existed (404): send it again.
            self._cancel_job(job_id, state.location)
            raise ZerocopyError(
                errors.CANCELLED,
                f"BigQuery job {job_id} was cancelled before it started",
                details={"warehouse": self.KIND, "query_id": job_id},
            )
        job.result(retry=self.retry, timeout=timeout_s + self.API_TIMEOUT_S)
        return None

    def _cancel(self, handle: QueryHandle) -> None:
        state = handle.native if isinstance(handle.native, _JobState) else None
        if state is not None:
            state.cancel_requested.set()
        if handle.query_id:
            self._cancel_job(handle.query_id, state.location if state else self.location)

    def _cancel_job(self, job_id: str, location: str | None) -> None:
        """``jobs.cancel``: one quick attempt inline, then retries in the background if it failed.

        The caller (the deadline watchdog or a user cancel) must not hang on a slow API; the
        job's own ``job_timeout_ms`` still stops it if every attempt fails.
        """
        try:
            self._send_cancel(job_id, location, retry=_NO_RETRY, timeout=self.CANCEL_TIMEOUT_S)
        except Exception as exc:
            log.warning(
                "bigquery cancel of job %s failed (%s); retrying in background", job_id, exc
            )
            threading.Thread(
                target=self._cancel_in_background,
                args=(job_id, location),
                name=f"bq-cancel-{job_id}",
                daemon=True,
            ).start()

    def _cancel_in_background(self, job_id: str, location: str | None) -> None:
        try:
            self._send_cancel(job_id, location, retry=self.retry, timeout=self.API_TIMEOUT_S)
        except Exception as exc:
            log.warning("bigquery cancel of job %s gave up: %s", job_id, exc)

    def _send_cancel(
        self, job_id: str, location: str | None, *, retry: Retry, timeout: float
    ) -> None:
        try:
            self.client().cancel_job(job_id, location=location, retry=retry, timeout=timeout)
        except gexc.NotFound:
            # Not created yet: _execute_ctas re-sends the cancel right after jobs.insert returns.
            log.info("bigquery job %s not found yet; cancel re-sent after submit", job_id)

    def _dry_run(self, select_sql: str) -> int | None:
        config = bigquery.QueryJobConfig(dry_run=True, use_query_cache=False, use_legacy_sql=False)
        job = self.client().query(
            select_sql,
            job_config=config,
            location=self.location,
            retry=self.retry,
            timeout=self.API_TIMEOUT_S,
        )
        return int(job.total_bytes_processed) if job.total_bytes_processed is not None else None

    async def estimate_bytes(self, select_sql: str) -> int | None:
        """Bytes the query would scan (a free dry run): what validate shows as its cost."""
        return await self._call(self._dry_run, select_sql)

    def _drop_table(self, table: str) -> None:
        self.client().delete_table(
            self.table_ref(table), not_found_ok=True, retry=self.retry, timeout=self.API_TIMEOUT_S
        )

    # ------------------------------------------------------------------ reading
    def _read_column(
        self, table: str, column: str, batch_rows: int, ordered: bool = False
    ) -> Iterator[pa.Array]:
        # No ID_ORDER: Storage Read API streams carry no order; the engine sorts in memory.
        storage = self._storage()
        if storage is not None:
            try:
                session = self._read_session(storage, table, column)
            except (
                gexc.PermissionDenied,
                gexc.MethodNotImplemented,
                gexc.ServiceUnavailable,
            ) as exc:
                # No readSessionUser role, API disabled, or its host blocked by an egress
                # allowlist: page over REST instead (slower, same ids), for this adapter's life.
                log.warning("bigquery storage read unavailable (%s); paging over REST", exc)
                self._storage_failed = True
            else:
                return self._storage_batches(storage, session, batch_rows)
        return self._paged_column(table, column, batch_rows)

    def _read_session(self, storage: Any, table: str, column: str) -> Any:
        from google.cloud.bigquery_storage_v1 import types

        read_session = types.ReadSession(
            table=f"projects/{self.project}/datasets/{self.dataset}/tables/{table}",
            data_format=types.DataFormat.ARROW,
            read_options=types.ReadSession.TableReadOptions(selected_fields=[column]),
        )
        # One stream keeps memory at one response message and the order stable.
        return storage.create_read_session(
            parent=f"projects/{self.job_project}",
            read_session=read_session,
            max_stream_count=1,
            retry=None,  # an unavailable Storage API means "use REST", not "wait ten minutes"
            timeout=self.API_TIMEOUT_S,
        )

    def _storage_batches(self, storage: Any, session: Any, batch_rows: int) -> Iterator[pa.Array]:
        schema = pa.ipc.read_schema(pa.py_buffer(session.arrow_schema.serialized_schema))
        for stream in session.streams:
            reader = storage.read_rows(stream.name)
            try:
                # One response message at a time: memory stays at one server batch.
                for response in reader:
                    data = response.arrow_record_batch.serialized_record_batch
                    if not data:
                        continue
                    batch = pa.ipc.read_record_batch(pa.py_buffer(data), schema)
                    yield from _slices(batch.column(0), batch_rows)
            finally:
                with contextlib.suppress(Exception):
                    reader.cancel()

    def _paged_column(self, table: str, column: str, batch_rows: int) -> Iterator[pa.Array]:
        client = self.client()
        schema = client.get_table(
            self.table_ref(table), retry=self.retry, timeout=self.API_TIMEOUT_S
        ).schema
        fields = [f for f in schema if f.name.lower() == column.lower()]
        if not fields:
            raise ZerocopyError(
                errors.WAREHOUSE_ERROR,
                f"table {self.scope_text}.{table} has no column {column!r}",
                details={"warehouse": self.KIND, "table": table, "column": column},
            )
        rows = client.list_rows(
            self.table_ref(table),
            selected_fields=fields,
            page_size=batch_rows,
            retry=self.retry,
            timeout=self.API_TIMEOUT_S,
        )
        for batch in rows.to_arrow_iterable(bqstorage_client=None, max_queue_size=1):
            yield from _slices(batch.column(0), batch_rows)

    def _read_incremental(
        self, table: str, watermark: Watermark, batch_rows: int, columns: list[str] | None
    ) -> Iterator[pa.RecordBatch]:
        client = self.client()
        schema = client.get_table(
            self.table_ref(table), retry=self.retry, timeout=self.API_TIMEOUT_S
        ).schema
        by_name = {f.name.lower(): f for f in schema}
        cursor = by_name.get(watermark.column.lower())
        if cursor is None:
            raise ZerocopyError(
                errors.WAREHOUSE_ERROR,
                f"table {self.scope_text}.{table} has no watermark column {watermark.column!r}",
                details={"warehouse": self.KIND, "table": table, "column": watermark.column},
            )
        select = ", ".join(f"`{c}`" for c in columns) if columns else "*"
        sql = f"SELECT {select} FROM {self.quote_table(table)}"
        params: list[Any] = []
        if watermark.nulls_only:
            sql += f" WHERE `{cursor.name}` IS NULL"
        elif watermark.value is not None:
            # Inclusive: rows at the watermark come back; the sync drops those it already has.
            sql += f" WHERE `{cursor.name}` >= @watermark"
            params.append(
                bigquery.ScalarQueryParameter("watermark", _standard_type(cursor), watermark.value)
            )
        sql += f" ORDER BY `{cursor.name}`"
        tag = QueryTag(run_id=uuid.uuid4().hex, purpose="sync")
        job = client.query(
            sql,
            job_config=self.job_config(tag, self.config.max_runtime_s, query_parameters=params),
            job_id=new_job_id(tag),
            location=self.location,
            retry=self.retry,
            timeout=self.API_TIMEOUT_S,
            job_retry=None,
        )
        rows = job.result(
            page_size=batch_rows,
            retry=self.retry,
            timeout=self.config.max_runtime_s + self.API_TIMEOUT_S,
        )
        # Ordered query results page over REST: bounded by page_size, order preserved.
        for batch in rows.to_arrow_iterable(bqstorage_client=None, max_queue_size=1):
            for start in range(0, max(batch.num_rows, 1), batch_rows):
                part = batch.slice(start, batch_rows)
                if part.num_rows:
                    yield part

    # ------------------------------------------------------------------ errors
    def map_error(self, exc: BaseException, handle: QueryHandle | None = None) -> ZerocopyError:
        """By exception class first (google.api_core / google.auth), then by message."""
        if isinstance(exc, ZerocopyError):
            return exc
        if isinstance(exc, gexc.RetryError) and exc.cause is not None:
            return self.map_error(exc.cause, handle)
        msg = _clean(str(exc)) or type(exc).__name__
        details: dict[str, Any] = {"warehouse": self.KIND}
        job_id = (handle.query_id if handle else None) or getattr(exc, "job_id", None)
        if job_id:
            details["query_id"] = job_id
        reason = _reason(exc)
        if reason:
            details["reason"] = reason

        def err(code: str, text: str) -> ZerocopyError:
            return ZerocopyError(code, text, details=details)

        low = msg.lower()
        if isinstance(
            exc, (auth_exc.RefreshError, gexc.Unauthorized, auth_exc.DefaultCredentialsError)
        ):
            return err(
                errors.AUTH_FAILED,
                f"BigQuery rejected the service account's credentials ({msg}); check that the "
                "key is current and the service account enabled, or upload a new JSON key",
            )
        if isinstance(exc, gexc.Forbidden):
            if reason in {"quotaExceeded", "rateLimitExceeded"}:
                return err(errors.WAREHOUSE_BUSY, f"BigQuery quota or rate limit hit: {msg}")
            if reason == "billingNotEnabled" or "billing" in low:
                return err(
                    errors.PERMISSION_DENIED,
                    f"BigQuery: {msg}; enable billing on project {self.job_project}",
                )
            return err(errors.PERMISSION_DENIED, self._permission_message(msg))
        if isinstance(exc, gexc.NotFound):
            if re.search(r"not found: (dataset|project)", low) or (
                "dataset" in low and self.dataset.lower() in low
            ):
                where = f" in location {self.location}" if self.location else ""
                return err(
                    errors.SCOPE_NOT_FOUND,
                    f"BigQuery dataset {self.scope_text} was not found{where} ({msg}); create it "
                    "or fix the source's project, dataset and location",
                )
            return err(errors.WAREHOUSE_ERROR, f"BigQuery job {job_id or '-'} failed: {msg}")
        if isinstance(exc, (gexc.BadRequest, gexc.GoogleAPICallError)) or reason:
            if reason == "stopped" or "cancel" in low:
                return err(errors.CANCELLED, f"BigQuery job {job_id or '-'} was cancelled: {msg}")
            if reason == "timeout" or re.search(r"timed out|timeout|exceeded .*time limit", low):
                return self._timed_out("the segment query", handle or QueryHandle(query_id=job_id))
            if reason == "bytesBilledLimitExceeded" or "bytes billed" in low:
                return err(
                    errors.WAREHOUSE_ERROR,
                    f"BigQuery job {job_id or '-'} would bill more than the source's "
                    f"maximum_bytes_billed ({self.maximum_bytes_billed}): {msg}; narrow the query "
                    "or raise the limit",
                )
            if isinstance(exc, (gexc.ServiceUnavailable, gexc.GatewayTimeout)):
                return err(errors.UNREACHABLE, f"BigQuery is unavailable: {msg}")
            return err(errors.WAREHOUSE_ERROR, f"BigQuery job {job_id or '-'} failed: {msg}")
        if isinstance(exc, FutureTimeoutError):
            return self._timed_out("the segment query", handle or QueryHandle(query_id=job_id))
        if isinstance(
            exc,
            (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                auth_exc.TransportError,
            ),
        ):
            endpoint = self.api_endpoint or "https://bigquery.googleapis.com"
            return err(
                errors.UNREACHABLE,
                f"cannot reach BigQuery at {endpoint}: {msg}; check the network / proxy settings",
            )
        return super().map_error(exc, handle)

    def _permission_message(self, msg: str) -> str:
        for permission, role in _ROLE_FOR_PERMISSION:
            if permission in msg:
                grant = role.format(project=self.job_project, scope=self.scope_text)
                return f"BigQuery denied {permission}* ({msg}); grant the service account {grant}"
        return (
            f"BigQuery denied access ({msg}); grant the service account roles/bigquery.dataEditor "
            f"on the dataset {self.scope_text} and roles/bigquery.jobUser on the project "
            f"{self.job_project}"
        )


def _slices(column: pa.Array | pa.ChunkedArray, batch_rows: int) -> Iterator[pa.Array]:
    """Re-cut a server batch into arrays of at most ``batch_rows`` values."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    for start in range(0, len(column), batch_rows):
        yield column.slice(start, batch_rows)


def _clean(text: str) -> str:
    """The driver message without its trailing ``Location:/Job ID:`` block and HTTP prefix."""
    text = re.split(r"\n\s*\nLocation:|\nLocation:", text, maxsplit=1)[0]
    text = re.sub(r"^\d{3} (?:GET|POST|PUT|PATCH|DELETE) \S+: ", "", text)
    return re.sub(r"\s+", " ", text).strip()[:2000]


__all__ = ["TEMP_TABLE_PREFIX", "BigQueryAdapter", "job_labels", "label_value", "new_job_id"]
