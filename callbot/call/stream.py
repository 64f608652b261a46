"""The one media loop: a transport's wire messages in, frames to the call session, the bot's audio out.

Every transport (Twilio Media Streams, the console's softphone, Asterisk AudioSocket and chan_websocket) is a
codec and a pipe run by ``run_stream``; they share one bad-input policy (each rejected message is logged and
counted, the call goes on; a peer that keeps sending junk is disconnected), one way of publishing the call's
decision before the line is handed back, and the same accounting of active calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from callbot.call.line import FlowControl, LineCodec, Pipe, Rejected
from callbot.call.session import CallLog, CallSession
from callbot.errors import CallbotError, ProtocolError
from callbot.frames import AudioIn, DtmfIn, HangUp, MarkIn, StreamStart
from callbot.logs import CALL_ID
from callbot.resources import Resources
from callbot.storage.call_store import CallOutcome

log = logging.getLogger(__name__)

MAX_PROTOCOL_ERRORS = 50
"""A peer that keeps sending broken messages is disconnected after this many; each one is logged."""
MAX_UNSTARTED_MESSAGES = 500
"""Messages accepted before the stream says which call it carries (10 s of 20 ms audio frames)."""

NORMAL_CLOSURE = 1000
POLICY_VIOLATION = 1008


class Refused(CallbotError):
    """The stream names a call we will not take (unknown, already streaming, not signed...)."""


Identified = tuple[str, dict[str, str]]
"""The call a stream carries, and what is known of it besides what the stream said (``caller``, ``called``,
``mode``...), merged into the start's parameters."""
Identify = Callable[[StreamStart], Awaitable[Identified]]
"""From the stream's start to the call it carries (creating the call record if need be), or Refused."""


class CodecSink:
    """The player's view of a line: frames, marks and clear encoded by the codec and sent down the pipe, paused
    while the peer asks for flow control."""

    def __init__(self, pipe: Pipe, codec: LineCodec) -> None:
        self._pipe = pipe
        self._codec = codec
        self._flowing = asyncio.Event()
        self._flowing.set()

    @property
    def frame_bytes(self) -> int:
        return self._codec.line.frame_bytes

    @property
    def frame_seconds(self) -> float:
        return self._codec.line.frame_seconds

    @property
    def echoes_marks(self) -> bool:
        return self._codec.echoes_marks

    @property
    def keepalive(self) -> bool:
        return self._codec.needs_keepalive

    @property
    def silence(self) -> bytes:
        return self._codec.line.silence

    @property
    def frames_per_message(self) -> int:
        return self._codec.frames_per_message

    @property
    def lead_s(self) -> float:
        return self._codec.lead_s

    def to_line(self, pcm: bytes, sample_rate: int) -> bytes:
        return self._codec.to_line(pcm, sample_rate)

    def pause(self, paused: bool) -> None:
        if paused:
            self._flowing.clear()
        else:
            self._flowing.set()

    async def send_audio(self, frame: bytes) -> None:
        if not self._flowing.is_set():
            await self._flowing.wait()
        await self._pipe.send(self._codec.audio(frame))

    async def send_mark(self, name: str) -> None:
        await self._send(self._codec.mark(name))

    async def send_clear(self) -> None:
        await self._send(self._codec.clear())

    async def _send(self, message: str | bytes | None) -> None:
        if message is not None:
            await self._pipe.send(message)


@dataclass
class Stream:
    """One media stream being run."""

    pipe: Pipe
    codec: LineCodec
    resources: Resources
    log: CallLog
    sink: CodecSink
    identify: Identify
    setup: Callable[[CallSession], None] | None
    session: CallSession | None = None
    closer: asyncio.Task[None] | None = None
    errors: int = 0
    sent_away: str | None = None
    """Why we closed the stream on the peer (a protocol violation): the call did not end, its stream broke."""


async def run_stream(
    pipe: Pipe,
    codec: LineCodec,
    resources: Resources,
    identify: Identify,
    *,
    start: StreamStart | None = None,
    setup: Callable[[CallSession], None] | None = None,
    label: str = "?",
) -> CallOutcome | None:
    """Run one media stream until the call ends; the call's outcome (None when no call started on it).

    ``start`` starts the call at once (a transport whose peer sends no start message); otherwise the codec's
    first ``StreamStart`` does, and ``identify`` says which call it is (or refuses it). ``setup`` adjusts the
    session before it starts. ``label`` names the stream in logs until the call is known.
    """
    stream = Stream(pipe, codec, resources, CallLog(log, {"call_id": label}), CodecSink(pipe, codec), identify, setup)
    try:
        if start is None or await _open(stream, start):
            await _receive(stream)
    finally:
        outcome = await _finish(stream)
    return outcome


async def _receive(stream: Stream) -> None:
    """Until the peer leaves (or is sent away): each wire message decoded, each frame to the session."""
    unstarted = 0
    while True:
        message = await stream.pipe.receive()
        if message is None:
            return
        try:
            frames = stream.codec.decode(message)
        except ProtocolError as exc:
            frames = [Rejected(str(exc))]
        for frame in frames:
            session = stream.session
            if isinstance(frame, Rejected):
                if not await _reject(stream, frame.reason):
                    return
            elif isinstance(frame, StreamStart):
                if session is not None:
                    stream.log.warning("duplicate start of the stream ignored")
                elif not await _open(stream, frame):
                    return
            elif session is None:
                unstarted += 1
                if not await _reject(stream, f"{type(frame).__name__} before the stream started"):
                    return
                if unstarted >= MAX_UNSTARTED_MESSAGES:
                    stream.log.warning("stream closed: no start after %d messages", unstarted)
                    await _send_away(stream, "the stream never started")
                    return
            elif isinstance(frame, AudioIn):
                session.feed_audio(frame.pcm)
            elif isinstance(frame, DtmfIn):
                session.dtmf(frame.digit)
            elif isinstance(frame, MarkIn):
                session.mark(frame.name)
            elif isinstance(frame, FlowControl):
                stream.sink.pause(frame.paused)
            elif isinstance(frame, HangUp):
                return


async def _open(stream: Stream, start: StreamStart) -> bool:
    """Start the call the stream carries; False (the stream closed) when it is refused."""
    resources = stream.resources
    try:
        call_id, details = await stream.identify(start)
        if call_id in resources.active_calls:
            raise Refused("a media stream is already open for this call")
    except Refused as exc:
        stream.log.warning("media stream refused: %s", exc)
        resources.metrics.protocol_errors.labels(stream.codec.transport).inc()
        await stream.pipe.close(POLICY_VIOLATION, str(exc)[:120])
        return False
    stream.log = CallLog(log, {"call_id": call_id})
    CALL_ID.set(call_id)  # every line logged for this stream from now on, and by the tasks it starts
    session = CallSession(call_id, resources, stream.sink)
    session.transport, session.line = stream.codec.transport, stream.codec.line.describe()
    if stream.setup is not None:
        stream.setup(session)
    resources.active_calls[call_id] = session
    resources.metrics.active_calls.inc()
    stream.session = session
    if details:
        start = replace(start, custom={**start.custom, **details})
    await session.start(start)
    stream.closer = asyncio.create_task(_close_when_ended(stream), name=f"close-{call_id}")
    return True


async def _reject(stream: Stream, reason: str) -> bool:
    """Log and count one rejected message; False once the peer has spent its error budget (stream closed)."""
    stream.errors += 1
    stream.resources.metrics.protocol_errors.labels(stream.codec.transport).inc()
    stream.log.warning(
        "rejected media stream message (%d/%d, %s): %s",
        stream.errors,
        MAX_PROTOCOL_ERRORS,
        stream.codec.transport,
        reason[:300],
    )
    if stream.errors < MAX_PROTOCOL_ERRORS:
        return True
    await _send_away(stream, "too many invalid messages")
    return False


async def _send_away(stream: Stream, why: str) -> None:
    stream.sent_away = why
    await stream.pipe.close(POLICY_VIOLATION, why)


async def _close_when_ended(stream: Stream) -> None:
    """The bot decided (transfer, message taken, goodbye): publish the decision, then hand the line back."""
    session = stream.session
    assert session is not None
    await session.ended.wait()
    if session.outcome is not None:
        # published in memory first: this instance carries out what its own peer hands back (ARI, Asterisk's
        # dialplan after the goodbye)
        stream.resources.outcomes[session.call_id] = session.outcome
    goodbye = stream.codec.hangup(session.outcome)
    if goodbye is not None:
        await stream.pipe.send(goodbye)
    # and in the database before the connection closes: a provider whose callback may reach another instance
    # (Twilio's <Connect action>) sends it once the stream has closed
    await session.persist_decision()
    await stream.pipe.close(NORMAL_CLOSURE)


async def _finish(stream: Stream) -> CallOutcome | None:
    """The peer is gone (or was sent away): stop the call's stages and store its outcome."""
    if stream.closer is not None:
        stream.closer.cancel()
    session = stream.session
    if session is None:
        await stream.pipe.close(NORMAL_CLOSURE)
        return None
    lost = stream.sent_away or stream.pipe.lost
    if lost is not None:
        session.lose_line(lost)  # the caller is still there: without a decision, a human takes the call
    else:
        session.hang_up()
    outcome = await session.close()
    resources = stream.resources
    resources.active_calls.pop(session.call_id, None)
    resources.metrics.active_calls.dec()
    stream.log.info("media stream closed, outcome %s", outcome)
    await stream.pipe.close(NORMAL_CLOSURE)
    return outcome
