"""What every telephony transport offers the call pipeline: a line codec (wire messages <-> frames) and a pipe
(the connection that carries the wire messages). One media loop (``callbot.call.stream``) runs them all; nothing
past a codec knows a wire format."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from callbot.call.outcome import CallOutcome
from callbot.frames import InboundFrame

Encoding = Literal["ulaw", "alaw", "slin"]

WireMessage = str | bytes
"""One message on the wire: a WebSocket text or binary message, or bytes read from a TCP stream."""


@dataclass(frozen=True, slots=True)
class LineFormat:
    """The audio a line carries: G.711 (mu-law, A-law: one byte a sample) or signed 16-bit linear PCM."""

    encoding: Encoding
    sample_rate: int
    frame_ms: int = 20

    @property
    def sample_bytes(self) -> int:
        return 2 if self.encoding == "slin" else 1

    @property
    def frame_bytes(self) -> int:
        """One frame of line audio, in bytes."""
        return self.sample_rate * self.frame_ms // 1000 * self.sample_bytes

    @property
    def frame_seconds(self) -> float:
        return self.frame_ms / 1000

    @property
    def silence(self) -> bytes:
        """One frame of silence in this encoding."""
        byte = {"ulaw": b"\xff", "alaw": b"\xd5", "slin": b"\x00"}[self.encoding]
        return byte * self.frame_bytes

    def describe(self) -> str:
        """How the call record names it: ``ulaw/8000``, ``alaw/8000``, ``slin/16000``."""
        return f"{self.encoding}/{self.sample_rate}"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A wire message (or part of a stream) that breaks the protocol: logged and counted, the call goes on."""

    reason: str


@dataclass(frozen=True, slots=True)
class FlowControl:
    """The peer asks us to stop (``paused``) or resume sending audio (chan_websocket MEDIA_XOFF / MEDIA_XON)."""

    paused: bool


Decoded = InboundFrame | FlowControl | Rejected


class LineCodec(Protocol):
    """One transport's wire format. Decoding never raises anything but ``ProtocolError``; encoding never
    touches the network (the media loop sends what it returns)."""

    transport: str
    """Short name for logs and metrics: ``twilio``, ``browser``, ``audiosocket``, ``websocket``."""
    line: LineFormat
    """The line's audio format; a codec may learn it from the peer's first message."""
    echoes_marks: bool
    """Whether the peer tells us when our audio has played up to a mark; if not, the player keeps time itself."""
    needs_keepalive: bool
    """Whether the peer drops a line that carries no audio for a moment (silence is sent while the bot thinks)."""
    frames_per_message: int
    """Consecutive 20 ms frames sent in one message (1 where the peer plays each message as one packet)."""
    lead_s: float
    """Audio sent ahead of real time: a peer with a playout buffer takes 200 ms (barge-in clears it); one that
    plays each message as it comes gets the next frame just in time."""

    def decode(self, message: WireMessage) -> Sequence[Decoded]:
        """Frames carried by one wire message (several for a byte stream, none for a message that carries
        nothing for the pipeline). Raises ``ProtocolError`` for a message that is rejected whole."""
        ...

    def to_line(self, pcm: bytes, sample_rate: int) -> bytes:
        """Bot audio (16-bit PCM at any rate) in the line's encoding and rate."""
        ...

    def audio(self, frame: bytes) -> WireMessage:
        """One frame of line audio, as a wire message."""
        ...

    def mark(self, name: str) -> WireMessage | None:
        """Ask the peer to tell us when it has played our audio up to here (None: the peer cannot)."""
        ...

    def clear(self) -> WireMessage | None:
        """Barge-in: the peer drops the audio it has queued (None: nothing to send, we only stop sending)."""
        ...

    def hangup(self, outcome: CallOutcome | None) -> WireMessage | None:
        """The bot's part of the call is over, with this outcome (None: closing the connection says it)."""
        ...


class Pipe(Protocol):
    """The connection that carries one call's wire messages (a WebSocket, a TCP stream)."""

    lost: str | None
    """Once receive() returned None: why the connection broke (an abnormal close code, a reset), or None when
    the peer closed it normally (the caller hung up)."""

    async def receive(self) -> WireMessage | None:
        """The peer's next message, or None once the connection is gone."""
        ...

    async def send(self, message: WireMessage) -> None:
        """Send, or do nothing if the connection is gone (the receive side notices)."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close (WebSocket close code; a TCP stream ignores it); safe to call more than once."""
        ...
