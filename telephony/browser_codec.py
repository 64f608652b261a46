"""The console's browser softphone wire format <-> pipeline frames.

Inbound: binary messages of 16-bit little-endian PCM, mono, 16 kHz (the microphone); text messages of JSON:
``{"type": "dtmf", "digit": "5"}``, ``{"type": "mark", "name": "..."}`` (the browser played our audio up to it),
``{"type": "hangup"}``.
Outbound: binary 16-bit PCM at 16 kHz in 20 ms frames (the bot's voice); JSON ``{"type": "mark"}``,
``{"type": "clear"}`` (barge-in: drop what is queued), and the call's events (turns, end).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from callbot.call.line import Decoded, LineFormat, WireMessage
from callbot.call.outcome import CallOutcome
from callbot.errors import ProtocolError
from callbot.frames import LINE_RATE, AudioIn, DtmfIn, HangUp, InboundFrame, MarkIn
from telephony.resample import StreamResampler, resample_pcm16

BROWSER_RATE = 16000
FRAME_MS = 20
FRAME_BYTES = BROWSER_RATE * 2 * FRAME_MS // 1000
MAX_AUDIO_BYTES = BROWSER_RATE * 2
"""One second of audio: browsers send a few hundred milliseconds at most per message."""
MAX_TEXT_CHARS = 4096
"""The page sends keys, marks and hang-up: a few dozen characters each."""
_DIGITS = frozenset("0123456789*#")


class BrowserCodec:
    """The console's softphone as a line: 16 kHz PCM both ways, marks echoed by the page's audio worklet."""

    transport = "browser"
    line = LineFormat("slin", BROWSER_RATE)
    echoes_marks = True
    needs_keepalive = False
    frames_per_message = 5
    lead_s = 0.2

    def __init__(self) -> None:
        self._to_line_rate = StreamResampler(BROWSER_RATE, LINE_RATE)

    def decode(self, message: WireMessage) -> Sequence[Decoded]:
        if isinstance(message, bytes):
            check_audio(message)
            return [AudioIn(self._to_line_rate(message), LINE_RATE)]
        return [decode_text(message)]

    def to_line(self, pcm: bytes, sample_rate: int) -> bytes:
        return to_browser(pcm, sample_rate)

    def audio(self, frame: bytes) -> bytes:
        return frame

    def mark(self, name: str) -> str:
        return event("mark", name=name)

    def clear(self) -> str:
        return event("clear")

    def hangup(self, outcome: CallOutcome | None) -> str | None:
        """How the call ends, shown on the page before the line closes."""
        if outcome is None:
            return None
        return event("end", outcome=outcome.outcome, reason=outcome.reason, queue=outcome.queue)


def check_audio(data: bytes) -> None:
    if len(data) % 2 or len(data) > MAX_AUDIO_BYTES:
        raise ProtocolError(f"audio message of {len(data)} bytes: expected 16-bit samples, at most one second")


def decode_text(text: str) -> InboundFrame:
    if len(text) > MAX_TEXT_CHARS:
        raise ProtocolError(f"message of {len(text)} characters is over {MAX_TEXT_CHARS}")
    try:
        message: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"message is not JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise ProtocolError("message nests too deeply") from exc
    if not isinstance(message, dict):
        raise ProtocolError("message is not a JSON object")
    kind = message.get("type")
    if kind == "dtmf":
        digit = message.get("digit", "")
        if not isinstance(digit, str) or digit not in _DIGITS:
            raise ProtocolError(f"invalid DTMF digit {str(digit)[:16]!r}")
        return DtmfIn(digit)
    if kind == "mark":
        return MarkIn(str(message.get("name", ""))[:64])
    if kind == "hangup":
        return HangUp()
    raise ProtocolError(f"unknown message type {str(kind)[:64]!r}")


def to_browser(pcm: bytes, sample_rate: int) -> bytes:
    return resample_pcm16(pcm, sample_rate, BROWSER_RATE)


def event(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields}, ensure_ascii=False, default=str)
