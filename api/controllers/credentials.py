"""Credentials: write secrets, never read them back."""

from __future__ import annotations

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from api.controllers.credential_keys import key_read
from api.deps import CallerDep, RuntimeDep, SessionDep
from api.errors import ERROR_RESPONSES, refuse_unknown_query_params
from api.schemas.credentials import CredentialCreate, CredentialRead, CredentialUpdate
from api.views import credential_read
from zerocopy.services import credentials, warehouse_keys
from zerocopy.state.models import Credential


def _read(runtime: RuntimeDep, cred: Credential) -> CredentialRead:
    read = credential_read(cred, credentials.secret_field_names(runtime.secret_box, cred))
    state = warehouse_keys.key_state(runtime.secret_box, cred)
    return msgspec.structs.replace(read, key=key_read(state)) if state else read


class CredentialController(Controller):
    path = "/v1/credentials"
    guards = [refuse_unknown_query_params]
    tags = ["credentials"]

    @post(operation_id="createCredential", responses=ERROR_RESPONSES)
    async def create(
        self,
        caller: CallerDep,
        session: SessionDep,
        runtime: RuntimeDep,
        data: JSONBody[CredentialCreate],
    ) -> CredentialRead:
        """Store a credential; its secrets are encrypted and never returned."""
        cred = await credentials.create_credential(
            session,
            runtime.secret_box,
            caller.workspace_id,
            name=data.name,
            kind=data.kind,
            settings=data.settings,
            secrets=data.secrets,
            expires_at=data.expires_at,
        )
        return _read(runtime, cred)

    @get(operation_id="listCredentials", responses=ERROR_RESPONSES)
    async def list_all(
        self, caller: CallerDep, session: SessionDep, runtime: RuntimeDep
    ) -> list[CredentialRead]:
        """Every credential of the workspace."""
        found = await credentials.list_credentials(session, caller.workspace_id)
        return [_read(runtime, c) for c in found]

    @get("/{credential_id:str}", operation_id="getCredential", responses=ERROR_RESPONSES)
    async def get_one(
        self,
        caller: CallerDep,
        session: SessionDep,
        runtime: RuntimeDep,
        credential_id: FromPath[str],
    ) -> CredentialRead:
        """One credential."""
        cred = await credentials.get_credential(session, caller.workspace_id, credential_id)
        return _read(runtime, cred)

    @patch("/{credential_id:str}", operation_id="updateCredential", responses=ERROR_RESPONSES)
    async def update(
        self,
        caller: CallerDep,
        session: SessionDep,
        runtime: RuntimeDep,
        credential_id: FromPath[str],
        data: JSONBody[CredentialUpdate],
    ) -> CredentialRead:
        """Rename, change settings, or replace some secrets."""
        cred = await credentials.update_credential(
            session,
            runtime.secret_box,
            caller.workspace_id,
            credential_id,
            name=data.name,
            settings=data.settings,
            secrets=data.secrets,
            expires_at=data.expires_at,
        )
        return _read(runtime, cred)

    @delete("/{credential_id:str}", operation_id="deleteCredential", responses=ERROR_RESPONSES)
    async def remove(
        self, caller: CallerDep, session: SessionDep, credential_id: FromPath[str]
    ) -> None:
        """Delete a credential no source uses (else ``credential_in_use``)."""
        await credentials.delete_credential(session, caller.workspace_id, credential_id)
