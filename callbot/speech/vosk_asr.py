"""Streaming speech recognition with Vosk: one model per process, one recognizer per call."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from callbot.errors import ModelMissingError, SpeechEngineError
from callbot.frames import TranscriptFinal, TranscriptPartial, Word

log = logging.getLogger(__name__)


class VoskEngine:
    """A loaded Vosk model. Loading takes seconds and hundreds of MB, so it happens once at startup."""

    def __init__(self, model_dir: Path) -> None:
        import vosk

        if not (model_dir / "conf").is_dir():
            raise ModelMissingError(f"{model_dir} is not a Vosk model folder (no conf/ inside)")
        vosk.SetLogLevel(-1)
        started = time.perf_counter()
        try:
            self._model = vosk.Model(str(model_dir))
        except Exception as exc:  # vosk raises a bare Exception when the model cannot be created
            raise SpeechEngineError(f"Vosk could not load the model in {model_dir}: {exc}") from exc
        self.model_dir = model_dir
        self.load_seconds = time.perf_counter() - started

    def recognizer(self, sample_rate: int) -> VoskRecognizer:
        return VoskRecognizer(self._model, sample_rate)


class VoskRecognizer:
    """Feeds 16-bit PCM to Kaldi; returns a partial when it changed, a final at each endpoint.

    Calls block for the decoding time: run them off the event loop.
    """

    engine = "vosk"

    def __init__(self, model: Any, sample_rate: int) -> None:
        import vosk

        started = time.thread_time()
        self._rec = vosk.KaldiRecognizer(model, sample_rate)
        self._rec.SetWords(True)
        self.sample_rate = sample_rate
        self.audio_seconds = 0.0
        self.cpu_seconds = time.thread_time() - started  # creating a recogniser is Vosk work too
        self._last_partial = ""

    def accept(self, pcm: bytes) -> TranscriptPartial | TranscriptFinal | None:
        started = time.thread_time()  # this thread's CPU only: other calls decode in parallel
        try:
            is_final = self._rec.AcceptWaveform(pcm)
            result = json.loads(self._rec.Result() if is_final else self._rec.PartialResult())
        except Exception as exc:
            raise SpeechEngineError(f"Vosk failed on {len(pcm)} bytes of audio: {exc}") from exc
        finally:
            self.cpu_seconds += time.thread_time() - started
            self.audio_seconds += len(pcm) / 2 / self.sample_rate
        if is_final:
            self._last_partial = ""
            return _final(result)
        partial = str(result.get("partial", ""))
        if partial and partial != self._last_partial:
            self._last_partial = partial
            return TranscriptPartial(partial)
        return None

    def finish(self) -> TranscriptFinal | None:
        """Flush the last utterance when the audio ends without an endpoint."""
        started = time.thread_time()
        try:
            result = json.loads(self._rec.FinalResult())
        except Exception as exc:
            raise SpeechEngineError(f"Vosk failed to finalise: {exc}") from exc
        finally:
            self.cpu_seconds += time.thread_time() - started
        final = _final(result)
        return final if final.text else None


def _final(result: dict[str, Any]) -> TranscriptFinal:
    words = tuple(
        Word(str(w["word"]), float(w["start"]), float(w["end"]), float(w.get("conf", 1.0)))
        for w in result.get("result", [])
    )
    return TranscriptFinal(str(result.get("text", "")).strip(), words)
