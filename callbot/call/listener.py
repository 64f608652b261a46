"""The recognition stage: caller audio in, partial and final transcripts out, decoded in a thread of the call's
own (named ``vosk-…`` or ``whisper-…``) so that the event loop hands it audio with a cheap queue put rather than
a thread-pool round trip for each batch, and hears back only when there is something to hear."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from callbot.engine_threads import name_this_thread
from callbot.errors import SpeechEngineError
from callbot.frames import TranscriptFinal, TranscriptPartial
from callbot.speech.live import StreamingRecognizer

BATCH_SECONDS = 0.1
"""Audio is handed to the recognizer in 100 ms batches: five line frames at a time."""

MAX_BACKLOG_SECONDS = 5.0
"""If decoding falls this far behind the line, older audio is dropped (and logged) rather than piling up."""


@dataclass(frozen=True, slots=True)
class RecognitionFailed:
    error: str


ListenerEvent = TranscriptPartial | TranscriptFinal | RecognitionFailed


class Listener:
    def __init__(
        self,
        recognizer: StreamingRecognizer,
        emit: Callable[[ListenerEvent], None],
        log: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._recognizer = recognizer
        self._emit = emit
        self._log = log
        self._audio: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._batch_bytes = int(recognizer.sample_rate * BATCH_SECONDS) * 2
        self._max_backlog = int(MAX_BACKLOG_SECONDS / BATCH_SECONDS)
        self._pending = bytearray()
        self._thread: threading.Thread | None = None
        self._done = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.failed = False
        self.dropped_seconds = 0.0

    @property
    def recognizer(self) -> StreamingRecognizer:
        return self._recognizer

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        name = f"{self._recognizer.engine}-call"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def feed(self, pcm: bytes) -> None:
        if self.failed:
            return
        self._pending += pcm
        if len(self._pending) >= self._batch_bytes:
            if self._audio.qsize() >= self._max_backlog:
                try:
                    self._audio.get_nowait()  # the oldest batch goes: the line does not wait for the decoder
                except queue.Empty:
                    pass
                else:
                    if not self.dropped_seconds:
                        self._log.warning(
                            "speech recognition is %.0f s behind the line: dropping the oldest audio",
                            MAX_BACKLOG_SECONDS,
                        )
                    self.dropped_seconds += BATCH_SECONDS
            self._audio.put_nowait(bytes(self._pending))
            self._pending.clear()

    async def close(self) -> None:
        """Flush the last audio and wait for its final result."""
        if self._thread is None:
            return
        if self._pending and not self.failed:
            self._audio.put_nowait(bytes(self._pending))
            self._pending.clear()
        self._audio.put_nowait(None)
        try:
            await asyncio.wait_for(self._done.wait(), timeout=10)
        except TimeoutError:
            self._log.error("speech recognition did not finish within 10 s of the end of the call")
        if self.dropped_seconds:
            self._log.warning("speech recognition dropped %.1f s of caller audio in this call", self.dropped_seconds)

    def _run(self) -> None:
        """The decoding thread: audio from the queue, results posted to the event loop when there are any."""
        name_this_thread(f"{self._recognizer.engine}-call")
        recognizer = self._recognizer
        try:
            while True:
                chunk = self._audio.get()
                if chunk is None:
                    final = recognizer.finish()
                    if final is not None:
                        self._post(final)
                    return
                result = recognizer.accept(chunk)
                if result is not None:
                    self._post(result)
        except SpeechEngineError as exc:
            self._log.error("speech recognition failed, switching to the keypad menu: %s", exc)
            self._post(RecognitionFailed(str(exc)))
        finally:
            self._call(self._done.set)

    def _post(self, event: ListenerEvent) -> None:
        if isinstance(event, RecognitionFailed):
            self._call(self._failed)
        self._call(self._emit, event)

    def _failed(self) -> None:
        self.failed = True

    def _call(self, function: Callable[..., None], *args: object) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is gone (the service stops): nobody is listening
            self._loop.call_soon_threadsafe(function, *args)
