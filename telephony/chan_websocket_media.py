"""Asterisk chan_websocket media, both ways, run by the shared media loop.

Asterisk dials us — ``Dial(WebSocket/<connection>/c(slin16)f(json)v(caller=...,called=...))`` with the
connection's ``uri`` pointing at ``/asterisk/media`` — or, for an ARI external-media channel in server mode, we
connect to Asterisk's ``/media/<connection id>``. Either way the subprotocol is ``media`` and no extension is
negotiated (Asterisk refuses a handshake that selects one it did not offer).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import logging
import uuid

import websockets
from fastapi import APIRouter, WebSocket

from callbot.call.line import WireMessage
from callbot.call.stream import POLICY_VIOLATION, Identified, Identify, run_stream
from callbot.errors import StorageError
from callbot.frames import StreamStart
from callbot.resources import Resources
from telephony.chan_websocket_codec import ChanWebSocketCodec
from telephony.websocket_pipe import ServerWebSocketPipe, lost_by

log = logging.getLogger(__name__)
router = APIRouter()

SUBPROTOCOL = "media"
MAX_MESSAGE_BYTES = 65500
"""Asterisk's largest WebSocket message; a larger one closes the connection (and hangs up the call)."""


@router.websocket("/asterisk/media")
async def asterisk_dials_us(websocket: WebSocket) -> None:
    """A call Asterisk sends us with ``Dial(WebSocket/...)``; caller and called number come as ``v()`` parameters
    (``caller``, ``called``) or channel variables (``CALLBOT_CALLER``, ``CALLBOT_CALLED``) in a JSON MEDIA_START."""
    resources: Resources = websocket.app.state.resources
    refusal = _refusal(websocket, resources)
    if refusal is not None:
        log.warning("chan_websocket connection refused: %s", refusal)
        resources.metrics.protocol_errors.labels("websocket").inc()
        await websocket.close(code=POLICY_VIOLATION, reason=refusal)
        return
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    params = {k: v[:64] for k, v in websocket.query_params.items() if k in ("caller", "called", "call_id")}
    peer = websocket.client
    label = f"websocket {peer.host}:{peer.port}" if peer else "websocket"
    await run_stream(
        ServerWebSocketPipe(websocket), ChanWebSocketCodec(), resources, _new_call(resources, params), label=label
    )


def _refusal(websocket: WebSocket, resources: Resources) -> str | None:
    settings = resources.settings
    if resources.draining:
        return "this instance is draining (stopping): no new call"
    if settings.asterisk_media_password is None:
        return None
    expected = f"{settings.asterisk_media_username or ''}:{settings.asterisk_media_password.get_secret_value()}"
    scheme, _, credentials = websocket.headers.get("authorization", "").partition(" ")
    try:
        given = base64.b64decode(credentials, validate=True).decode() if scheme.lower() == "basic" else ""
    except (ValueError, UnicodeDecodeError):
        given = ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return "missing or wrong credentials (websocket_client.conf username and password)"
    return None


def _new_call(resources: Resources, params: dict[str, str]) -> Identify:
    async def identify(start: StreamStart) -> Identified:
        """A new call, numbers from the dial string's parameters or the channel's variables."""
        call_id = uuid.uuid4().hex
        caller = params.get("caller") or start.custom.get("CALLBOT_CALLER", "")
        called = params.get("called") or start.custom.get("CALLBOT_CALLED", "")
        try:
            await resources.store.create_call(
                call_id,
                provider="asterisk",
                provider_call_id=(start.call_sid or start.stream_id)[:64],
                from_number=caller[:64],
                to_number=called[:64],
                bot=resources.bot.name[:64],
                language=resources.bot.language,
            )
        except StorageError as exc:
            log.error("[call %s] call record not created (database unavailable): %s", call_id, exc)
        return call_id, {"caller": caller[:64], "called": called[:64]}

    return identify


class ClientWebSocketPipe:
    """Our connection to Asterisk's ``/media/<id>`` (an ARI external-media channel in server mode)."""

    def __init__(self, connection: websockets.ClientConnection) -> None:
        self._ws = connection
        self.lost: str | None = None

    async def receive(self) -> WireMessage | None:
        try:
            return await self._ws.recv()
        except websockets.ConnectionClosed as exc:
            self.lost = lost_by(exc.rcvd.code if exc.rcvd is not None else None)
            return None

    async def send(self, message: WireMessage) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._ws.send(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._ws.close(code, reason)


async def connect_media(url: str, resources: Resources, identify: Identify, label: str) -> None:
    """Connect to Asterisk's media WebSocket for a call set up through ARI, and run the call on it."""
    async with websockets.connect(
        url, subprotocols=[websockets.Subprotocol(SUBPROTOCOL)], compression=None, max_size=MAX_MESSAGE_BYTES
    ) as connection:
        await run_stream(ClientWebSocketPipe(connection), ChanWebSocketCodec(), resources, identify, label=label)
