"""The recognition stage: caller audio in, partial and final transcripts out, decoding off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from callbot.errors import SpeechEngineError
from callbot.frames import TranscriptFinal, TranscriptPartial
from callbot.speech.vosk_asr import VoskRecognizer

BATCH_SECONDS = 0.1
"""Audio is handed to Vosk in 100 ms batches: five line frames per thread hop instead of one."""

MAX_BACKLOG_SECONDS = 5.0
"""If decoding falls this far behind the line, older audio is dropped (and logged) rather than piling up."""


@dataclass(frozen=True, slots=True)
class RecognitionFailed:
    error: str


ListenerEvent = TranscriptPartial | TranscriptFinal | RecognitionFailed


class Listener:
    def __init__(
        self,
        recognizer: VoskRecognizer,
        emit: Callable[[ListenerEvent], Awaitable[None]],
        log: logging.LoggerAdapter[logging.Logger],
        pool: Executor | None = None,
    ) -> None:
        self._recognizer = recognizer
        self._emit = emit
        self._pool = pool
        self._log = log
        self._audio: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._batch_bytes = int(recognizer.sample_rate * BATCH_SECONDS) * 2
        self._max_backlog = int(MAX_BACKLOG_SECONDS / BATCH_SECONDS)
        self._pending = bytearray()
        self._task: asyncio.Task[None] | None = None
        self.failed = False
        self.dropped_seconds = 0.0

    @property
    def recognizer(self) -> VoskRecognizer:
        return self._recognizer

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="listener")

    def feed(self, pcm: bytes) -> None:
        if self.failed:
            return
        self._pending += pcm
        if len(self._pending) >= self._batch_bytes:
            if self._audio.qsize() >= self._max_backlog:
                self._audio.get_nowait()
                self.dropped_seconds += BATCH_SECONDS
            self._audio.put_nowait(bytes(self._pending))
            self._pending.clear()

    async def close(self) -> None:
        """Flush the last audio and wait for its final result."""
        if self._task is None:
            return
        if self._pending and not self.failed:
            self._audio.put_nowait(bytes(self._pending))
            self._pending.clear()
        self._audio.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._task, timeout=10)

    async def _run(self) -> None:
        recognizer = self._recognizer
        loop = asyncio.get_running_loop()
        while True:
            chunk = await self._audio.get()
            try:
                if chunk is None:
                    final = await loop.run_in_executor(self._pool, recognizer.finish)
                    if final is not None:
                        await self._emit(final)
                    return
                result = await loop.run_in_executor(self._pool, recognizer.accept, chunk)
            except SpeechEngineError as exc:
                self.failed = True
                self._log.error("speech recognition failed, switching to the keypad menu: %s", exc)
                await self._emit(RecognitionFailed(str(exc)))
                return
            if result is not None:
                await self._emit(result)
