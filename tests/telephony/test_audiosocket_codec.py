"""The AudioSocket codec against the protocol as Asterisk speaks it (``../shared/asterisk.md``,
``res/res_audiosocket.c``): 3-byte headers, the UUID first, 8 and 16 kHz signed-linear frames, DTMF digits, and
whatever TCP does to the byte stream."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from callbot.call.line import Rejected
from callbot.errors import ProtocolError
from callbot.frames import AudioIn, DtmfIn, HangUp, StreamStart
from telephony.audiosocket_codec import HANGUP, AudioSocketCodec, message

CALL = uuid.UUID("40325ec2-5efd-4bd3-805f-53576e581d13")
UUID_MESSAGE = bytes([0x01, 0x00, 0x10]) + CALL.bytes
SILENCE = message(0x10, b"\x00" * 320)


def tone(samples: int, rate: int, hz: float = 440.0) -> bytes:
    t = np.arange(samples) / rate
    return (8000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def test_the_uuid_message_is_19_bytes_and_the_first_audio_starts_the_call_at_its_rate() -> None:
    assert message(0x01, CALL.bytes) == UUID_MESSAGE and len(UUID_MESSAGE) == 19
    codec = AudioSocketCodec()
    assert codec.decode(UUID_MESSAGE) == []
    frame = tone(160, 8000)
    frames = codec.decode(bytes([0x10, 0x01, 0x40]) + frame)  # 320 bytes: one 20 ms frame at 8 kHz
    assert frames == [StreamStart(str(CALL), str(CALL), {}), AudioIn(frame, 8000)]
    assert codec.line.describe() == "slin/8000" and codec.line.frame_bytes == 320


def test_16_khz_frames_from_the_channel_driver_reach_the_pipeline_at_8_khz() -> None:
    codec = AudioSocketCodec()
    codec.decode(UUID_MESSAGE)
    frames = [f for _ in range(25) for f in codec.decode(message(0x12, tone(320, 16000)))]
    assert isinstance(frames[0], StreamStart) and codec.line.describe() == "slin/16000"
    audio = b"".join(f.pcm for f in frames if isinstance(f, AudioIn))
    assert 0.4 < len(audio) / 2 / 8000 <= 0.5  # half a second in, less the resampler's delay
    # and the bot's audio goes back at the line's rate, in 640-byte frames of kind 0x12
    assert codec.line.frame_bytes == 640
    assert codec.audio(b"\x00" * 640)[:3] == bytes([0x12, 0x02, 0x80])


def test_any_tcp_segmentation_gives_the_same_frames() -> None:
    stream = UUID_MESSAGE + message(0x10, tone(160, 8000)) + message(0x03, b"5") + message(0x10, tone(160, 8000, 880))
    whole = AudioSocketCodec().decode(stream)
    codec = AudioSocketCodec()
    byte_by_byte = [frame for i in range(len(stream)) for frame in codec.decode(stream[i : i + 1])]
    assert byte_by_byte == whole
    assert [type(f) for f in whole] == [StreamStart, AudioIn, DtmfIn, AudioIn]
    assert whole[2] == DtmfIn("5")


def test_a_uuid_without_audio_starts_the_call_at_8_khz_on_the_next_tick() -> None:
    codec = AudioSocketCodec()
    codec.decode(UUID_MESSAGE)
    assert codec.decode(b"") == [StreamStart(str(CALL), str(CALL), {})]
    assert codec.decode(b"") == []


def test_what_the_bot_sends_is_only_audio_kinds_and_the_hangup() -> None:
    codec = AudioSocketCodec()
    assert codec.audio(b"\x01\x02" * 160) == bytes([0x10, 0x01, 0x40]) + b"\x01\x02" * 160
    assert codec.hangup(None) == HANGUP == b"\x00\x00\x00"
    assert codec.mark("utt-1") is None and codec.clear() is None  # no marks, no clear: the player keeps time
    assert codec.needs_keepalive and codec.frames_per_message == 1
    assert codec.line.silence == b"\x00" * 320


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (message(0x10, b"\x00" * 320), "before the UUID"),
        (UUID_MESSAGE + message(0x10, b"\x00" * 319), "319 bytes"),
        (UUID_MESSAGE + message(0x03, b"x"), "invalid DTMF"),
        (UUID_MESSAGE + UUID_MESSAGE, "second UUID"),
        (UUID_MESSAGE + message(0x42, b"junk") + SILENCE, "unknown AudioSocket kind 0x42 (4 bytes) skipped"),
        (UUID_MESSAGE + message(0x10, b"\x00" * 20000), "kind 0x10 and length 20000"),
        (UUID_MESSAGE + message(0xFF, b"\x02"), "error (code 0x02)"),
    ],
    ids=["audio-before-uuid", "odd-length", "bad-digit", "second-uuid", "unknown-kind", "oversize", "peer-error"],
)
def test_bad_input_is_rejected_and_named(stream: bytes, reason: str) -> None:
    rejected = [f for f in AudioSocketCodec().decode(stream) if isinstance(f, Rejected)]
    assert rejected and reason in rejected[0].reason


def test_a_wrong_length_costs_one_rejection_and_the_stream_resynchronises() -> None:
    """A peer that announced 320 bytes but sent 300: the next header is read as payload, the stream is out of step;
    the codec finds the next message again (a plausible header followed by another) instead of waiting for 64 KiB,
    taking a stray sample for a header, or rejecting byte by byte."""
    codec = AudioSocketCodec()
    codec.decode(UUID_MESSAGE + message(0x10, tone(160, 8000)))
    broken = bytes([0x10, 0x01, 0x40]) + b"\x7f" * 300  # 20 bytes short
    good = [message(0x10, tone(160, 8000)) for _ in range(5)]
    frames = codec.decode(broken + b"".join(good) + message(0x03, b"#") + SILENCE)
    rejected = [f for f in frames if isinstance(f, Rejected)]
    assert len(rejected) == 1 and "resynchronising" in rejected[0].reason
    assert frames[-2:] == [DtmfIn("#"), AudioIn(b"\x00" * 320, 8000)]
    assert sum(isinstance(f, AudioIn) for f in frames) == 1 + 4 + 1, (
        "the broken one, four of the five good ones, the last"
    )


def test_a_hangup_kind_from_the_peer_ends_the_call_once_a_real_message_follows() -> None:
    codec = AudioSocketCodec()
    frames = codec.decode(UUID_MESSAGE + message(0x10, b"\x00" * 320) + HANGUP)
    assert HangUp() not in frames, "three zero bytes at the end of a read could be the start of out-of-step silence"
    assert codec.decode(message(0x10, b"\x00" * 320))[0] == HangUp()


def test_silence_read_out_of_step_is_not_a_hangup() -> None:
    """A wrong length lands the reader inside a silent frame: its zeros look like hang-ups, one after another."""
    codec = AudioSocketCodec()
    short = bytes([0x10, 0x01, 0x40]) + b"\x00" * 300  # says 320 bytes, carries 300
    frames = codec.decode(UUID_MESSAGE + short + message(0x10, b"\x00" * 320) * 5)
    assert HangUp() not in frames
    assert [f.reason for f in frames if isinstance(f, Rejected)] == [
        "zero bytes where a message should start: resynchronising"
    ]
    assert codec.decode(message(0x10, b"\x00" * 320) * 2)[-1] == AudioIn(b"\x00" * 320, 8000)


def test_text_is_not_audiosocket() -> None:
    with pytest.raises(ProtocolError):
        AudioSocketCodec().decode("hello")
