"""``zerocopy profile ...``: the built-in profile store (what syncs deliver), read-only."""

from __future__ import annotations

from typing import Any

import click

from zerocopy.commands._common import echo, run, workspace_option

limit_option = click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000))
offset_option = click.option("--offset", default=0, show_default=True, type=click.IntRange(0))


@click.group()
def profile() -> None:
    """The built-in profile store: profiles, their events and purchases, catalog items, accounts."""


@profile.command("find")
@workspace_option
@click.option("--external-id", default=None)
@click.option("--braze-id", default=None)
@click.option("--email", default=None, help="The most recently updated profile with it.")
@click.option("--phone", default=None, help="The most recently updated profile with it.")
@click.option("--alias-name", default=None)
@click.option("--alias-label", default=None)
def profile_find(workspace_id: str, **identifier: str | None) -> None:
    """The profile exactly one identifier designates (alias: name and label)."""
    from api.schemas.profiles import ProfileRead
    from zerocopy.services import profiles

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return ProfileRead(**await profiles.find_profile(s, workspace_id, **identifier))

    echo(run(go, workspace_id))


@profile.command("show")
@workspace_option
@click.argument("profile_id")
def profile_show(workspace_id: str, profile_id: str) -> None:
    """One profile by its id."""
    from api.schemas.profiles import ProfileRead
    from zerocopy.services import profiles

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return ProfileRead(**await profiles.get_profile(s, workspace_id, profile_id))

    echo(run(go, workspace_id))


@profile.command("events")
@workspace_option
@click.argument("profile_id")
@limit_option
def profile_events(workspace_id: str, profile_id: str, limit: int) -> None:
    """Custom events of a profile, oldest first."""
    from api.schemas.profiles import EventRead
    from zerocopy.services import profiles

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            found = await profiles.list_events(s, workspace_id, profile_id, limit=limit)
            return [EventRead(**e) for e in found]

    echo(run(go, workspace_id))


@profile.command("purchases")
@workspace_option
@click.argument("profile_id")
@limit_option
def profile_purchases(workspace_id: str, profile_id: str, limit: int) -> None:
    """Purchases of a profile, oldest first."""
    from api.schemas.profiles import PurchaseRead
    from zerocopy.services import profiles

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            found = await profiles.list_purchases(s, workspace_id, profile_id, limit=limit)
            return [PurchaseRead(**p) for p in found]

    echo(run(go, workspace_id))


@profile.command("catalog-items")
@workspace_option
@click.argument("catalog")
@limit_option
@offset_option
def profile_catalog_items(workspace_id: str, catalog: str, limit: int, offset: int) -> None:
    """Items of a catalog (a ``catalog_items`` sync's ``catalog_name``), by id."""
    from api.schemas.profiles import CatalogItemRead
    from zerocopy.services import profiles

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            found = await profiles.list_catalog_items(
                s, workspace_id, catalog, limit=limit, offset=offset
            )
            return [CatalogItemRead(**i) for i in found]

    echo(run(go, workspace_id))


@profile.command("accounts")
@workspace_option
@limit_option
@offset_option
def profile_accounts(workspace_id: str, limit: int, offset: int) -> None:
    """Accounts, by id."""
    from api.schemas.profiles import AccountRead
    from zerocopy.services import profiles

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            found = await profiles.list_accounts(s, workspace_id, limit=limit, offset=offset)
            return [AccountRead(**a) for a in found]

    echo(run(go, workspace_id))
