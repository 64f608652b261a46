"""A WebSocket accepted by our server (Twilio Media Streams, the console's softphone, Asterisk chan_websocket
dialling us) as the pipe of a media stream."""

from __future__ import annotations

import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from callbot.call.line import WireMessage

NORMAL_CLOSES = frozenset({1000, 1001})
"""Close codes of a peer that ended the call (1001: a browser tab closed); any other is a broken stream."""


def lost_by(code: int | None) -> str | None:
    """Why a WebSocket closed with ``code`` broke the stream (None: a normal end)."""
    return None if code in NORMAL_CLOSES else f"the WebSocket closed with code {code}"


class ServerWebSocketPipe:
    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        self.lost: str | None = None

    async def receive(self) -> WireMessage | None:
        try:
            message = await self._ws.receive()
        except WebSocketDisconnect as exc:
            self.lost = lost_by(exc.code)
            return None
        except RuntimeError:  # already closed (by us)
            return None
        if message["type"] == "websocket.disconnect":
            self.lost = lost_by(message.get("code", 1005))
            return None
        text = message.get("text")
        if text is not None:
            return str(text)
        data = message.get("bytes")
        return bytes(data) if data is not None else ""

    async def send(self, message: WireMessage) -> None:
        if self._ws.application_state is not WebSocketState.CONNECTED:
            return
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            if isinstance(message, str):
                await self._ws.send_text(message)
            else:
                await self._ws.send_bytes(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self._ws.close(code=code, reason=reason)
