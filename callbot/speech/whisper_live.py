"""Live turns heard by Whisper, for languages with no streaming (Vosk) model: a voice-activity detector cuts the
caller's speech into utterances, and Whisper transcribes each one when it ends.

It answers later than Vosk: Vosk has the words when the caller stops, Whisper starts reading them then (about
a second on two CPU cores for a short request with the base model; docs/models.md has the measured figures), so
it suits a machine with a GPU. Barge-in does not wait for the words: the bot stops as soon as voice starts.
"""

from __future__ import annotations

import time

from callbot.frames import TranscriptFinal, TranscriptPartial, Word
from callbot.speech.voice_activity import (
    VAD_RATE,
    Segmenter,
    SegmenterOptions,
    SileroVad,
    SpeechBegan,
    SpeechEnded,
    VadStream,
)
from callbot.speech.whisper_asr import WhisperEngine, whisper_input
from telephony.resample import StreamResampler


class WhisperLiveEngine:
    """Whisper and the voice-activity model, loaded once; one ``WhisperRecognizer`` per call."""

    def __init__(
        self, whisper: WhisperEngine, vad: SileroVad, language: str, options: SegmenterOptions | None = None
    ) -> None:
        self.whisper, self.vad, self.language = whisper, vad, language
        self.options = options or SegmenterOptions()
        self.model_dir = whisper.model_dir
        self.load_seconds = whisper.load_seconds

    def recognizer(self, sample_rate: int) -> WhisperRecognizer:
        return WhisperRecognizer(self, sample_rate)


class WhisperRecognizer:
    """The call's audio in, as Vosk's recognizer takes it: an empty partial when the caller starts speaking
    (what barge-in needs), a final with Whisper's words when the utterance ends.

    ``accept`` blocks for Whisper's reading when an utterance ends: run it off the event loop.
    """

    engine = "whisper"

    def __init__(self, live: WhisperLiveEngine, sample_rate: int) -> None:
        self._live = live
        self._vad: VadStream = live.vad.stream()
        self._segmenter = Segmenter(live.options)
        self._to_16k = StreamResampler(sample_rate, VAD_RATE)
        self.sample_rate = sample_rate
        self.audio_seconds = 0.0
        self.cpu_seconds = 0.0
        """Seconds spent in voice detection and Whisper (CTranslate2 decodes on threads of its own)."""
        self.utterances = 0

    def accept(self, pcm: bytes) -> TranscriptPartial | TranscriptFinal | None:
        started = time.perf_counter()
        self.audio_seconds += len(pcm) / 2 / self.sample_rate
        result: TranscriptPartial | TranscriptFinal | None = None
        for chunk, probability in self._vad.chunks(whisper_input(self._to_16k(pcm), VAD_RATE)):
            event = self._segmenter.push(chunk, probability)
            if isinstance(event, SpeechBegan) and result is None:
                result = TranscriptPartial("")
            elif isinstance(event, SpeechEnded):
                result = self._transcribe(event)  # a final supersedes the partial that began it
        self.cpu_seconds += time.perf_counter() - started
        return result

    def finish(self) -> TranscriptFinal | None:
        """The audio ended: the utterance in progress, if any, transcribed."""
        ended = self._segmenter.flush()
        if ended is None:
            return None
        started = time.perf_counter()
        final = self._transcribe(ended)
        self.cpu_seconds += time.perf_counter() - started
        return final if final.text else None

    def _transcribe(self, ended: SpeechEnded) -> TranscriptFinal:
        final, _seconds = self._live.whisper.transcribe_audio(ended.audio, self._live.language)
        self.utterances += 1
        # word times from the start of the call's audio, as Vosk gives them
        offset = ended.at_s - len(ended.audio) / VAD_RATE
        words = tuple(Word(w.word, w.start + offset, w.end + offset, w.conf) for w in final.words)
        return TranscriptFinal(final.text, words)
