"""Twilio's HTTP webhooks: the incoming-call webhook and the ``<Connect action>`` callback."""

from __future__ import annotations

import asyncio
import logging
import uuid

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.requests import HTTPConnection

from callbot.errors import StorageError
from callbot.resources import Resources
from callbot.storage.call_store import CallOutcome
from telephony import twiml
from telephony.twilio_signature import is_valid_signature

log = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio", tags=["twilio"])

MAX_FORM_FIELDS = 100


def public_url(request: HTTPConnection, resources: Resources) -> str:
    """The URL the provider used to reach us: behind a reverse proxy, built on the configured public base URL
    (http/https), as ws/wss for a WebSocket request."""
    base = resources.settings.public_base_url
    url = f"{base}{request.url.path}" if base else str(request.url)
    if base and request.url.query:
        url = f"{url}?{request.url.query}"
    return websocket_url(url) if request.scope["type"] == "websocket" else url


def websocket_url(url: str) -> str:
    """http://… -> ws://…, https://… -> wss://… (ws and wss URLs are returned as they are)."""
    return "ws" + url.removeprefix("http") if url.startswith("http") else url


def verify_signature(request: Request, resources: Resources, params: dict[str, str] | None) -> None:
    token = resources.settings.twilio_auth_token
    if token is None:
        return
    url = public_url(request, resources)
    if not is_valid_signature(token.get_secret_value(), url, params, request.headers.get("X-Twilio-Signature")):
        log.warning("rejected %s: missing or invalid X-Twilio-Signature for %s", request.url.path, url)
        raise HTTPException(status_code=403, detail="invalid or missing X-Twilio-Signature")


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise HTTPException(status_code=415, detail="expected application/x-www-form-urlencoded, as Twilio sends")
    form = await request.form(max_fields=MAX_FORM_FIELDS)
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _xml(document: str) -> Response:
    return Response(content=document, media_type="application/xml")


@router.post("/voice", summary="Incoming call webhook (Twilio voice URL)")
async def voice(request: Request) -> Response:
    resources: Resources = request.app.state.resources
    params = await _form(request)
    verify_signature(request, resources, params)
    call_sid = params.get("CallSid", "")
    if not call_sid:
        raise HTTPException(status_code=400, detail="CallSid is required")
    bot = resources.bot
    call_id = uuid.uuid4().hex
    try:
        await resources.store.create_call(
            call_id,
            provider="twilio",
            provider_call_id=call_sid[:64],
            from_number=params.get("From", "")[:64],
            to_number=params.get("To", "")[:64],
            bot=bot.name[:64],
            language=bot.language,
        )
    except StorageError as exc:
        log.error(
            "[call %s] database unavailable at call start, transferring to the default queue: %s",
            call_id,
            exc,
        )
        return _xml(twiml.transfer(bot.queues[bot.default_queue].target, bot.prompts.technical_issue, bot.language))
    if resources.tts is None:
        # without a voice the bot cannot greet: let the provider announce and hand the call to a human
        log.warning("[call %s] no voice installed, transferring to the default queue", call_id)
        target = bot.queues[bot.default_queue].target
        outcome = CallOutcome(
            "transfer",
            reason="tts_unavailable",
            queue=bot.default_queue,
            target=f"{target.type}:{target.value}",
        )
        try:
            await resources.store.finish_call(call_id, outcome, None)
        except StorageError as exc:
            log.error("[call %s] outcome could not be stored: %s", call_id, exc)
        resources.metrics.calls.labels("transfer").inc()
        return _xml(twiml.transfer(bot.queues[bot.default_queue].target, bot.prompts.technical_issue, bot.language))
    http_url = public_url(request, resources)
    base = http_url[: http_url.index("/twilio/")]
    ws_base = websocket_url(base)
    log.info("[call %s] incoming Twilio call %s from %s", call_id, call_sid, params.get("From", "?"))
    return _xml(twiml.connect_stream(f"{ws_base}/twilio/media/{call_id}", f"{base}/twilio/action/{call_id}", call_id))


@router.post("/action/{call_id}", summary="<Connect action> callback: carries out the call's decision")
async def action(call_id: str, request: Request) -> Response:
    resources: Resources = request.app.state.resources
    params = await _form(request)
    verify_signature(request, resources, params)
    bot = resources.bot
    outcome = await _outcome_of(resources, call_id)
    if outcome is None:
        # the stream ended without a decision (dropped connection, crash): a human takes the caller
        log.warning("[call %s] stream ended without a decision; transferring to the default queue", call_id)
        return _xml(twiml.transfer(bot.queues[bot.default_queue].target, bot.prompts.technical_issue, bot.language))
    if outcome.outcome == "transfer" and outcome.queue in bot.queues:
        return _xml(twiml.transfer(bot.queues[outcome.queue].target, None, bot.language))
    return _xml(twiml.hangup())


async def _outcome_of(resources: Resources, call_id: str) -> CallOutcome | None:
    """The call's decision: from memory (the stream may still be closing), else from the database."""
    for _ in range(50):  # a stream that is closing publishes its outcome within moments
        if call_id in resources.outcomes or call_id not in resources.active_calls:
            break
        await asyncio.sleep(0.1)
    outcome = resources.outcomes.pop(call_id)
    if outcome is not None:
        return outcome
    try:
        row = await resources.store.get_call(call_id)
    except StorageError as exc:
        log.error("[call %s] database unavailable in the action callback: %s", call_id, exc)
        return None
    if row is None or row.outcome is None:
        return None
    return CallOutcome(row.outcome, row.outcome_reason, row.transfer_queue, row.transfer_target)
