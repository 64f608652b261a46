"""TwilioCodec against the message examples of Twilio's Media Streams documentation."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callbot.errors import ProtocolError
from callbot.frames import AudioIn, DtmfIn, HangUp, MarkIn, StreamStart
from telephony.g711 import ulaw_to_pcm16
from telephony.twilio_codec import MAX_MESSAGE_CHARS, MAX_PAYLOAD_BYTES, TwilioCodec

MESSAGES: dict[str, Any] = json.loads((Path(__file__).parent / "fixtures" / "twilio_messages.json").read_text())
STREAM_SID = MESSAGES["start"]["streamSid"]
MEDIA_PAYLOAD = MESSAGES["media"]["media"]["payload"]


def started() -> TwilioCodec:
    codec = TwilioCodec()
    codec.decode(json.dumps(MESSAGES["start"]))
    return codec


def decode_one(codec: TwilioCodec, text: str) -> Any:
    """The frame one message carries (None for a message that carries nothing for the pipeline)."""
    frames = codec.decode(text)
    assert len(frames) <= 1
    return frames[0] if frames else None


def keys(value: Any) -> Any:
    """The key structure of a JSON value, recursively (values dropped)."""
    if isinstance(value, dict):
        return {k: keys(v) for k, v in value.items()}
    return None


def with_changes(name: str, path: tuple[str, ...], value: Any) -> str:
    """A fixture message with one (possibly nested) key replaced, or deleted when value is ...."""
    message = copy.deepcopy(MESSAGES[name])
    target = message
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(message)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("connected", None),
        (
            "start",
            StreamStart(
                STREAM_SID,
                "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
                {"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"},
            ),
        ),
        ("media", AudioIn(ulaw_to_pcm16(base64.b64decode(MEDIA_PAYLOAD)), 8000)),
        ("dtmf", DtmfIn("1")),
        ("mark", MarkIn("my label")),
        ("stop", HangUp()),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_decode_documented_inbound_messages(name: str, expected: Any) -> None:
    codec = started()
    assert decode_one(codec, json.dumps(MESSAGES[name])) == expected


def test_start_sets_stream_sid_and_custom_parameters() -> None:
    codec = TwilioCodec()
    frame = decode_one(codec, json.dumps(MESSAGES["start"]))
    assert isinstance(frame, StreamStart)
    assert codec.stream_sid == frame.stream_id == STREAM_SID
    assert frame.custom == MESSAGES["start"]["start"]["customParameters"]


def test_media_is_two_pcm_bytes_per_mulaw_byte() -> None:
    frame = decode_one(started(), json.dumps(MESSAGES["media"]))
    assert isinstance(frame, AudioIn)
    assert len(frame.pcm) == 2 * len(base64.b64decode(MEDIA_PAYLOAD))


@pytest.mark.parametrize(
    ("name", "encode"),
    [
        ("out_media", lambda c: c.audio(base64.b64decode(MESSAGES["out_media"]["media"]["payload"]))),
        ("out_mark", lambda c: c.mark("my label")),
        ("out_clear", lambda c: c.clear()),
    ],
    ids=["media", "mark", "clear"],
)
def test_outbound_messages_match_documented_shape(name: str, encode: Any) -> None:
    codec = started()
    message = json.loads(encode(codec))
    assert keys(message) == keys(MESSAGES[name])
    assert message == MESSAGES[name]  # same streamSid, same mark name, payload round-trips


@pytest.mark.parametrize("size", [0, 1, 160, 8000])
def test_outbound_media_payload_round_trips(size: int) -> None:
    audio = bytes(np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8))
    message = json.loads(started().audio(audio))
    assert message["streamSid"] == STREAM_SID
    assert base64.b64decode(message["media"]["payload"], validate=True) == audio


def test_to_line_one_second_at_16k_is_8000_mulaw_bytes() -> None:
    t = np.arange(16000) / 16000
    pcm = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    assert len(TwilioCodec.to_line(pcm, 16000)) == 8000


def _payload_message(n_bytes: int) -> str:
    return with_changes("media", ("media", "payload"), base64.b64encode(bytes(n_bytes)).decode())


ERRORS = [
    ("not_json", "this is not json", True),
    ("json_array", json.dumps([MESSAGES["media"]]), True),
    ("unknown_event", json.dumps({"event": "bogus", "streamSid": STREAM_SID}), True),
    ("media_before_start", json.dumps(MESSAGES["media"]), False),
    ("invalid_base64", with_changes("media", ("media", "payload"), "not base64!!"), True),
    ("too_long", json.dumps({"event": "media", "pad": "x" * MAX_MESSAGE_CHARS}), True),
    ("payload_too_large", _payload_message(2 * MAX_PAYLOAD_BYTES), True),
    ("l16_encoding", with_changes("start", ("start", "mediaFormat", "encoding"), "audio/l16"), False),
    ("dtmf_digit_x", with_changes("dtmf", ("dtmf", "digit"), "x"), True),
    ("mark_without_name", with_changes("mark", ("mark", "name"), ...), True),
    (
        "start_without_streamSid",
        json.dumps(
            {k: v for k, v in MESSAGES["start"].items() if k != "streamSid"}
            | {"start": {k: v for k, v in MESSAGES["start"]["start"].items() if k != "streamSid"}}
        ),
        False,
    ),
]


@pytest.mark.parametrize(("text", "after_start"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_protocol_errors(text: str, after_start: bool) -> None:
    codec = started() if after_start else TwilioCodec()
    with pytest.raises(ProtocolError):
        codec.decode(text)


def test_payload_of_exactly_max_bytes_is_accepted() -> None:
    frame = decode_one(started(), _payload_message(MAX_PAYLOAD_BYTES))
    assert isinstance(frame, AudioIn)
    assert len(frame.pcm) == 2 * MAX_PAYLOAD_BYTES


@pytest.mark.parametrize("extra", [1, 2])
def test_payload_just_over_max_bytes_is_rejected(extra: int) -> None:
    with pytest.raises(ProtocolError):
        started().decode(_payload_message(MAX_PAYLOAD_BYTES + extra))
