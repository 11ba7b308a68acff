"""Member PDPA routes: consents, export (JSON), erasure (pseudonymisation)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import Provide

from kuekan.auth.guards import provide_member
from kuekan.auth.tokens import Principal
from kuekan.errors import known
from kuekan.privacy import repository as repo
from kuekan.privacy import service


class ConsentIn(msgspec.Struct):
    purpose: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    granted: bool


class EraseIn(msgspec.Struct):
    confirm: bool


class PrivacyController(Controller):
    path = "/me"
    dependencies = {"me": Provide(provide_member)}
    tags = ["member", "privacy"]

    @post("/consents", status_code=201)
    async def consent(self, request: Request[Any, Any, Any], me: Principal,
                      data: ConsentIn) -> dict[str, Any]:
        return await repo.add_consent(request.app.state.pool, me.subject_id, data.purpose,
                                      data.version, data.granted)

    @get("/consents")
    async def consents(self, request: Request[Any, Any, Any], me: Principal) -> dict[str, Any]:
        return {"items": await repo.current_consents(request.app.state.pool, me.subject_id)}

    @get("/export")
    async def export(self, request: Request[Any, Any, Any], me: Principal) -> dict[str, Any]:
        return await service.export(request.app.state.pool, me.subject_id)

    @post("/erasure", status_code=200)
    async def erase(self, request: Request[Any, Any, Any], me: Principal,
                    data: EraseIn) -> dict[str, Any]:
        """Pseudonymise personal fields; the ledger stays balanced under the pseudonym."""
        if not data.confirm:
            raise known("confirmation_required")
        alias = service.pseudonym(request.app.state.settings.privacy_pseudonym_salt,
                                  me.subject_id)
        await service.erase(request.app.state.pool, me.subject_id, alias, me.scope)
        return {"member_id": me.subject_id, "status": "erased", "pseudonym": alias}
