"""Server-rendered pages: the Jinja2 environment (autoescaping on: what callers said is always shown as text),
the logged-in user of a page, and the HTML answers for refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from callbot import __version__
from callbot.access.guard import ADMIN, EVERYONE, OPS, Principal, authenticate, check_csrf
from callbot.access.users import Role, User
from callbot.web.i18n import pick_language, translate

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


class LoginRequired(Exception):
    """A page was asked for without a session: the browser goes to the login page."""

    def __init__(self, path: str) -> None:
        self.path = path


class RequirePage:
    """``Depends(RequirePage(OPS))``: the page's user (cookie session), with one of ``roles``; form posts must
    carry the session's CSRF token."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        self.roles = roles

    async def __call__(self, request: Request) -> Principal:
        principal = await authenticate(request)
        if principal is None or principal.session is None:
            raise LoginRequired(request.url.path)
        if principal.user.role not in self.roles:
            raise HTTPException(status_code=403, detail="forbidden")
        if request.method not in ("GET", "HEAD"):
            await check_csrf(request, principal.session)
        return principal


StaffPage = Annotated[Principal, Depends(RequirePage(EVERYONE))]
OpsPage = Annotated[Principal, Depends(RequirePage(OPS))]
AdminPage = Annotated[Principal, Depends(RequirePage(ADMIN))]


def page(
    request: Request, template: str, principal: Principal | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render ``template`` for the user of the request (their language, their menu, the CSRF token)."""
    user: User | None = principal.user if principal else None
    language = user.language if user else pick_language(request.headers.get("accept-language"))
    html = _env.get_template(template).render(
        request=request,
        user=user,
        csrf=principal.session.csrf_token if principal and principal.session else "",
        lang=language,
        t=lambda key: translate(key, language),
        version=__version__,
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=_SECURITY_HEADERS)


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


_SECURITY_HEADERS = {
    # no inline script, no framing, no MIME sniffing: what a caller said can never run in the console
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
