"""Twilio's HTTP webhooks: the incoming-call webhook and the ``<Connect action>`` callback."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

import httpx
from fastapi import APIRouter, HTTPException, Request, Response
from starlette.requests import HTTPConnection

from callbot.api_docs import content, refusals
from callbot.call.handover import failover_outcome
from callbot.call.outcome import CallOutcome, target_from_json
from callbot.errors import StorageError
from callbot.logs import CALL_ID as LOGGED_CALL
from callbot.resources import Resources
from telephony import twiml
from telephony.twilio_signature import is_valid_signature

log = logging.getLogger(__name__)
TWILIO_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        name: {"type": "string", "maxLength": 256}
                        for name in (
                            "CallSid",
                            "AccountSid",
                            "From",
                            "To",
                            "CallStatus",
                            "DialCallStatus",
                            "QueueResult",
                            "QueueTime",
                        )
                    },
                    "required": ["CallSid"],
                }
            }
        },
    }
}
"""The form Twilio posts (the fields our webhooks read; Twilio sends more), for the OpenAPI document: the
handlers read the form themselves, after the signature check."""
WEBHOOK_RESPONSES = {
    **refusals(400, 403, 404, 413, 415, 429),
    200: content("application/xml", "TwiML: what the provider does with the call next"),
}
router = APIRouter(prefix="/twilio", tags=["twilio"], responses=WEBHOOK_RESPONSES)

MAX_FORM_FIELDS = 100
DRAINED = "drained"
"""Query parameter of a webhook a draining instance sent back to the balancer once (not a second time)."""
CALL_ID = re.compile(r"[0-9a-f]{32}")
"""Our call ids (uuid4 hex): anything else in a callback URL names no call of ours."""
TWIML_TARGETS = frozenset({"number", "sip", "queue"})
"""Targets TwiML can reach (``dialplan`` and ``endpoint`` targets are Asterisk's)."""


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


async def read_form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise HTTPException(status_code=415, detail="expected application/x-www-form-urlencoded, as Twilio sends")
    try:
        form = await request.form(max_fields=MAX_FORM_FIELDS)
    except HTTPException:
        raise
    except Exception as exc:  # too many fields, a malformed body: the provider gets a clear 400
        raise HTTPException(status_code=400, detail=f"malformed form: {exc}") from exc
    # a NUL character is no part of any provider's field, and a database cannot store it
    return {key: value.replace("\x00", "") for key, value in form.items() if isinstance(value, str)}


def xml_response(document: str) -> Response:
    return Response(content=document, media_type="application/xml")


def base_url(request: Request, resources: Resources) -> str:
    """Our public http(s) base URL, as the provider reached this webhook."""
    url = public_url(request, resources)
    return url[: url.index("/twilio/")]


def transfer_twiml(
    resources: Resources, request: Request, call_id: str, outcome: CallOutcome, announcement: str | None = None
) -> str | None:
    """The TwiML that carries out a transfer outcome (None when it names no usable target)."""
    routing = resources.folder.routing
    queue = routing.queues.get(outcome.queue or "")
    target = outcome.target
    if target is None or target.type == "webhook":
        target = queue.target if queue is not None and queue.target.type != "webhook" else None
    if target is None or target.type not in TWIML_TARGETS:
        return None
    base = base_url(request, resources)
    whisper = f"{base}/twilio/whisper/{call_id}" if queue is not None and queue.whisper else None
    return twiml.transfer(
        target,
        announcement,
        resources.bot.language,
        action_url=f"{base}/twilio/transfer/{call_id}",
        whisper_url=whisper,
    )


async def mailbox_twiml(
    resources: Resources, request: Request, call_id: str, reason: str, caller: str, called: str, *, announce: bool
) -> str:
    """Reopen a media stream only to take a message (the call is not lost when no one can take it). With
    ``announce`` the provider says the prompt (the bot has no voice)."""
    try:
        await resources.store.grant_stream(call_id)
    except StorageError as exc:  # the media route lets streams in while the database is down
        log.error("[call %s] the message stream could not be granted: %s", call_id, exc)
    base = base_url(request, resources)
    bot = resources.bot
    parameters = {"callId": call_id, "caller": caller, "called": called, "mode": "mailbox", "reason": reason}
    return twiml.connect_stream(
        f"{websocket_url(base)}/twilio/media/{call_id}",
        f"{base}/twilio/action/{call_id}",
        parameters,
        bot.overflow_prompt(reason) if announce else None,
        bot.language,
    )


async def _failover_twiml(
    resources: Resources, request: Request, call_id: str, why: str, caller: str, called: str
) -> str | None:
    """Send the caller to a human without the bot's dialogue (it cannot greet, the stream was lost...): the
    failover transfer, or — when no queue can take the call now — a stream that takes a message. None when
    the bot should go on as usual."""
    outcome = await failover_outcome(resources, call_id, why)
    if outcome.outcome != "transfer":
        if why == "database_unavailable":
            return None  # the bot can still answer; its turns wait in memory for the database
        reason = outcome.reason or "no_agent"
        return await mailbox_twiml(resources, request, call_id, reason, caller, called, announce=resources.tts is None)
    try:
        await resources.store.finish_call(call_id, outcome, None, [why])
    except StorageError as exc:
        log.error("[call %s] outcome could not be stored: %s", call_id, exc)
    resources.metrics.calls.labels("transfer").inc()
    return transfer_twiml(resources, request, call_id, outcome, resources.bot.prompts.technical_issue)


async def known_call(resources: Resources, call_id: str, params: dict[str, str]) -> None:
    """A signed callback names a call: one we never saw (a malformed id is refused) or whose record was lost
    is recorded now from what the provider says, so that a message stream can still be granted for it."""
    if not CALL_ID.fullmatch(call_id):
        raise HTTPException(status_code=404, detail="no such call")
    LOGGED_CALL.set(call_id)
    try:
        if await resources.store.call_exists(call_id):
            return
        log.warning("[call %s] callback for a call without a record; recording it now", call_id)
        await resources.store.create_call(
            call_id,
            provider="twilio",
            provider_call_id=params.get("CallSid", "")[:64],
            from_number=params.get("From", "")[:64],
            to_number=params.get("To", "")[:64],
            bot=resources.bot.name[:64],
            language=resources.bot.language,
        )
    except StorageError as exc:  # the media route lets streams in while the database is down
        log.error("[call %s] database unavailable in a callback: %s", call_id, exc)


@router.post(
    "/voice", summary="Incoming call webhook (Twilio voice URL)", response_class=Response, openapi_extra=TWILIO_FORM
)
async def voice(request: Request) -> Response:
    resources: Resources = request.app.state.resources
    params = await read_form(request)
    verify_signature(request, resources, params)
    call_sid = params.get("CallSid", "")
    if not call_sid:
        raise HTTPException(status_code=400, detail="CallSid is required")
    bot = resources.bot
    caller, called = params.get("From", "")[:64], params.get("To", "")[:64]
    if resources.draining and DRAINED not in request.query_params:
        # stopping: the call's webhook again through the balancer, which no longer sends calls here
        log.warning("draining: call %s sent back to the balancer", call_sid[:64])
        url = httpx.URL(public_url(request, resources)).copy_merge_params({DRAINED: "1"})
        return xml_response(twiml.redirect(str(url)))
    call_id = await _ringing_call(resources, call_sid[:64])
    LOGGED_CALL.set(call_id)
    if call_id is not None:
        # the same call's webhook again (a retry, a replayed request): the same call, not a second record
        log.warning("[call %s] incoming-call webhook again for %s", call_id, call_sid[:64])
    else:
        call_id = uuid.uuid4().hex
        LOGGED_CALL.set(call_id)
        try:
            await resources.store.create_call(
                call_id,
                provider="twilio",
                provider_call_id=call_sid[:64],
                from_number=caller,
                to_number=called,
                bot=bot.name[:64],
                language=bot.language,
                streams_allowed=1,
            )
        except StorageError as exc:
            log.error("[call %s] database unavailable at call start: %s", call_id, exc)
            document = await _failover_twiml(resources, request, call_id, "database_unavailable", caller, called)
            if document is not None:
                return xml_response(document)
    if resources.at_capacity() or resources.draining:
        # the bot could not answer this one in time (or a second draining instance was reached): a human (or
        # the mailbox) takes it, announced by the provider
        why = "draining" if resources.draining else "capacity"
        state = "draining" if resources.draining else "at capacity"
        log.warning("[call %s] %s (%d calls), handing the call over", call_id, state, len(resources.active_calls))
        document = await _failover_twiml(resources, request, call_id, why, caller, called)
        if document is not None:
            return xml_response(document)
    if resources.tts is None:
        # without a voice the bot cannot greet: let the provider announce and hand the call to a human
        log.warning("[call %s] no voice installed, handing the call over", call_id)
        document = await _failover_twiml(resources, request, call_id, "tts_unavailable", caller, called)
        assert document is not None
        return xml_response(document)
    base = base_url(request, resources)
    resources.last_answer_at = time.monotonic()
    log.info("[call %s] incoming Twilio call %s", call_id, call_sid)
    log.debug("[call %s] from %s to %s", call_id, caller or "?", called or "?")
    return xml_response(
        twiml.connect_stream(
            f"{websocket_url(base)}/twilio/media/{call_id}",
            f"{base}/twilio/action/{call_id}",
            {"callId": call_id, "caller": caller, "called": called},
        )
    )


@router.post(
    "/action/{call_id}",
    summary="<Connect action> callback: carries out the call's decision",
    response_class=Response,
    openapi_extra=TWILIO_FORM,
)
async def action(call_id: str, request: Request) -> Response:
    resources: Resources = request.app.state.resources
    params = await read_form(request)
    verify_signature(request, resources, params)
    await known_call(resources, call_id, params)
    outcome = await _outcome_of(resources, call_id)
    if outcome is None:
        # the stream ended without a decision (dropped connection, crash): a human takes the caller
        log.warning("[call %s] stream ended without a decision; handing the call over", call_id)
        caller, called = params.get("From", "")[:64], params.get("To", "")[:64]
        document = await _failover_twiml(resources, request, call_id, "stream_lost", caller, called)
        assert document is not None
        return xml_response(document)
    if outcome.outcome == "transfer":
        document = transfer_twiml(resources, request, call_id, outcome)
        if document is None:
            # a target TwiML cannot reach (dialplan and endpoint targets are Asterisk's): the caller leaves a message
            log.error("[call %s] queue %s has no target Twilio can reach; taking a message", call_id, outcome.queue)
            caller, called = params.get("From", "")[:64], params.get("To", "")[:64]
            document = await mailbox_twiml(
                resources, request, call_id, "no_agent", caller, called, announce=resources.tts is None
            )
        return xml_response(document)
    return xml_response(twiml.hangup())


async def _ringing_call(resources: Resources, call_sid: str) -> str | None:
    try:
        return await resources.store.ringing_call("twilio", call_sid)
    except StorageError:
        return None


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
    return CallOutcome(
        row.outcome, row.outcome_reason, row.transfer_queue, target_from_json(row.transfer), row.transfer_skill
    )
