"""The console's test call: the browser is the phone. Its microphone reaches the same call pipeline as a phone
line (through the browser codec), the bot's voice is played back, and each turn — transcript, intent, decision —
is shown as it happens."""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from urllib.parse import urlparse

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import Response

from callbot.access.guard import SESSION_COOKIE
from callbot.access.users import UserStore
from callbot.call.session import CallSession
from callbot.call.stream import POLICY_VIOLATION, Identified, run_stream
from callbot.errors import StorageError
from callbot.frames import StreamStart
from callbot.resources import Resources
from callbot.storage.call_store import TurnRecord
from callbot.web.render import OpsPage, page
from telephony import browser_codec
from telephony.browser_codec import BrowserCodec
from telephony.websocket_pipe import ServerWebSocketPipe

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


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
        log.warning("[call %s] test call without a call record (database unavailable): %s", call_id, exc)
    pipe = ServerWebSocketPipe(websocket)

    async def identify(start: StreamStart) -> Identified:
        return call_id, {}

    def setup(session: CallSession) -> None:
        session.counted = False  # a test call is not a customer's: the dashboard's figures leave it out
        session.turns.listeners.append(lambda turn: _show(pipe, turn))

    log.info("[call %s] test call from the console by %s", call_id, username)
    await pipe.send(browser_codec.event("start", call_id=call_id))
    start = StreamStart(call_id, call_id, {"caller": caller})
    await run_stream(pipe, BrowserCodec(), resources, identify, start=start, setup=setup, label=call_id)


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


def _show(pipe: ServerWebSocketPipe, turn: TurnRecord) -> None:
    decision = turn.decision or {}
    task = asyncio.ensure_future(
        pipe.send(
            browser_codec.event(
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
    )
    _pending.add(task)
    task.add_done_callback(_pending.discard)


_pending: set[asyncio.Future[None]] = set()
