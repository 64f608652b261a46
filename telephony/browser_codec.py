"""The console's browser softphone wire format <-> pipeline frames.

Inbound: binary messages of 16-bit little-endian PCM, mono, 16 kHz (the microphone); text messages of JSON:
``{"type": "dtmf", "digit": "5"}``, ``{"type": "mark", "name": "..."}`` (the browser played our audio up to it),
``{"type": "hangup"}``.
Outbound: binary 16-bit PCM at 16 kHz in 20 ms frames (the bot's voice); JSON ``{"type": "mark"}``,
``{"type": "clear"}`` (barge-in: drop what is queued), and the call's events (turns, end).
"""

from __future__ import annotations

import json
from typing import Any

from callbot.errors import ProtocolError
from callbot.frames import LINE_RATE, AudioIn, DtmfIn, HangUp, InboundFrame, MarkIn
from telephony.resample import resample_pcm16

BROWSER_RATE = 16000
FRAME_MS = 20
FRAME_BYTES = BROWSER_RATE * 2 * FRAME_MS // 1000
MAX_AUDIO_BYTES = BROWSER_RATE * 2
"""One second of audio: browsers send a few hundred milliseconds at most per message."""
_DIGITS = frozenset("0123456789*#")


def decode_audio(data: bytes) -> AudioIn:
    if len(data) % 2 or len(data) > MAX_AUDIO_BYTES:
        raise ProtocolError(f"audio message of {len(data)} bytes: expected 16-bit samples, at most one second")
    return AudioIn(resample_pcm16(data, BROWSER_RATE, LINE_RATE), LINE_RATE)


def decode_text(text: str) -> InboundFrame:
    try:
        message: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"message is not JSON: {exc.msg}") from exc
    if not isinstance(message, dict):
        raise ProtocolError("message is not a JSON object")
    kind = message.get("type")
    if kind == "dtmf":
        digit = str(message.get("digit", ""))
        if digit not in _DIGITS:
            raise ProtocolError(f"invalid DTMF digit {digit!r}")
        return DtmfIn(digit)
    if kind == "mark":
        return MarkIn(str(message.get("name", ""))[:64])
    if kind == "hangup":
        return HangUp()
    raise ProtocolError(f"unknown message type {kind!r}")


def to_browser(pcm: bytes, sample_rate: int) -> bytes:
    return resample_pcm16(pcm, sample_rate, BROWSER_RATE)


def event(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields}, ensure_ascii=False, default=str)
