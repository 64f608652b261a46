"""Administrators' page of who may get in: users (disable, enable) and API tokens (last use, revoke). Creating
users and tokens stays on the command line (``callbot users``), where a new secret is shown once and never
passes through a browser."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response

from callbot.access.users import AccessError, UserStore
from callbot.web.render import AdminPage, page, redirect

log = logging.getLogger(__name__)
router = APIRouter(prefix="/admin", include_in_schema=False)


def _users(request: Request) -> UserStore:
    users: UserStore = request.app.state.users
    return users


@router.get("/access")
async def access(request: Request, principal: AdminPage) -> Response:
    users = _users(request)
    accounts = await users.arun(users.list_accounts)
    tokens = await users.arun(users.list_tokens)
    return page(request, "admin_access.html", principal, accounts=accounts, tokens=tokens)


@router.post("/users/{username}/active")
async def set_active(
    request: Request, principal: AdminPage, username: str, active: Annotated[str, Form(pattern="^[01]$")]
) -> Response:
    if username == principal.user.username and active == "0":
        raise HTTPException(status_code=400, detail="you cannot disable your own account")
    users = _users(request)
    try:
        await users.arun(lambda: users.set_active(username, active == "1"))
    except AccessError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    log.warning("user %s %s by %s", username, "enabled" if active == "1" else "disabled", principal.user.username)
    return redirect("/admin/access")


@router.post("/tokens/{token_id}/revoke")
async def revoke(request: Request, principal: AdminPage, token_id: str) -> Response:
    users = _users(request)
    try:
        revoked = await users.arun(lambda: users.revoke_token(token_id))
    except AccessError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    who = principal.user.username
    log.warning("API token %s (%s, of %s) revoked by %s", revoked.id, revoked.name, revoked.username, who)
    return redirect("/admin/access")
