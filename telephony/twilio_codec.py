"""Twilio Media Streams wire format <-> pipeline frames.

Inbound messages: ``connected``, ``start``, ``media`` (base64 mu-law 8 kHz), ``dtmf``, ``mark``, ``stop``.
Outbound messages: ``media``, ``mark``, ``clear``. Telnyx, SignalWire and others speak the same protocol.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from callbot.call.line import Decoded, LineFormat
from callbot.errors import ProtocolError
from callbot.frames import LINE_RATE, AudioIn, DtmfIn, HangUp, MarkIn, StreamStart
from callbot.storage.call_store import CallOutcome
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


LINE = LineFormat("ulaw", LINE_RATE)


class TwilioCodec:
    """Decodes one stream's inbound messages and encodes its outbound ones."""

    transport = "twilio"
    line = LINE
    echoes_marks = True
    needs_keepalive = False
    frames_per_message = 5
    lead_s = 0.2

    def __init__(self) -> None:
        self.stream_sid: str | None = None
        self._media_prefix = ""

    def decode(self, message: str | bytes) -> Sequence[Decoded]:
        """One WebSocket message to its frame; none for messages that carry nothing for the pipeline."""
        if not isinstance(message, str):
            raise ProtocolError("binary WebSocket frame; Media Streams messages are JSON text")
        parsed = _parse(message)
        event = parsed.get("event")
        if not isinstance(event, str) or event not in _EVENTS:
            raise ProtocolError(f"unknown event {str(event)[:64]!r}")
        if event == "connected":
            return []
        if event == "start":
            return [self._start(parsed)]
        if self.stream_sid is None:
            raise ProtocolError(f"'{event}' message before 'start'")
        if event == "media":
            return [AudioIn(ulaw_to_pcm16(_payload(parsed)), LINE_RATE)]
        if event == "dtmf":
            digit = _field(parsed, "dtmf", "digit")
            if not isinstance(digit, str) or digit not in _DTMF_DIGITS:
                raise ProtocolError(f"invalid DTMF digit {str(digit)[:16]!r}")
            return [DtmfIn(digit)]
        if event == "mark":
            name = _field(parsed, "mark", "name")
            if not isinstance(name, str | int | float):
                raise ProtocolError("mark.name is not a string")
            return [MarkIn(str(name)[:256])]
        return [HangUp()]  # "stop"

    def _start(self, message: dict[str, Any]) -> StreamStart:
        start = message.get("start")
        if not isinstance(start, dict):
            raise ProtocolError("'start' message without a 'start' object")
        stream_sid = message.get("streamSid") or start.get("streamSid")
        if not isinstance(stream_sid, str) or not stream_sid:
            raise ProtocolError("'start' message without streamSid")
        media_format = start.get("mediaFormat") or {}
        if not isinstance(media_format, dict):
            raise ProtocolError("start.mediaFormat is not an object")
        encoding = media_format.get("encoding", "audio/x-mulaw")
        rate = media_format.get("sampleRate", LINE_RATE)
        if encoding != "audio/x-mulaw" or str(rate) != str(LINE_RATE):
            raise ProtocolError(
                f"unsupported media format {str(encoding)[:32]} at {str(rate)[:16]} Hz; expected audio/x-mulaw 8000"
            )
        custom = start.get("customParameters") or {}
        if not isinstance(custom, dict):
            raise ProtocolError("start.customParameters is not an object")
        self.stream_sid = stream_sid
        # every media message we send starts the same way: built once, not by json.dumps 50 times a second
        self._media_prefix = '{"event": "media", "streamSid": ' + json.dumps(stream_sid) + ', "media": {"payload": "'
        return StreamStart(
            stream_id=stream_sid,
            call_sid=str(start.get("callSid", ""))[:64],
            custom={str(k)[:64]: str(v)[:256] for k, v in list(custom.items())[:32]},
        )

    @staticmethod
    def to_line(pcm: bytes, sample_rate: int) -> bytes:
        """Bot audio (16-bit PCM at any rate) to line audio: mu-law 8 kHz."""
        return pcm16_to_ulaw(resample_pcm16(pcm, sample_rate, LINE_RATE))

    def audio(self, frame: bytes) -> str:
        return self._media_prefix + base64.b64encode(frame).decode("ascii") + '"}}'

    def mark(self, name: str) -> str:
        return json.dumps({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    def clear(self) -> str:
        return json.dumps({"event": "clear", "streamSid": self.stream_sid})

    def hangup(self, outcome: CallOutcome | None) -> None:
        """Closing the WebSocket hands the call back to Twilio, which then requests the <Connect action> URL."""
        return None


def _parse(text: str) -> dict[str, Any]:
    if len(text) > MAX_MESSAGE_CHARS:
        raise ProtocolError(f"message of {len(text)} characters exceeds {MAX_MESSAGE_CHARS}")
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"message is not JSON: {exc.msg} at position {exc.pos}") from exc
    except RecursionError as exc:
        raise ProtocolError("message nests too deeply to be a Media Streams message") from exc
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
