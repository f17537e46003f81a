"""Every kind of credential the API stores: warehouse logins and the non-warehouse ones.

Warehouse kinds are the adapter classes of :mod:`dialects.registry` (the adapter answers how
its credential is checked, which key it needs, whether its secret expires). Kinds that are not
warehouses (object storage for file syncs) are small classes here with the same class-level
answers, so the credential services never branch on a kind's name.
"""

from __future__ import annotations

from typing import Any, ClassVar

from dialects.keys import GeneratedKeySpec
from dialects.registry import ADAPTERS, adapter_class
from zerocopy import errors
from zerocopy.errors import ZerocopyError


class CredentialKind:
    """A non-warehouse credential kind: the same class-level answers an adapter class gives."""

    KIND: ClassVar[str] = "base"
    REQUIRED_SETTINGS: ClassVar[frozenset[str]] = frozenset()
    OPTIONAL_SETTINGS: ClassVar[frozenset[str]] = frozenset()
    REQUIRED_SECRETS: ClassVar[frozenset[str]] = frozenset()
    SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset()
    SECRET_EXPIRES: ClassVar[bool] = False
    USED_BY: ClassVar[str] = ""
    """What uses credentials of this kind (named when a warehouse source is refused)."""

    @classmethod
    def check_credential(cls, settings: dict[str, Any], secrets: dict[str, str]) -> None:
        """``invalid_credential`` naming the first missing, misplaced or unknown field."""
        for name in sorted(cls.SECRET_FIELDS & set(settings)):
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                f"{name!r} is a secret: send it under 'secrets', not 'settings'",
                details={"field": name},
            )
        known = cls.REQUIRED_SETTINGS | cls.OPTIONAL_SETTINGS
        for name in sorted(set(settings) - known):
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                f"{cls.KIND} credential has no setting {name!r}; "
                f"known settings: {', '.join(sorted(known))}",
                details={"field": name},
            )
        for name in sorted(cls.REQUIRED_SETTINGS):
            if settings.get(name) in (None, ""):
                raise ZerocopyError(
                    errors.INVALID_CREDENTIAL,
                    f"{cls.KIND} credential needs setting {name!r}",
                    details={"field": name},
                )
        for name in sorted(set(secrets) - cls.SECRET_FIELDS):
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                f"{cls.KIND} credential has no secret {name!r}; "
                f"known secrets: {', '.join(sorted(cls.SECRET_FIELDS))}",
                details={"field": name},
            )
        for name in sorted(cls.REQUIRED_SECRETS):
            if not secrets.get(name):
                raise ZerocopyError(
                    errors.INVALID_CREDENTIAL,
                    f"{cls.KIND} credential needs secret {name!r}",
                    details={"field": name},
                )

    @classmethod
    def generated_key(cls, settings: dict[str, Any]) -> GeneratedKeySpec | None:
        return None

    @classmethod
    def login_identity(cls, settings: dict[str, Any]) -> str | None:
        return None

    @classmethod
    def setup_script(
        cls, settings: dict[str, Any], *, public_key: str, database: str, schema: str
    ) -> str | None:
        return None


class S3Credential(CredentialKind):
    """S3 API access keys for file-storage syncs (AWS or any S3-compatible endpoint)."""

    KIND = "s3"
    OPTIONAL_SETTINGS = frozenset({"endpoint_url", "region", "bucket"})
    REQUIRED_SECRETS = frozenset({"access_key_id", "secret_access_key"})
    SECRET_FIELDS = frozenset({"access_key_id", "secret_access_key", "session_token"})
    USED_BY = "file-storage syncs (POST /v1/syncs with credential_id and source_settings)"

    @classmethod
    def check_credential(cls, settings: dict[str, Any], secrets: dict[str, str]) -> None:
        """Also: the endpoint is an http(s) URL and the bucket, when given, a valid name."""
        super().check_credential(settings, secrets)
        endpoint = settings.get("endpoint_url")
        if endpoint is not None and (
            not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://"))
        ):
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                "endpoint_url must be an http(s) URL of an S3-compatible endpoint "
                "(omit it for AWS S3)",
                details={"field": "endpoint_url"},
            )
        region = settings.get("region")
        if region is not None and (not isinstance(region, str) or not region.strip()):
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                "region must be an AWS region name such as 'eu-west-1'",
                details={"field": "region"},
            )
        bucket = settings.get("bucket")
        if bucket is not None:
            from zerocopy.sync.files import check_bucket_name

            try:
                check_bucket_name(str(bucket))
            except ZerocopyError as exc:
                raise ZerocopyError(
                    errors.INVALID_CREDENTIAL, exc.message, details={"field": "bucket"}
                ) from None


OTHER_KINDS: dict[str, type[CredentialKind]] = {"s3": S3Credential}
"""Credential kinds that are not warehouses: ``kind -> class``."""

KindClass = Any
"""An adapter class or a :class:`CredentialKind` subclass (same class-level answers)."""


def is_warehouse(kind: str) -> bool:
    """Whether ``kind`` is a warehouse (an adapter exists; sources and segments can use it)."""
    return kind in ADAPTERS


def kind_class(kind: str) -> KindClass:
    """The class that answers for credentials of ``kind``; ``validation_error`` when unknown."""
    if kind in OTHER_KINDS:
        return OTHER_KINDS[kind]
    if kind not in ADAPTERS:
        known = ", ".join(sorted([*ADAPTERS, *OTHER_KINDS]))
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"unknown credential kind {kind!r}; known kinds: {known}",
            details={"field": "kind"},
        )
    return adapter_class(kind)


def secret_expires(kind: str) -> bool:
    """Whether secrets of ``kind`` expire (the credential then records ``expires_at``)."""
    return bool(getattr(kind_class(kind), "SECRET_EXPIRES", False))


def kinds() -> list[str]:
    return sorted([*ADAPTERS, *OTHER_KINDS])
