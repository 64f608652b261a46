"""The Whisper live mode: the segmenter's timing (pure), Silero voice activity on real speech and on noise, and
the per-call recognizer (real Silero and Whisper) on French phone audio."""

from __future__ import annotations

import math
import os
from pathlib import Path

import jiwer
import numpy as np
import pytest

from callbot.frames import TranscriptFinal, TranscriptPartial
from callbot.speech.voice_activity import (
    CHUNK,
    CHUNK_S,
    Segmenter,
    SegmenterOptions,
    SileroVad,
    SpeechBegan,
    SpeechEnded,
)
from callbot.speech.whisper_asr import WhisperEngine, whisper_input
from callbot.speech.whisper_live import WhisperLiveEngine
from tests.callbot.test_whisper import normalised, phone_band, references
from tests.conftest import speech_clip

SILENCE_1S = b"\0\0" * 8000


def run(segmenter: Segmenter, probabilities: list[float]) -> list[tuple[int, object]]:
    """Feed one chunk per probability (its samples numbered by chunk); the events with the chunk index."""
    events = []
    for index, probability in enumerate(probabilities):
        event = segmenter.push(np.full(CHUNK, index, dtype=np.float32), probability)
        if event is not None:
            events.append((index, event))
    return events


def test_the_segmenter_starts_after_min_speech_and_ends_after_the_silence():
    options = SegmenterOptions(min_speech_s=0.1, end_silence_s=0.7, pre_roll_s=0.3)
    start_chunks = math.ceil(0.1 / CHUNK_S)  # 4 chunks of 32 ms
    end_chunks = math.ceil(0.7 / CHUNK_S)  # 22
    probabilities = [0.0] * 20 + [0.9] * 40 + [0.1] * 30
    events = run(Segmenter(options), probabilities)
    assert [(i, type(e)) for i, e in events] == [
        (20 + start_chunks - 1, SpeechBegan),
        (60 + end_chunks - 1, SpeechEnded),
    ]
    ended = events[1][1]
    assert isinstance(ended, SpeechEnded)
    kept = ended.audio.reshape(-1, CHUNK)[:, 0].astype(int).tolist()
    pre_roll = round(0.3 / CHUNK_S)
    # the pre-roll before the first voiced chunks, the speech, and 0.2 s of the trailing silence
    assert kept[0] == 20 + start_chunks - pre_roll
    assert kept[-1] == 60 + round(0.2 / CHUNK_S) - 1
    assert kept == list(range(kept[0], kept[-1] + 1))
    assert ended.at_s == pytest.approx((60 + end_chunks) * CHUNK_S)


def test_a_dip_between_words_does_not_end_the_utterance_and_short_clicks_do_not_start_one():
    options = SegmenterOptions(start_threshold=0.5, end_threshold=0.35, min_speech_s=0.1, end_silence_s=0.7)
    # clicks: two voiced chunks (64 ms) apart, never three in a row
    clicks = [0.9, 0.9, 0.0] * 10
    assert run(Segmenter(options), clicks) == []
    # a pause of 0.4 s and a wobble at 0.4 (above the end threshold) inside one utterance
    speech = [0.9] * 10 + [0.1] * 12 + [0.9] * 10 + [0.4] * 40 + [0.9] * 5 + [0.0] * 30
    events = run(Segmenter(options), speech)
    assert [type(e) for _, e in events] == [SpeechBegan, SpeechEnded]


def test_an_endless_utterance_is_cut_for_whisper_s_window():
    options = SegmenterOptions(max_utterance_s=5.0)
    events = run(Segmenter(options), [0.9] * round(12 / CHUNK_S))
    ended = [e for _, e in events if isinstance(e, SpeechEnded)]
    assert len(ended) == 2 and all(len(e.audio) / 16000 <= 5.0 + CHUNK_S for e in ended)


def test_the_end_of_the_audio_flushes_the_utterance_in_progress():
    segmenter = Segmenter()
    run(segmenter, [0.9] * 20)
    flushed = segmenter.flush()
    assert (
        isinstance(flushed, SpeechEnded) and len(flushed.audio) == 20 * CHUNK
    )  # the voiced chunks before the start too
    assert segmenter.flush() is None


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


def voiced_chunks(vad: SileroVad, pcm8k: bytes) -> list[float]:
    stream = vad.stream()
    return [p for _, p in stream.chunks(whisper_input(pcm8k, 8000))]


def test_silero_hears_a_real_voice_on_the_phone_band_and_not_noise_or_silence(vad):
    speech = voiced_chunks(vad, phone_band(speech_clip("fr", "fleurs-fr-001.wav")))
    assert sum(p >= 0.5 for p in speech) / len(speech) > 0.6, "most of a read sentence is speech"
    assert max(voiced_chunks(vad, SILENCE_1S * 3)) < 0.1
    rng = np.random.default_rng(7)
    hiss = (rng.normal(0, 600, 8000 * 3)).astype("<i2").tobytes()  # line hiss at about -35 dBFS
    assert sum(p >= 0.5 for p in voiced_chunks(vad, hiss)) * CHUNK_S < 0.1


def test_streaming_in_pieces_gives_the_probabilities_of_one_pass(vad):
    """The model's state and context carry from one piece of the call to the next: feeding 100 ms batches gives
    the same probabilities as feeding the whole clip at once."""
    audio = whisper_input(phone_band(speech_clip("fr", "stp-fr-010.wav")), 8000)
    whole = [p for _, p in vad.stream().chunks(audio)]
    stream = vad.stream()
    pieces = [p for start in range(0, len(audio), 1600) for _, p in stream.chunks(audio[start : start + 1600])]
    assert len(pieces) == len(whole)
    assert np.allclose(pieces, whole, atol=1e-5)


@pytest.fixture(scope="module")
def live(whisper_base: Path, vad: SileroVad) -> WhisperLiveEngine:
    return WhisperLiveEngine(WhisperEngine(whisper_base), vad, "fr")


def call_audio(live: WhisperLiveEngine, pcm: bytes) -> list[tuple[float, TranscriptPartial | TranscriptFinal]]:
    """``pcm`` fed as the line does, in 100 ms batches: each event with the call time it came at."""
    recognizer = live.recognizer(8000)
    events: list[tuple[float, TranscriptPartial | TranscriptFinal]] = []
    for start in range(0, len(pcm), 1600):
        event = recognizer.accept(pcm[start : start + 1600])
        if event is not None:
            events.append(((start + 1600) / 16000, event))
    last = recognizer.finish()
    if last is not None:
        events.append((len(pcm) / 16000, last))
    return events


def test_a_french_caller_is_heard_one_utterance_at_a_time_with_call_times(live):
    refs = references("fr")
    first, second = phone_band(speech_clip("fr", "stp-fr-010.wav")), phone_band(speech_clip("fr", "fleurs-fr-005.wav"))
    pcm = SILENCE_1S + first + SILENCE_1S * 2 + second + SILENCE_1S * 2
    events = call_audio(live, pcm)
    kinds = [type(event) for _, event in events]
    assert kinds == [TranscriptPartial, TranscriptFinal, TranscriptPartial, TranscriptFinal], events
    second_starts = (len(SILENCE_1S) * 3 + len(first)) / 16000
    (began_1, _), (heard_1, final_1), (began_2, _), (heard_2, final_2) = events
    assert isinstance(final_1, TranscriptFinal) and isinstance(final_2, TranscriptFinal)
    # voice is noticed within a few hundred ms of the words; each utterance is read before the next begins
    assert 1.0 < began_1 < 1.0 + len(first) / 16000 and heard_1 < second_starts < began_2
    assert heard_2 <= len(pcm) / 16000
    # words timed on the call's clock: the second sentence's words inside the second clip
    assert all(
        second_starts - 0.3 <= w.start <= w.end <= second_starts + len(second) / 16000 + 0.3 for w in final_2.words
    )
    assert all(0.0 <= w.conf <= 1.0 for w in final_1.words + final_2.words)
    hypotheses = [normalised(final_1.text), normalised(final_2.text)]
    wer = jiwer.wer([normalised(refs["stp-fr-010.wav"]), normalised(refs["fleurs-fr-005.wav"])], hypotheses)
    assert wer <= 0.35, (wer, hypotheses)


def test_silence_and_hiss_are_never_sent_to_whisper(live):
    rng = np.random.default_rng(11)
    hiss = (rng.normal(0, 600, 8000 * 4)).astype("<i2").tobytes()
    recognizer = live.recognizer(8000)
    for pcm in (SILENCE_1S * 4, hiss):
        for start in range(0, len(pcm), 1600):
            assert recognizer.accept(pcm[start : start + 1600]) is None
    assert recognizer.finish() is None and recognizer.utterances == 0


def test_the_live_engine_is_vosk_where_a_vosk_model_fits_else_whisper_else_the_keypad(
    tmp_path, whisper_base, ko_model, monkeypatch
):
    from callbot.settings import Settings
    from callbot.speech.live import load_live_asr
    from callbot.speech.vosk_asr import VoskEngine

    for name in [n for n in os.environ if n.startswith("CALLBOT_")]:
        monkeypatch.delenv(name)
    empty = tmp_path / "models"
    nothing = load_live_asr(Settings(models_dir=empty), "fr")
    assert nothing.engine is None and nothing.state == "unavailable"
    assert "callbot models pull fr" in nothing.detail and "callbot models pull whisper-base" in nothing.detail
    assert "keypad" in nothing.detail

    whisper_only = Settings(models_dir=empty, whisper_model=str(whisper_base))
    chosen = load_live_asr(whisper_only, "fr")
    assert isinstance(chosen.engine, WhisperLiveEngine) and chosen.vosk is None
    assert chosen.state == "degraded" and "answers later than Vosk" in chosen.detail
    forced_vosk = load_live_asr(Settings(models_dir=empty, whisper_model=str(whisper_base), live_asr="vosk"), "fr")
    assert forced_vosk.engine is None and "callbot models pull fr" in forced_vosk.detail
    assert "whisper-base" not in forced_vosk.detail

    both = Settings(models_dir=empty, whisper_model=str(whisper_base), vosk_model=ko_model)
    vosk = load_live_asr(both, "ko")
    assert isinstance(vosk.engine, VoskEngine) and vosk.vosk is vosk.engine and vosk.state == "up"
    assert isinstance(load_live_asr(both.model_copy(update={"live_asr": "whisper"}), "ko").engine, WhisperLiveEngine)
    off = load_live_asr(both.model_copy(update={"live_asr": "none"}), "ko")
    assert off.engine is None and "CALLBOT_LIVE_ASR=none" in off.detail
    forced_whisper = load_live_asr(Settings(models_dir=empty, live_asr="whisper"), "fr")
    assert forced_whisper.engine is None and forced_whisper.detail.startswith("no Whisper model")
