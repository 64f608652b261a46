"""The console's test call: the browser is the phone. Its microphone reaches the same call pipeline as a phone
line (through the browser codec), the bot's voice is played back, and each turn — transcript, intent, decision —
is shown as it happens."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import uuid
from urllib.parse import urlparse

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from starlette.websockets import WebSocketState

from callbot.access.guard import SESSION_COOKIE
from callbot.access.users import UserStore
from callbot.call.session import CallLog, CallSession
from callbot.errors import ProtocolError, StorageError
from callbot.frames import DtmfIn, HangUp, MarkIn, StreamStart
from callbot.resources import Resources
from callbot.storage.call_store import TurnRecord
from callbot.web.render import OpsPage, page
from telephony import browser_codec

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
POLICY_VIOLATION = 1008
MAX_PROTOCOL_ERRORS = 50


class BrowserLineSink:
    """The player's view of the browser: 20 ms frames of 16 kHz PCM, marks and clear."""

    frame_bytes = browser_codec.FRAME_BYTES
    frame_seconds = browser_codec.FRAME_MS / 1000

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket

    def to_line(self, pcm: bytes, sample_rate: int) -> bytes:
        return browser_codec.to_browser(pcm, sample_rate)

    async def send_audio(self, frame: bytes) -> None:
        if self._ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self._ws.send_bytes(frame)

    async def send_mark(self, name: str) -> None:
        await self.send_event("mark", name=name)

    async def send_clear(self) -> None:
        await self.send_event("clear")

    async def send_event(self, kind: str, **fields: object) -> None:
        if self._ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self._ws.send_text(browser_codec.event(kind, **fields))


@router.get("/ops/test-call")
async def softphone_page(request: Request, principal: OpsPage) -> Response:
    resources: Resources = request.app.state.resources
    menu = resources.bot.menus["main"]
    return page(request, "softphone.html", principal, keys=list("123456789*0#"), menu=menu)


@router.websocket("/console/call")
async def test_call(websocket: WebSocket) -> None:
    resources: Resources = websocket.app.state.resources
    refusal, username = await _refusal(websocket)
    if refusal is not None:
        log.warning("test call refused: %s", refusal)
        await websocket.close(code=POLICY_VIOLATION, reason=refusal)
        return
    await websocket.accept()
    call_id = uuid.uuid4().hex
    call_log = CallLog(log, {"call_id": call_id})
    caller = f"console:{username}"
    try:
        await resources.store.create_call(
            call_id,
            provider="browser",
            provider_call_id=call_id,
            from_number=caller[:64],
            to_number="",
            bot=resources.bot.name[:64],
            language=resources.bot.language,
        )
    except StorageError as exc:
        call_log.warning("test call without a call record (database unavailable): %s", exc)
    sink = BrowserLineSink(websocket)
    session = CallSession(call_id, resources, sink)
    session.counted = False  # a test call is not a customer's: the dashboard's figures leave it out
    session.turns.listeners.append(lambda turn: _show(sink, turn))
    resources.active_calls.add(call_id)
    resources.metrics.active_calls.inc()
    call_log.info("test call from the console by %s", username)
    await sink.send_event("start", call_id=call_id)
    await session.start(StreamStart(call_id, call_id, {"caller": caller}))
    ender = asyncio.create_task(_end_when_decided(session, sink, websocket))
    try:
        await _receive(websocket, session, call_log)
    finally:
        ender.cancel()
        outcome = await session.close()
        resources.active_calls.discard(call_id)
        resources.metrics.active_calls.dec()
        await sink.send_event("end", outcome=outcome.outcome, reason=outcome.reason, queue=outcome.queue)
        if websocket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close()


async def _refusal(websocket: WebSocket) -> tuple[str | None, str]:
    """Only a logged-in ops user, from a page of this site, with the session's CSRF token."""
    origin = websocket.headers.get("origin", "")
    if urlparse(origin).netloc != websocket.headers.get("host", ""):
        return "cross-site WebSocket refused", ""
    users: UserStore = websocket.app.state.users
    cookie = websocket.cookies.get(SESSION_COOKIE, "")
    try:
        session = await users.arun(lambda: users.session(cookie)) if cookie else None
    except StorageError:
        return "database unavailable", ""
    if session is None:
        return "log in first", ""
    if session.user.role not in ("ops", "admin"):
        return "test calls need the ops role", ""
    if not hmac.compare_digest(websocket.query_params.get("csrf", ""), session.csrf_token):
        return "missing or invalid CSRF token", ""
    return None, session.user.username


async def _receive(websocket: WebSocket, session: CallSession, call_log: logging.LoggerAdapter[logging.Logger]) -> None:
    errors = 0
    while True:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            session.hang_up()
            return
        if message["type"] == "websocket.disconnect":
            session.hang_up()
            return
        try:
            if message.get("bytes") is not None:
                session.feed_audio(browser_codec.decode_audio(message["bytes"]).pcm)
                continue
            frame = browser_codec.decode_text(message.get("text") or "")
        except ProtocolError as exc:
            errors += 1
            call_log.warning("rejected test call message (%d/%d): %s", errors, MAX_PROTOCOL_ERRORS, exc)
            if errors >= MAX_PROTOCOL_ERRORS:
                session.hang_up()
                return
            continue
        if isinstance(frame, DtmfIn):
            session.dtmf(frame.digit)
        elif isinstance(frame, MarkIn):
            session.mark(frame.name)
        elif isinstance(frame, HangUp):
            session.hang_up()
            return


async def _end_when_decided(session: CallSession, sink: BrowserLineSink, websocket: WebSocket) -> None:
    """The bot decided (transfer, message taken, goodbye): say how the call ends, then hang up."""
    await session.ended.wait()
    outcome = session.outcome
    if outcome is not None:
        await sink.send_event("end", outcome=outcome.outcome, reason=outcome.reason, queue=outcome.queue)
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code=1000)


def _show(sink: BrowserLineSink, turn: TurnRecord) -> None:
    decision = turn.decision or {}
    task = asyncio.ensure_future(
        sink.send_event(
            "turn",
            speaker=turn.speaker,
            text=turn.text,
            intent=turn.intent,
            confidence=turn.confidence,
            action=turn.action,
            rule=decision.get("rule"),
            queue=decision.get("queue"),
            reason=decision.get("reason"),
        )
    )
    _pending.add(task)
    task.add_done_callback(_pending.discard)


_pending: set[asyncio.Future[None]] = set()
