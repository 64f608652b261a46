"""Twilio's side of a simulated call: signed voice webhook, TwiML, a Media Streams WebSocket carrying the
caller's audio as 20 ms mu-law frames, marks echoed when playback reaches them (and at once for cleared audio),
``clear`` honoured, then the ``<Connect action>`` callback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import websockets

from callbot.errors import CallbotError
from callbot.simulator.caller import Playback
from callbot.simulator.report import CallReport
from telephony.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from telephony.twilio_signature import compute_signature

ACCOUNT_SID = "AC" + "0" * 32
MAX_REDIRECTS = 5


class TwilioLine:
    marks = True
    dtx = False

    def __init__(
        self,
        url: str,
        report: CallReport,
        *,
        caller: str,
        called: str,
        auth_token: str | None,
        callback_url: str | None = None,
    ) -> None:
        self.url, self.report = url.rstrip("/"), report
        self.callback_url = callback_url.rstrip("/") if callback_url else None
        """Where the <Connect action> callback goes instead (another instance behind a balancer)."""
        self.caller, self.called, self.auth_token = caller, called, auth_token
        self.call_sid = "CA" + secrets.token_hex(16)
        self.stream_sid = "MZ" + secrets.token_hex(16)
        self.started_at = time.monotonic()
        self._http = httpx.AsyncClient(timeout=30)
        self._ws: Any = None
        self._action: str | None = None
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._receiver: asyncio.Task[None] | None = None

    @property
    def params(self) -> dict[str, str]:
        return {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sid,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "From": self.caller,
            "To": self.called,
        }

    async def connect(self, playback: Playback) -> None:
        twiml = await self._post(f"{self.url}/twilio/voice", self.params)
        root = _parse_twiml(twiml)
        for _ in range(MAX_REDIRECTS):  # as Twilio does: <Redirect> fetches the call's TwiML from elsewhere
            redirect = root.find("./Redirect")
            if redirect is None or not redirect.text:
                break
            self.report.redirects.append(redirect.text.strip())
            twiml = await self._post(redirect.text.strip(), self.params)
            root = _parse_twiml(twiml)
        stream, connect = root.find("./Connect/Stream"), root.find("./Connect")
        if stream is None or connect is None:
            # no stream (the bot cannot greet): the document carries the call out at once
            self._finish_with(twiml)
            self._closed.set_result(None)
            return
        custom = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
        self.report.call_id = custom.get("callId", "")
        self._action = connect.get("action", "")
        url = stream.get("url", "")
        headers = {"X-Twilio-Signature": compute_signature(self.auth_token, url, None)} if self.auth_token else {}
        self._ws = await websockets.connect(url, additional_headers=headers, max_size=2**20, compression=None)
        await self._ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await self._ws.send(json.dumps(self._start(custom)))
        self.started_at = time.monotonic()
        self._receiver = asyncio.create_task(self._receive(playback))

    def _start(self, custom: dict[str, str]) -> dict[str, Any]:
        return {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": self.stream_sid,
            "start": {
                "accountSid": ACCOUNT_SID,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": custom,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }

    async def _receive(self, playback: Playback) -> None:
        try:
            async for message in self._ws:
                event = json.loads(message)
                kind = event.get("event")
                if kind == "media":
                    playback.audio(ulaw_to_pcm16(base64.b64decode(event["media"]["payload"])))
                elif kind == "mark":
                    playback.mark(str(event["mark"]["name"]))
                elif kind == "clear":
                    playback.clear(echo_marks=True)  # Twilio echoes the marks of cleared audio
                else:
                    self.report.peer_errors.append(f"unknown message from the server: {str(message)[:80]}")
        except websockets.ConnectionClosed:
            pass
        finally:
            if not self._closed.done():
                self._closed.set_result(None)

    async def send_audio(self, pcm: bytes) -> None:
        self._seq += 1
        await self._send(
            {
                "event": "media",
                "sequenceNumber": str(self._seq),
                "streamSid": self.stream_sid,
                "media": {
                    "track": "inbound",
                    "chunk": str(self._seq),
                    "timestamp": str(self._seq * 20),
                    "payload": base64.b64encode(pcm16_to_ulaw(pcm)).decode("ascii"),
                },
            }
        )

    async def send_dtmf(self, digit: str) -> None:
        dtmf = {"track": "inbound_track", "digit": digit}
        await self._send({"event": "dtmf", "streamSid": self.stream_sid, "sequenceNumber": "0", "dtmf": dtmf})

    def mark_played(self, name: str) -> None:
        mark = {"event": "mark", "streamSid": self.stream_sid, "sequenceNumber": "0", "mark": {"name": name}}
        task = asyncio.ensure_future(self._send(mark))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def hang_up(self) -> None:
        stop = {"accountSid": ACCOUNT_SID, "callSid": self.call_sid}
        await self._send({"event": "stop", "sequenceNumber": "0", "streamSid": self.stream_sid, "stop": stop})

    def closed(self) -> asyncio.Future[None]:
        return self._closed

    async def finish(self) -> None:
        """The <Connect action> callback, as Twilio requests it once the stream has ended."""
        try:
            if self._receiver is not None:
                self._receiver.cancel()
            if self._ws is not None:
                await self._ws.close()
            if self._action:
                action = self._action
                if self.callback_url:
                    action = self.callback_url + action[action.index("/twilio/") :]
                self._finish_with(await self._post(action, {**self.params, "CallStatus": "in-progress"}))
        finally:
            await self._http.aclose()

    def _finish_with(self, twiml: str) -> None:
        self.report.twiml = twiml
        self.report.transfer_target = _transfer_target(_parse_twiml(twiml))

    async def _send(self, message: dict[str, Any]) -> None:
        if self._ws is not None:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self._ws.send(json.dumps(message))

    async def _post(self, url: str, params: dict[str, str]) -> str:
        headers = {"X-Twilio-Signature": compute_signature(self.auth_token, url, params)} if self.auth_token else {}
        try:
            response = await self._http.post(url, data=params, headers=headers)
        except httpx.HTTPError as exc:
            raise CallbotError(
                f"no callbot server answered at {url} ({exc.__class__.__name__}); "
                "start one with `make run` or `callbot serve`, or pass --url"
            ) from exc
        if response.status_code != 200:
            raise CallbotError(f"POST {url} answered {response.status_code}: {response.text[:200]}")
        return response.text


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
