"""Twilio Media Streams wire format <-> pipeline frames.

Inbound messages: ``connected``, ``start``, ``media`` (base64 mu-law 8 kHz), ``dtmf``, ``mark``, ``stop``.
Outbound messages: ``media``, ``mark``, ``clear``. Telnyx, SignalWire and others speak the same protocol.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from callbot.errors import ProtocolError
from callbot.frames import LINE_RATE, AudioIn, DtmfIn, HangUp, InboundFrame, MarkIn, StreamStart
from telephony.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from telephony.resample import resample_pcm16

MAX_MESSAGE_CHARS = 64 * 1024
"""Twilio sends 20 ms frames (~300 characters); anything this large is not a media stream message."""

MAX_PAYLOAD_BYTES = 16000
"""Two seconds of mu-law: more than any provider puts in one media message."""

FRAME_MS = 20
FRAME_BYTES = LINE_RATE * FRAME_MS // 1000
"""One outgoing 20 ms frame of line audio (mu-law: one byte per sample)."""

_DTMF_DIGITS = frozenset("0123456789*#ABCD")
_EVENTS = frozenset({"connected", "start", "media", "dtmf", "mark", "stop"})


class TwilioCodec:
    """Decodes one stream's inbound messages and encodes its outbound ones."""

    def __init__(self) -> None:
        self.stream_sid: str | None = None

    def decode(self, text: str) -> InboundFrame | None:
        """One WebSocket text message to a frame; ``None`` for messages that carry nothing for the pipeline."""
        message = _parse(text)
        event = message.get("event")
        if event not in _EVENTS:
            raise ProtocolError(f"unknown event {event!r}")
        if event == "connected":
            return None
        if event == "start":
            return self._start(message)
        if self.stream_sid is None:
            raise ProtocolError(f"'{event}' message before 'start'")
        if event == "media":
            return AudioIn(ulaw_to_pcm16(_payload(message)), LINE_RATE)
        if event == "dtmf":
            digit = str(_field(message, "dtmf", "digit"))
            if digit not in _DTMF_DIGITS:
                raise ProtocolError(f"invalid DTMF digit {digit!r}")
            return DtmfIn(digit)
        if event == "mark":
            return MarkIn(str(_field(message, "mark", "name")))
        return HangUp()  # "stop"

    def _start(self, message: dict[str, Any]) -> StreamStart:
        start = message.get("start")
        if not isinstance(start, dict):
            raise ProtocolError("'start' message without a 'start' object")
        stream_sid = message.get("streamSid") or start.get("streamSid")
        if not isinstance(stream_sid, str) or not stream_sid:
            raise ProtocolError("'start' message without streamSid")
        media_format = start.get("mediaFormat") or {}
        encoding = media_format.get("encoding", "audio/x-mulaw")
        rate = int(media_format.get("sampleRate", LINE_RATE))
        if encoding != "audio/x-mulaw" or rate != LINE_RATE:
            raise ProtocolError(f"unsupported media format {encoding} at {rate} Hz; expected audio/x-mulaw 8000")
        self.stream_sid = stream_sid
        custom = start.get("customParameters") or {}
        return StreamStart(
            stream_id=stream_sid,
            call_sid=str(start.get("callSid", "")),
            custom={str(k): str(v) for k, v in custom.items()},
        )

    @staticmethod
    def to_line(pcm: bytes, sample_rate: int) -> bytes:
        """Bot audio (16-bit PCM at any rate) to line audio: mu-law 8 kHz."""
        return pcm16_to_ulaw(resample_pcm16(pcm, sample_rate, LINE_RATE))

    def media(self, line_audio: bytes) -> str:
        payload = base64.b64encode(line_audio).decode("ascii")
        return json.dumps({"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}})

    def mark(self, name: str) -> str:
        return json.dumps({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    def clear(self) -> str:
        return json.dumps({"event": "clear", "streamSid": self.stream_sid})


def _parse(text: str) -> dict[str, Any]:
    if len(text) > MAX_MESSAGE_CHARS:
        raise ProtocolError(f"message of {len(text)} characters exceeds {MAX_MESSAGE_CHARS}")
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"message is not JSON: {exc.msg} at position {exc.pos}") from exc
    if not isinstance(message, dict):
        raise ProtocolError("message is not a JSON object")
    return message


def _field(message: dict[str, Any], section: str, key: str) -> Any:
    body = message.get(section)
    if not isinstance(body, dict) or key not in body:
        raise ProtocolError(f"'{message.get('event')}' message without {section}.{key}")
    return body[key]


def _payload(message: dict[str, Any]) -> bytes:
    payload = _field(message, "media", "payload")
    if not isinstance(payload, str):
        raise ProtocolError("media.payload is not a string")
    if len(payload) > MAX_PAYLOAD_BYTES * 4 // 3 + 4:
        raise ProtocolError(f"media payload over {MAX_PAYLOAD_BYTES} bytes")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"media.payload is not valid base64: {exc}") from exc
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"media payload of {len(data)} bytes is over {MAX_PAYLOAD_BYTES}")
    return data
