"""The Twilio Media Streams WebSocket: wire messages in, frames to the call session, bot audio out."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from callbot.call.session import CallLog, CallSession
from callbot.errors import ProtocolError, StorageError
from callbot.frames import AudioIn, DtmfIn, HangUp, MarkIn, StreamStart
from callbot.resources import Resources
from telephony.twilio_codec import FRAME_BYTES, FRAME_MS, TwilioCodec
from telephony.twilio_signature import is_valid_signature
from telephony.twilio_webhook import public_url

log = logging.getLogger(__name__)
router = APIRouter()

MAX_PROTOCOL_ERRORS = 50
"""A peer that keeps sending broken messages is disconnected after this many; each one is logged."""

POLICY_VIOLATION = 1008


class TwilioLineSink:
    """The player's view of the stream: 20 ms mu-law frames, marks and clear, as Twilio messages."""

    frame_bytes = FRAME_BYTES
    frame_seconds = FRAME_MS / 1000

    def __init__(self, websocket: WebSocket, codec: TwilioCodec) -> None:
        self._ws = websocket
        self._codec = codec

    def to_line(self, pcm: bytes, sample_rate: int) -> bytes:
        return self._codec.to_line(pcm, sample_rate)

    async def send_audio(self, frame: bytes) -> None:
        await self._send(self._codec.media(frame))

    async def send_mark(self, name: str) -> None:
        await self._send(self._codec.mark(name))

    async def send_clear(self) -> None:
        await self._send(self._codec.clear())

    async def _send(self, text: str) -> None:
        if self._ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self._ws.send_text(text)


@router.websocket("/twilio/media/{call_id}")
async def media_stream(websocket: WebSocket, call_id: str) -> None:
    resources: Resources = websocket.app.state.resources
    call_log = CallLog(log, {"call_id": call_id})
    refusal = await _refusal(websocket, resources, call_id)
    if refusal is not None:
        call_log.warning("media stream refused: %s", refusal)
        await websocket.close(code=POLICY_VIOLATION, reason=refusal)
        return
    await websocket.accept()
    resources.active_calls.add(call_id)
    resources.metrics.active_calls.inc()
    codec = TwilioCodec()
    session = CallSession(call_id, resources, TwilioLineSink(websocket, codec))
    closer = asyncio.create_task(_close_when_ended(websocket, session))
    try:
        await _receive(websocket, codec, session, resources, call_log)
    finally:
        closer.cancel()
        outcome = await session.close()
        resources.active_calls.discard(call_id)
        resources.metrics.active_calls.dec()
        call_log.info("media stream closed, outcome %s", outcome)
        if websocket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close()


async def _refusal(websocket: WebSocket, resources: Resources, call_id: str) -> str | None:
    token = resources.settings.twilio_auth_token
    if token is not None:
        url = public_url(websocket, resources)
        if not is_valid_signature(token.get_secret_value(), url, None, websocket.headers.get("X-Twilio-Signature")):
            return "invalid or missing X-Twilio-Signature"
    if call_id in resources.active_calls:
        return "a media stream is already open for this call"
    try:
        exists = await resources.store.call_exists(call_id)
    except StorageError:
        # the webhook created the call moments ago; a database outage must not leave the caller in silence
        return None
    return None if exists else f"unknown call id {call_id[:64]!r}"


async def _receive(
    websocket: WebSocket, codec: TwilioCodec, session: CallSession, resources: Resources, call_log: CallLog
) -> None:
    errors = 0
    started = False
    while True:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            session.hang_up()
            return
        if message["type"] == "websocket.disconnect":
            session.hang_up()
            return
        text = message.get("text")
        try:
            if text is None:
                raise ProtocolError("binary WebSocket frame; Media Streams messages are JSON text")
            frame = codec.decode(text)
        except ProtocolError as exc:
            errors += 1
            resources.metrics.protocol_errors.labels("twilio").inc()
            call_log.warning("rejected media stream message (%d/%d): %s", errors, MAX_PROTOCOL_ERRORS, exc)
            if errors >= MAX_PROTOCOL_ERRORS:
                await websocket.close(code=POLICY_VIOLATION, reason="too many invalid messages")
                session.hang_up()
                return
            continue
        if isinstance(frame, AudioIn):
            session.feed_audio(frame.pcm)
        elif isinstance(frame, StreamStart):
            if started:
                call_log.warning("duplicate 'start' message ignored")
                continue
            started = True
            await session.start(frame)
        elif isinstance(frame, DtmfIn):
            session.dtmf(frame.digit)
        elif isinstance(frame, MarkIn):
            session.mark(frame.name)
        elif isinstance(frame, HangUp):
            session.hang_up()
            return


async def _close_when_ended(websocket: WebSocket, session: CallSession) -> None:
    """When the bot has decided (transfer, overflow, goodbye), closing the stream hands the call back to
    Twilio, which then requests the <Connect action> URL."""
    await session.ended.wait()
    if session.outcome is not None:
        # published before the close, so the action callback that follows finds it
        session.res.outcomes[session.call_id] = session.outcome
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code=1000)
