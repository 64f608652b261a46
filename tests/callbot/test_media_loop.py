"""The one media loop, in process: a scripted peer on a pipe that records what it is sent, the real codecs and
the real call session (piper voice, SQLite), and exact values — frame cadence, barge-in delay, error budget."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callbot.call.line import WireMessage
from callbot.call.player import Player
from callbot.call.stream import MAX_PROTOCOL_ERRORS, POLICY_VIOLATION, Identified, run_stream
from callbot.frames import StreamStart
from callbot.resources import Resources, load_resources, warm_prompts
from telephony.audiosocket_codec import AudioSocketCodec, message
from telephony.chan_websocket_codec import ChanWebSocketCodec
from tests.conftest import ROOT
from tests.test_bad_input import settings


class ScriptedPipe:
    """The peer's side of a pipe: messages pushed in by the test, everything sent kept with its time."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[WireMessage | None] = asyncio.Queue()
        self.sent: list[tuple[float, WireMessage]] = []
        self.closed: int | None = None
        self.lost: str | None = None

    async def receive(self) -> WireMessage | None:
        return await self.incoming.get()

    async def send(self, message: WireMessage) -> None:
        if self.closed is None:
            self.sent.append((time.monotonic(), message))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed is None:
            self.closed = code
            self.incoming.put_nowait(None)


@pytest.fixture
async def resources(tmp_path: Path, joe_voice: Path) -> AsyncIterator[Resources]:
    loaded = await asyncio.to_thread(load_resources, settings(tmp_path, joe_voice))
    await asyncio.to_thread(warm_prompts, loaded)  # as the app does before serving: fixed prompts are cached
    yield loaded
    await loaded.close()


def new_call(resources: Resources, ids: list[str] | None = None) -> Callable[[StreamStart], Any]:
    async def identify(start: StreamStart) -> Identified:
        call_id = uuid.uuid4().hex
        if ids is not None:
            ids.append(call_id)
        await resources.store.create_call(
            call_id, provider="test", provider_call_id=call_id, from_number="", to_number="", bot="fr", language="fr"
        )
        return call_id, {"caller": "+33600000001"}

    return identify


AUDIOSOCKET_UUID = message(0x01, uuid.uuid4().bytes)
SILENCE_8K = message(0x10, b"\x00" * 320)


async def test_audiosocket_frames_go_out_every_20_ms_and_a_key_cuts_the_greeting(resources: Resources) -> None:
    pipe, ids = ScriptedPipe(), []
    stream = asyncio.create_task(run_stream(pipe, AudioSocketCodec(), resources, new_call(resources, ids)))
    pipe.incoming.put_nowait(AUDIOSOCKET_UUID)
    started = time.monotonic()
    while time.monotonic() - started < 3.0:  # Asterisk's caller audio, in real time
        pipe.incoming.put_nowait(SILENCE_8K)
        await asyncio.sleep(0.02)
    frames = [(at, m) for at, m in pipe.sent if isinstance(m, bytes)]
    assert all(m[:3] == bytes([0x10, 0x01, 0x40]) and len(m) == 323 for _, m in frames), "8 kHz, 20 ms, one a message"
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(frames)]
    assert len(frames) >= 130, f"{len(frames)} frames in 3 s: a real-time line carries 150"
    assert max(gaps) < 0.1, f"a {max(gaps) * 1000:.0f} ms hole: Asterisk drops a line after 2 s without frames"
    pressed = time.monotonic()
    pipe.incoming.put_nowait(message(0x03, b"3"))  # barge-in: the greeting stops, the answer follows
    await asyncio.sleep(1.0)
    after = [m for at, m in pipe.sent if at > pressed and isinstance(m, bytes)]
    assert len(after) < 60, "still paced at 20 ms a frame after the key"
    await pipe.close()
    outcome = await asyncio.wait_for(stream, 10)
    assert outcome is not None and outcome.outcome in ("answered", "hangup")
    call = await resources.store.get_call(ids[0])
    assert call is not None and call.transport == "audiosocket" and call.line_codec == "slin/8000"
    assert [t.speaker for t in call.turns][:2] == ["bot", "dtmf"]


async def test_chan_websocket_flushes_within_200_ms_of_a_key_and_honours_xoff(resources: Resources) -> None:
    pipe = ScriptedPipe()
    stream = asyncio.create_task(run_stream(pipe, ChanWebSocketCodec(), resources, new_call(resources)))
    pipe.incoming.put_nowait(
        "MEDIA_START connection_id:c1 channel:WebSocket/callbot/0x1 channel_id:1.1 format:ulaw "
        "optimal_frame_size:160 ptime:20"
    )
    await asyncio.sleep(1.0)
    audio = [m for _, m in pipe.sent if isinstance(m, bytes)]
    assert audio and all(len(m) % 160 == 0 and len(m) <= 800 for m in audio), "whole frames, five at most a message"
    pipe.incoming.put_nowait("MEDIA_XOFF")
    await asyncio.sleep(0.1)
    paused_at = len(pipe.sent)
    await asyncio.sleep(0.6)
    assert all(not isinstance(m, bytes) for _, m in pipe.sent[paused_at:]), "no audio while Asterisk says XOFF"
    pipe.incoming.put_nowait("MEDIA_XON")
    await asyncio.sleep(0.4)
    assert any(isinstance(m, bytes) for _, m in pipe.sent[paused_at:]), "audio again after XON"
    pressed = time.monotonic()
    pipe.incoming.put_nowait("DTMF_END digit:3 channel_id:1.1")
    await asyncio.sleep(0.5)
    flush = [at for at, m in pipe.sent if m == "FLUSH_MEDIA"]
    assert flush and flush[0] - pressed < 0.2, "barge-in within 200 ms"
    await pipe.close()
    await asyncio.wait_for(stream, 10)


async def test_a_peer_that_keeps_sending_junk_is_closed_after_its_error_budget(resources: Resources) -> None:
    pipe, ids = ScriptedPipe(), []
    stream = asyncio.create_task(run_stream(pipe, ChanWebSocketCodec(), resources, new_call(resources, ids)))
    pipe.incoming.put_nowait(
        "MEDIA_START connection_id:c1 channel:WebSocket/callbot/0x1 channel_id:1.1 format:slin optimal_frame_size:320"
    )
    for index in range(MAX_PROTOCOL_ERRORS - 1):
        pipe.incoming.put_nowait(f"NOT_AN_EVENT {index}")
    await asyncio.sleep(0.3)
    assert pipe.closed is None, "49 rejected messages: the call goes on"
    pipe.incoming.put_nowait(b"\x00")  # an odd number of bytes for 16-bit audio: the 50th
    outcome = await asyncio.wait_for(stream, 10)
    assert pipe.closed == POLICY_VIOLATION
    # the caller did not hang up: the call is stored interrupted, with no decision, so that a human takes it
    assert outcome is None
    stored = await resources.store.get_call(ids[0])
    assert stored is not None and (stored.status, stored.outcome) == ("interrupted", None)
    assert "stream_lost" in stored.degraded


class ClockSink:
    """A peer without marks or playout buffer (AudioSocket): what the player does on its own clock."""

    frame_bytes, frame_seconds, echoes_marks, keepalive, frames_per_message, lead_s = 320, 0.02, False, True, 1, 0.04
    silence = b"\x00" * 320

    def __init__(self) -> None:
        self.sent: list[tuple[float, bytes]] = []

    def to_line(self, pcm: bytes, sample_rate: int) -> bytes:
        return pcm

    async def send_audio(self, frame: bytes) -> None:
        self.sent.append((time.monotonic(), frame))

    async def send_mark(self, name: str) -> None:
        raise AssertionError("this peer has no marks")

    async def send_clear(self) -> None:
        return None


async def test_the_player_keeps_time_for_a_line_without_marks_and_fills_silence() -> None:
    sink = ClockSink()
    player = Player(sink)
    player.start()
    await asyncio.sleep(0.5)
    silent = len(sink.sent)
    assert 20 <= silent <= 27 and all(f == sink.silence for _, f in sink.sent), "silence while there is nothing to say"
    started = time.monotonic()
    player.enqueue(b"\x01\x00" * 8000)  # one second of speech
    player.end_of_utterance()
    assert player.speaking
    assert await player.wait_idle(3)
    played = time.monotonic() - started
    assert 0.95 <= played <= 1.15, f"the utterance counted as played after {played:.2f} s"
    speech = [at for at, f in sink.sent if f != sink.silence]
    assert len(speech) == 50 and speech[0] - started < 0.05
    await asyncio.sleep(0.2)
    assert sink.sent[-1][1] == sink.silence, "back to silence after the utterance"
    await player.stop()


def test_the_last_words_of_a_rule_that_hangs_up_are_synthesised_before_any_call() -> None:
    from callbot.resources import fixed_prompts
    from routing.bot_folder import load_bot_folder

    folder = load_bot_folder(ROOT / "bots" / "fr")
    assert set(folder.bot.responses["utter_blocked"]) <= set(fixed_prompts(folder))


async def test_the_decision_is_in_the_database_before_the_line_is_handed_back(resources: Resources) -> None:
    """Another instance may answer the provider's callback the moment the stream closes: the decision it reads
    from the database must already be there."""
    stored_at_close: list[str | None] = []
    ids: list[str] = []

    class HandBack(ScriptedPipe):
        async def send(self, message: WireMessage) -> None:
            await super().send(message)
            if isinstance(message, str) and message.startswith("MARK_MEDIA "):  # played at once
                self.incoming.put_nowait("MEDIA_MARK_PROCESSED " + message.split(" ", 1)[1])

        async def close(self, code: int = 1000, reason: str = "") -> None:
            if self.closed is None and ids:
                row = await resources.store.get_call(ids[0])
                stored_at_close.append(row.outcome if row else None)
            await super().close(code, reason)

    pipe = HandBack()
    stream = asyncio.create_task(run_stream(pipe, ChanWebSocketCodec(), resources, new_call(resources, ids)))
    pipe.incoming.put_nowait(
        "MEDIA_START connection_id:c1 channel:WebSocket/callbot/0x1 channel_id:1.1 format:slin optimal_frame_size:320"
    )
    await asyncio.sleep(0.3)
    pipe.incoming.put_nowait("DTMF_END digit:5 channel_id:1.1")  # the fraud team: a transfer
    outcome = await asyncio.wait_for(stream, 20)
    assert outcome is not None and outcome.outcome == "transfer"
    assert stored_at_close == ["transfer"]


async def test_whisper_live_mode_stops_the_greeting_within_500_ms_of_voice(
    tmp_path: Path, joe_voice: Path, whisper_base: Path
) -> None:
    """No Vosk model: the Whisper live mode hears the caller. Voice over the greeting flushes Asterisk's queue
    within 500 ms of the first frame above -40 dBFS (measured: 430 ms; Silero passes 0.5 about 80 ms into the
    word, then 0.1 s of speech starts the utterance, and audio reaches the detector in 100 ms batches), and the
    utterance is read by Whisper into the caller's turn."""
    from callbot.simulator import read_wav_as_line_pcm
    from telephony.g711 import pcm16_to_ulaw
    from tests.conftest import speech_clip

    loaded = await asyncio.to_thread(load_resources, settings(tmp_path, joe_voice, whisper_model=str(whisper_base)))
    await asyncio.to_thread(warm_prompts, loaded)
    pipe, ids = ScriptedPipe(), []
    stream = asyncio.create_task(run_stream(pipe, ChanWebSocketCodec(), loaded, new_call(loaded, ids)))
    try:
        pipe.incoming.put_nowait(
            "MEDIA_START connection_id:c1 channel:WebSocket/callbot/0x1 channel_id:1.1 format:ulaw "
            "optimal_frame_size:160 ptime:20"
        )
        speech = read_wav_as_line_pcm(speech_clip("fr", "stp-fr-010.wav"))  # "combien de temps reste-t-il"
        frames = [speech[i : i + 320].ljust(320, b"\0") for i in range(0, len(speech), 320)]
        frames = [b"\0" * 320] * 25 + frames + [b"\0" * 320] * 100
        first_voice: float | None = None
        for frame in frames:  # the caller, in real time, while the greeting plays
            samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
            if first_voice is None and np.sqrt(np.mean(samples**2)) >= 300:
                first_voice = time.monotonic()
            pipe.incoming.put_nowait(pcm16_to_ulaw(frame))
            await asyncio.sleep(0.02)
        assert first_voice is not None
        flush = [at for at, m in pipe.sent if m == "FLUSH_MEDIA" and at >= first_voice - 0.1]
        assert flush and flush[0] - first_voice < 0.5, f"barge-in on voice activity: {flush[:1]} vs {first_voice}"
        await pipe.close()
        await asyncio.wait_for(stream, 15)
        call = await loaded.store.get_call(ids[0])
        assert call is not None
        heard = [t for t in call.turns if t.speaker == "caller" and t.text]
        assert heard and "combien" in heard[0].text.lower(), [t.text for t in call.turns]
    finally:
        await loaded.close()
