"""The web console: server-rendered pages for trainees (the mailbox) and operations (configuration, test calls,
dashboard), on the same app as the API."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from callbot.access.guard import authenticate
from callbot.web import access_pages, auth_pages, dashboard_pages, mailbox_pages, ops_pages, softphone
from callbot.web.i18n import translate
from callbot.web.render import STATIC, LoginRequired, page, redirect

PAGE_ROUTERS = (
    auth_pages.router,
    mailbox_pages.router,
    ops_pages.router,
    dashboard_pages.router,
    softphone.router,
    access_pages.router,
)
"""Every router of the console (the security tests enumerate their routes)."""


def install_console(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in PAGE_ROUTERS:
        app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def login_first(request: Request, exc: LoginRequired) -> Response:
        return redirect(f"/login?next={quote(exc.path)}")

    @app.exception_handler(StarletteHTTPException)
    async def html_errors(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path
        if path.startswith(("/api/", "/twilio/", "/static/", "/docs", "/openapi")) or path in ("/healthz", "/metrics"):
            return await http_exception_handler(request, exc)
        principal = await authenticate(request)
        language = principal.user.language if principal else "fr"
        generic = {"forbidden": translate("forbidden", language), "Not Found": translate("not_found", language)}
        message = generic.get(str(exc.detail), str(exc.detail))
        return page(
            request, "error.html", principal, exc.status_code, status_code_text=exc.status_code, message=message
        )
