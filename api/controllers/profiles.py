"""The built-in profile store, read-only: profiles by any identifier, events, catalogs, accounts."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath, Parameter

from api.deps import CallerDep, SessionDep
from api.errors import ERROR_RESPONSES, refuse_unknown_query_params
from api.schemas.common import MAX_OFFSET
from api.schemas.profiles import (
    AccountRead,
    CatalogItemRead,
    EventRead,
    ProfileRead,
    PurchaseRead,
)
from zerocopy.services import profiles


class ProfileController(Controller):
    path = "/v1"
    guards = [refuse_unknown_query_params]
    tags = ["profiles"]

    @get("/profiles", operation_id="findProfile", responses=ERROR_RESPONSES)
    async def find(
        self,
        caller: CallerDep,
        session: SessionDep,
        external_id: str | None = Parameter(default=None),
        braze_id: str | None = Parameter(default=None),
        email: str | None = Parameter(default=None),
        phone: str | None = Parameter(default=None),
        alias_name: str | None = Parameter(default=None),
        alias_label: str | None = Parameter(default=None),
    ) -> ProfileRead:
        """The profile one identifier designates (e-mail/phone: most recently updated)."""
        found = await profiles.find_profile(
            session,
            caller.workspace_id,
            external_id=external_id,
            braze_id=braze_id,
            email=email,
            phone=phone,
            alias_name=alias_name,
            alias_label=alias_label,
        )
        return ProfileRead(**found)

    @get("/profiles/{profile_id:str}", operation_id="getProfile", responses=ERROR_RESPONSES)
    async def get_one(
        self, caller: CallerDep, session: SessionDep, profile_id: FromPath[str]
    ) -> ProfileRead:
        """One profile by its id."""
        return ProfileRead(**await profiles.get_profile(session, caller.workspace_id, profile_id))

    @get(
        "/profiles/{profile_id:str}/events",
        operation_id="listProfileEvents",
        responses=ERROR_RESPONSES,
    )
    async def events(
        self,
        caller: CallerDep,
        session: SessionDep,
        profile_id: FromPath[str],
        limit: int = Parameter(default=100, ge=1, le=1000),
    ) -> list[EventRead]:
        """Custom events of a profile, oldest first."""
        found = await profiles.list_events(session, caller.workspace_id, profile_id, limit=limit)
        return [EventRead(**e) for e in found]

    @get(
        "/profiles/{profile_id:str}/purchases",
        operation_id="listProfilePurchases",
        responses=ERROR_RESPONSES,
    )
    async def purchases(
        self,
        caller: CallerDep,
        session: SessionDep,
        profile_id: FromPath[str],
        limit: int = Parameter(default=100, ge=1, le=1000),
    ) -> list[PurchaseRead]:
        """Purchases of a profile, oldest first."""
        found = await profiles.list_purchases(session, caller.workspace_id, profile_id, limit=limit)
        return [PurchaseRead(**p) for p in found]

    @get(
        "/catalogs/{catalog:str}/items", operation_id="listCatalogItems", responses=ERROR_RESPONSES
    )
    async def catalog_items(
        self,
        caller: CallerDep,
        session: SessionDep,
        catalog: FromPath[str],
        limit: int = Parameter(default=100, ge=1, le=1000),
        offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET),
    ) -> list[CatalogItemRead]:
        """Items of a catalog, by id."""
        found = await profiles.list_catalog_items(
            session, caller.workspace_id, catalog, limit=limit, offset=offset
        )
        return [CatalogItemRead(**i) for i in found]

    @get("/accounts", operation_id="listAccounts", responses=ERROR_RESPONSES)
    async def accounts(
        self,
        caller: CallerDep,
        session: SessionDep,
        limit: int = Parameter(default=100, ge=1, le=1000),
        offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET),
    ) -> list[AccountRead]:
        """Accounts, by id."""
        found = await profiles.list_accounts(
            session, caller.workspace_id, limit=limit, offset=offset
        )
        return [AccountRead(**a) for a in found]
