"""AdapterCache: reusable adapters are kept per source between runs, others closed after each."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import anyio

from zerocopy.connections import AdapterCache


class _Adapter:
    REUSABLE = False

    def __init__(self) -> None:
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


class _Reusable(_Adapter):
    REUSABLE = True


def _factory(cls: type[_Adapter]) -> Any:
    built: list[_Adapter] = []

    def factory(source: Any, credential: Any, *, max_runtime_s: float | None = None) -> _Adapter:
        adapter = cls()
        built.append(adapter)
        return adapter

    factory.built = built  # type: ignore[attr-defined]
    return factory


def _source(**kw: Any) -> Any:
    base = {"id": "s1", "kind": "postgres", "scope": "public", "max_runtime_s": 300}
    return SimpleNamespace(**{**base, **kw})


def _credential(**kw: Any) -> Any:
    base = {"id": "c1", "kind": "postgres", "settings": {"host": "h"}, "secret_ciphertext": "x"}
    return SimpleNamespace(**{**base, **kw})


def test_reusable_adapter_is_kept_and_shared_by_concurrent_runs() -> None:
    async def main() -> None:
        cache = AdapterCache(idle_s=60)
        factory = _factory(_Reusable)
        a = cache.acquire(factory, _source(), _credential())
        b = cache.acquire(factory, _source(), _credential())  # a second run at once
        assert a is b and len(factory.built) == 1
        await cache.release(a)
        await cache.release(b)
        assert a.closed == 0  # kept for the next run
        c = cache.acquire(factory, _source(), _credential())
        assert c is a
        await cache.release(c)
        await cache.aclose()
        assert a.closed == 1

    anyio.run(main)


def test_other_adapters_are_built_and_closed_per_run() -> None:
    async def main() -> None:
        cache = AdapterCache()
        factory = _factory(_Adapter)
        a = cache.acquire(factory, _source(), _credential())
        b = cache.acquire(factory, _source(), _credential())
        assert a is not b
        await cache.release(a)
        await cache.release(b)
        assert (a.closed, b.closed) == (1, 1)

    anyio.run(main)


def test_changed_credential_or_runtime_gets_a_new_adapter_and_the_old_one_closes_when_idle() -> (
    None
):
    async def main() -> None:
        cache = AdapterCache(idle_s=0)
        factory = _factory(_Reusable)
        a = cache.acquire(factory, _source(), _credential())
        b = cache.acquire(factory, _source(), _credential(secret_ciphertext="rotated"))
        c = cache.acquire(factory, _source(), _credential(), max_runtime_s=60)
        assert len({id(a), id(b), id(c)}) == 3
        await cache.release(a)  # idle_s=0: swept at once
        assert a.closed == 1 and b.closed == 0
        await cache.release(b)
        await cache.release(c)
        assert (b.closed, c.closed) == (1, 1)

    anyio.run(main)


def test_discard_closes_after_the_last_user() -> None:
    async def main() -> None:
        cache = AdapterCache(idle_s=60)
        factory = _factory(_Reusable)
        a = cache.acquire(factory, _source(), _credential())
        b = cache.acquire(factory, _source(), _credential())
        await cache.release(a, discard=True)
        assert a.closed == 0  # still used by the other run
        fresh = cache.acquire(factory, _source(), _credential())
        assert fresh is not a  # a retired adapter is not handed out again
        await cache.release(b)
        assert a.closed == 1
        await cache.release(fresh)
        assert fresh.closed == 0
        await cache.aclose()
        assert fresh.closed == 1

    anyio.run(main)
