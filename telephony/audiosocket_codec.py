"""Asterisk AudioSocket (TCP) wire format <-> pipeline frames.

Each message is a 3-byte header — kind (1 byte), payload length (2 bytes, big-endian) — then the payload
(Asterisk's ``res/res_audiosocket.c``). Asterisk sends first the call's UUID (kind ``0x01``, 16 raw bytes), then
signed 16-bit little-endian audio in real time (``0x10``: 8 kHz, 320-byte frames from the ``AudioSocket()``
application; ``0x12``: 16 kHz with the channel driver's ``c(slin16)``; the other ``0x1x`` kinds are the other slin
rates) and DTMF (``0x03``, one ASCII digit). It hangs up by closing the connection. We may send only audio kinds
and ``0x00`` (hang-up: the application returns and the dialplan goes on); anything else ends the application.
With no frame either way for 2 s Asterisk drops the call, so the line carries silence while the bot thinks.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from callbot.call.line import Decoded, LineFormat, Rejected, WireMessage
from callbot.call.outcome import CallOutcome
from callbot.errors import ProtocolError
from callbot.frames import LINE_RATE, AudioIn, DtmfIn, HangUp, StreamStart
from telephony.resample import StreamResampler, resample_pcm16

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_ERROR = 0xFF
AUDIO_KINDS = {
    0x10: 8000,
    0x11: 12000,
    0x12: 16000,
    0x13: 24000,
    0x14: 32000,
    0x15: 44100,
    0x16: 48000,
    0x17: 96000,
    0x18: 192000,
}
"""Audio kind -> sample rate (signed linear, 16-bit little-endian), as in ``res_audiosocket.h``."""
KIND_OF_RATE = {rate: kind for kind, rate in AUDIO_KINDS.items()}

HEADER_BYTES = 3
MAX_AUDIO_SECONDS = 1.0
"""Asterisk sends 20 ms frames; an audio message longer than a second is not one."""
MAX_SKIPPED_BYTES = 4096
"""A message of an unknown kind up to this size is waited for whole, to be skipped as one."""
HANGUP = bytes([KIND_HANGUP, 0, 0])
_DTMF_DIGITS = frozenset(b"0123456789*#ABCD")


class AudioSocketCodec:
    """One connection's byte stream, reassembled into messages whatever the TCP segmentation."""

    transport = "audiosocket"
    echoes_marks = False
    needs_keepalive = True
    frames_per_message = 1
    lead_s = 0.04
    """Asterisk writes each message to the channel as it comes (no playout buffer): 20 ms frames, just in time."""

    def __init__(self) -> None:
        self.line = LineFormat("slin", LINE_RATE)
        self.uuid: uuid.UUID | None = None
        self.started = False
        self._buffer = bytearray()
        self._resamplers: dict[int, StreamResampler] = {}
        self._lost_sync = False
        self._skipped = 0

    def decode(self, message: WireMessage) -> Sequence[Decoded]:
        """Every complete message in the bytes received so far. An empty chunk is a tick of the clock: a call
        whose UUID came but no audio yet starts on an 8 kHz line rather than wait."""
        if isinstance(message, str):
            raise ProtocolError("AudioSocket carries bytes")
        frames: list[Decoded] = []
        if not message:
            if self.uuid is not None and not self.started:
                frames.append(self._start(LINE_RATE))
            return frames
        buffer = self._buffer
        buffer += message
        while len(buffer) >= HEADER_BYTES:
            kind = buffer[0]
            length = (buffer[1] << 8) | buffer[2]
            if self._lost_sync:
                # looking for the next message: a plausible header followed by another one
                confirmed = self._plausible_at(HEADER_BYTES + length) if _likely(kind, length) else False
                if confirmed is None:
                    break
                if not confirmed:
                    del buffer[:1]
                    self._skipped += 1
                    if self._skipped % MAX_SKIPPED_BYTES == 0:  # garbage counts against the error budget too
                        frames.append(Rejected(f"{self._skipped} bytes without a recognisable AudioSocket message"))
                    continue
                self._lost_sync = False
                self._skipped = 0
            elif not _plausible(kind, length):
                framed = self._framed_from(HEADER_BYTES + length) if length <= MAX_SKIPPED_BYTES else False
                if framed is None:
                    break  # wait for the rest to tell a message we do not know from a lost framing
                if framed:
                    frames.append(Rejected(f"unknown AudioSocket kind 0x{kind:02x} ({length} bytes) skipped"))
                    del buffer[: HEADER_BYTES + length]
                else:  # a wrong length earlier: the stream lost its framing; one rejection until it is found
                    self._lose_sync(frames, f"no AudioSocket message has kind 0x{kind:02x} and length {length}")
                continue
            if kind == KIND_HANGUP:
                # Asterisk never sends one (it closes the connection), and three zero bytes are also what a
                # stream read out of step finds inside silence: a hang-up counts when a real message or the
                # end of the connection follows it, not more zeros
                after = self._plausible_at(HEADER_BYTES)
                if after is None:
                    break
                if not after or buffer[HEADER_BYTES] == KIND_HANGUP:
                    self._lose_sync(frames, "zero bytes where a message should start")
                    continue
            if len(buffer) < HEADER_BYTES + length:
                break  # the rest of the message is on its way
            payload = bytes(buffer[HEADER_BYTES : HEADER_BYTES + length])
            del buffer[: HEADER_BYTES + length]
            self._message(kind, payload, frames)
        return frames

    def _lose_sync(self, frames: list[Decoded], what: str) -> None:
        """The bytes at the head of the buffer start no message: look for the next one from the byte after."""
        frames.append(Rejected(f"{what}: resynchronising"))
        self._lost_sync = True
        del self._buffer[:1]

    def _plausible_at(self, position: int) -> bool | None:
        """Whether a plausible header starts at ``position`` (None: not received yet)."""
        buffer = self._buffer
        if len(buffer) < position + HEADER_BYTES:
            return None
        return _plausible(buffer[position], (buffer[position + 1] << 8) | buffer[position + 2])

    def _framed_from(self, position: int) -> bool | None:
        """Whether the bytes from ``position`` read as whole messages (of kinds we may not know) up to a
        plausible one: then what came before was a well-framed message too (None: not received yet)."""
        buffer = self._buffer
        for _ in range(8):
            if len(buffer) < position + HEADER_BYTES:
                return None
            length = (buffer[position + 1] << 8) | buffer[position + 2]
            if _plausible(buffer[position], length):
                return True
            if length > MAX_SKIPPED_BYTES:
                return False
            position += HEADER_BYTES + length
        return False

    def _message(self, kind: int, payload: bytes, frames: list[Decoded]) -> None:
        if kind == KIND_UUID:
            if self.uuid is not None:
                frames.append(Rejected("a second UUID message on the same connection"))
                return
            self.uuid = uuid.UUID(bytes=payload)
            return
        if self.uuid is None:
            frames.append(Rejected(f"kind 0x{kind:02x} before the UUID"))
            return
        if kind in AUDIO_KINDS:
            rate = AUDIO_KINDS[kind]
            if len(payload) % 2 or len(payload) > rate * 2 * MAX_AUDIO_SECONDS:
                frames.append(Rejected(f"audio message of {len(payload)} bytes at {rate} Hz"))
                return
            if not self.started:
                frames.append(self._start(rate))
            frames.append(AudioIn(self._to_line_rate(rate, payload), LINE_RATE))
        elif kind == KIND_DTMF:
            if not self.started:
                frames.append(self._start(LINE_RATE))
            if payload[0] not in _DTMF_DIGITS:
                frames.append(Rejected(f"invalid DTMF digit {payload!r}"))
            else:
                frames.append(DtmfIn(chr(payload[0])))
        elif kind == KIND_HANGUP:
            frames.append(HangUp())
        else:  # KIND_ERROR
            code = f"0x{payload[0]:02x}" if payload else "none"
            frames.append(Rejected(f"the peer reports an error (code {code})"))

    def _start(self, rate: int) -> StreamStart:
        """The call starts once its line's rate is known: from the first audio frame (or a tick, or a key)."""
        assert self.uuid is not None
        self.started = True
        self.line = LineFormat("slin", rate)
        return StreamStart(str(self.uuid), str(self.uuid), {})

    def _to_line_rate(self, rate: int, pcm: bytes) -> bytes:
        if rate == LINE_RATE:
            return pcm
        resampler = self._resamplers.get(rate)
        if resampler is None:
            resampler = self._resamplers[rate] = StreamResampler(rate, LINE_RATE)
        return resampler(pcm)

    def to_line(self, pcm: bytes, sample_rate: int) -> bytes:
        return resample_pcm16(pcm, sample_rate, self.line.sample_rate)

    def audio(self, frame: bytes) -> bytes:
        return message(KIND_OF_RATE[self.line.sample_rate], frame)

    def mark(self, name: str) -> None:
        return None  # AudioSocket has no marks: the player keeps time

    def clear(self) -> None:
        return None  # nothing is queued on Asterisk's side beyond what we sent: we stop sending

    def hangup(self, outcome: CallOutcome | None) -> bytes:
        return HANGUP

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete message still waiting for the rest."""
        return len(self._buffer)


def message(kind: int, payload: bytes = b"") -> bytes:
    """One AudioSocket message: header and payload in one buffer (written in a single send)."""
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


def _plausible(kind: int, length: int) -> bool:
    """Whether a header could start a message a peer sends (audio within a second, a digit, a UUID...)."""
    if kind in AUDIO_KINDS:
        return 0 < length <= AUDIO_KINDS[kind] * 2 * MAX_AUDIO_SECONDS
    if kind == KIND_UUID:
        return length == 16
    if kind == KIND_DTMF:
        return length == 1
    if kind == KIND_HANGUP:
        return length == 0
    return kind == KIND_ERROR and length <= 16


def _likely(kind: int, length: int) -> bool:
    """Stricter than plausible, to find the next message in a stream that lost its framing: audio of whole 10 ms
    and at most 200 ms (Asterisk sends 20 ms frames), or a digit — a stray sample rarely looks like that."""
    if kind in AUDIO_KINDS:
        ten_ms = AUDIO_KINDS[kind] // 100 * 2
        return 0 < length <= 20 * ten_ms and length % ten_ms == 0
    return kind == KIND_DTMF and length == 1
