"""Twilio's callbacks about a transfer: the whisper played to the agent, and the transfer's result."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from callbot.call.handover import leave_queue
from callbot.call.turn_log import last_intent
from callbot.errors import StorageError
from callbot.resources import Resources
from telephony import twiml
from telephony.twilio_webhook import (
    TWILIO_FORM,
    WEBHOOK_RESPONSES,
    known_call,
    mailbox_twiml,
    read_form,
    verify_signature,
    xml_response,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio", tags=["twilio"], responses=WEBHOOK_RESPONSES)

FAILED = frozenset({"busy", "no-answer", "failed", "canceled", "queue-full", "error", "system-error"})
"""``DialCallStatus`` / ``QueueResult`` values meaning the caller never reached an agent."""


@router.post(
    "/whisper/{call_id}",
    summary="Whisper to the agent who answers a transfer, before connecting",
    response_class=Response,
    openapi_extra=TWILIO_FORM,
)
async def whisper(call_id: str, request: Request) -> Response:
    resources: Resources = request.app.state.resources
    params = await read_form(request)
    verify_signature(request, resources, params)
    try:
        row = await resources.store.get_call(call_id)
    except StorageError as exc:
        log.warning("[call %s] whisper without call details, database unavailable: %s", call_id, exc)
        row = None
    text = ""
    if row is not None:
        intent = last_intent(row.turns)
        queue = resources.folder.routing.queues.get(row.transfer_queue or "")
        text = (
            queue.whisper_for(intent, row.from_number, row.transfer_skill or "") if queue else intent.replace("_", " ")
        )
    return xml_response(twiml.say(text, resources.bot.language))


@router.post(
    "/transfer/{call_id}",
    summary="Result of a transfer (<Dial> or <Enqueue> action callback)",
    response_class=Response,
    openapi_extra=TWILIO_FORM,
)
async def transfer_result(call_id: str, request: Request) -> Response:
    resources: Resources = request.app.state.resources
    params = await read_form(request)
    verify_signature(request, resources, params)
    await known_call(resources, call_id, params)
    result = params.get("DialCallStatus") or params.get("QueueResult") or "unknown"
    waited = await leave_queue(resources, call_id)
    wait_s = _seconds(params.get("QueueTime")) if "QueueResult" in params else None
    if wait_s is None and waited is not None:
        wait_s = waited[1]
    try:
        await resources.store.record_transfer_result(call_id, result, wait_s)
    except StorageError as exc:
        log.error("[call %s] transfer result %s could not be stored: %s", call_id, result, exc)
    log.info("[call %s] transfer result: %s (waited %s s)", call_id, result, wait_s)
    if result in FAILED:
        # the agent's line was busy, did not answer, the queue refused...: the caller leaves a message
        resources.metrics.stage_failures.labels("transfer").inc()
        log.warning("[call %s] transfer failed (%s): taking a message", call_id, result)
        caller, called = params.get("From", "")[:64], params.get("To", "")[:64]
        document = await mailbox_twiml(
            resources, request, call_id, "no_agent", caller, called, announce=resources.tts is None
        )
        return xml_response(document)
    return xml_response(twiml.hangup())


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
