"""Asterisk chan_websocket (Asterisk >= 22.5) wire format <-> pipeline frames.

Control messages are TEXT frames, audio BINARY frames in the channel's codec (``ulaw``, ``alaw``, ``slin``,
``slin16``...; 20 ms frames of 160, 320, 640 bytes). Asterisk's first message is ``MEDIA_START`` — plain text
(``MEDIA_START connection_id:<id> channel:<name> channel_id:<id> format:slin16 optimal_frame_size:640 ptime:20``)
or, with ``f(json)``, a JSON object with the same fields and ``channel_variables``. Then ``DTMF_END``,
``MEDIA_MARK_PROCESSED <id>`` (our ``MARK_MEDIA <id>`` once the audio before it has played), ``MEDIA_XOFF`` /
``MEDIA_XON`` (stop / resume sending: its queue holds 900 / 800 frames), ``QUEUE_DRAINED``, ``STATUS``, ``ERROR``.
We send ``MARK_MEDIA``, ``FLUSH_MEDIA`` (barge-in: drop the queued audio) and ``HANGUP``, in the form Asterisk
used for ``MEDIA_START``. Commands are case-sensitive and at most 128 bytes (longer ones are silently ignored);
a binary message is cut into whole frames and a trailing partial frame is dropped, so we send whole frames only.
(``channels/chan_websocket.c``.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from callbot.call.line import Decoded, FlowControl, LineFormat, WireMessage
from callbot.call.outcome import CallOutcome
from callbot.errors import ProtocolError
from callbot.frames import LINE_RATE, AudioIn, DtmfIn, MarkIn, StreamStart
from telephony.g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
from telephony.resample import StreamResampler, resample_pcm16

FORMATS: dict[str, LineFormat] = {
    "ulaw": LineFormat("ulaw", 8000),
    "alaw": LineFormat("alaw", 8000),
    "slin": LineFormat("slin", 8000),
    "slin12": LineFormat("slin", 12000),
    "slin16": LineFormat("slin", 16000),
    "slin24": LineFormat("slin", 24000),
    "slin32": LineFormat("slin", 32000),
    "slin44": LineFormat("slin", 44100),
    "slin48": LineFormat("slin", 48000),
}
"""Asterisk format names this transport can carry, with what they are."""

MAX_TEXT_CHARS = 64 * 1024
"""MEDIA_START in JSON carries the channel's variables; anything larger is not an Asterisk event."""
MAX_COMMAND_BYTES = 128
MAX_AUDIO_SECONDS = 1.0
_DTMF_DIGITS = frozenset("0123456789*#ABCD")
_IGNORED = frozenset({"QUEUE_DRAINED", "STATUS", "MEDIA_BUFFERING_COMPLETED"})


class ChanWebSocketCodec:
    transport = "websocket"
    echoes_marks = True
    needs_keepalive = False
    frames_per_message = 5
    lead_s = 0.2
    """Asterisk cuts a binary message into frames itself: 100 ms a message, five times fewer messages."""

    def __init__(self) -> None:
        self.line = FORMATS["ulaw"]
        self.started = False
        self.json = False
        self.connection_id = ""
        self.channel_id = ""
        self._to_line_rate: StreamResampler | None = None

    def decode(self, message: WireMessage) -> Sequence[Decoded]:
        if isinstance(message, bytes):
            return [self._audio(message)]
        if len(message) > MAX_TEXT_CHARS:
            raise ProtocolError(f"text message of {len(message)} characters")
        event, fields = _parse_event(message)
        if event == "MEDIA_START":
            if self.started:
                raise ProtocolError("a second MEDIA_START")
            return [self._start(fields, message.lstrip().startswith("{"))]
        if not self.started:
            raise ProtocolError(f"{event[:32]} before MEDIA_START")
        if event == "DTMF_END":
            digit = fields.get("digit")
            if not isinstance(digit, str) or digit not in _DTMF_DIGITS:
                raise ProtocolError(f"DTMF_END with digit {str(digit)[:16]!r}")
            return [DtmfIn(digit)]
        if event == "MEDIA_MARK_PROCESSED":
            return [MarkIn(str(fields.get("correlation_id", ""))[:128])]
        if event in ("MEDIA_XOFF", "MEDIA_XON"):
            return [FlowControl(paused=event == "MEDIA_XOFF")]
        if event == "ERROR":
            raise ProtocolError(f"Asterisk reports an error: {str(fields.get('error_text', ''))[:200]}")
        if event in _IGNORED:
            return []
        raise ProtocolError(f"unknown event {event[:32]!r}")

    def _start(self, fields: dict[str, Any], as_json: bool) -> StreamStart:
        name = fields.get("format")
        line = FORMATS.get(name) if isinstance(name, str) else None
        if line is None:
            raise ProtocolError(f"MEDIA_START with format {str(name)[:32]!r}; use one of {', '.join(FORMATS)}")
        ptime = fields.get("ptime", 20)
        if str(ptime).isdigit() and 10 <= int(ptime) <= 60:
            line = LineFormat(line.encoding, line.sample_rate, int(ptime))
        self.line, self.json, self.started = line, as_json, True
        self.connection_id = str(fields.get("connection_id", ""))[:64]
        self.channel_id = str(fields.get("channel_id", ""))[:64]
        if line.sample_rate != LINE_RATE:
            self._to_line_rate = StreamResampler(line.sample_rate, LINE_RATE)
        variables = fields.get("channel_variables")
        custom = {"channel": str(fields.get("channel", ""))[:128]}
        if isinstance(variables, dict):
            custom |= {str(k)[:64]: str(v)[:256] for k, v in list(variables.items())[:64]}
        return StreamStart(self.connection_id, self.channel_id, custom)

    def _audio(self, data: bytes) -> AudioIn:
        if not self.started:
            raise ProtocolError("audio before MEDIA_START")
        line = self.line
        if len(data) % line.sample_bytes or len(data) > line.sample_rate * line.sample_bytes * MAX_AUDIO_SECONDS:
            raise ProtocolError(f"audio message of {len(data)} bytes for {line.describe()}")
        if line.encoding == "ulaw":
            return AudioIn(ulaw_to_pcm16(data), LINE_RATE)
        if line.encoding == "alaw":
            return AudioIn(alaw_to_pcm16(data), LINE_RATE)
        return AudioIn(self._to_line_rate(data) if self._to_line_rate else data, LINE_RATE)

    def to_line(self, pcm: bytes, sample_rate: int) -> bytes:
        pcm = resample_pcm16(pcm, sample_rate, self.line.sample_rate)
        if self.line.encoding == "ulaw":
            return pcm16_to_ulaw(pcm)
        if self.line.encoding == "alaw":
            return pcm16_to_alaw(pcm)
        return pcm

    def audio(self, frame: bytes) -> bytes:
        return frame

    def mark(self, name: str) -> str:
        return self.command("MARK_MEDIA", name)

    def clear(self) -> str:
        return self.command("FLUSH_MEDIA")

    def hangup(self, outcome: CallOutcome | None) -> str:
        return self.command("HANGUP")

    def command(self, name: str, correlation_id: str | None = None) -> str:
        """A command in the form Asterisk speaks on this connection (plain text or JSON)."""
        if self.json:
            body: dict[str, str] = {"command": name}
            if correlation_id is not None:
                body["correlation_id"] = correlation_id
            text = json.dumps(body, separators=(",", ":"))
        else:
            text = name if correlation_id is None else f"{name} {correlation_id}"
        if len(text.encode()) > MAX_COMMAND_BYTES:
            raise ValueError(f"command {name} over {MAX_COMMAND_BYTES} bytes: Asterisk would ignore it")
        return text


def _parse_event(text: str) -> tuple[str, dict[str, Any]]:
    """An event's name and fields, from either form: ``NAME key:value key:value`` or ``{"event": "NAME", ...}``."""
    text = text.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProtocolError(f"event is not valid JSON: {exc.msg}") from exc
        except RecursionError as exc:
            raise ProtocolError("event nests too deeply") from exc
        if not isinstance(parsed, dict) or not isinstance(parsed.get("event"), str):
            raise ProtocolError("JSON event without an 'event' name")
        return parsed["event"], parsed
    if not text:
        raise ProtocolError("empty text message")
    name, *tokens = text.split()
    fields: dict[str, Any] = {}
    for token in tokens:
        key, sep, value = token.partition(":")
        if sep:
            fields[key] = value
        elif "correlation_id" not in fields:  # MEDIA_MARK_PROCESSED <id>, MEDIA_BUFFERING_COMPLETED <id>
            fields["correlation_id"] = token
    return name, fields
