"""The published NLU model, served with Rasa's model-server protocol so that any number of external Rasa
servers follow what operations publish: Rasa polls ``GET /api/nlu/model/published?token=...`` with the
fingerprint it holds in ``If-None-Match``; the answer is 304 while that is still the published model, else
the model file with its ``ETag`` (the model's name, which carries its training-data hash). Each poll also
says which model that Rasa serves: ``GET /api/nlu/servers`` lists them."""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel

from callbot.access.guard import OpsUser
from callbot.api_docs import STAFF, content, refusals
from callbot.resources import Resources
from nlu.publishing import serving_model

log = logging.getLogger(__name__)
router = APIRouter()


@dataclass
class Poll:
    serving: str
    """The model the Rasa server holds (its If-None-Match), or "" before its first pull."""
    at: float


class RasaServer(BaseModel):
    address: str
    serving: str
    current: bool
    """Whether it serves the published model."""
    seconds_ago: float


def _fingerprint(value: str | None) -> str:
    return (value or "").removeprefix("W/").strip().strip('"')


@router.get(
    "/api/nlu/model/published",
    tags=["nlu"],
    response_class=FileResponse,
    responses={
        200: content("application/gzip", "the published model (a Rasa .tar.gz), with its ETag"),
        304: {"description": "the fingerprint in If-None-Match is the published model"},
        **refusals(401, 404),
    },
)
async def published_model(request: Request, token: str = Query(default="", max_length=256)) -> Response:
    """The model Rasa servers should serve (Rasa's model-server protocol; the token as Rasa sends it)."""
    resources: Resources = request.app.state.resources
    expected = resources.settings.model_server_token
    if expected is None:
        raise HTTPException(status_code=404, detail="model server off: set CALLBOT_MODEL_SERVER_TOKEN")
    if not hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        raise HTTPException(status_code=401, detail="wrong or missing token")
    model = serving_model(resources.settings.bot_dir, resources.settings.models_dir)
    held = _fingerprint(request.headers.get("if-none-match"))
    address = request.client.host if request.client else "?"
    resources.model_polls[address] = Poll(held, time.time())
    if not model.is_file():
        raise HTTPException(status_code=404, detail="no trained model yet: train and publish one")
    etag = model.name.removesuffix(".tar.gz")
    if held == etag:
        return Response(status_code=304, headers={"ETag": f'"{etag}"'})
    log.info("model server: %s pulls %s (it held %s)", address, model.name, held or "nothing")
    resources.model_polls[address] = Poll(etag, time.time())
    return FileResponse(model, media_type="application/gzip", headers={"ETag": f'"{etag}"', "filename": model.name})


@router.get("/api/nlu/servers", tags=["nlu"], response_model=list[RasaServer], responses=STAFF)
async def rasa_servers(request: Request, user: OpsUser) -> list[RasaServer]:
    """The Rasa servers pulling from this instance, the model each serves and whether it is the published one."""
    resources: Resources = request.app.state.resources
    model = serving_model(resources.settings.bot_dir, resources.settings.models_dir).name.removesuffix(".tar.gz")
    now = time.time()
    return [
        RasaServer(address=a, serving=p.serving, current=p.serving == model, seconds_ago=round(now - p.at, 1))
        for a, p in sorted(resources.model_polls.items())
    ]
