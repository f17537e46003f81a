"""File-storage source: JSON-lines / CSV files in an S3 bucket (boto3), each file processed once.

Rules (README "File-storage syncs"):

* The sync's ``source_settings``: ``bucket``, optional ``prefix``, ``format`` (``jsonl``,
  ``csv`` or ``auto``: by extension ``.jsonl`` / ``.ndjson`` / ``.json`` → JSON lines,
  ``.csv`` → CSV), optional ``endpoint_url`` and ``region``. The credential (kind ``s3``)
  holds ``access_key_id`` / ``secret_access_key`` (and optionally ``session_token``) as secrets.
* Columns are the data type's columns without ``UPDATED_AT`` (an ``UPDATED_AT`` column is
  ignored); names are case-insensitive. A CSV file has a header row; values follow RFC 4180
  quoting (a quoted ``PAYLOAD`` may hold commas, quotes doubled, newlines); an empty CSV field
  is null; ``DELETED`` accepts true/false/1/0/yes/no. A JSON-lines ``PAYLOAD`` may be an object
  or a JSON string.
* Files are processed in (LastModified, key) order, each (key, ETag) once: a new upload of the
  same key (new ETag) is processed again. Keys follow S3's naming rules: at most 1024 bytes of
  UTF-8, no control characters; "folder" markers (keys ending in ``/``) and files of other
  extensions are ignored; a key breaking the rules is skipped and reported.
* A JSON-lines file with an invalid line is skipped whole (nothing of it is delivered), as is
  a CSV file with broken quoting, a file that is not UTF-8 or one without the required columns;
  each skipped file is one ``file_invalid`` row error naming the file and the line. A CSV row
  with more fields than the header is a row error (``invalid_field``) and the rest of the file
  is delivered.
* Delivery progress is committed with each batch (for the built-in store in the same
  transaction as the rows): the sync's cursor records, per file being delivered, how many of
  its rows are done, so a run that fails, is cancelled or killed resumes inside the file with
  no row applied twice; a file is recorded in ``sync_file`` once all its rows are delivered.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import tempfile
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import anyio
import anyio.to_thread
import orjson
import pyarrow as pa
import sqlalchemy as sa

from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.logging import get_logger, redact_text, register_secret
from zerocopy.state.models import Credential, new_id, utcnow
from zerocopy.state.sync_models import Sync, SyncFile, SyncRowLog, SyncRun
from zerocopy.sync import exactjson
from zerocopy.sync import types as t
from zerocopy.sync.engine import SyncEngine, _Counts, _log
from zerocopy.sync.types import DataType, RowError, RunStatus, ValidRow
from zerocopy.sync.validate import (
    IDENTIFIER_COLUMNS,
    KNOWN_COLUMNS,
    UPDATED_AT,
    missing_columns,
    validate_batch,
)
from zerocopy.sync.watermark import WatermarkState

log = get_logger("zerocopy.sync.files")

JSONL_EXTENSIONS = (".jsonl", ".ndjson", ".json")
CSV_EXTENSIONS = (".csv",)
MAX_KEY_BYTES = 1024
"""S3's limit on the UTF-8 length of an object key."""
SPOOL_BYTES = 32 * 1024 * 1024
"""Files up to this size stay in memory while processed; larger ones spill to a temp file."""
PARSE_ROWS = 5_000
"""Rows per Arrow batch handed to validation."""
PROGRESS_PREFIX = "file:"
"""Cursor entries of files being delivered: ``file:<sha of key+etag>`` → rows done."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


# ------------------------------------------------------------------ settings and names
@dataclass(frozen=True, slots=True)
class FileSourceSettings:
    """Where a file-storage sync reads (the sync's ``source_settings``)."""

    bucket: str
    prefix: str = ""
    format: str = "auto"
    endpoint_url: str | None = None
    region: str = "us-east-1"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> FileSourceSettings:
        """Parse and check ``source_settings``; ``validation_error`` names the bad field."""
        data = dict(data or {})
        bucket = str(data.get("bucket") or "")
        check_bucket_name(bucket)
        fmt = str(data.get("format") or "auto").lower()
        if fmt not in ("auto", "jsonl", "csv"):
            raise ZerocopyError(
                errors.VALIDATION_ERROR,
                f"format must be jsonl, csv or auto (by extension), got {fmt!r}",
                details={"field": "format"},
            )
        prefix = str(data.get("prefix") or "")
        if prefix:
            check_key(prefix)
        return cls(
            bucket=bucket,
            prefix=prefix,
            format=fmt,
            endpoint_url=data.get("endpoint_url") or None,
            region=str(data.get("region") or "us-east-1"),
        )


def check_bucket_name(name: str) -> None:
    """S3 bucket naming rules (3-63 chars, lower case, digits, dots, hyphens, no IP form)."""
    ok = (
        bool(_BUCKET.match(name))
        and ".." not in name
        and not _IP.match(name)
        and not name.startswith("xn--")
        and not name.endswith("-s3alias")
    )
    if not ok:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"{name!r} is not a valid S3 bucket name: 3-63 characters of lower-case letters, "
            "digits, dots and hyphens, starting and ending with a letter or digit",
            details={"field": "bucket"},
        )


def key_problem(key: str) -> str | None:
    """Why ``key`` breaks S3's object key rules, or ``None``."""
    if not key:
        return "the key is empty"
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return f"the key is longer than {MAX_KEY_BYTES} bytes of UTF-8"
    if _CONTROL.search(key):
        return "the key contains control characters"
    return None


def check_key(key: str) -> None:
    """Raise ``validation_error`` when ``key`` (or a prefix) breaks S3's key rules."""
    problem = key_problem(key)
    if problem:
        raise ZerocopyError(errors.VALIDATION_ERROR, f"invalid S3 key {key!r}: {problem}")


def file_format(key: str, configured: str) -> str | None:
    """``jsonl`` / ``csv`` for a key, or ``None`` when the file is not one the sync reads."""
    lower = key.lower()
    if configured != "auto":
        return configured
    if lower.endswith(JSONL_EXTENSIONS):
        return "jsonl"
    if lower.endswith(CSV_EXTENSIONS):
        return "csv"
    return None


def progress_key(key: str, etag: str) -> str:
    """Cursor entry name of one file version."""
    return (
        PROGRESS_PREFIX + hashlib.blake2b(f"{key}\x00{etag}".encode(), digest_size=12).hexdigest()
    )


# ------------------------------------------------------------------ parsing (pure, blocking)
class FileInvalid(Exception):
    """The whole file is skipped: the message says where and why."""


@dataclass(slots=True)
class ParsedFile:
    """A file's rows as Arrow batches of canonical columns, plus rows refused while parsing."""

    batches: list[pa.RecordBatch] = field(default_factory=list)
    hashes: list[list[str]] = field(default_factory=list)
    refused: dict[int, tuple[str, str, dict[str, Any]]] = field(default_factory=dict)
    """Row number (0-based, data rows) → (code, message, raw) for rows refused by the parser."""
    rows: int = 0


def _row_hash(key: str, etag: str, line: int, raw: bytes | str) -> str:
    # Key + ETag + line make rows of one file version unique (two equal events in two files
    # are two events) and stable when a resumed run parses the same file again.
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{key}\x00{etag}\x00{line}\x00".encode())
    digest.update(raw.encode() if isinstance(raw, str) else raw)
    return digest.hexdigest()


_OPTIONAL_WITH_DELETED = ("PAYLOAD", "NAME")


def _canonical(mapping: dict[str, str], data_type: DataType) -> list[str]:
    """The batch's columns: those present, plus null PAYLOAD/NAME beside a DELETED column."""
    have = set(mapping.values())
    if "DELETED" in have:
        have |= set(_OPTIONAL_WITH_DELETED)
    return [c for c in KNOWN_COLUMNS[data_type] if c in have]


def _columns_for(names: list[str], data_type: DataType) -> dict[str, str]:
    """Actual → canonical column name for the columns the data type reads (no UPDATED_AT).

    Every spelling maps (JSON lines may write ``external_id`` on one line and
    ``EXTERNAL_ID`` on the next); CSV headers are checked for duplicates by the caller.
    """
    known = set(KNOWN_COLUMNS[data_type]) - {UPDATED_AT}
    mapping = {name: name.upper() for name in names if name.upper() in known}
    missing = missing_columns(set(mapping.values()), data_type, with_updated_at=False)
    if "DELETED" in mapping.values():
        # A file of deletes needs no PAYLOAD (nor NAME): each row that is not a delete is
        # then refused on its own (missing_field), as a null PAYLOAD cell would be.
        missing = [c for c in missing if c not in _OPTIONAL_WITH_DELETED]
    if missing:
        raise FileInvalid(
            f"missing required column(s) {', '.join(missing)}; found {', '.join(names) or 'none'}"
        )
    return mapping


def _to_batch(records: list[dict[str, Any]], canon: list[str]) -> pa.RecordBatch:
    arrays = []
    for name in canon:
        values = [r.get(name) for r in records]
        if name == "PAYLOAD":
            # Objects are re-encoded: validation decodes one representation (JSON text).
            values = [
                v if v is None or isinstance(v, str) else exactjson.dumps(v).decode()
                for v in values
            ]
            arrays.append(pa.array(values, pa.string()))
        elif name == "DELETED":
            # JSON true/false become "True"/"False" text, which validation reads as booleans;
            # an integral 1.0 / 0.0 is "1" / "0", as from a DOUBLE column; objects and arrays
            # stay JSON text (refused, shown as written).
            arrays.append(pa.array([_deleted_text(v) for v in values], pa.string()))
        else:
            arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
    return pa.RecordBatch.from_arrays(arrays, names=canon)


def _deleted_text(value: Any) -> str | None:
    """A JSON-lines ``DELETED`` value as the text validation reads."""
    if value is None or isinstance(value, str | bool):
        return None if value is None else str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return exactjson.dumps(value).decode()


_TEXT_FIELDS = (*IDENTIFIER_COLUMNS, "ID", "NAME")


def _scalar_problem(record: dict[str, Any]) -> tuple[str, str] | None:
    """Why a JSON-lines record's identifier, ``ID`` or ``NAME`` cannot be used, else None.

    These columns hold text. A JSON number is the text a warehouse column gives for it (an
    integral ``42.0`` is ``"42"``, as from a DOUBLE column: rewritten in place); ``true`` or
    an object or array has no text form: the row is refused (``invalid_identifier`` for an
    identifier, ``invalid_field`` for ``ID`` / ``NAME``) instead of being keyed by Python's
    spelling of it (``"True"``, ``"{'a': 1}"``).
    """
    for name in _TEXT_FIELDS:
        value = record.get(name)
        if value is None or isinstance(value, str):
            continue
        if isinstance(value, float) and value.is_integer():
            record[name] = str(int(value))
        elif isinstance(value, bool) or not isinstance(value, int | float):
            kind = "a boolean" if isinstance(value, bool) else type(value).__name__
            kind = {"dict": "an object", "list": "an array"}.get(kind, kind)
            code = t.INVALID_IDENTIFIER if name in IDENTIFIER_COLUMNS else t.INVALID_FIELD
            return (
                code,
                f"{name} must be text or a number, got {kind} ({orjson.dumps(value).decode()[:200]})",
            )
    return None


def _no_bom(line: bytes, lineno: int) -> bytes:
    """The first line without a UTF-8 byte order mark (spreadsheet and Windows exports)."""
    return line[3:] if lineno == 1 and line.startswith(b"\xef\xbb\xbf") else line


def parse_jsonl(
    fh: IO[bytes], key: str, etag: str, data_type: DataType, batch_rows: int = PARSE_ROWS
) -> ParsedFile:
    """All rows of a JSON-lines file; any invalid line makes the whole file invalid."""
    # Pass 1: every line must be a JSON object, before anything is delivered.
    columns: dict[str, None] = {}
    count = 0
    for lineno, line in enumerate(fh, start=1):
        line = _no_bom(line, lineno)
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise FileInvalid(f"line {lineno} is not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise FileInvalid(f"line {lineno} is not a JSON object")
        columns.update(dict.fromkeys(obj))
        count += 1
    mapping = _columns_for(list(columns), data_type) if count else {}
    canon = _canonical(mapping, data_type)
    out = ParsedFile(rows=count)
    fh.seek(0)
    records: list[dict[str, Any]] = []
    hashes: list[str] = []
    index = 0  # data rows so far (blank lines are not rows)
    for lineno, line in enumerate(fh, start=1):
        line = _no_bom(line, lineno)
        if not line.strip():
            continue
        obj = exactjson.loads(line)  # integers past 64 bits exact, as a warehouse's are
        record = {mapping[k]: v for k, v in obj.items() if k in mapping}
        if len(record) < len(obj) and len(record) < sum(k in mapping for k in obj):
            # Two spellings of one column on one line (external_id and EXTERNAL_ID): which
            # one is meant is unknown, as for a CSV header naming it twice.
            twice = sorted({c for c in record if [mapping.get(k) for k in obj].count(c) > 1})
            raise FileInvalid(f"line {lineno} names {', '.join(twice)} more than once")
        problem = _scalar_problem(record)
        if problem is not None:
            out.refused[index] = (*problem, obj)
            record = {}  # a placeholder keeps positions aligned; validation never sees it
        index += 1
        records.append(record)
        hashes.append(_row_hash(key, etag, lineno, line.rstrip(b"\r\n")))
        if len(records) >= batch_rows:
            out.batches.append(_to_batch(records, canon))
            out.hashes.append(hashes)
            records, hashes = [], []
    if records:
        out.batches.append(_to_batch(records, canon))
        out.hashes.append(hashes)
    return out


def parse_csv(
    fh: IO[bytes], key: str, etag: str, data_type: DataType, batch_rows: int = PARSE_ROWS
) -> ParsedFile:
    """All rows of a CSV file with a header; broken quoting makes the whole file invalid."""
    # Pass 1 checks encoding and quoting of the whole file before anything is delivered.
    for _ in _csv_rows(fh):
        pass
    fh.seek(0)
    rows = _csv_rows(fh)
    try:
        return _parse_csv_rows(rows, key, etag, data_type, batch_rows)
    finally:
        rows.close()  # the reader's text wrapper lets go of ``fh`` before the caller closes it


def _parse_csv_rows(
    rows: Iterator[tuple[int, list[str]]],
    key: str,
    etag: str,
    data_type: DataType,
    batch_rows: int,
) -> ParsedFile:
    # The header is the first line that is not blank. A file with none (0 bytes, only blank
    # lines: what an export of no rows often writes) has no rows, as an empty JSON-lines
    # file has; it is not an invalid file.
    header = next((values for _, values in rows if any(v.strip() for v in values)), None)
    if header is None:
        return ParsedFile()
    header = [h.strip().lstrip("\ufeff") for h in header]
    mapping = _columns_for(header, data_type)
    dupes = sorted({c for c in mapping.values() if list(mapping.values()).count(c) > 1})
    if dupes:
        raise FileInvalid(f"the header names {', '.join(dupes)} more than once")
    wanted = [(i, mapping[h]) for i, h in enumerate(header) if h in mapping]
    canon = _canonical(mapping, data_type)
    out = ParsedFile()
    records: list[dict[str, Any]] = []
    hashes: list[str] = []
    for lineno, values in rows:
        if not any(v.strip() for v in values):
            continue
        raw_text = "\x1f".join(values)
        if len(values) > len(header):
            out.refused[out.rows] = (
                t.INVALID_FIELD,
                f"line {lineno} has {len(values)} fields but the header has {len(header)} "
                "(quote values that contain commas)",
                {"line": lineno, "values": values},
            )
            # A placeholder keeps positions aligned; validation never sees it.
            records.append({})
        else:
            records.append(
                {c: (values[i] if i < len(values) and values[i] != "" else None) for i, c in wanted}
            )
        hashes.append(_row_hash(key, etag, lineno, raw_text))
        out.rows += 1
        if len(records) >= batch_rows:
            out.batches.append(_to_batch(records, canon))
            out.hashes.append(hashes)
            records, hashes = [], []
    if records:
        out.batches.append(_to_batch(records, canon))
        out.hashes.append(hashes)
    return out


def _csv_rows(fh: IO[bytes]) -> Generator[tuple[int, list[str]], None, None]:
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="", errors="strict")
    reader = csv.reader(text, strict=True)
    try:
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            yield reader.line_num, values
    except csv.Error as exc:
        raise FileInvalid(f"line {reader.line_num}: broken CSV quoting ({exc})") from None
    except UnicodeDecodeError as exc:
        raise FileInvalid(f"the file is not UTF-8 text ({exc.reason})") from None
    finally:
        text.detach()


def parse_file(fh: IO[bytes], fmt: str, key: str, etag: str, data_type: DataType) -> ParsedFile:
    """Dispatch on format; raises :class:`FileInvalid` when the file is skipped whole."""
    if fmt == "jsonl":
        return parse_jsonl(fh, key, etag, data_type)
    return parse_csv(fh, key, etag, data_type)


# ------------------------------------------------------------------ S3 access (boto3)
@dataclass(frozen=True, slots=True)
class S3Object:
    """One listed object."""

    key: str
    etag: str
    size: int
    last_modified: datetime


class S3FileStore:
    """The bucket a file sync reads, through boto3 (blocking calls run in worker threads)."""

    def __init__(
        self, settings: FileSourceSettings, secrets: Mapping[str, str], *, client: Any = None
    ) -> None:
        for value in secrets.values():
            register_secret(value)
        self.settings = settings
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "s3",
                endpoint_url=settings.endpoint_url,
                region_name=settings.region,
                aws_access_key_id=secrets.get("access_key_id"),
                aws_secret_access_key=secrets.get("secret_access_key"),
                aws_session_token=secrets.get("session_token") or None,
                config=Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=10),
            )
        self.client = client

    async def test(self) -> None:
        """Check the bucket is reachable with these keys (``head_bucket``)."""
        await self._call(self.client.head_bucket, Bucket=self.settings.bucket)

    async def list_objects(self) -> list[S3Object]:
        """Every object under the prefix, oldest first (LastModified, then key)."""

        def run() -> list[S3Object]:
            out: list[S3Object] = []
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.settings.bucket, Prefix=self.settings.prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    out.append(
                        S3Object(
                            item["Key"],
                            str(item["ETag"]).strip('"'),
                            int(item["Size"]),
                            item["LastModified"],
                        )
                    )
            return sorted(out, key=lambda o: (o.last_modified, o.key))

        return await self._call(run)

    async def download(self, obj: S3Object) -> IO[bytes]:
        """The object's bytes in a spooled temp file (memory up to :data:`SPOOL_BYTES`)."""

        def run() -> IO[bytes]:
            fh = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
            # IfMatch: a re-upload during the run fails instead of mixing two versions.
            resp = self.client.get_object(
                Bucket=self.settings.bucket, Key=obj.key, IfMatch=obj.etag
            )
            for chunk in resp["Body"].iter_chunks(1024 * 1024):
                fh.write(chunk)
            fh.seek(0)
            return fh  # type: ignore[return-value]

        return await self._call(run)

    async def _call(self, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        try:
            return await anyio.to_thread.run_sync(lambda: fn(**kwargs))
        except ClientError as exc:
            raise map_s3_error(exc, self.settings) from None
        except EndpointConnectionError as exc:
            raise ZerocopyError(
                errors.UNREACHABLE,
                f"cannot reach the S3 endpoint {self.settings.endpoint_url or 'AWS'}: {exc}",
            ) from None
        except BotoCoreError as exc:
            raise ZerocopyError(
                errors.FILE_SOURCE_ERROR, f"S3 request failed: {redact_text(str(exc))}"
            ) from None


S3_ERROR_CODES: dict[str, tuple[str, str]] = {
    "NoSuchBucket": (errors.SCOPE_NOT_FOUND, "the bucket {bucket} does not exist"),
    "404": (errors.SCOPE_NOT_FOUND, "the bucket {bucket} does not exist"),
    "InvalidAccessKeyId": (errors.AUTH_FAILED, "the access key id is unknown to S3"),
    "SignatureDoesNotMatch": (errors.AUTH_FAILED, "the secret access key is wrong"),
    "ExpiredToken": (errors.AUTH_FAILED, "the session token has expired"),
    "AccessDenied": (errors.PERMISSION_DENIED, "these keys may not read the bucket {bucket}"),
    "403": (errors.PERMISSION_DENIED, "these keys may not read the bucket {bucket}"),
    "PreconditionFailed": (
        errors.FILE_SOURCE_ERROR,
        "a file changed while it was read; the next run reads the new version",
    ),
}
"""S3 error code → (zerocopy code, message template)."""


def map_s3_error(exc: Any, settings: FileSourceSettings) -> ZerocopyError:
    """A botocore ``ClientError`` as a :class:`ZerocopyError` with a stable code."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    zc, template = S3_ERROR_CODES.get(
        code, (errors.FILE_SOURCE_ERROR, "S3 answered {code}: {message}")
    )
    message = template.format(
        bucket=settings.bucket,
        code=code,
        message=redact_text(str(exc.response.get("Error", {}).get("Message", ""))),
    )
    return ZerocopyError(zc, message, details={"s3_code": code})


def store_for(sync: Sync, credential: Credential | None, box: Any) -> S3FileStore:
    """The default store factory: decrypt the ``s3`` credential with ``box``."""
    if credential is None:
        raise ZerocopyError(
            errors.VALIDATION_ERROR, "a file-storage sync needs an s3 credential (credential_id)"
        )
    if credential.kind != "s3":
        raise ZerocopyError(
            errors.CREDENTIAL_KIND_MISMATCH,
            f"file-storage syncs read with an s3 credential; {credential.name!r} is {credential.kind}",
        )
    settings = FileSourceSettings.from_dict(
        {**(credential.settings or {}), **(sync.source_settings or {})}
    )
    return S3FileStore(settings, box.decrypt(credential.secret_ciphertext))


# ------------------------------------------------------------------ test / preview
@dataclass(slots=True)
class FilePreview:
    """What a sync test shows for a file-storage sync."""

    files: list[str]
    """Keys of the data files the next run would read (oldest first)."""
    previewed: str | None
    """The file the preview rows come from (the first pending one)."""
    verdicts: list[ValidRow | RowError]


async def preview_files(
    store: S3FileStore,
    data_type: DataType,
    *,
    done: set[tuple[str, str]] | None = None,
    options: Any = None,
    limit: int = 10,
) -> FilePreview:
    """Bucket reachable, pending files listed, first ``limit`` rows of the first one validated.

    A first file that would be skipped whole shows as one ``file_invalid`` verdict.
    """
    await store.test()
    pending = [
        o
        for o in await store.list_objects()
        if (o.key, o.etag) not in (done or set())
        and not o.key.endswith("/")
        and file_format(o.key, store.settings.format) is not None
    ]
    if not pending:
        return FilePreview([], None, [])
    first = pending[0]
    fmt = file_format(first.key, store.settings.format)
    assert fmt is not None  # pending holds only keys with a known format
    fh = await store.download(first)
    try:
        parsed = await anyio.to_thread.run_sync(
            parse_file,
            fh,
            fmt,
            first.key,
            first.etag,
            data_type,
        )
    except FileInvalid as exc:
        verdict = RowError(
            position=0,
            code=t.FILE_INVALID,
            message=f"file {first.key} would be skipped: {exc}",
            raw={"key": first.key},
        )
        return FilePreview([o.key for o in pending], first.key, [verdict])
    finally:
        fh.close()
    verdicts: list[ValidRow | RowError] = []
    if parsed.batches:
        batch = parsed.batches[0].slice(0, limit)
        verdicts = validate_batch(
            data_type,
            batch,
            start_position=0,
            hashes=parsed.hashes[0][:limit],
            updated_us=[None] * batch.num_rows,
            options=options,
            require_updated_at=False,
        )
        for i, (code, message, raw) in parsed.refused.items():
            if i < len(verdicts):
                verdicts[i] = RowError(position=i, code=code, message=message, raw=raw)
    return FilePreview([o.key for o in pending], first.key, verdicts)


# ------------------------------------------------------------------ the run
class _FileCursor:
    """Stands in for the watermark tracker: the cursor is per-file progress (rows done)."""

    def __init__(self, state: WatermarkState) -> None:
        self.progress: dict[str, int] = {
            k: v for k, v in state.seen.items() if k.startswith(PROGRESS_PREFIX)
        }

    def record(self, row_hash: str, updated_us: int) -> None:
        """File rows carry no UPDATED_AT: nothing to record per row."""

    def snapshot(self) -> WatermarkState:
        return WatermarkState(value=None, seen=dict(self.progress))


class FileSyncEngine(SyncEngine):
    """The sync engine for file-storage syncs (same runs, cancel, heartbeats, row logs).

    Args:
        store_factory: ``factory(sync, credential) -> S3FileStore``; default decrypts the
            credential with ``box`` (:func:`store_for`).
        box: the :class:`~zerocopy.secrets.SecretBox` of the default store factory.
    """

    def __init__(self, *args: Any, store_factory: Any = None, box: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.store_factory = store_factory or (lambda sync, cred: store_for(sync, cred, box))

    async def _execute(self, run: SyncRun, event: anyio.Event, counts: _Counts) -> str:
        sync, _source, credential = await self._load(run)
        store: S3FileStore = self.store_factory(sync, credential)
        data_type = DataType(sync.data_type)
        assert run.started_at is not None
        elapsed = (utcnow() - run.started_at).total_seconds()
        deadline = anyio.current_time() + max(0.0, run.max_runtime_s - elapsed)
        destination = self.destination_factory(sync, deadline=deadline)
        cursor = _FileCursor(WatermarkState.from_json(sync.watermark))
        work = anyio.CancelScope(deadline=deadline)
        cancelled = finished = False
        failure: ZerocopyError | None = None

        async def watch() -> None:
            nonlocal cancelled
            next_beat = anyio.current_time() + self.heartbeat_s
            while True:
                with anyio.move_on_after(self.cancel_poll_s):
                    await event.wait()
                if finished:
                    return
                if event.is_set() or await self._cancel_requested(run.id):
                    cancelled = True
                    work.cancel()
                    return
                if anyio.current_time() >= next_beat:
                    await self._heartbeat(run.id)
                    next_beat = anyio.current_time() + self.heartbeat_s

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                try:
                    with work:
                        try:
                            await self._files(
                                run, sync, data_type, store, cursor, destination, counts
                            )
                        except ZerocopyError as exc:
                            # Kept out of the task group: it would wrap it in an ExceptionGroup.
                            failure = exc
                finally:
                    finished = True
                    event.set()
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await destination.aclose()
                except Exception as exc:
                    log.warning("sync.close_failed", error=redact_text(str(exc)))
        if failure is not None:
            raise failure
        if cancelled:
            raise ZerocopyError(errors.CANCELLED, "cancelled on request")
        if work.cancelled_caught:
            raise ZerocopyError(
                errors.TIMED_OUT,
                f"the file sync ran past its max runtime ({run.max_runtime_s:g} s); delivered "
                "rows are kept and the next run continues inside the file it stopped in",
            )
        if counts.limit_hit:
            return RunStatus.LIMIT_EXCEEDED
        return RunStatus.PARTIAL_SUCCESS if counts.errored else RunStatus.SUCCESS

    async def _files(
        self,
        run: SyncRun,
        sync: Sync,
        data_type: DataType,
        store: S3FileStore,
        cursor: _FileCursor,
        destination: Any,
        counts: _Counts,
    ) -> None:
        objects = await store.list_objects()
        async with self.db.session() as s:
            done = set(
                (
                    await s.execute(
                        sa.select(SyncFile.key, SyncFile.etag).where(SyncFile.sync_id == sync.id)
                    )
                ).all()
            )
        for obj in objects:
            if (obj.key, obj.etag) in done or obj.key.endswith("/"):
                continue
            fmt = file_format(obj.key, store.settings.format)
            if fmt is None:
                continue
            if sync.row_limit is not None and counts.taken >= sync.row_limit:
                counts.limit_hit = True
                return
            problem = key_problem(obj.key)
            if problem:
                await self._skip(run, sync, obj, f"invalid S3 key: {problem}", counts)
                continue
            fh = await store.download(obj)
            try:
                parsed = await anyio.to_thread.run_sync(
                    parse_file, fh, fmt, obj.key, obj.etag, data_type
                )
                await self._deliver_file(
                    run, sync, data_type, obj, parsed, cursor, destination, counts
                )
            except FileInvalid as exc:
                await self._skip(run, sync, obj, str(exc), counts)
            finally:
                fh.close()
            if counts.limit_hit:
                return

    async def _deliver_file(
        self,
        run: SyncRun,
        sync: Sync,
        data_type: DataType,
        obj: S3Object,
        parsed: ParsedFile,
        cursor: _FileCursor,
        destination: Any,
        counts: _Counts,
    ) -> None:
        pkey = progress_key(obj.key, obj.etag)
        already = cursor.progress.get(pkey, 0)
        options = _sync_options(sync)
        row_no = 0
        pending: list[ValidRow | RowError] = []
        pending_valid = 0
        for batch, hashes in zip(parsed.batches, parsed.hashes, strict=True):
            verdicts = validate_batch(
                data_type,
                batch,
                start_position=counts.taken,
                hashes=hashes,
                updated_us=[None] * batch.num_rows,
                options=options,
                require_updated_at=False,
            )
            for verdict in verdicts:
                this_row = row_no
                row_no += 1
                if this_row < already:
                    counts.skipped += 1
                    continue  # delivered by an earlier run (progress committed with it)
                if sync.row_limit is not None and counts.taken >= sync.row_limit:
                    counts.limit_hit = True
                    break
                refused = parsed.refused.get(this_row)
                if refused is not None:
                    code, message, raw = refused
                    verdict = RowError(
                        position=verdict.position,
                        code=code,
                        message=message,
                        raw=raw,
                        row_hash=verdict.row_hash,
                    )
                counts.taken += 1
                pending.append(verdict)
                cursor.progress[pkey] = row_no
                if isinstance(verdict, ValidRow):
                    pending_valid += 1
                if pending_valid >= self.delivery_rows:
                    await self._flush(run, sync, data_type, pending, cursor, destination, counts)  # type: ignore[arg-type]
                    pending, pending_valid = [], 0
            if counts.limit_hit:
                break
        if pending:
            await self._flush(run, sync, data_type, pending, cursor, destination, counts)  # type: ignore[arg-type]
        if counts.limit_hit:
            return
        # The whole file is delivered: record it and drop its progress entry together.
        cursor.progress.pop(pkey, None)
        async with self.db.transaction() as s:
            s.add(SyncFile(id=new_id(), sync_id=sync.id, key=obj.key, etag=obj.etag, run_id=run.id))
            await s.execute(
                sa.update(Sync)
                .where(Sync.id == sync.id)
                .values(watermark=cursor.snapshot().to_json())
            )

    async def _skip(
        self, run: SyncRun, sync: Sync, obj: S3Object, why: str, counts: _Counts
    ) -> None:
        """Record a file skipped whole: one ``file_invalid`` row error, the file marked."""
        message = f"file {obj.key} skipped: {why}"
        log.warning("sync.file_skipped", run_id=run.id, key=obj.key, reason=why)
        error = RowError(
            position=counts.taken,
            code=t.FILE_INVALID,
            message=message,
            raw={"key": obj.key, "etag": obj.etag},
        )
        counts.errored += 1
        counts.taken += 1  # the file counts as one row, refused
        async with self.db.transaction() as s:
            s.add(
                SyncFile(
                    id=new_id(),
                    sync_id=sync.id,
                    key=obj.key,
                    etag=obj.etag,
                    run_id=run.id,
                    status="skipped",
                    error=message,
                )
            )
            await s.execute(
                sa.insert(SyncRowLog),
                [_log(run, error.position, "error", t.FILE_INVALID, message, error.raw, error)],
            )
            await s.execute(
                sa.update(SyncRun)
                .where(SyncRun.id == run.id)
                .values(rows_read=counts.read, rows_errored=counts.errored)
            )


def _sync_options(sync: Sync) -> Any:
    from zerocopy.sync.engine import sync_options

    return sync_options(sync)


__all__ = [
    "FileInvalid",
    "FilePreview",
    "FileSourceSettings",
    "FileSyncEngine",
    "S3FileStore",
    "S3Object",
    "check_bucket_name",
    "check_key",
    "file_format",
    "key_problem",
    "parse_csv",
    "parse_file",
    "parse_jsonl",
    "preview_files",
    "store_for",
]
