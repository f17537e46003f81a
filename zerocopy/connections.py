"""Source + credential → adapter: the only place stored credentials become a ``ConnectionConfig``.

Secrets are decrypted here, registered with the log redactor before anything can log them,
and handed to the adapter; they are never returned to callers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from dialects.base import BaseAdapter
from dialects.protocol import ConnectionConfig, Scope
from dialects.registry import create_adapter
from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.logging import register_secret
from zerocopy.secrets import SecretBox
from zerocopy.state.models import Credential, Source


class AdapterFactoryProtocol(Protocol):
    """What the refresh engine calls to get an adapter for a run."""

    def __call__(
        self, source: Source, credential: Credential, *, max_runtime_s: float | None = None
    ) -> BaseAdapter: ...


def parse_scope(text: str) -> Scope:
    try:
        return Scope.parse(text)
    except ValueError as exc:
        raise ZerocopyError(
            errors.VALIDATION_ERROR, str(exc), details={"field": "scope", "value": text}
        ) from None


def connection_config(
    source: Source, credential: Credential, box: SecretBox, *, max_runtime_s: float | None = None
) -> ConnectionConfig:
    """Decrypt the credential's secrets and build the adapter's config for ``source``."""
    if credential.kind != source.kind:
        raise ZerocopyError(
            errors.CREDENTIAL_KIND_MISMATCH,
            f"source {source.name!r} is {source.kind} but credential {credential.name!r} is "
            f"{credential.kind}; use a {source.kind} credential",
            details={"source_id": source.id, "credential_id": credential.id},
        )
    secrets = box.decrypt(credential.secret_ciphertext)
    for value in secrets.values():
        register_secret(value)
    return ConnectionConfig(
        settings=dict(credential.settings or {}),
        secrets=secrets,
        scope=parse_scope(source.scope),
        max_runtime_s=float(max_runtime_s if max_runtime_s is not None else source.max_runtime_s),
    )


def build_adapter(
    source: Source, credential: Credential, box: SecretBox, *, max_runtime_s: float | None = None
) -> BaseAdapter:
    """A new (not yet connected) adapter for ``source``; close it with ``aclose()``."""
    config = connection_config(source, credential, box, max_runtime_s=max_runtime_s)
    return create_adapter(source.kind, config)


@asynccontextmanager
async def adapter_for(
    source: Source, credential: Credential, box: SecretBox, *, max_runtime_s: float | None = None
) -> AsyncIterator[BaseAdapter]:
    """``async with adapter_for(source, credential, box) as adapter:`` — closed on exit."""
    adapter = build_adapter(source, credential, box, max_runtime_s=max_runtime_s)
    try:
        yield adapter
    finally:
        await adapter.aclose()


class AdapterFactory:
    """The default adapter factory of the refresh engine: decrypts with ``box``."""

    def __init__(self, box: SecretBox) -> None:
        self.box = box

    def __call__(
        self, source: Source, credential: Credential, *, max_runtime_s: float | None = None
    ) -> BaseAdapter:
        return build_adapter(source, credential, self.box, max_runtime_s=max_runtime_s)
