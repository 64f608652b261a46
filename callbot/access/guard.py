"""Request authentication and role checks, as FastAPI dependencies.

A request is authenticated by the console's session cookie or by an API token (``Authorization: Bearer ...``).
Requests that change something with a session cookie must carry the session's CSRF token (header
``X-CSRF-Token`` or form field ``csrf_token``); API tokens are not sent by browsers on their own, so they need none.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from callbot.access.users import LoginSession, Role, User, UserStore
from callbot.errors import StorageError

SESSION_COOKIE = "callbot_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

EVERYONE: tuple[Role, ...] = ("admin", "ops", "trainee")
OPS: tuple[Role, ...] = ("admin", "ops")
ACD: tuple[Role, ...] = ("admin", "ops", "acd")
"""Agent statuses and queue state: what an ACD needs, and all the ``acd`` role may do."""
ADMIN: tuple[Role, ...] = ("admin",)


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    session: LoginSession | None
    """The console session, when the request came with the cookie (None for API tokens)."""


class NotAuthenticated(HTTPException):
    def __init__(self) -> None:
        super().__init__(
            status_code=401,
            detail="log in to the console, or send an API token (Authorization: Bearer ...)",
            headers={"WWW-Authenticate": 'Bearer realm="callbot"'},
        )


async def authenticate(request: Request) -> Principal | None:
    """Who sent the request, if anyone (cached on the request)."""
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    users: UserStore = request.app.state.users
    principal: Principal | None = None
    try:
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
            user = await users.arun(lambda: users.api_user(token)) if token else None
            principal = Principal(user, None) if user else None
        elif cookie := request.cookies.get(SESSION_COOKIE):
            session = await users.arun(lambda: users.session(cookie))
            principal = Principal(session.user, session) if session else None
    except StorageError as exc:
        raise HTTPException(status_code=503, detail=f"database unavailable: {exc}") from exc
    request.state.principal = principal
    return principal


class Require:
    """``Depends(Require(OPS))``: the request's user, who must have one of ``roles``."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        self.roles = roles

    async def __call__(self, request: Request) -> User:
        principal = await authenticate(request)
        if principal is None:
            raise NotAuthenticated()
        if principal.user.role not in self.roles:
            raise HTTPException(status_code=403, detail=f"this needs the role {' or '.join(self.roles)}")
        if principal.session is not None and request.method not in SAFE_METHODS:
            await check_csrf(request, principal.session)
        return principal.user


async def check_csrf(request: Request, session: LoginSession) -> None:
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, session.csrf_token):
        raise HTTPException(status_code=403, detail="missing or invalid CSRF token; reload the page and try again")


AnyStaff = Annotated[User, Depends(Require(EVERYONE))]
"""A logged-in user of any role (trainees included)."""
OpsUser = Annotated[User, Depends(Require(OPS))]
AcdUser = Annotated[User, Depends(Require(ACD))]
"""An ACD's token, or an ops user."""
