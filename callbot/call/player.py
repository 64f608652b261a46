"""Paced playback of bot audio to the line, in 20 ms frames, with marks and barge-in."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class _Mark:
    name: str


class LineSink(Protocol):
    """What a telephony adapter offers the player: line-format audio frames, marks and clear."""

    @property
    def frame_bytes(self) -> int: ...
    @property
    def frame_seconds(self) -> float: ...
    @property
    def echoes_marks(self) -> bool:
        """False: the peer never reports marks, the player resolves them when its clock says they have played."""
        ...

    @property
    def keepalive(self) -> bool:
        """Whether to send silence whenever the peer's buffer runs dry (a line that must never go quiet)."""
        ...

    @property
    def silence(self) -> bytes:
        """One frame of silence in the line's format."""
        ...

    @property
    def frames_per_message(self) -> int:
        """How many consecutive frames may travel in one message (fewer messages: less work per second)."""
        ...

    @property
    def lead_s(self) -> float:
        """How much audio may be with the peer ahead of real time (a peer without a playout buffer: a frame)."""
        ...

    def to_line(self, pcm: bytes, sample_rate: int) -> bytes:
        """Bot audio (16-bit PCM at any rate) in the line's format and rate."""
        ...

    async def send_audio(self, frame: bytes) -> None: ...
    async def send_mark(self, name: str) -> None: ...
    async def send_clear(self) -> None: ...


class Player:
    """Sends queued line audio at real-time pace, keeping the sink's ``lead_s`` of audio ahead in the peer's buffer.

    Pacing keeps barge-in quick: at most ``lead_s`` of audio is already with the peer when we ``clear``.
    """

    def __init__(self, sink: LineSink) -> None:
        self.sink = sink
        self.lead_s = sink.lead_s
        self._frames: deque[bytes | _Mark] = deque()
        self._marks_pending: list[str] = []
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._mark_seq = 0
        self._task: asyncio.Task[None] | None = None
        self.on_first_frame: list[asyncio.Future[float]] = []

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="player")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def speaking(self) -> bool:
        return not self._idle.is_set()

    def enqueue(self, line_audio: bytes) -> None:
        size = self.sink.frame_bytes
        for start in range(0, len(line_audio), size):
            frame = line_audio[start : start + size]
            # whole frames only: a peer may drop a partial one (chan_websocket does)
            self._frames.append(frame if len(frame) == size else frame + self.sink.silence[len(frame) :])
        self._idle.clear()
        self._wakeup.set()

    def end_of_utterance(self) -> str:
        """Queue a mark after the audio queued so far; the peer echoes it when playback gets there."""
        self._mark_seq += 1
        name = f"utt-{self._mark_seq}"
        self._frames.append(_Mark(name))
        self._idle.clear()
        self._wakeup.set()
        return name

    def first_frame(self) -> asyncio.Future[float]:
        """A future resolved with the monotonic time of the next frame sent."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.on_first_frame.append(future)
        return future

    def mark_played(self, name: str) -> None:
        if name in self._marks_pending:
            # marks come back in order; anything before this one is played too
            del self._marks_pending[: self._marks_pending.index(name) + 1]
        self._update_idle()

    async def clear(self) -> None:
        """Barge-in: drop queued audio and tell the peer to drop what it buffered."""
        self._frames.clear()
        self._marks_pending.clear()
        await self.sink.send_clear()
        self._update_idle()

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _update_idle(self) -> None:
        if not self._frames and not self._marks_pending:
            self._idle.set()

    async def _run(self) -> None:
        sink = self.sink
        clock_start = 0.0
        sent_s = 0.0
        while True:
            now = time.monotonic()
            if now - clock_start > sent_s:  # the peer's buffer ran dry: restart the clock
                clock_start, sent_s = now, 0.0
            ahead = sent_s - (now - clock_start)
            if not self._frames:
                self._update_idle()
                if not sink.keepalive:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                elif ahead > 0:
                    # keep the line alive: sleep until the silence sent has played (new audio waits at most the
                    # lead; a plain sleep costs a fraction of waiting on an event with a timeout)...
                    await asyncio.sleep(ahead)
                else:  # ...then a lead's worth of silence frames in one go: one wake-up for several frames
                    for _ in range(max(1, round(self.lead_s / sink.frame_seconds))):
                        await sink.send_audio(sink.silence)
                        sent_s += sink.frame_seconds
                continue
            if ahead > self.lead_s:
                # sleep until half the lead has played, then refill it in one burst: five times fewer
                # wake-ups than one per frame, and still at most lead_s of audio with the peer
                await asyncio.sleep(ahead - self.lead_s / 2)
                continue
            item = self._frames.popleft()
            if isinstance(item, _Mark):
                self._marks_pending.append(item.name)
                if sink.echoes_marks:
                    await sink.send_mark(item.name)
                else:  # played once the audio sent before it has played out
                    asyncio.get_running_loop().call_later(max(ahead, 0.0), self.mark_played, item.name)
                continue
            burst = [item]
            while len(burst) < sink.frames_per_message and self._frames and not isinstance(self._frames[0], _Mark):
                burst.append(self._frames.popleft())  # type: ignore[arg-type]
            await sink.send_audio(b"".join(burst))
            sent_s += sink.frame_seconds * len(burst)
            while self.on_first_frame:
                future = self.on_first_frame.pop()
                if not future.done():
                    future.set_result(now)
