"""The AudioSocket listener: Asterisk connects over TCP (the ``AudioSocket()`` application, the ``AudioSocket``
channel driver, or an ARI external-media channel), each connection is one call run by the shared media loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from callbot.call.line import WireMessage
from callbot.call.stream import Identified, Identify, Refused, run_stream
from callbot.errors import ConfigError, StorageError
from callbot.frames import StreamStart
from callbot.resources import Resources
from telephony.audiosocket_codec import AudioSocketCodec

log = logging.getLogger(__name__)

READ_BYTES = 65536
TICK_S = 0.25
"""How often an idle connection's codec hears the clock (a UUID without audio starts the call after a tick)."""
UUID_TIMEOUT_S = 5.0
"""A connection that has not said which call it carries by then is closed."""
WRITE_BUFFER_LIMIT = 64 * 1024


class TcpPipe:
    """A TCP connection as a media stream's pipe; receive() returns b"" on each clock tick with nothing to read."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._opened = time.monotonic()
        self.received = 0
        self.lost: str | None = None
        self.ticking = True
        """Until the call starts, an idle read returns b"" every TICK_S: the codec hears the clock."""

    async def receive(self) -> WireMessage | None:
        try:
            if self.ticking:
                data = await asyncio.wait_for(self._reader.read(READ_BYTES), TICK_S)
            else:  # the call has started: no clock needed, and no timer for each 20 ms frame
                data = await self._reader.read(READ_BYTES)
        except TimeoutError:
            if self.received < 19 and time.monotonic() - self._opened > UUID_TIMEOUT_S:
                log.warning("AudioSocket connection closed: no UUID within %.0f s", UUID_TIMEOUT_S)
                return None
            return b""
        except (ConnectionResetError, BrokenPipeError):
            # Asterisk hangs up by closing the connection; the audio we kept sending meanwhile makes its kernel
            # answer with a reset, which a busy reader sees before the close itself: still the caller's hang-up
            # (with ARI, the channel tells whether the caller is really gone)
            log.info("AudioSocket connection reset by the peer after %d bytes: taken as its hang-up", self.received)
            return None
        except (ConnectionError, OSError) as exc:
            self.lost = f"the TCP connection broke: {exc.__class__.__name__}"
            return None
        if not data:
            return None
        self.received += len(data)
        return data

    async def send(self, message: WireMessage) -> None:
        if self._writer.is_closing():
            return
        self._writer.write(message if isinstance(message, bytes) else message.encode())
        if self._writer.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.drain()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._writer.is_closing():
            return
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.drain()
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), 2)


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9092`` for IPv6) from CALLBOT_AUDIOSOCKET_LISTEN."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"CALLBOT_AUDIOSOCKET_LISTEN={value!r}: expected host:port, e.g. 127.0.0.1:9092")
    return host.strip("[]") or "0.0.0.0", int(port)


async def serve_audiosocket(resources: Resources) -> asyncio.Server:
    """Listen where the settings say; each connection runs until its call ends."""
    assert resources.settings.audiosocket_listen is not None
    host, port = parse_listen(resources.settings.audiosocket_listen)

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        label = f"audiosocket {peer[0]}:{peer[1]}" if peer else "audiosocket"
        pipe = TcpPipe(reader, writer)
        identify = _identify(resources)

        async def started(start: StreamStart) -> Identified:
            pipe.ticking = False
            return await identify(start)

        try:
            await run_stream(pipe, AudioSocketCodec(), resources, started, label=label)
        except Exception:
            log.exception("AudioSocket connection from %s failed", label)

    server = await asyncio.start_server(connection, host, port, reuse_address=True)
    log.info("AudioSocket calls accepted on %s:%d", host, port)
    return server


def _identify(resources: Resources) -> Identify:
    async def identify(start: StreamStart) -> Identified:
        """The call an ARI channel set up for this UUID, or a new call (the dialplan's AudioSocket())."""
        call_id = start.stream_id.replace("-", "")
        expected = resources.expected_streams.pop(call_id, None)
        if expected is not None:  # set up through ARI moments ago (each stream it sets up is used once)
            return call_id, expected
        try:
            known = await resources.store.call_exists(call_id)
        except StorageError as exc:
            log.error("[call %s] database unavailable at call start: %s", call_id, exc)
            return call_id, {}  # the caller is answered all the same; the turns wait for the database
        if known:
            # a call's media is one connection: a UUID seen before is a replay or a dialplan reusing it
            raise Refused(f"UUID {start.stream_id} already had its media stream")
        if resources.settings.audiosocket_known_calls_only:
            raise Refused(f"UUID {start.stream_id} is not a call set up through ARI")
        if resources.draining:  # the dialplan goes on after AudioSocket(): the centre's own fallback
            raise Refused("this instance is draining (stopping): no new call")
        try:
            await resources.store.create_call(
                call_id,
                provider="asterisk",
                provider_call_id=start.stream_id,
                from_number="",
                to_number="",
                bot=resources.bot.name[:64],
                language=resources.bot.language,
            )
        except StorageError as exc:
            log.error("[call %s] call record not created (database unavailable): %s", call_id, exc)
        return call_id, {}

    return identify
