"""``callbot call``: a simulated Twilio phone call against a running callbot server.

It behaves as Twilio does: signed webhook, TwiML, a Media Streams WebSocket carrying the caller's audio as
20 ms mu-law frames (silence between utterances, as a phone line does), a playback buffer that plays the bot's
audio in real time, echoes marks when playback reaches them and drops audio on ``clear``, then the
``<Connect action>`` callback.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
import wave
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets

from callbot.errors import CallbotError
from telephony.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from telephony.resample import resample_pcm16
from telephony.twilio_signature import compute_signature

FRAME_S = 0.02
FRAME_BYTES = 160  # 20 ms of mu-law at 8 kHz
SILENCE = b"\xff" * FRAME_BYTES  # mu-law zero


@dataclass
class CallReport:
    call_id: str = ""
    outcome: str | None = None
    transfer_target: str | None = None
    first_audio_ms: float | None = None
    response_ms: list[float] = field(default_factory=list)
    """Per caller turn: from the end of the caller's speech (or the key press) to the bot's next audio."""
    bot_audio_s: float = 0.0
    marks_echoed: int = 0
    clears: int = 0
    twiml: str = ""
    turns: list[dict[str, Any]] = field(default_factory=list)
    turns_error: str | None = None
    call: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "outcome": self.outcome,
            "transfer_target": self.transfer_target,
            "first_audio_ms": self.first_audio_ms,
            "response_ms": self.response_ms,
            "bot_audio_s": round(self.bot_audio_s, 3),
            "marks_echoed": self.marks_echoed,
            "clears": self.clears,
            "twiml": self.twiml,
            "turns": self.turns,
            "turns_error": self.turns_error,
        }


def read_wav_as_line_pcm(path: Path) -> bytes:
    """Any mono/stereo 16-bit (or 8/32-bit) WAV, as 16-bit PCM at 8 kHz."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise CallbotError(f"{path}: not a PCM WAV file ({exc}); convert it, e.g. `sox in.mp3 out.wav`") from exc
    dtype = {1: np.uint8, 2: np.int16, 4: np.int32}.get(width)
    if dtype is None:
        raise CallbotError(f"{path}: {8 * width}-bit samples are not supported; use 16-bit PCM")
    samples = np.frombuffer(raw, dtype=dtype).astype(np.float64)
    if width == 1:
        samples = (samples - 128) * 256
    elif width == 4:
        samples = samples / 65536
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    pcm = np.clip(samples, -32768, 32767).astype("<i2").tobytes()
    return resample_pcm16(pcm, rate, 8000)


class _Playback:
    """Twilio's side of bidirectional audio: a buffer of bot audio played in real time."""

    def __init__(self, ws: Any, stream_sid: str, speed: float, report: CallReport) -> None:
        self.ws, self.stream_sid, self.speed, self.report = ws, stream_sid, speed, report
        self.queue: deque[bytes | str] = deque()
        self.played = bytearray()
        self.last_media_at = 0.0
        self.first_media_at: float | None = None
        self.last_clear_at = 0.0
        self.last_mark_played_at = 0.0
        self.media_times: list[float] = []
        self._echoes: set[asyncio.Future[None]] = set()

    @property
    def idle(self) -> bool:
        return not self.queue

    def receive(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "media":
            payload = base64.b64decode(message["media"]["payload"])
            now = time.monotonic()
            self.first_media_at = self.first_media_at or now
            self.last_media_at = now
            self.media_times.append(now)
            self.queue.append(payload)
        elif event == "mark":
            self.queue.append(str(message["mark"]["name"]))
        elif event == "clear":
            self.report.clears += 1
            self.last_clear_at = time.monotonic()
            marks = [item for item in self.queue if isinstance(item, str)]
            self.queue.clear()
            for name in marks:  # Twilio echoes the marks of cleared audio
                task = asyncio.ensure_future(self._echo(name))
                self._echoes.add(task)
                task.add_done_callback(self._echoes.discard)

    async def run(self) -> None:
        while True:
            if not self.queue:
                await asyncio.sleep(0.005)
                continue
            item = self.queue.popleft()
            if isinstance(item, str):
                self.last_mark_played_at = time.monotonic()
                await self._echo(item)
                continue
            self.played += item
            self.report.bot_audio_s += len(item) / 8000
            await asyncio.sleep(len(item) / 8000 / self.speed)

    async def _echo(self, name: str) -> None:
        self.report.marks_echoed += 1
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(
                json.dumps(
                    {
                        "event": "mark",
                        "streamSid": self.stream_sid,
                        "sequenceNumber": "0",
                        "mark": {"name": name},
                    }
                )
            )

    def first_media_after(self, moment: float) -> float | None:
        return next((t for t in self.media_times if t > moment), None)

    async def wait_first_audio(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.first_media_at is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.first_media_at is not None

    async def wait_bot_turn(self, after: float, timeout: float) -> bool:
        """Wait until the bot has spoken (audio received after ``after``) and finished playing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # audio that arrived before a clear was cut off; only what follows it answers us
            spoke = self.last_media_at > max(after, self.last_clear_at)
            # the bot's turn is over when its audio has played up to a mark (the end of an utterance) and
            # nothing follows for a moment: a pause inside an utterance has no mark
            ended = self.last_mark_played_at >= self.last_media_at
            if spoke and ended and self.idle and time.monotonic() - self.last_media_at > 0.3:
                return True
            await asyncio.sleep(0.02)
        return False


class SimulatedCall:
    def __init__(
        self,
        url: str,
        audio: Path | None,
        *,
        dtmf: str = "",
        auth_token: str | None = None,
        api_token: str | None = None,
        speed: float = 1.0,
        caller: str = "+33612345678",
        called: str = "+33900000000",
        turn_timeout: float = 20.0,
        barge_in: bool = False,
        keys_first: bool = False,
    ) -> None:
        self.url = url.rstrip("/")
        self.audio = audio
        self.dtmf = dtmf
        self.auth_token = auth_token
        self.api_token = api_token
        self.speed = max(speed, 0.1)
        self.caller, self.called = caller, called
        self.turn_timeout = turn_timeout
        self.barge_in = barge_in
        self.keys_first = keys_first
        self.call_sid = "CA" + secrets.token_hex(16)
        self.report = CallReport()
        self._seq = 0
        self._speaking = False

    async def run(self) -> tuple[CallReport, bytes]:
        speech = read_wav_as_line_pcm(self.audio) if self.audio else b""
        params = {
            "AccountSid": "AC" + "0" * 32,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sid,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "From": self.caller,
            "To": self.called,
        }
        async with httpx.AsyncClient(timeout=30) as http:
            twiml = await self._post(http, f"{self.url}/twilio/voice", params)
            root = _parse_twiml(twiml)
            stream = root.find("./Connect/Stream")
            connect = root.find("./Connect")
            played = b""
            if stream is not None and connect is not None:
                custom = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
                self.report.call_id = custom.get("callId", "")
                played = await self._stream(stream.get("url", ""), custom, speech)
                twiml = await self._post(http, connect.get("action", ""), {**params, "CallStatus": "in-progress"})
                root = _parse_twiml(twiml)
            self.report.twiml = twiml
            self.report.transfer_target = _transfer_target(root)
            if self.report.call_id:
                await self._read_back(http)
            if self.report.outcome is None:
                self.report.outcome = "transfer" if self.report.transfer_target else "hangup"
        return self.report, played

    async def _read_back(self, http: httpx.AsyncClient) -> None:
        """The call as the server recorded it (it is stored moments after the stream closes)."""
        headers = {"Authorization": f"Bearer {self.api_token}"} if self.api_token else {}
        for _ in range(50):
            response = await http.get(f"{self.url}/api/calls/{self.report.call_id}", headers=headers)
            if response.status_code != 200:
                self.report.turns_error = f"GET /api/calls answered {response.status_code}" + (
                    "; pass --api-token (callbot users token NAME)" if response.status_code == 401 else ""
                )
                return
            self.report.call = response.json()
            if self.report.call.get("status") == "completed":
                break
            await asyncio.sleep(0.1)
        self.report.outcome = self.report.call.get("outcome")
        self.report.turns = self.report.call.get("turns", [])

    async def _post(self, http: httpx.AsyncClient, url: str, params: dict[str, str]) -> str:
        headers = {}
        if self.auth_token:
            headers["X-Twilio-Signature"] = compute_signature(self.auth_token, url, params)
        try:
            response = await http.post(url, data=params, headers=headers)
        except httpx.HTTPError as exc:
            raise CallbotError(
                f"no callbot server answered at {url} ({exc.__class__.__name__}); "
                "start one with `make run` or `callbot serve`, or pass --url"
            ) from exc
        if response.status_code != 200:
            raise CallbotError(f"POST {url} answered {response.status_code}: {response.text[:200]}")
        return response.text

    async def _stream(self, url: str, custom: dict[str, str], speech: bytes) -> bytes:
        headers = {}
        if self.auth_token:
            headers["X-Twilio-Signature"] = compute_signature(self.auth_token, url, None)
        stream_sid = "MZ" + secrets.token_hex(16)
        async with websockets.connect(url, additional_headers=headers, max_size=2**20, compression=None) as ws:
            playback = _Playback(ws, stream_sid, self.speed, self.report)
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            await ws.send(json.dumps(self._start(stream_sid, custom)))
            started = time.monotonic()
            tasks = [
                asyncio.create_task(playback.run()),
                asyncio.create_task(self._receive(ws, playback)),
                asyncio.create_task(self._line(ws, stream_sid)),
            ]
            try:
                await self._script(ws, stream_sid, playback, speech, started)
            finally:
                for task in tasks:
                    task.cancel()
            if playback.first_media_at is not None:
                self.report.first_audio_ms = round((playback.first_media_at - started) * 1000, 1)
            return bytes(playback.played)

    def _start(self, stream_sid: str, custom: dict[str, str]) -> dict[str, Any]:
        return {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": stream_sid,
            "start": {
                "accountSid": "AC" + "0" * 32,
                "streamSid": stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": custom,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }

    async def _script(self, ws: Any, stream_sid: str, playback: _Playback, speech: bytes, started: float) -> None:
        """The caller's behaviour: listen to the greeting, speak, listen, press keys, hang up."""
        closed = asyncio.ensure_future(ws.wait_closed())
        presses: list[tuple[str, Any]] = [("press", digit) for digit in self.dtmf]
        speaking: list[tuple[str, Any]] = [("speak", speech)] if speech else []
        # keys first: choose in the menu, then speak (a message after the beep)
        steps = presses + speaking if self.keys_first else speaking + presses
        if self.barge_in:
            await self._until(playback.wait_first_audio(self.turn_timeout), closed)
        elif not await self._until(playback.wait_bot_turn(started - 1, self.turn_timeout), closed):
            return
        for kind, value in steps:
            mark = time.monotonic()
            if kind == "speak":
                mark = await self._send_speech(ws, stream_sid, value)
            else:
                await ws.send(
                    json.dumps(
                        {
                            "event": "dtmf",
                            "streamSid": stream_sid,
                            "sequenceNumber": "0",
                            "dtmf": {"track": "inbound_track", "digit": value},
                        }
                    )
                )
            if not await self._until(playback.wait_bot_turn(mark, self.turn_timeout), closed):
                return
            answer = playback.first_media_after(mark)
            if answer is not None:
                self.report.response_ms.append(round((answer - mark) * 1000, 1))
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(
                json.dumps(
                    {
                        "event": "stop",
                        "sequenceNumber": "0",
                        "streamSid": stream_sid,
                        "stop": {"accountSid": "AC" + "0" * 32, "callSid": self.call_sid},
                    }
                )
            )
            await asyncio.wait_for(closed, timeout=10)

    @staticmethod
    async def _until(waiting: Any, closed: asyncio.Future[Any]) -> bool:
        """Run ``waiting``; False when the server closed the stream first (the call moved on)."""
        task = asyncio.ensure_future(waiting)
        done, _ = await asyncio.wait({task, closed}, return_when=asyncio.FIRST_COMPLETED)
        if closed in done:
            task.cancel()
            return False
        return True

    async def _send_speech(self, ws: Any, stream_sid: str, pcm: bytes) -> float:
        """Send the utterance in real time; the monotonic time its last speech frame left."""
        self._speaking = True
        ulaw = pcm16_to_ulaw(pcm)
        try:
            for start in range(0, len(ulaw), FRAME_BYTES):
                await self._media(ws, stream_sid, ulaw[start : start + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff"))
                await asyncio.sleep(FRAME_S / self.speed)
        finally:
            self._speaking = False  # back to line silence, which lets the recogniser end the utterance
        return time.monotonic()

    async def _line(self, ws: Any, stream_sid: str) -> None:
        """A phone line never goes quiet: silence frames flow whenever the caller is not speaking."""
        while True:
            if not self._speaking:
                await self._media(ws, stream_sid, SILENCE)
            await asyncio.sleep(FRAME_S / self.speed)

    async def _media(self, ws: Any, stream_sid: str, frame: bytes) -> None:
        self._seq += 1
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(
                json.dumps(
                    {
                        "event": "media",
                        "sequenceNumber": str(self._seq),
                        "streamSid": stream_sid,
                        "media": {
                            "track": "inbound",
                            "chunk": str(self._seq),
                            "timestamp": str(self._seq * 20),
                            "payload": base64.b64encode(frame).decode("ascii"),
                        },
                    }
                )
            )

    @staticmethod
    async def _receive(ws: Any, playback: _Playback) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in ws:
                playback.receive(json.loads(message))


def _parse_twiml(document: str) -> ET.Element:
    try:
        return ET.fromstring(document)
    except ET.ParseError as exc:
        raise CallbotError(f"the server answered something that is not TwiML: {document[:200]!r}") from exc


def _transfer_target(root: ET.Element) -> str | None:
    for path, kind in (("./Dial/Number", "number"), ("./Dial/Sip", "sip"), ("./Enqueue", "queue")):
        node = root.find(path)
        if node is not None and node.text:
            return f"{kind}:{node.text.strip()}"
    return None


def write_wav(path: Path, ulaw: bytes) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(ulaw_to_pcm16(ulaw))


def place_call(url: str, audio: Path | None, **options: Any) -> tuple[CallReport, bytes]:
    return asyncio.run(SimulatedCall(url, audio, **options).run())
