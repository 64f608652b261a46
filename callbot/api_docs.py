"""What the HTTP API answers besides success, for the OpenAPI document: every refusal is ``{"detail": "..."}``
(validation errors, 422, are FastAPI's list of errors)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorOut(BaseModel):
    detail: str


_WHY = {
    400: "the request could not be parsed (a malformed body or field, a NUL character)",
    401: "no login: send a console session or an API token (missing, unknown, expired or revoked)",
    403: "the user's role may not do this (webhooks: a missing or invalid provider signature)",
    404: "no such resource",
    409: "the change conflicts with the resource's state",
    413: "the request body is larger than the limit (docs/access.md)",
    415: "the body is not of the expected content type",
    429: "too many requests from this address; Retry-After says when to try again",
    503: "the database (or another component it needs) is unavailable",
}


def refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these refusals."""
    return {code: {"model": ErrorOut, "description": _WHY[code]} for code in codes}


STAFF = refusals(400, 401, 403, 503)
"""What any route behind a login may answer."""
CHANGES = refusals(413)
"""What a route with a request body may answer besides."""


def content(media_type: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """An OpenAPI response whose body is not JSON."""
    return {"description": description, "content": {media_type: {"schema": schema or {"type": "string"}}}}
