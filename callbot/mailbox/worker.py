"""The mailbox worker: transcribes and classifies messages off the call path, then sends the notifications.

Its queues live in the database (``MailboxStore``): a restart resumes them, a message whose transcription
failed is retried, then marked ``transcription_failed`` with the error — never dropped. Without a speech
model, messages wait in ``pending_transcription`` (``callbot mailbox transcribe --pending`` takes them later).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from callbot.errors import CallbotError, NluUnavailableError, SpeechEngineError, StorageError
from callbot.frames import Word
from callbot.mailbox.notify import NotificationError, Smtp, compose, send
from callbot.mailbox.pii import mask_transcript
from callbot.mailbox.recording import read_pcm
from callbot.mailbox.store import Classified, MailboxStore, Transcribed, TranscriptionJob
from callbot.mailbox.transcriber import transcribe_file
from callbot.speech.transcription import Transcriber, Transcript

log = logging.getLogger(__name__)

Classify = Callable[[str, str], Awaitable[Classified]]
"""(masked transcript, language) -> the detected reason and entities; raises NluUnavailableError when the NLU
cannot answer now."""


@dataclass(frozen=True)
class WorkerSettings:
    recordings: Path
    timezone: str
    keep_unmasked: bool = False
    retry_s: float = 30.0
    """First retry delay of a failed transcription or e-mail; doubled at each attempt."""
    max_notify_attempts: int = 5
    poll_s: float = 2.0
    console_url: str | None = None
    only_readable: bool = False
    """Several instances share the database: take only messages whose recording is readable here (the others
    are left to the instance that recorded them). One instance: a missing recording is a failed transcription."""


class MailboxWorker:
    def __init__(
        self,
        store: MailboxStore,
        settings: WorkerSettings,
        asr: Transcriber | None,
        classify: Classify,
        run_blocking: Callable[[Callable[[], Transcript]], Awaitable[Transcript]],
        smtp: Smtp | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.asr = asr
        self.classify = classify
        self.smtp = smtp
        self._blocking = run_blocking
        self._wake = asyncio.Event()
        self._nlu_retry_at = 0.0
        """While the NLU is down, classification is retried every ``retry_s`` (not at every poll)."""

    def _readable(self, audio_path: str) -> bool:
        return (self.settings.recordings / audio_path).is_file()

    def wake(self) -> None:
        """A message was just recorded: look at the queues now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                busy = await self.step()
            except StorageError as exc:
                log.warning("mailbox worker paused, database unavailable: %s", exc)
                busy = False
            except Exception:  # the worker must outlive any one message
                log.exception("mailbox worker step failed")
                busy = False
            if not busy:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_s)

    async def step(self) -> bool:
        """One unit of work of each kind; True when something was done (more may be waiting)."""
        did = False
        if self.asr is not None:
            readable = self._readable if self.settings.only_readable else None
            job = await asyncio.to_thread(self.store.claim_transcription, readable)
            if job is not None:
                await self.transcribe(job)
                did = True
        did = await self._classify_pending() or did
        if self.smtp is not None:
            did = await self._notify() or did
        return did

    async def transcribe(self, job: TranscriptionJob) -> str:
        """Transcribe, mask and classify one message; the transcription state it ends in."""
        assert self.asr is not None
        path = self.settings.recordings / job.audio_path
        engine = self.asr
        try:
            text, words, cpu = await self._blocking(lambda: transcribe_file(engine, path, job.language))
        except FileNotFoundError as exc:
            log.error("[item %s] recording %s is missing: %s", job.item_id, job.audio_path, exc)
            return await asyncio.to_thread(
                self.store.fail_transcription, job.item_id, f"recording missing: {exc}", retry_in=None
            )
        except (SpeechEngineError, OSError) as exc:
            delay = timedelta(seconds=self.settings.retry_s * 2 ** (job.attempt - 1))
            log.warning("[item %s] transcription attempt %d failed: %s", job.item_id, job.attempt, exc)
            return await asyncio.to_thread(self.store.fail_transcription, job.item_id, str(exc), retry_in=delay)
        masked = mask_transcript(text, words, job.language)
        result = Transcribed(
            masked.text,
            _word_rows(masked.words),
            list(masked.found),
            text if self.settings.keep_unmasked else None,
            _word_rows(words) if self.settings.keep_unmasked else None,
        )
        classified = await self._classified(job.item_id, masked.text, job.language)
        await asyncio.to_thread(self.store.save_transcription, job.item_id, result, classified)
        log.info(
            "[item %s] transcribed by %s: %d words in %.1f s, reason %s, masked %s",
            job.item_id,
            engine.engine,
            len(words),
            cpu,
            classified.reason if classified else "(NLU unavailable)",
            masked.found or "nothing",
        )
        return "transcribed"

    async def _classified(self, item_id: str, text: str, language: str) -> Classified | None:
        if not text.strip():
            return Classified(None, None, {})
        if time.monotonic() < self._nlu_retry_at:
            return None
        try:
            return await self.classify(text, language)
        except NluUnavailableError as exc:
            log.warning("[item %s] not classified yet, NLU unavailable (retried later): %s", item_id, exc)
        except CallbotError as exc:
            log.error("[item %s] NLU could not classify the message: %s", item_id, exc)
        self._nlu_retry_at = time.monotonic() + self.settings.retry_s
        return None

    async def _classify_pending(self) -> bool:
        if time.monotonic() < self._nlu_retry_at:
            return False
        pending = await asyncio.to_thread(self.store.unclassified, 5)
        for item_id, text, language in pending:
            classified = await self._classified(item_id, text, language)
            if classified is None:
                return False  # the NLU is still down: try again at a later poll
            await asyncio.to_thread(self.store.save_classification, item_id, classified)
        return bool(pending)

    async def _notify(self) -> bool:
        assert self.smtp is not None
        smtp = self.smtp
        # wait for the transcript while it may still come (a speech model is installed)
        due = await asyncio.to_thread(self.store.claim_notifications, transcribed=self.asr is not None)
        for item in due:
            audio = None
            if smtp.attach_audio and item.audio_path:
                audio = await asyncio.to_thread(_wav_bytes, self.settings.recordings / item.audio_path)
            message = compose(item, smtp, self.settings.timezone, self.settings.console_url, audio)
            try:
                await asyncio.to_thread(send, message, smtp)
            except NotificationError as exc:
                attempts = item.notify_attempts + 1
                final = attempts >= self.settings.max_notify_attempts
                delay = None if final else timedelta(seconds=self.settings.retry_s * 2 ** (attempts - 1))
                log.warning(
                    "[item %s] e-mail attempt %d failed%s: %s", item.id, attempts, " (giving up)" if final else "", exc
                )
                await asyncio.to_thread(self.store.notification_result, item.id, str(exc), delay)
                continue
            await asyncio.to_thread(self.store.notification_result, item.id, None, None)
            log.info("[item %s] e-mail sent to %s", item.id, ", ".join(smtp.recipients))
        return bool(due)


def _wav_bytes(path: Path) -> bytes | None:
    try:
        from callbot.mailbox.recording import wav_header

        pcm = read_pcm(path)
        return wav_header(len(pcm)) + pcm
    except OSError:
        return None


def _word_rows(words: tuple[Word, ...]) -> list[list[object]]:
    return [[w.word, round(w.start, 3), round(w.end, 3), round(w.conf, 3)] for w in words]
