"""Logging in and out, and the user's console language."""

from __future__ import annotations

import hmac
import logging
import math
import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from callbot.access.guard import SESSION_COOKIE, authenticate
from callbot.access.throttle import LoginThrottle
from callbot.access.users import SESSION_LIFETIME, AccessError, UserStore
from callbot.errors import StorageError
from callbot.resources import Resources
from callbot.web.render import StaffPage, page, redirect

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "callbot_login_csrf"
log = logging.getLogger(__name__)


def _loggable(username: str) -> str:
    """The user name as typed, safe for a log line that fail2ban or a SIEM parses (no spaces, no controls)."""
    return re.sub(r"[^A-Za-z0-9._@-]", "?", username.strip())[:64] or "-"


def secure_cookies(request: Request) -> bool:
    """Cookies are ``Secure`` when the console is reached over HTTPS (directly or behind the proxy)."""
    resources: Resources = request.app.state.resources
    base = resources.settings.public_base_url or ""
    return base.startswith("https://") or request.url.scheme == "https"


def landing(role: str) -> str:
    return "/mailbox" if role == "trainee" else "/dashboard"


@router.get("/")
async def home(request: Request) -> Response:
    principal = await authenticate(request)
    if principal is None or principal.session is None:
        return redirect("/login")
    return redirect(landing(principal.user.role))


@router.get("/login")
async def login_form(request: Request, next: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = page(request, "login.html", None, login_csrf=token, next=_safe_next(next), error=None)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies(request), path="/login"
    )
    return response


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    users: UserStore = request.app.state.users
    throttle: LoginThrottle = request.app.state.login_throttle
    client = request.client.host if request.client else "unknown"
    who = _loggable(username)
    error: str | None = None
    if not expected or not hmac.compare_digest(expected, csrf_token):
        error = "csrf"
    elif (wait := throttle.wait_s(client, username)) > 0:
        # the same answer whether the account exists or not, and the password is not even checked
        error = f"too many failed attempts: try again in {math.ceil(wait)} s"
        log.warning("login throttled: user=%s client=%s wait=%.0fs", who, client, wait)
    else:
        try:
            session = await users.arun(lambda: users.login(username, password))
        except AccessError as exc:
            error = str(exc)
            throttle.failed(client, username)
            log.warning("login failed: user=%s client=%s", who, client)
        except StorageError:
            error = "database unavailable, try again in a moment"
        else:
            throttle.succeeded(client, username)
            log.info("login succeeded: user=%s client=%s", who, client)
    if error is not None:
        token = secrets.token_urlsafe(24)
        message = "reload the page and try again" if error == "csrf" else error
        refused = page(request, "login.html", None, 401, login_csrf=token, next=_safe_next(next), error=message)
        refused.set_cookie(
            LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies(request), path="/login"
        )
        return refused
    response: Response = redirect(_safe_next(next) or landing(session.user.role))
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, principal: StaffPage) -> Response:
    users: UserStore = request.app.state.users
    if principal.session is not None:
        token = principal.session.token
        await users.arun(lambda: users.logout(token))
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/me/language")
async def set_language(request: Request, principal: StaffPage, language: Annotated[str, Form()]) -> Response:
    users: UserStore = request.app.state.users
    user_id = principal.user.id
    await users.arun(lambda: users.set_language(user_id, language))
    return redirect(
        _safe_next(request.headers.get("referer", "").split(str(request.base_url).rstrip("/"), 1)[-1]) or "/"
    )


def _safe_next(target: str) -> str:
    """Only a path of this site (never ``//elsewhere`` or a full URL): no open redirect after login."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else ""
