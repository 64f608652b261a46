"""The Twilio Media Streams WebSocket: checked before it is accepted, then run by the shared media loop."""

from __future__ import annotations

import logging

from fastapi import APIRouter, WebSocket

from callbot.call.stream import POLICY_VIOLATION, Identified, Refused, run_stream
from callbot.errors import StorageError
from callbot.frames import StreamStart
from callbot.resources import Resources
from telephony.twilio_codec import TwilioCodec
from telephony.twilio_signature import is_valid_signature
from telephony.twilio_webhook import public_url
from telephony.websocket_pipe import ServerWebSocketPipe

log = logging.getLogger(__name__)
router = APIRouter()


@router.websocket("/twilio/media/{call_id}")
async def media_stream(websocket: WebSocket, call_id: str) -> None:
    resources: Resources = websocket.app.state.resources
    refusal = await _refusal(websocket, resources, call_id)
    if refusal is not None:
        log.warning("[call %s] media stream refused: %s", call_id[:64], refusal)
        resources.metrics.protocol_errors.labels("twilio").inc()
        await websocket.close(code=POLICY_VIOLATION, reason=refusal)
        return
    await websocket.accept()

    async def identify(start: StreamStart) -> Identified:
        custom_id = start.custom.get("callId")
        if custom_id is not None and custom_id != call_id:
            raise Refused(f"the stream's callId {custom_id[:64]!r} is not the call of this URL")
        return call_id, {}

    await run_stream(ServerWebSocketPipe(websocket), TwilioCodec(), resources, identify, label=call_id)


async def _refusal(websocket: WebSocket, resources: Resources, call_id: str) -> str | None:
    token = resources.settings.twilio_auth_token
    if token is not None:
        url = public_url(websocket, resources)
        if not is_valid_signature(token.get_secret_value(), url, None, websocket.headers.get("X-Twilio-Signature")):
            return "invalid or missing X-Twilio-Signature"
    if call_id in resources.active_calls:
        return "a media stream is already open for this call"
    try:
        # each stream is granted once (by the incoming-call webhook, or to take a message): a replayed
        # handshake, or a second stream for the call, finds nothing left to claim
        if await resources.store.claim_stream(call_id):
            return None
        exists = await resources.store.call_exists(call_id)
    except StorageError:
        # the webhook created the call moments ago; a database outage must not leave the caller in silence
        return None
    return "this call's media stream was already used" if exists else f"unknown call id {call_id[:64]!r}"
