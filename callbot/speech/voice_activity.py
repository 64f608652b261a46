"""Voice activity on the caller's line: Silero VAD (v6, the ONNX weights that ship inside faster-whisper), run
as a stream of 32 ms chunks, and a segmenter that turns its speech probabilities into utterances.

The model is loaded once per process; each call has its own ``VadStream`` (the model's recurrent state and the
last samples of the previous chunk) and its own ``Segmenter``.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from callbot.errors import ModelMissingError, SpeechEngineError

VAD_RATE = 16000
CHUNK = 512
"""Samples per VAD decision at 16 kHz (32 ms)."""
CONTEXT = 64
"""Samples of the previous chunk the model sees before each chunk (as faster-whisper feeds it)."""
CHUNK_S = CHUNK / VAD_RATE


def packaged_vad_path() -> Path:
    """Silero VAD v6 as faster-whisper ships it (MIT): no download."""
    try:
        from faster_whisper.utils import get_assets_path
    except ImportError as exc:  # pragma: no cover - a broken installation
        raise ModelMissingError(f"faster-whisper, which ships the Silero VAD model, is not installed: {exc}") from exc
    return Path(get_assets_path()) / "silero_vad_v6.onnx"


class SileroVad:
    """The loaded Silero model (a few MB; one ONNX session shared by every call, one thread per run)."""

    def __init__(self, path: Path | None = None) -> None:
        path = path or packaged_vad_path()
        if not path.is_file():
            raise ModelMissingError(f"no Silero VAD model at {path}")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.log_severity_level = 4
        try:
            self._session = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"], sess_options=options
            )
        except Exception as exc:  # onnxruntime raises its own exception types, not exported for typing
            raise SpeechEngineError(f"the Silero VAD model {path} could not be loaded: {exc}") from exc
        self.path = path
        self._lock = threading.Lock()

    def stream(self) -> VadStream:
        return VadStream(self)

    def run(self, chunks: np.ndarray[Any, np.dtype[np.float32]], h: Any, c: Any) -> tuple[Any, Any, Any]:
        """Speech probabilities of ``chunks`` (rows of context + chunk), and the state after them."""
        with self._lock:  # an ONNX session runs concurrently, but one thread each keeps two cores for the calls
            probs, h, c = self._session.run(None, {"input": chunks, "h": h, "c": c})
        return probs, h, c


class VadStream:
    """One call's audio through the model: 16 kHz float samples in, one speech probability per 32 ms out."""

    def __init__(self, model: SileroVad) -> None:
        self._model = model
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def chunks(
        self, audio: np.ndarray[Any, np.dtype[np.float32]]
    ) -> list[tuple[np.ndarray[Any, np.dtype[np.float32]], float]]:
        """Every whole 32 ms chunk completed by ``audio`` with its speech probability (the rest waits for more)."""
        samples = np.concatenate([self._pending, audio])
        whole = len(samples) // CHUNK * CHUNK
        self._pending = samples[whole:]
        if not whole:
            return []
        chunks = samples[:whole].reshape(-1, CHUNK)
        contexts = np.vstack([self._context, chunks[:-1, -CONTEXT:]])
        self._context = chunks[-1, -CONTEXT:].copy()
        try:
            probs, self._h, self._c = self._model.run(np.hstack([contexts, chunks]), self._h, self._c)
        except Exception as exc:  # onnxruntime's errors are not exported for typing
            raise SpeechEngineError(f"the voice activity detector failed: {exc}") from exc
        return list(zip(chunks, (float(p) for p in np.asarray(probs).reshape(-1)), strict=True))


@dataclass(frozen=True, slots=True)
class SegmenterOptions:
    start_threshold: float = 0.5
    """A chunk is speech above this probability."""
    end_threshold: float = 0.35
    """Once speaking, a chunk is silence below this one (hysteresis: a dip in a word does not end it)."""
    min_speech_s: float = 0.1
    """Speech this long starts an utterance (and stops the bot: barge-in)."""
    end_silence_s: float = 0.7
    """Silence this long ends the utterance."""
    pre_roll_s: float = 0.3
    """Audio kept from before the start, so that the first syllable is not cut."""
    max_utterance_s: float = 25.0
    """An utterance is cut here (Whisper reads 30 s at a time)."""


@dataclass(frozen=True, slots=True)
class SpeechBegan:
    """The caller started speaking (``min_speech_s`` of speech)."""


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """An utterance ended: its audio at 16 kHz, pre-roll included, trailing silence trimmed to 0.2 s."""

    audio: np.ndarray[Any, np.dtype[np.float32]]
    at_s: float
    """When it ended, in seconds of call audio."""


SegmentEvent = SpeechBegan | SpeechEnded


class Segmenter:
    """Speech probabilities (one per 32 ms chunk) and the same audio in, utterance boundaries out."""

    def __init__(self, options: SegmenterOptions | None = None) -> None:
        self.options = opts = options or SegmenterOptions()
        self._pre_roll: deque[np.ndarray[Any, np.dtype[np.float32]]] = deque(maxlen=round(opts.pre_roll_s / CHUNK_S))
        self._speech: list[np.ndarray[Any, np.dtype[np.float32]]] = []
        self._voiced = 0
        """Consecutive speech chunks before the utterance starts."""
        self._quiet = 0
        """Consecutive silent chunks since the utterance's last speech."""
        self.speaking = False
        self.chunks = 0

    def push(self, chunk: np.ndarray[Any, np.dtype[np.float32]], probability: float) -> SegmentEvent | None:
        opts = self.options
        self.chunks += 1
        if not self.speaking:
            self._pre_roll.append(chunk)
            self._voiced = self._voiced + 1 if probability >= opts.start_threshold else 0
            if self._voiced * CHUNK_S < opts.min_speech_s:
                return None
            self.speaking = True
            self._speech = list(self._pre_roll)
            self._pre_roll.clear()
            self._quiet = 0
            return SpeechBegan()
        self._speech.append(chunk)
        self._quiet = self._quiet + 1 if probability < opts.end_threshold else 0
        if self._quiet * CHUNK_S >= opts.end_silence_s or len(self._speech) * CHUNK_S >= opts.max_utterance_s:
            return self._end()
        return None

    def flush(self) -> SpeechEnded | None:
        """The call's audio ended: the utterance in progress, if any."""
        return self._end() if self.speaking else None

    def _end(self) -> SpeechEnded:
        keep = len(self._speech) - max(self._quiet - round(0.2 / CHUNK_S), 0)
        audio = np.concatenate(self._speech[:keep])
        self.speaking, self._speech, self._voiced, self._quiet = False, [], 0, 0
        return SpeechEnded(audio, self.chunks * CHUNK_S)
