"""The engine that hears live turns: Vosk (streaming) wherever a Vosk model fits the bot's language, else Whisper
behind a voice-activity detector (``CALLBOT_LIVE_ASR``), else none (the keypad menu)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from callbot.errors import CallbotError
from callbot.frames import TranscriptFinal, TranscriptPartial
from callbot.model_store import find_vosk_model
from callbot.model_store.whisper import find_whisper_model
from callbot.settings import Settings
from callbot.speech.transcription import load_whisper
from callbot.speech.voice_activity import SegmenterOptions, SileroVad
from callbot.speech.vosk_asr import VoskEngine
from callbot.speech.whisper_live import WhisperLiveEngine

log = logging.getLogger(__name__)

WHISPER_LIVE_NOTE = (
    "answers later than Vosk: each utterance is read by Whisper once the caller stops (measured with the base "
    "model on 2 CPU cores: 1.5 s median from the caller's last word to the bot's first audio, 0.7 s of it the "
    "end-of-speech silence; bench/README.md); suits a GPU"
)


class StreamingRecognizer(Protocol):
    """One call's recognizer: 16-bit PCM in, partials (the caller speaks) and finals (an utterance) out."""

    engine: str
    sample_rate: int
    audio_seconds: float
    cpu_seconds: float

    def accept(self, pcm: bytes) -> TranscriptPartial | TranscriptFinal | None: ...

    def finish(self) -> TranscriptFinal | None: ...


class LiveEngine(Protocol):
    model_dir: Path
    load_seconds: float

    def recognizer(self, sample_rate: int) -> StreamingRecognizer: ...


@dataclass(frozen=True)
class LiveChoice:
    engine: LiveEngine | None
    state: str
    detail: str

    @property
    def vosk(self) -> VoskEngine | None:
        """Vosk's model, when it is the live engine (the mailbox can reuse it)."""
        return self.engine if isinstance(self.engine, VoskEngine) else None


def load_live_asr(settings: Settings, language: str) -> LiveChoice:
    """The live engine for ``language``: Vosk when a Vosk model for it is installed (or ``CALLBOT_LIVE_ASR=vosk``),
    Whisper with voice activity when not and a Whisper model is. Never raises: without a model, calls use the
    keypad menu and ``detail`` says what to install."""
    choice = settings.live_asr
    if choice == "none":
        return LiveChoice(None, "unavailable", "live speech recognition is off (CALLBOT_LIVE_ASR=none)")
    path = settings.vosk_model or find_vosk_model(settings.models_dir, language)
    if choice in ("auto", "vosk") and path is not None:
        try:
            vosk = VoskEngine(Path(path))
        except CallbotError as exc:
            return _unavailable(f"{exc}")
        return LiveChoice(vosk, "up", f"vosk {path} (loaded in {vosk.load_seconds:.1f} s)")
    no_vosk = (
        f"no Vosk model for '{language}' in {settings.models_dir}: run `callbot models pull {language}` "
        "(or `callbot models import PATH`)"
    )
    if choice == "vosk":
        return _unavailable(no_vosk)
    if find_whisper_model(settings.models_dir, settings.whisper_model) is None:
        no_whisper = "no Whisper model: run `callbot models pull whisper-base` for the slower Whisper live mode"
        return _unavailable(f"{no_vosk}, or {no_whisper}" if choice == "auto" else no_whisper)
    try:
        whisper = load_whisper(settings)
        options = SegmenterOptions(end_silence_s=settings.live_end_silence_s)
        live = WhisperLiveEngine(whisper, SileroVad(), language, options)
    except CallbotError as exc:
        return _unavailable(f"{exc}")
    detail = f"whisper {whisper.name} with voice activity ({whisper.device}); {WHISPER_LIVE_NOTE}"
    log.warning("live turns heard by Whisper: %s", detail)
    return LiveChoice(live, "degraded" if whisper.device == "cpu" else "up", detail)


def _unavailable(why: str) -> LiveChoice:
    log.warning("speech recognition unavailable: %s", why)
    return LiveChoice(None, "unavailable", f"{why}; calls use the keypad menu until then")
