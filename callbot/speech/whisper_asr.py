"""Speech recognition with Whisper (faster-whisper, CTranslate2): whole utterances or recordings, not a stream.

Whisper reads 30 s windows and moves on by the timestamps it predicts, so a long message is read window after
window with no word lost or read twice at a boundary. Its words come with their times and a probability, which
the trainee page shows as it shows Vosk's confidences. The model runs on the CPU in int8 unless CUDA is present
(``CALLBOT_WHISPER_DEVICE``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from callbot.errors import ModelMissingError, SpeechEngineError
from callbot.frames import TranscriptFinal, Word
from callbot.model_store.whisper import is_whisper_model_dir
from telephony.resample import resample_pcm16

log = logging.getLogger(__name__)

WHISPER_RATE = 16000


@dataclass(frozen=True, slots=True)
class WhisperOptions:
    device: str = "auto"
    """``cpu``, ``cuda`` or ``auto`` (CUDA when CTranslate2 sees a GPU)."""
    compute_type: str = "int8"
    threads: int = 2
    beam_size: int = 5


class WhisperEngine:
    """A loaded Whisper model. One decoding at a time per model (CTranslate2 queues the others)."""

    def __init__(self, model_dir: Path, options: WhisperOptions | None = None) -> None:
        if not is_whisper_model_dir(model_dir):
            raise ModelMissingError(f"{model_dir} is not a faster-whisper model folder (model.bin, config.json...)")
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:  # pragma: no cover - a broken installation
            raise SpeechEngineError(f"faster-whisper is not installed: {exc}") from exc
        self.options = options or WhisperOptions()
        device = self.options.device
        if device == "auto":
            device = "cuda" if _cuda_devices() else "cpu"
        started = time.perf_counter()
        try:
            self._model = WhisperModel(
                str(model_dir),
                device=device,
                compute_type=self.options.compute_type,
                cpu_threads=self.options.threads,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise SpeechEngineError(f"Whisper could not load the model in {model_dir}: {exc}") from exc
        self.model_dir, self.device = model_dir, device
        self.load_seconds = time.perf_counter() - started
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.model_dir.name

    def transcribe(self, pcm: bytes, sample_rate: int, language: str) -> tuple[TranscriptFinal, float]:
        """16-bit mono PCM at ``sample_rate`` in ``language``: the transcript with its words (times in seconds
        from the start of ``pcm``), and the seconds it took (CTranslate2 decodes on threads of its own).
        Blocking: run it off the event loop."""
        return self.transcribe_audio(whisper_input(pcm, sample_rate), language)

    def transcribe_audio(
        self, audio: np.ndarray[Any, np.dtype[np.float32]], language: str
    ) -> tuple[TranscriptFinal, float]:
        """The same for float samples at 16 kHz (the live mode's utterances)."""
        started = time.perf_counter()
        try:
            with self._lock:
                segments, _info = self._model.transcribe(
                    audio,
                    language=language,
                    task="transcribe",
                    beam_size=self.options.beam_size,
                    word_timestamps=True,
                    # a phone message has long silences: left to Whisper they invite invented sentences
                    vad_filter=True,
                    condition_on_previous_text=False,
                )
                words = tuple(_words(segments))
        except (RuntimeError, ValueError) as exc:
            raise SpeechEngineError(f"Whisper failed on {len(audio) / WHISPER_RATE:.1f} s of audio: {exc}") from exc
        text = " ".join(word.word for word in words)
        return TranscriptFinal(text, words), time.perf_counter() - started


def _words(segments: Any) -> list[Word]:
    words: list[Word] = []
    for segment in segments:
        for word in segment.words or ():
            text = word.word.strip()
            if not text:
                continue
            if words and not word.word[:1].isspace():
                # a piece of the word before (Whisper's words start with a space)
                last = words[-1]
                words[-1] = Word(last.word + text, last.start, float(word.end), min(last.conf, word.probability))
                continue
            words.append(Word(text, float(word.start), float(word.end), float(np.clip(word.probability, 0, 1))))
    return words


def whisper_input(pcm: bytes, sample_rate: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """16-bit PCM at any rate as the float samples at 16 kHz that Whisper (and the voice detector) read."""
    pcm = resample_pcm16(pcm, sample_rate, WHISPER_RATE)
    return np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.float32) / 32768.0


def _cuda_devices() -> int:
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception:  # no CUDA runtime at all
        return 0
