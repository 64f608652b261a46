"""The chan_websocket codec against the messages Asterisk sends and accepts (``../shared/asterisk.md``,
``channels/chan_websocket.c``): MEDIA_START in both forms, DTMF_END, mark echoes, flow control, G.711 and
signed-linear frames, and commands Asterisk will not ignore."""

from __future__ import annotations

import json

import numpy as np
import pytest

from callbot.call.line import FlowControl
from callbot.errors import ProtocolError
from callbot.frames import AudioIn, DtmfIn, MarkIn, StreamStart
from telephony.chan_websocket_codec import MAX_COMMAND_BYTES, ChanWebSocketCodec
from telephony.g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw

PLAIN_START = (
    "MEDIA_START connection_id:callbot channel:WebSocket/callbot/0x7f3a2c001234 channel_id:1733080000.42 "
    "format:ulaw optimal_frame_size:160 ptime:20"
)
JSON_START = json.dumps(
    {
        "event": "MEDIA_START",
        "connection_id": "6d1f5e0e-4c2a-4f0c-9f5e-0a1b2c3d4e5f",
        "channel": "WebSocket/INCOMING/0x7f3a2c005678",
        "channel_id": "1733080000.43",
        "format": "slin16",
        "optimal_frame_size": 640,
        "ptime": 20,
        "channel_variables": {"CALLBOT_CALLER": "+33612345678", "MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE": "640"},
    },
    separators=(",", ":"),
)


def started(start: str = PLAIN_START) -> ChanWebSocketCodec:
    codec = ChanWebSocketCodec()
    codec.decode(start)
    return codec


def test_plain_media_start_gives_the_call_and_a_mu_law_line() -> None:
    codec = ChanWebSocketCodec()
    assert codec.decode(PLAIN_START) == [
        StreamStart("callbot", "1733080000.42", {"channel": "WebSocket/callbot/0x7f3a2c001234"})
    ]
    assert codec.line.describe() == "ulaw/8000" and codec.line.frame_bytes == 160 and not codec.json


def test_json_media_start_carries_the_channel_variables_and_the_commands_follow_its_form() -> None:
    codec = ChanWebSocketCodec()
    (start,) = codec.decode(JSON_START)
    assert isinstance(start, StreamStart) and start.custom["CALLBOT_CALLER"] == "+33612345678"
    assert codec.line.describe() == "slin/16000" and codec.line.frame_bytes == 640
    assert json.loads(codec.mark("utt-3")) == {"command": "MARK_MEDIA", "correlation_id": "utt-3"}
    assert json.loads(codec.clear()) == {"command": "FLUSH_MEDIA"}
    assert json.loads(codec.hangup(None)) == {"command": "HANGUP"}


def test_plain_commands_are_what_asterisk_parses() -> None:
    codec = started()
    assert (codec.mark("utt-3"), codec.clear(), codec.hangup(None)) == ("MARK_MEDIA utt-3", "FLUSH_MEDIA", "HANGUP")
    with pytest.raises(ValueError):  # Asterisk silently ignores a command over 128 bytes: never send one
        codec.command("MARK_MEDIA", "x" * MAX_COMMAND_BYTES)


@pytest.mark.parametrize(
    ("event", "frame"),
    [
        ("DTMF_END digit:5 channel_id:1733080000.42", DtmfIn("5")),
        ('{"event":"DTMF_END","channel_id":"1733080000.42","digit":"#"}', DtmfIn("#")),
        ("MEDIA_MARK_PROCESSED utt-2", MarkIn("utt-2")),
        ('{"event":"MEDIA_MARK_PROCESSED","channel_id":"1","correlation_id":"utt-2"}', MarkIn("utt-2")),
        ("MEDIA_XOFF", FlowControl(paused=True)),
        ('{"event":"MEDIA_XON","channel_id":"1733080000.42"}', FlowControl(paused=False)),
    ],
)
def test_events_from_asterisk(event: str, frame: object) -> None:
    assert started().decode(event) == [frame]


@pytest.mark.parametrize("event", ["QUEUE_DRAINED", "MEDIA_BUFFERING_COMPLETED", "STATUS channel_id:1 queue_length:0"])
def test_informational_events_carry_nothing_for_the_pipeline(event: str) -> None:
    assert started().decode(event) == []


def test_g711_and_linear_frames_reach_the_pipeline_as_8_khz_pcm() -> None:
    pcm = (6000 * np.sin(np.arange(160) / 3)).astype("<i2").tobytes()
    assert started().decode(pcm16_to_ulaw(pcm)) == [AudioIn(started().decode(pcm16_to_ulaw(pcm))[0].pcm, 8000)]
    alaw = started(PLAIN_START.replace("format:ulaw", "format:alaw"))
    (frame,) = alaw.decode(pcm16_to_alaw(pcm))
    assert isinstance(frame, AudioIn) and frame.pcm == alaw_to_pcm16(pcm16_to_alaw(pcm))
    assert alaw.to_line(pcm, 8000) == pcm16_to_alaw(pcm)  # the bot speaks A-law on an A-law line
    slin16 = started(JSON_START)
    out = [slin16.decode(b"\x00\x01" * 320)[0] for _ in range(10)]
    assert sum(len(f.pcm) for f in out if isinstance(f, AudioIn)) > 0


@pytest.mark.parametrize(
    ("message", "before_start"),
    [
        (b"\xff" * 160, True),
        ("DTMF_END digit:5 channel_id:1", True),
        ("MEDIA_START connection_id:x channel:y channel_id:z format:g729 optimal_frame_size:20 ptime:20", True),
        ("DTMF_END digit:x channel_id:1", False),
        ("NOT_AN_EVENT", False),
        ("ERROR channel_id:1 error_text:Unable to parse JSON command", False),
        ('{"event": ["MEDIA_START"]}', False),
        ("[" * 10000, False),
        (PLAIN_START, False),
        (b"\x00" * 161, False),
    ],
    ids=[
        "audio-before-start",
        "dtmf-before-start",
        "unsupported-format",
        "bad-digit",
        "unknown-event",
        "asterisk-error",
        "event-not-a-string",
        "deep-nesting",
        "second-start",
        "odd-slin-length",
    ],
)
def test_bad_input_is_a_protocol_error(message: str | bytes, before_start: bool) -> None:
    codec = ChanWebSocketCodec() if before_start else started()
    if message == b"\x00" * 161:
        codec = started(JSON_START)  # 16-bit samples: an odd length is not audio
    with pytest.raises(ProtocolError):
        codec.decode(message)
