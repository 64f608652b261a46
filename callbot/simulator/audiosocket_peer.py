"""Asterisk's side of an AudioSocket call, written from the protocol (``res/res_audiosocket.c``,
``apps/app_audiosocket.c``, ``channels/chan_audiosocket.c``) and what a real Asterisk 22.10 was seen doing:

- it connects over TCP and first sends the call's UUID (kind 0x01, 16 raw bytes, 19 bytes in one write);
- then the caller's audio in real time: kind 0x10, 320-byte 20 ms frames of 8 kHz signed linear (the application),
  or kind 0x12, 640-byte frames at 16 kHz (the channel driver with ``c(slin16)``); DTMF as kind 0x03, one digit;
  every message in one write;
- it hangs up by closing the connection (it never sends 0x00);
- from the server it accepts only audio kinds and 0x00 (the application returns, the dialplan goes on); any other
  kind, or an empty audio message, ends the application with an error;
- with no frame in either direction for 2 s it gives up ("Reached timeout after 2000 ms of no activity").
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING

from callbot.simulator.caller import Playback
from callbot.simulator.report import CallReport
from telephony.audiosocket_codec import AUDIO_KINDS, KIND_DTMF, KIND_HANGUP, KIND_OF_RATE, KIND_UUID, message
from telephony.resample import StreamResampler

if TYPE_CHECKING:
    from callbot.simulator import SimulatedCall

INACTIVITY_S = 2.0
LINE_RATES = {"": 8000, "slin": 8000, "slin16": 16000}


class AudioSocketLine:
    marks = False

    def __init__(
        self, report: CallReport, address: str, call: SimulatedCall, *, call_uuid: uuid.UUID | None = None
    ) -> None:
        self.report, self.address = report, address
        self.dtx = call.dtx
        self.rate = LINE_RATES.get(call.line_format, 8000)
        self.call_uuid = call_uuid or uuid.uuid4()
        self.dtmf_on_socket = True
        """False when ARI carries the caller's keys (chan_audiosocket passes none to its socket)."""
        self.started_at = time.monotonic()
        self._writer: asyncio.StreamWriter | None = None
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._last_frame = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self._up = StreamResampler(8000, self.rate)
        self._down: dict[int, StreamResampler] = {}

    async def connect(self, playback: Playback) -> None:
        host, _, port = self.address.rpartition(":")
        reader, self._writer = await asyncio.open_connection(host.strip("[]"), int(port))
        self.report.call_id = self.report.call_id or self.call_uuid.hex
        self._write(message(KIND_UUID, self.call_uuid.bytes))
        self.started_at = time.monotonic()
        self._tasks = [
            asyncio.create_task(self._receive(reader, playback)),
            asyncio.create_task(self._watch_inactivity()),
        ]

    async def _receive(self, reader: asyncio.StreamReader, playback: Playback) -> None:
        buffer = bytearray()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    self.report.asterisk.setdefault("closed_by", "callbot")
                    return
                buffer += data
                while len(buffer) >= 3:
                    kind, length = buffer[0], int.from_bytes(buffer[1:3], "big")
                    if len(buffer) < 3 + length:
                        break
                    payload = bytes(buffer[3 : 3 + length])
                    del buffer[: 3 + length]
                    if not self._from_server(kind, payload, playback):
                        return
        except (ConnectionError, OSError):
            return
        finally:
            self._close()

    def _from_server(self, kind: int, payload: bytes, playback: Playback) -> bool:
        """One message from callbot, as Asterisk takes it; False when it ends the call."""
        self._last_frame = time.monotonic()
        if kind == KIND_HANGUP:
            self.report.asterisk["hangup_by"] = "callbot"  # the application returns: the dialplan goes on
            return False
        if kind not in AUDIO_KINDS or not payload:
            self.report.peer_errors.append(
                f"kind 0x{kind:02x} with {len(payload)} bytes: Asterisk's AudioSocket() fails and hangs up"
            )
            return False
        rate = AUDIO_KINDS[kind]
        if rate != 8000:
            down = self._down.setdefault(rate, StreamResampler(rate, 8000))
            payload = down(payload)
        playback.audio(payload)
        return True

    async def _watch_inactivity(self) -> None:
        while not self._closed.done():
            await asyncio.sleep(0.1)
            if time.monotonic() - self._last_frame > INACTIVITY_S:
                self.report.peer_errors.append("Reached timeout after 2000 ms of no activity on AudioSocket")
                self._close()
                return

    async def send_audio(self, pcm: bytes) -> None:
        frame = pcm if self.rate == 8000 else self._up(pcm)
        if frame:
            self._write(message(KIND_OF_RATE[self.rate], frame))

    async def send_dtmf(self, digit: str) -> None:
        if self.dtmf_on_socket:
            self._write(message(KIND_DTMF, digit.encode("ascii")))

    def mark_played(self, name: str) -> None:
        return None

    async def hang_up(self) -> None:
        self.report.asterisk.setdefault("closed_by", "caller")
        self._close()

    def closed(self) -> asyncio.Future[None]:
        return self._closed

    async def close_media(self) -> None:
        """Asterisk hung the AudioSocket channel up: it closes the socket."""
        self._close()

    async def finish(self) -> None:
        self._close()
        for task in self._tasks:
            task.cancel()

    def _write(self, data: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)
            self._last_frame = time.monotonic()

    def _close(self) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.close()
        if not self._closed.done():
            self._closed.set_result(None)
