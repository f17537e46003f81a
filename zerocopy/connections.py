"""Source + credential → adapter: the only place stored credentials become a ``ConnectionConfig``.

Secrets are decrypted here, registered with the log redactor before anything can log them,
and handed to the adapter; they are never returned to callers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

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


class AdapterCache:
    """Warehouse adapters kept open between runs of one process, per source.

    Only adapters whose class sets ``REUSABLE`` (they borrow a pooled session per statement
    and never run two statements on one session) are kept; any other adapter is built for
    one run and closed after it, as before. An entry is keyed by everything its config is
    made of (source, scope, credential settings and ciphertext, max runtime), so an edited
    credential or source gets a fresh adapter and the stale one is closed once idle. An
    adapter's pool keeps at most ``MAX_IDLE_CONNECTIONS`` idle sessions; adapters unused
    for ``idle_s`` are closed.
    """

    def __init__(self, *, idle_s: float = 60.0) -> None:
        self.idle_s = idle_s
        self._entries: dict[tuple[Any, ...], _CacheEntry] = {}
        self._by_adapter: dict[int, tuple[Any, ...]] = {}

    @staticmethod
    def _key(
        source: Source, credential: Credential, max_runtime_s: float | None
    ) -> tuple[Any, ...]:
        import orjson

        return (
            source.id,
            source.kind,
            source.scope,
            credential.id,
            credential.kind,
            orjson.dumps(credential.settings or {}, option=orjson.OPT_SORT_KEYS),
            credential.secret_ciphertext,
            float(max_runtime_s if max_runtime_s is not None else source.max_runtime_s),
        )

    def acquire(
        self,
        factory: AdapterFactoryProtocol,
        source: Source,
        credential: Credential,
        *,
        max_runtime_s: float | None = None,
    ) -> BaseAdapter:
        """An adapter for the run: a kept one when reusable, else a new one."""
        try:
            key = self._key(source, credential, max_runtime_s)
        except Exception:  # an unusual settings value: no reuse
            return factory(source, credential, max_runtime_s=max_runtime_s)
        entry = self._entries.get(key)
        if entry is not None and not entry.retired:
            entry.users += 1
            return entry.adapter
        adapter = factory(source, credential, max_runtime_s=max_runtime_s)
        if getattr(adapter, "REUSABLE", False) is True:
            self._entries[key] = _CacheEntry(adapter)
            self._by_adapter[id(adapter)] = key
        return adapter

    async def release(self, adapter: BaseAdapter, *, discard: bool = False) -> None:
        """Give the adapter back after a run (``discard``: close it even if reusable)."""
        key = self._by_adapter.get(id(adapter))
        entry = self._entries.get(key) if key is not None else None
        if entry is None or entry.adapter is not adapter:
            if key is not None:
                self._by_adapter.pop(id(adapter), None)
            await adapter.aclose()
        else:
            entry.users -= 1
            entry.last_used = time.monotonic()
            if discard:
                entry.retired = True
            if entry.retired and entry.users <= 0 and key is not None:
                self._forget(key)
                await adapter.aclose()
        await self.sweep()

    async def sweep(self, *, everything: bool = False) -> None:
        """Close kept adapters nobody uses that have been idle ``idle_s`` (or all idle ones)."""
        now = time.monotonic()
        stale = [
            key
            for key, entry in self._entries.items()
            if entry.users <= 0 and (everything or now - entry.last_used >= self.idle_s)
        ]
        for key in stale:
            entry = self._forget(key)
            if entry is not None:
                with contextlib.suppress(Exception):
                    await entry.adapter.aclose()

    async def aclose(self) -> None:
        """Close every kept adapter (process shutdown); adapters in use close on release."""
        for entry in self._entries.values():
            entry.retired = True
        await self.sweep(everything=True)

    def _forget(self, key: tuple[Any, ...]) -> _CacheEntry | None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._by_adapter.pop(id(entry.adapter), None)
        return entry


class _CacheEntry:
    __slots__ = ("adapter", "last_used", "retired", "users")

    def __init__(self, adapter: BaseAdapter) -> None:
        self.adapter = adapter
        self.users = 1
        self.last_used = time.monotonic()
        self.retired = False
