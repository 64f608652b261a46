"""The few frozen frames that travel through a call's pipeline.

Telephony codecs turn a provider's wire format into these frames and back; nothing past the codec knows
which provider carries the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LINE_RATE = 8000
"""Internal audio is 16-bit signed little-endian mono PCM at the phone line's rate."""


@dataclass(frozen=True, slots=True)
class AudioIn:
    """Caller audio: 16-bit PCM at ``sample_rate``."""

    pcm: bytes
    sample_rate: int = LINE_RATE


@dataclass(frozen=True, slots=True)
class DtmfIn:
    """One keypad digit pressed by the caller."""

    digit: str


@dataclass(frozen=True, slots=True)
class MarkIn:
    """The peer has played our audio up to the mark we sent with this name."""

    name: str


@dataclass(frozen=True, slots=True)
class StreamStart:
    """The media stream is open; carries the provider's identifiers."""

    stream_id: str
    call_sid: str
    custom: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HangUp:
    """The peer closed the media stream (caller hung up or the provider stopped it)."""


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float
    conf: float


@dataclass(frozen=True, slots=True)
class TranscriptPartial:
    text: str


@dataclass(frozen=True, slots=True)
class TranscriptFinal:
    text: str
    words: tuple[Word, ...] = ()


InboundFrame = AudioIn | DtmfIn | MarkIn | StreamStart | HangUp


@dataclass(frozen=True, slots=True)
class NluResult:
    """What the NLU understood of one utterance."""

    text: str
    intent: str | None
    confidence: float
    ranking: tuple[tuple[str, float], ...] = ()
    entities: tuple[tuple[str, str], ...] = ()

    @property
    def margin(self) -> float:
        """Top-1 minus top-2 confidence: small when the NLU hesitates between two intents."""
        if len(self.ranking) < 2:
            return self.confidence
        return self.ranking[0][1] - self.ranking[1][1]

    @property
    def entity_map(self) -> dict[str, str]:
        return dict(self.entities)
