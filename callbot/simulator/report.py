"""What a simulated call reports, whatever line carried it; and the caller's audio files."""

from __future__ import annotations

import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from callbot.errors import CallbotError
from telephony.resample import resample_pcm16

LINE_RATE = 8000
FRAME_S = 0.02
FRAME_SAMPLES = 160


@dataclass
class CallReport:
    call_id: str = ""
    transport: str = "twilio"
    outcome: str | None = None
    transfer_target: str | None = None
    first_audio_ms: float | None = None
    response_ms: list[float] = field(default_factory=list)
    """Per caller turn: from the caller's last voiced frame (or the key press) to the bot's next audio."""
    barge_in_ms: list[float] = field(default_factory=list)
    """Per key pressed while the bot spoke: how long until the bot told the line to drop its queued audio."""
    bot_voice_s: float = 0.0
    """How much of what the caller heard was voice (not the line's silence)."""
    bot_audio_s: float = 0.0
    marks_echoed: int = 0
    clears: int = 0
    twiml: str = ""
    redirects: list[str] = field(default_factory=list)
    """URLs the call's TwiML was fetched again from (<Redirect>: a draining instance sent it elsewhere)."""
    asterisk: dict[str, Any] = field(default_factory=dict)
    """What the Asterisk side saw: the dialplan place and channel variables ARI set, close codes..."""
    peer_errors: list[str] = field(default_factory=list)
    """What the simulated telephony peer would have refused (a real Asterisk or Twilio would have failed)."""
    turns: list[dict[str, Any]] = field(default_factory=list)
    turns_error: str | None = None
    call: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "transport": self.transport,
            "outcome": self.outcome,
            "transfer_target": self.transfer_target,
            "first_audio_ms": self.first_audio_ms,
            "response_ms": self.response_ms,
            "barge_in_ms": self.barge_in_ms,
            "bot_audio_s": round(self.bot_audio_s, 3),
            "bot_voice_s": self.bot_voice_s,
            "marks_echoed": self.marks_echoed,
            "clears": self.clears,
            "twiml": self.twiml,
            "asterisk": self.asterisk,
            "peer_errors": self.peer_errors,
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
    return resample_pcm16(pcm, rate, LINE_RATE)


def write_wav(path: Path, pcm: bytes) -> None:
    """What the caller heard (16-bit PCM at 8 kHz) as a WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(LINE_RATE)
        wav.writeframes(pcm)
