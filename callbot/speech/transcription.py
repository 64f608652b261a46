"""Transcribing recorded audio (messages, ``callbot speech transcribe``) with Vosk or Whisper.

Both engines give the same thing: the text, and each word with its start, end and confidence (Vosk's word
confidence, Whisper's word probability), so that masking, classification and the trainee page's uncertain words
work the same whichever engine heard the message.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from callbot.errors import CallbotError, ModelMissingError
from callbot.frames import TranscriptFinal, Word
from callbot.model_store import find_vosk_model
from callbot.model_store.whisper import find_whisper_model
from callbot.settings import Settings
from callbot.speech.vosk_asr import VoskEngine
from callbot.speech.whisper_asr import WhisperEngine, WhisperOptions

log = logging.getLogger(__name__)

EngineName = Literal["vosk", "whisper"]
Transcript = tuple[str, tuple[Word, ...], float]
"""The text, its words (times in seconds from the start of the audio) and the seconds the engine took."""


@dataclass(frozen=True)
class Transcriber:
    """A loaded engine that reads whole recordings."""

    engine: EngineName
    model: str
    vosk: VoskEngine | None = None
    whisper: WhisperEngine | None = None

    def transcribe(self, pcm: bytes, sample_rate: int, language: str) -> Transcript:
        """Blocking (seconds for a long message): run it off the event loop."""
        if self.whisper is not None:
            final, seconds = self.whisper.transcribe(pcm, sample_rate, language)
            return final.text, final.words, seconds
        assert self.vosk is not None
        return _vosk_transcribe(self.vosk, pcm, sample_rate)

    def describe(self) -> str:
        return f"{self.engine} ({self.model})"


def _vosk_transcribe(engine: VoskEngine, pcm: bytes, sample_rate: int) -> Transcript:
    recognizer = engine.recognizer(sample_rate)
    chunk = sample_rate  # half a second of 16-bit audio
    finals: list[TranscriptFinal] = []
    for offset in range(0, len(pcm), chunk):
        result = recognizer.accept(pcm[offset : offset + chunk])
        if isinstance(result, TranscriptFinal) and result.text:
            finals.append(result)
    last = recognizer.finish()
    if last is not None:
        finals.append(last)
    text = " ".join(final.text for final in finals)
    words = tuple(word for final in finals for word in final.words)
    return text, words, recognizer.cpu_seconds


def whisper_options(settings: Settings) -> WhisperOptions:
    return WhisperOptions(settings.whisper_device, settings.whisper_compute_type, settings.whisper_threads)


def load_whisper(settings: Settings) -> WhisperEngine:
    """The configured Whisper model, loaded; ModelMissingError names the command that installs one."""
    from callbot.model_store.whisper import require_whisper_model

    return WhisperEngine(require_whisper_model(settings.models_dir, settings.whisper_model), whisper_options(settings))


def load_transcriber(
    settings: Settings, language: str, engine: EngineName | Literal["auto"], vosk: VoskEngine | None = None
) -> Transcriber:
    """The engine that transcribes recordings in ``language``: ``auto`` is Vosk when a Vosk model for the
    language is installed (``vosk`` is that model already loaded), else Whisper. Raises ModelMissingError with
    the command to run when the chosen engine has no model."""
    if engine in ("auto", "vosk"):
        if vosk is None:
            path = settings.vosk_model or find_vosk_model(settings.models_dir, language)
            if path is not None:
                vosk = VoskEngine(Path(path))
        if vosk is not None:
            return Transcriber("vosk", vosk.model_dir.name, vosk=vosk)
        if engine == "vosk":
            raise ModelMissingError(
                f"no Vosk model for '{language}' in {settings.models_dir}: run `callbot models pull {language}` "
                "or `callbot models import PATH`"
            )
        if find_whisper_model(settings.models_dir, settings.whisper_model) is None:
            raise ModelMissingError(
                f"no speech model for '{language}': neither a Vosk model (`callbot models pull {language}`) nor "
                "a Whisper model (`callbot models pull whisper-base`) is installed"
            )
    whisper = load_whisper(settings)
    return Transcriber("whisper", whisper.name, whisper=whisper)


def mailbox_transcriber(settings: Settings, language: str, vosk: VoskEngine | None) -> Transcriber | None:
    """The mailbox's engine (``CALLBOT_MAILBOX_ASR``), or None with a warning when it has no model. ``vosk`` is
    the live turns' Vosk model, which the mailbox shares (Vosk decodes calls in parallel)."""
    started = time.perf_counter()
    try:
        transcriber = load_transcriber(settings, language, settings.mailbox_asr, vosk)
    except CallbotError as exc:
        log.warning("messages will not be transcribed yet: %s", exc)
        return None
    log.info(
        "messages are transcribed with %s (ready in %.1f s)", transcriber.describe(), time.perf_counter() - started
    )
    return transcriber
