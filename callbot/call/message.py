"""Taking a caller's message after the beep: the audio goes to disk as it arrives; the message ends on a long
silence after speech, on the finish key, when the caller hangs up, or at the maximum duration."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from datetime import UTC, datetime

import numpy as np

from callbot.errors import StorageError
from callbot.mailbox.recording import SAMPLE_RATE, MessageMeta, MessageRecording
from callbot.mailbox.service import message_path
from callbot.resources import Resources
from routing.bot_config import RecordingPolicy

SPEECH_RMS = 500.0
"""Frame energy above which the caller is taken to be speaking (about -36 dBFS; line noise stays well below)."""
SPEECH_FRAMES = 3
"""Consecutive loud 20 ms frames that count as speech (a click or a cough edge does not)."""
PRE_ROLL_S = 1.0
"""Caller audio kept from just before the message starts: a caller who speaks the moment the beep ends may be
heard before the provider has told us the beep was played."""


class MessageTaker:
    def __init__(self, recording: MessageRecording, policy: RecordingPolicy, relative_path: str) -> None:
        self.recording = recording
        self.policy = policy
        self.relative_path = relative_path
        self.filed = False
        """Whether the mailbox item was created in the database when recording started."""
        self.ended_by: str | None = None
        self.spoke = False
        self._ended = asyncio.Event()
        self._loud_run = 0
        self._quiet_s = 0.0
        self._started = time.monotonic()
        self.armed = False
        self._pre_roll: deque[bytes] = deque()
        self._pre_roll_bytes = 0

    def arm(self) -> None:
        """The beep has played: the message starts, with the last second heard before it."""
        self.armed = True
        self._started = time.monotonic()
        pending, self._pre_roll = list(self._pre_roll), deque()
        for pcm in pending:
            self.feed(pcm)

    def feed(self, pcm: bytes) -> None:
        """Caller audio (16-bit PCM at 8 kHz), written at once, then looked at for the end of the message."""
        if self.ended_by is not None:
            return
        if not self.armed:
            self._pre_roll.append(pcm)
            self._pre_roll_bytes += len(pcm)
            while self._pre_roll_bytes > PRE_ROLL_S * SAMPLE_RATE * 2:
                self._pre_roll_bytes -= len(self._pre_roll.popleft())
            return
        self.recording.write(pcm)
        seconds = len(pcm) / 2 / SAMPLE_RATE
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
        loud = bool(samples.size) and float(np.sqrt(np.mean(samples * samples))) >= SPEECH_RMS
        self._loud_run = self._loud_run + 1 if loud else 0
        if self._loud_run >= SPEECH_FRAMES:
            self.spoke = True
        self._quiet_s = 0.0 if loud else self._quiet_s + seconds
        if self.recording.duration_s >= self.policy.max_duration_s:
            self.end("max_duration")
        elif self.spoke and self._quiet_s >= self.policy.end_silence_s:
            self.end("silence")
        elif not self.spoke and self.recording.duration_s >= self.policy.start_timeout_s:
            self.end("no_speech")

    def key(self, digit: str) -> bool:
        """True when the key ends the message."""
        if digit == self.policy.finish_key:
            self.end("finish_key")
            return True
        return False

    def end(self, why: str) -> None:
        if self.ended_by is None:
            self.ended_by = why
            self._ended.set()

    async def wait(self) -> str:
        """Why the message ended. A stream that stops sending audio does not hold the call: the wall clock
        ends the message too."""
        deadline = self._started + self.policy.max_duration_s + self.policy.end_silence_s + 2
        while self.ended_by is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.end("max_duration")
                break
            try:
                await asyncio.wait_for(self._ended.wait(), timeout=min(remaining, 1.0))
            except TimeoutError:
                await asyncio.to_thread(self.recording.sync)  # each second, the audio so far is on the disk
        assert self.ended_by is not None
        return self.ended_by


async def start_message(
    resources: Resources,
    call_id: str,
    caller: str,
    called: str,
    reason: str,
    log: logging.LoggerAdapter[logging.Logger],
) -> MessageTaker:
    """Open the recording and file the mailbox item (or, with the database down, leave the metadata beside
    the recording for recovery)."""
    item_id = uuid.uuid4().hex
    started = datetime.now(UTC)
    relative, path = message_path(resources.settings.recordings_dir, item_id, started)
    meta = MessageMeta(item_id, call_id, caller, called, reason, resources.bot.language, started.isoformat())
    recording = await asyncio.to_thread(MessageRecording, path, meta)
    taker = MessageTaker(recording, resources.bot.recording, relative)
    try:
        await asyncio.to_thread(resources.mailbox.create, meta, relative)
        taker.filed = True
    except StorageError as exc:
        log.error("message %s is recorded without the database; it will be filed when it is back: %s", item_id, exc)
    log.info("taking a message (%s) into %s", reason, relative)
    return taker


async def finish_message(resources: Resources, taker: MessageTaker, log: logging.LoggerAdapter[logging.Logger]) -> None:
    recording = taker.recording
    duration = await asyncio.to_thread(recording.close)
    try:
        if taker.filed:
            await asyncio.to_thread(resources.mailbox.finish_recording, recording.meta.item_id, duration)
        else:
            await asyncio.to_thread(resources.mailbox.recover, recording.meta, taker.relative_path, duration)
        recording.path.with_suffix(".json").unlink(missing_ok=True)
    except StorageError as exc:
        log.error(
            "message %s (%.1f s) kept on disk, not yet in the mailbox (database unavailable); it is filed at the "
            "next start or by `callbot mailbox recover`: %s",
            recording.meta.item_id,
            duration,
            exc,
        )
    resources.metrics.messages.labels(recording.meta.reason).inc()
    if resources.mailbox_worker is not None:
        resources.mailbox_worker.wake()
    log.info("message %s ended by %s after %.1f s", recording.meta.item_id, taker.ended_by, duration)
