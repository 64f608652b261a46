"""The simulated caller, whatever line carries the call: it listens to the greeting, speaks (real time, line
silence between utterances, as a phone line does), presses keys, waits for each answer, and hangs up. The line
(Twilio, AudioSocket, chan_websocket, with or without ARI) is a ``PeerLine`` that plays the telephony side."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Protocol

import numpy as np

from callbot.simulator.report import FRAME_S, FRAME_SAMPLES, LINE_RATE, CallReport

SILENCE = b"\x00\x00" * FRAME_SAMPLES
VOICE_RMS = 300.0
"""A played frame above this energy is the bot speaking (lines without marks end a turn on quiet)."""


class PeerLine(Protocol):
    """The telephony side of one simulated call."""

    report: CallReport
    started_at: float
    """When the media stream started (the greeting's delay counts from here)."""
    marks: bool
    """Whether the far end's playback reaches us as marks (otherwise a turn ends on quiet)."""
    dtx: bool
    """Whether the line goes quiet when the caller does (silence suppression: no frames at all)."""

    async def connect(self, playback: Playback) -> None:
        """Place the call up to the media flowing; the bot's audio goes to ``playback`` from then on."""
        ...

    async def send_audio(self, pcm: bytes) -> None:
        """One 20 ms frame of the caller's audio (16-bit PCM at 8 kHz), in the line's format."""
        ...

    async def send_dtmf(self, digit: str) -> None: ...

    def mark_played(self, name: str) -> None:
        """The caller's side has played the bot's audio up to this mark."""
        ...

    async def hang_up(self) -> None:
        """The caller hangs up."""
        ...

    def closed(self) -> asyncio.Future[None]:
        """Done when the far end has ended the media (the bot hung up or handed the call back)."""
        ...

    async def finish(self) -> None:
        """After the media: what the telephony side was told to do with the call (transfer target...)."""
        ...


class Playback:
    """The caller's ear: a buffer of the bot's audio played in real time, marks echoed when reached, dropped on
    a clear (barge-in)."""

    def __init__(self, line: PeerLine, speed: float) -> None:
        self.line, self.speed, self.report = line, speed, line.report
        self.queue: deque[bytes | str] = deque()
        self.played = bytearray()
        self.last_media_at = 0.0
        self.first_media_at: float | None = None
        self.last_clear_at = 0.0
        self.last_mark_played_at = 0.0
        self.last_voice_at = 0.0
        self.voice_started_at = 0.0
        """When the last run of voice began after quiet (lines without marks: where a bot turn can start)."""
        self._quiet = True
        self.media_times: list[float] = []
        self.clear_times: list[float] = []
        self.voiced_s = 0.0

    @property
    def idle(self) -> bool:
        return not self.queue

    @property
    def queued_frames(self) -> int:
        return sum(len(item) // (2 * FRAME_SAMPLES) for item in self.queue if isinstance(item, bytes))

    def audio(self, pcm: bytes) -> None:
        # a line without marks carries the bot's silence while it thinks: only voice is the bot speaking
        voiced = self.line.marks or _voiced(pcm)
        if not self.line.marks:
            if voiced and self._quiet:
                self.voice_started_at = time.monotonic()
            self._quiet = not voiced
        if voiced:
            now = time.monotonic()
            self.first_media_at = self.first_media_at or now
            self.last_media_at = now
            self.media_times.append(now)
        self.queue.append(pcm)

    def mark(self, name: str) -> None:
        self.queue.append(name)

    def clear(self, echo_marks: bool) -> list[str]:
        """Drop what is queued; the marks it held (echoed at once when the line does so, as Twilio does)."""
        self.report.clears += 1
        self.last_clear_at = time.monotonic()
        self.clear_times.append(self.last_clear_at)
        marks = [item for item in self.queue if isinstance(item, str)]
        self.queue.clear()
        if echo_marks:
            for name in marks:
                self.report.marks_echoed += 1
                self.line.mark_played(name)
        return marks

    async def run(self) -> None:
        # played on the line's clock: each frame is due a frame's time after the one before, so that a busy event
        # loop's late wake-ups do not add up (a sleep per frame fell seconds behind a 20 s answer under load)
        due = 0.0
        while True:
            if not self.queue:
                await asyncio.sleep(0.005)
                continue
            item = self.queue.popleft()
            if isinstance(item, str):
                self.last_mark_played_at = time.monotonic()
                self.report.marks_echoed += 1
                self.line.mark_played(item)
                continue
            self.played += item
            if _voiced(item):
                self.last_voice_at = time.monotonic()
                self.voiced_s += len(item) / 2 / LINE_RATE
            self.report.bot_audio_s += len(item) / 2 / LINE_RATE
            now = time.monotonic()
            due = max(due, now - 0.1) + len(item) / 2 / LINE_RATE / self.speed  # after a gap: from now
            await asyncio.sleep(max(due - now, 0.0))

    def first_media_after(self, moment: float) -> float | None:
        return next((t for t in self.media_times if t > moment), None)

    def cleared_after(self, moment: float) -> float | None:
        """How long after ``moment`` the bot told the line to drop its queued audio (None: it did not)."""
        cleared = next((t for t in self.clear_times if t >= moment), None)
        return cleared - moment if cleared is not None else None

    async def wait_first_audio(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.first_media_at is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.first_media_at is not None

    async def wait_bot_turn(self, after: float, timeout: float) -> bool:
        """Wait until the bot has spoken (audio received after ``after``) and finished playing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # audio that arrived before a clear was cut off; only what follows it answers us
            spoke = self.last_media_at > max(after, self.last_clear_at)
            now = time.monotonic()
            if self.line.marks:
                # the bot's turn is over when its audio has played up to a mark (the end of an utterance) and
                # nothing follows for a moment: a pause inside an utterance has no mark
                ended = self.last_mark_played_at >= self.last_media_at and self.idle
                ended = ended and now - self.last_media_at > 0.3
            else:  # no marks on this line: over once its last voice has played, and a longer quiet than a pause
                # the tail of what a key cut off still arrives after the key (the far end reacts when it can):
                # the answer is voice that starts again after quiet, or goes on well past the key
                spoke = spoke and (self.voice_started_at > after or self.last_media_at > after + 1.0)
                ended = self.last_voice_at >= self.last_media_at and now - self.last_voice_at > 0.7
            if spoke and ended:
                return True
            await asyncio.sleep(0.02)
        return False


def _voiced(pcm: bytes) -> bool:
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.float32)
    return bool(samples.size) and float(np.sqrt(np.mean(samples * samples))) >= VOICE_RMS


class Caller:
    """The caller's behaviour on a line that is connected."""

    def __init__(
        self,
        line: PeerLine,
        speech: bytes,
        *,
        dtmf: str,
        speed: float,
        turn_timeout: float,
        barge_in: bool,
        keys_first: bool,
        pause_s: float = 0.0,
    ) -> None:
        self.line, self.speech, self.dtmf = line, speech, dtmf
        self.speed, self.turn_timeout = max(speed, 0.1), turn_timeout
        self.barge_in, self.keys_first, self.pause_s = barge_in, keys_first, pause_s
        self._speaking = False
        self._presses_at: list[float] = []
        self._voice_ended_at = 0.0
        """When the caller's last voiced frame left."""

    async def call(self) -> bytes:
        """Place the call and play the script; what the caller heard (16-bit PCM at 8 kHz)."""
        line = self.line
        playback = Playback(line, self.speed)
        await line.connect(playback)
        tasks = [asyncio.create_task(playback.run()), asyncio.create_task(self._line_audio())]
        try:
            await self._script(playback)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if playback.first_media_at is not None:
            line.report.first_audio_ms = round((playback.first_media_at - line.started_at) * 1000, 1)
        for pressed in self._presses_at:
            cleared = playback.cleared_after(pressed)
            if cleared is not None:
                line.report.barge_in_ms.append(round(cleared * 1000, 1))
        line.report.bot_voice_s = round(playback.voiced_s, 3)
        await line.finish()
        return bytes(playback.played)

    async def _script(self, playback: Playback) -> None:
        closed = self.line.closed()
        presses = [("press", digit) for digit in self.dtmf]
        speaking = [("speak", "")] if self.speech else []
        # keys first: choose in the menu, then speak (a message after the beep)
        steps = presses + speaking if self.keys_first else speaking + presses
        presses_at: list[float] = []
        self._presses_at = presses_at
        if self.barge_in:
            await _until(playback.wait_first_audio(self.turn_timeout), closed)
        elif not await _until(playback.wait_bot_turn(self.line.started_at - 1, self.turn_timeout), closed):
            return
        if self.pause_s and not await _until(asyncio.sleep(self.pause_s / self.speed), closed):
            return
        for kind, value in steps:
            mark = time.monotonic()
            if kind == "speak":
                mark = await self._say()
            else:
                await self.line.send_dtmf(value)
                presses_at.append(mark)
            if not await _until(playback.wait_bot_turn(mark, self.turn_timeout), closed):
                return
            answer = playback.first_media_after(mark)
            if answer is not None:
                # from the caller's last word (the clip's trailing silence is part of the bot's wait, not ours)
                ended = self._voice_ended_at if kind == "speak" and self._voice_ended_at else mark
                self.line.report.response_ms.append(round((answer - ended) * 1000, 1))
        linger = getattr(self.line, "linger_s", 0.0)
        if linger and not await _until(asyncio.sleep(linger), closed):
            return  # the far end ended the call while the caller held on
        await self.line.hang_up()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(closed), timeout=10)

    async def _say(self) -> float:
        """The utterance in real time; the monotonic time its last speech frame left."""
        self._speaking = True
        pcm = self.speech
        step = 2 * FRAME_SAMPLES
        try:
            for start in range(0, len(pcm), step):
                frame = pcm[start : start + step].ljust(step, b"\x00")
                await self.line.send_audio(frame)
                if _voiced(frame):
                    self._voice_ended_at = time.monotonic()
                await asyncio.sleep(FRAME_S / self.speed)
        finally:
            self._speaking = False  # back to line silence, which lets the recogniser end the utterance
        return time.monotonic()

    async def _line_audio(self) -> None:
        """A phone line never goes quiet: silence frames flow whenever the caller is not speaking (unless the
        line suppresses silence)."""
        while True:
            if not self._speaking and not self.line.dtx:
                await self.line.send_audio(SILENCE)
            await asyncio.sleep(FRAME_S / self.speed)


async def _until(waiting: object, closed: asyncio.Future[None]) -> bool:
    """Run ``waiting``; False when the far end closed the stream first (the call moved on)."""
    task = asyncio.ensure_future(waiting)  # type: ignore[call-overload]
    done, _ = await asyncio.wait({task, closed}, return_when=asyncio.FIRST_COMPLETED)
    if closed in done:
        task.cancel()
        return False
    return True
