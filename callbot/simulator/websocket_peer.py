"""Asterisk's side of a chan_websocket call, written from ``channels/chan_websocket.c`` and what a real
Asterisk 22.10 was seen doing:

- the first message is MEDIA_START, plain text (``MEDIA_START connection_id:<id> channel:<name> channel_id:<id>
  format:<fmt> optimal_frame_size:<n> ptime:20``) or JSON (the same fields and ``channel_variables``);
- the caller's audio goes in BINARY frames of ``optimal_frame_size`` bytes (ulaw 160, slin 320, slin16 640),
  keys as ``DTMF_END digit:<d> channel_id:<id>``;
- commands from the server are TEXT, case-sensitive, at most 128 bytes (a longer one is ignored), plain or JSON as
  MEDIA_START was: ``MARK_MEDIA <id>`` is answered with ``MEDIA_MARK_PROCESSED <id>`` once the audio before it has
  played, ``FLUSH_MEDIA`` drops the queue (and its marks) without a word, ``HANGUP`` ends the call (close 1000);
  an unknown command is only logged, invalid JSON gets an ``ERROR`` event;
- binary messages are cut into whole frames, a trailing partial frame is dropped; the queue sends ``MEDIA_XOFF`` at
  900 frames and ``MEDIA_XON`` below 800 again;
- the caller's hang-up closes the connection with code 1000.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import secrets
import time
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

import websockets

from callbot.simulator.caller import Playback
from callbot.simulator.report import CallReport
from telephony.chan_websocket_codec import FORMATS
from telephony.g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
from telephony.resample import StreamResampler

if TYPE_CHECKING:
    from callbot.simulator import SimulatedCall

COMMANDS = frozenset(
    {
        "ANSWER",
        "HANGUP",
        "START_MEDIA_BUFFERING",
        "STOP_MEDIA_BUFFERING",
        "MARK_MEDIA",
        "FLUSH_MEDIA",
        "GET_STATUS",
        "REPORT_QUEUE_DRAINED",
        "PAUSE_MEDIA",
        "CONTINUE_MEDIA",
    }
)
MAX_TEXT_MESSAGE_LEN = 128
XOFF_LEVEL, XON_LEVEL = 900, 800


class Connection(Protocol):
    async def send(self, message: str | bytes) -> None: ...
    async def recv(self) -> str | bytes | None: ...
    async def close(self, code: int) -> None: ...


# Asterisk's channel unique ids are "<epoch>.<sequence>", the sequence counting every channel the process made
channel_sequence = itertools.count(1)


def unique_id() -> str:
    """A channel unique id the way Asterisk makes them: never the same twice in one process."""
    return f"{time.time():.0f}.{next(channel_sequence)}"


class ChanWebSocketWire:
    """chan_websocket's half of one media connection, whichever side opened it."""

    marks = True

    def __init__(self, report: CallReport, call: SimulatedCall, connection_id: str, channel: str) -> None:
        self.report = report
        self.dtx = call.dtx
        self.json = call.json_control
        self.format = call.line_format or "ulaw"
        self.line = FORMATS[self.format]
        self.connection_id, self.channel = connection_id, channel
        self.channel_id = unique_id()
        self.variables: dict[str, str] = {}
        self.started_at = time.monotonic()
        self.conn: Connection | None = None
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._up = StreamResampler(8000, self.line.sample_rate)
        self._down = StreamResampler(self.line.sample_rate, 8000)
        self._xoff = False
        self._tasks: set[asyncio.Task[None]] = set()

    def media_start(self) -> str:
        fields: dict[str, Any] = {
            "connection_id": self.connection_id,
            "channel": self.channel,
            "channel_id": self.channel_id,
            "format": self.format,
            "optimal_frame_size": self.line.frame_bytes,
            "ptime": self.line.frame_ms,
        }
        if self.json:
            body = {"event": "MEDIA_START", **fields, "channel_variables": self.variables}
            return json.dumps(body, separators=(",", ":"))
        return "MEDIA_START " + " ".join(f"{k}:{v}" for k, v in fields.items())

    async def run(self, conn: Connection, playback: Playback) -> None:
        """MEDIA_START, then everything callbot sends until the connection ends."""
        self.conn = conn
        await conn.send(self.media_start())
        self.started_at = time.monotonic()
        self._spawn(self._flow_control(playback))
        try:
            while (message := await conn.recv()) is not None:
                if isinstance(message, bytes):
                    self._audio(message, playback)
                elif not await self._command(message.strip(), playback):
                    await conn.close(1000)
                    return
        finally:
            if not self._closed.done():
                self._closed.set_result(None)

    def _audio(self, data: bytes, playback: Playback) -> None:
        size = self.line.frame_bytes
        whole = len(data) - len(data) % size
        if whole < len(data):
            self.report.peer_errors.append(f"binary message of {len(data)} bytes: its last partial frame is dropped")
        for start in range(0, whole, size):
            playback.audio(self._to_pcm(data[start : start + size]))

    async def _command(self, text: str, playback: Playback) -> bool:
        """One command as chan_websocket's handle_command takes it; False for HANGUP."""
        if not text or len(text) > MAX_TEXT_MESSAGE_LEN:
            self.report.peer_errors.append(f"TEXT message of {len(text)} bytes is ignored (at most 128)")
            return True
        correlation: str | None
        if self.json:
            try:
                body = json.loads(text)
            except ValueError:
                await self._event("ERROR", error_text="Unable to parse JSON command")
                return True
            name = str(body.get("command", "")) if isinstance(body, dict) else ""
            correlation = body.get("correlation_id") if isinstance(body, dict) else None
        else:
            name, _, rest = text.partition(" ")
            correlation = rest or None
        if name not in COMMANDS:
            self.report.peer_errors.append(f"WebSocket {name[:40]} command unknown")
            return True
        self.report.asterisk.setdefault("commands", []).append(name)
        if name == "HANGUP":
            self.report.asterisk["hangup_by"] = "callbot"
            return False
        if name == "MARK_MEDIA":
            playback.mark(str(correlation or ""))
        elif name == "FLUSH_MEDIA":
            playback.clear(echo_marks=False)  # the queued marks go with the audio, unreported
        elif name == "GET_STATUS":
            await self._event("STATUS", queue_length=playback.queued_frames)
        return True

    async def _flow_control(self, playback: Playback) -> None:
        while True:
            queued = playback.queued_frames
            if not self._xoff and queued >= XOFF_LEVEL:
                self._xoff = True
                await self._event("MEDIA_XOFF")
            elif self._xoff and queued < XON_LEVEL:
                self._xoff = False
                await self._event("MEDIA_XON")
            await asyncio.sleep(0.02)

    async def _event(self, name: str, **fields: Any) -> None:
        if self.conn is None:
            return
        if self.json:
            text = json.dumps({"event": name, "channel_id": self.channel_id, **fields}, separators=(",", ":"))
        elif name == "MEDIA_MARK_PROCESSED":
            text = f"{name} {fields['correlation_id']}" if fields.get("correlation_id") else name
        elif name == "DTMF_END":
            text = f"DTMF_END digit:{fields['digit']} channel_id:{self.channel_id}"
        elif name in ("MEDIA_XOFF", "MEDIA_XON"):
            text = name
        else:
            text = " ".join([name, f"channel_id:{self.channel_id}", *(f"{k}:{v}" for k, v in fields.items())])
        with contextlib.suppress(websockets.ConnectionClosed, RuntimeError):
            await self.conn.send(text)

    def _to_pcm(self, frame: bytes) -> bytes:
        if self.line.encoding == "ulaw":
            return ulaw_to_pcm16(frame)
        if self.line.encoding == "alaw":
            return alaw_to_pcm16(frame)
        return self._down(frame) if self.line.sample_rate != 8000 else frame

    def _from_pcm(self, pcm: bytes) -> bytes:
        if self.line.encoding == "ulaw":
            return pcm16_to_ulaw(pcm)
        if self.line.encoding == "alaw":
            return pcm16_to_alaw(pcm)
        return self._up(pcm) if self.line.sample_rate != 8000 else pcm

    async def send_audio(self, pcm: bytes) -> None:
        frame = self._from_pcm(pcm)
        if self.conn is not None and frame:
            with contextlib.suppress(websockets.ConnectionClosed, RuntimeError):
                await self.conn.send(frame)

    async def send_dtmf(self, digit: str) -> None:
        await self._event("DTMF_END", digit=digit)

    def mark_played(self, name: str) -> None:
        self._spawn(self._event("MEDIA_MARK_PROCESSED", correlation_id=name))

    async def hang_up(self) -> None:
        self.report.asterisk.setdefault("hangup_by", "caller")
        if self.conn is not None:
            await self.conn.close(1000)

    def closed(self) -> asyncio.Future[None]:
        return self._closed

    async def close_media(self) -> None:
        """Asterisk hung the WebSocket channel up: it closes with 1000."""
        if self.conn is not None:
            await self.conn.close(1000)

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()


class _ClientConnection:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: str | bytes) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(message)

    async def recv(self) -> str | bytes | None:
        try:
            return await self.ws.recv()
        except websockets.ConnectionClosed:
            return None

    async def close(self, code: int) -> None:
        await self.ws.close(code)


class DialingWebSocketLine(ChanWebSocketWire):
    """``Dial(WebSocket/callbot/c(<fmt>)[f(json)]v(caller=...,called=...))``: Asterisk connects to the server's
    ``/asterisk/media`` (websocket_client.conf ``uri``) with ``Sec-WebSocket-Protocol: media``."""

    def __init__(self, report: CallReport, url: str, call: SimulatedCall) -> None:
        connection_id = secrets.token_hex(16)
        super().__init__(report, call, connection_id, f"WebSocket/callbot/0x{secrets.token_hex(6)}")
        query = urlencode({"caller": call.caller, "called": call.called})
        self.url = "ws" + url.removeprefix("http") + f"/asterisk/media?{query}"
        self.auth = call.media_auth
        self._runner: asyncio.Task[None] | None = None
        self._ws: websockets.ClientConnection | None = None

    async def connect(self, playback: Playback) -> None:
        headers = {}
        if self.auth is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(self.auth).encode()).decode()
        # the library refuses, as Asterisk does, a server that selects a subprotocol or extension not offered
        self._ws = await websockets.connect(
            self.url, subprotocols=[websockets.Subprotocol("media")], additional_headers=headers, compression=None
        )
        self.report.asterisk["subprotocol"] = self._ws.subprotocol
        self.report.asterisk["channel_id"] = self.channel_id
        self._runner = asyncio.create_task(self.run(_ClientConnection(self._ws), playback))
        await asyncio.sleep(0)

    async def finish(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            self.report.asterisk["close_code"] = self._ws.close_code
        if self._runner is not None:
            self._runner.cancel()
        self.stop()
