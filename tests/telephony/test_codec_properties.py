"""Property tests on every wire codec: whatever a broken or hostile peer sends never raises anything but a
ProtocolError out of the codec, and a good call interleaved with junk still gives all of its frames."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callbot.call.line import Rejected
from callbot.errors import ProtocolError
from telephony.audiosocket_codec import AudioSocketCodec, message
from telephony.browser_codec import BrowserCodec
from telephony.chan_websocket_codec import ChanWebSocketCodec
from telephony.twilio_codec import TwilioCodec

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
EVENTS = ["connected", "start", "media", "dtmf", "mark", "stop", "MEDIA_START", "DTMF_END", "MEDIA_XOFF", "hangup"]
KEYS = ["event", "type", "start", "media", "dtmf", "mark", "streamSid", "payload", "digit", "name", "mediaFormat"]
# objects shaped like the real messages, with any values: the codecs' field checks are what is tested
shaped = st.fixed_dictionaries({"event": st.sampled_from(EVENTS) | json_values}).flatmap(
    lambda base: st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5).map(lambda extra: {**base, **extra})
)
wire = (
    st.text(max_size=200)
    | st.binary(max_size=400)
    | json_values.map(json.dumps)
    | shaped.map(json.dumps)
    | st.integers(1, 3000).map(lambda n: "[" * n)
)


def in_order(expected: list[Any], frames: list[Any]) -> bool:
    """Whether ``expected`` appears in ``frames`` in order (junk may add frames of its own around them)."""
    remaining = iter(frames)
    return all(any(frame == wanted for frame in remaining) for wanted in expected)


def decode_safely(codec: Any, message: str | bytes) -> list[Any]:
    try:
        return list(codec.decode(message))
    except ProtocolError:
        return [Rejected("whole message")]


TWILIO_START = {
    "event": "start",
    "streamSid": "MZ" + "a" * 32,
    "start": {"streamSid": "MZ" + "a" * 32, "callSid": "CA1", "customParameters": {"caller": "+33600000000"}},
}


def twilio_call() -> list[str]:
    media = {"event": "media", "media": {"payload": base64.b64encode(b"\xff" * 160).decode()}}
    return [
        json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
        json.dumps(TWILIO_START),
        *[json.dumps(media)] * 3,
        json.dumps({"event": "dtmf", "dtmf": {"digit": "5"}}),
        json.dumps({"event": "mark", "mark": {"name": "utt-1"}}),
        json.dumps({"event": "stop"}),
    ]


@SETTINGS
@given(st.lists(wire, max_size=8))
def test_twilio_codec_raises_only_protocol_errors(messages: list[str | bytes]) -> None:
    codec = TwilioCodec()
    for text in [json.dumps(TWILIO_START), *messages]:
        decode_safely(codec, text)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 8), wire), max_size=10))
def test_a_good_twilio_call_with_junk_between_gives_all_its_frames(junk: list[tuple[int, str | bytes]]) -> None:
    good = twilio_call()
    reference = TwilioCodec()
    expected = [f for m in good for f in reference.decode(m)]
    stream: list[str | bytes] = list(good)
    for position, text in sorted(junk, key=lambda j: -j[0]):
        if position >= 2:  # after the start: junk before it could be a start of its own
            stream.insert(position, text)
    codec = TwilioCodec()
    frames = [f for m in stream for f in decode_safely(codec, m)]
    assert in_order(expected, frames)


@SETTINGS
@given(st.lists(wire, max_size=8))
def test_browser_codec_raises_only_protocol_errors(messages: list[str | bytes]) -> None:
    codec = BrowserCodec()
    for item in messages:
        decode_safely(codec, item)


CHAN_START = (
    "MEDIA_START connection_id:c channel:WebSocket/callbot/0x1 channel_id:1.1 "
    "format:ulaw optimal_frame_size:160 ptime:20"
)


@SETTINGS
@given(st.lists(wire, max_size=8))
def test_chan_websocket_codec_raises_only_protocol_errors(messages: list[str | bytes]) -> None:
    codec = ChanWebSocketCodec()
    for item in [CHAN_START, *messages]:
        decode_safely(codec, item)


@SETTINGS
@given(st.lists(st.tuples(st.integers(1, 6), wire), max_size=10))
def test_a_good_chan_websocket_call_with_junk_between_gives_all_its_frames(
    junk: list[tuple[int, str | bytes]],
) -> None:
    good: list[str | bytes] = [CHAN_START, b"\xff" * 160, "DTMF_END digit:7 channel_id:1.1", b"\x7f" * 160]
    good += ["MEDIA_MARK_PROCESSED utt-1", b"\xff" * 160]
    reference = ChanWebSocketCodec()
    expected = [f for m in good for f in reference.decode(m)]
    stream = list(good)
    for position, item in sorted(junk, key=lambda j: -j[0]):
        if item != CHAN_START:
            stream.insert(position, item)
    codec = ChanWebSocketCodec()
    frames = [f for m in stream for f in decode_safely(codec, m)]
    assert in_order(expected, frames)


CALL = uuid.UUID(int=42)


def audiosocket_call() -> list[bytes]:
    return [
        message(0x01, CALL.bytes),
        message(0x10, b"\x01\x00" * 160),
        message(0x03, b"4"),
        message(0x10, b"\x02\x00" * 160),
        message(0x03, b"#"),
    ]


@SETTINGS
@given(st.lists(st.binary(max_size=700), max_size=8))
def test_audiosocket_codec_raises_only_protocol_errors_on_any_bytes(chunks: list[bytes]) -> None:
    codec = AudioSocketCodec()
    for chunk in [message(0x01, CALL.bytes), *chunks, b""]:
        decode_safely(codec, chunk)
    assert codec.pending_bytes < 3 + 65536


framed_junk = st.tuples(st.sampled_from([0x02, 0x04, 0x20, 0x42, 0x7F, 0xFE]), st.binary(min_size=0, max_size=300)).map(
    lambda kind_payload: message(*kind_payload)
)
"""Messages of kinds Asterisk never sends, each well framed."""


@SETTINGS
@given(st.lists(st.tuples(st.integers(1, 5), framed_junk), max_size=6), st.integers(1, 64))
def test_a_good_audiosocket_call_with_unknown_messages_between_gives_all_its_frames(
    junk: list[tuple[int, bytes]], segment: int
) -> None:
    """Well-framed messages of kinds Asterisk never sends are skipped whole, whatever the TCP segmentation."""
    good = audiosocket_call()
    reference = AudioSocketCodec()
    expected = [f for m in good for f in reference.decode(m)]
    stream = list(good)
    for position, item in sorted(junk, key=lambda j: -j[0]):
        stream.insert(position, item)
    data = b"".join(stream)
    codec = AudioSocketCodec()
    frames = [f for i in range(0, len(data), segment) for f in decode_safely(codec, data[i : i + segment])]
    assert [f for f in frames if not isinstance(f, Rejected)] == expected
