"""One phone call: greet, listen, understand, decide, speak — until the call is transferred or ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from callbot.call.handover import failover_outcome, sync_waiting, transfer_outcome, webhook_transfer
from callbot.call.listener import Listener, ListenerEvent, RecognitionFailed
from callbot.call.message import MessageTaker, finish_message, start_message
from callbot.call.player import LineSink, Player
from callbot.call.turn_log import TurnLog
from callbot.errors import CallbotError, NluUnavailableError, SpeechEngineError, StorageError
from callbot.frames import LINE_RATE as SAMPLE_RATE
from callbot.frames import DtmfIn, HangUp, StreamStart, TranscriptFinal, TranscriptPartial
from callbot.mailbox.recording import beep
from callbot.resources import Resources
from callbot.stats import counters, record
from callbot.storage.call_store import CallOutcome, TurnRecord
from nlu.understanding import understand
from routing.actions import OVERFLOW_REASONS
from routing.decision import (
    ENDS_CALL,
    CallerEvent,
    CallState,
    Context,
    Decision,
    Hangup,
    Heard,
    NluDown,
    Overflow,
    Pressed,
    Silence,
    SpeechLost,
    Transfer,
    decide,
)

log = logging.getLogger(__name__)
DECISION_WRITE_S = 1.0
"""The longest the hand-back of a decided call waits for the database."""
DECISION_ATTEMPTS = 3
"""Decisions taken again when the chosen queue filled on another instance; the last one places the call."""

SessionEvent = ListenerEvent | DtmfIn | HangUp


class CallLog(logging.LoggerAdapter[logging.Logger]):
    """Every log line of a call carries its call id."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        call_id = self.extra["call_id"] if self.extra else "?"
        kwargs.setdefault("extra", {})["call_id"] = call_id  # a field of its own in JSON logs
        return f"[call {call_id}] {msg}", kwargs


class CallSession:
    def __init__(self, call_id: str, resources: Resources, sink: LineSink) -> None:
        self.call_id = call_id
        self.res = resources
        self.bot = resources.bot
        self.sink = sink
        self.log = CallLog(log, {"call_id": call_id})
        self.player = Player(sink)
        self.turns = TurnLog(resources.store, call_id, self.log)
        self.state = CallState()
        self.outcome: CallOutcome | None = None
        self.ended = asyncio.Event()
        """The bot has decided how the call ends (the stream is about to be handed back)."""
        self.closed = asyncio.Event()
        """Every stage has stopped and the outcome is stored."""
        self.line_dropped = False
        """Whether the call ended because the line went (the caller hung up, or the media was lost), not the bot."""
        self.lost: str | None = None
        """Why the media stream broke (not the caller hanging up): with no decision yet, none is stored, so that
        whoever carries the call on hands the caller to a human."""
        self.first_audio_ms: float | None = None
        self.degraded: list[str] = []
        self._events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self._listener: Listener | None = None
        self._dialogue: asyncio.Task[None] | None = None
        self._caller_speaking = False
        self._speech_gen = 0
        self._started_at = 0.0
        self._early_audio: list[bytes] = []
        self._hung_up = asyncio.Event()
        self._message: MessageTaker | None = None
        self._called = ""
        self.counted = True
        """Whether the call counts in the dashboard's figures (not the console's test calls)."""
        self._wall_start = datetime.now(UTC)
        self._mailbox_reason: str | None = None
        """Set when the provider opened this stream only to take a message (a transfer that failed...)."""
        self.transport: str | None = None
        self.line: str | None = None
        """The line's codec and rate (``ulaw/8000``...), recorded with the call."""

    # --- fed by the telephony adapter ------------------------------------------------------------------

    async def start(self, stream: StreamStart) -> None:
        self._started_at = time.monotonic()
        self.state = CallState(caller=stream.custom.get("caller", ""))
        self._called = stream.custom.get("called", "")
        if stream.custom.get("mode") == "mailbox":
            reason = stream.custom.get("reason", "no_agent")
            self._mailbox_reason = reason if reason in OVERFLOW_REASONS else "no_agent"
        if self.res.tts is None:
            self.degraded.append("tts")
        # greet first: the caller hears the bot while the recogniser is being created
        self.player.start()
        self._dialogue = asyncio.create_task(self._run_dialogue(), name=f"dialogue-{self.call_id}")
        if self.res.asr is not None:
            loop = asyncio.get_running_loop()
            recognizer = await loop.run_in_executor(self.res.asr_pool, self.res.asr.recognizer, 8000)
            self._listener = Listener(recognizer, self._events.put_nowait, self.log)
            self._listener.start()
        else:
            self.degraded.append("asr")
        try:
            await self.res.store.mark_started(
                self.call_id, self.degraded, self.transport, self.line, self.res.settings.instance
            )
        except StorageError as exc:
            self.log.warning("could not mark the call started: %s", exc)
        self.log.info("stream %s started (degraded: %s)", stream.stream_id, self.degraded or "no")

    def feed_audio(self, pcm: bytes) -> None:
        if self._message is not None:
            self._message.feed(pcm)
            return
        if self._listener is not None:
            if self._early_audio:
                self._listener.feed(b"".join(self._early_audio))
                self._early_audio.clear()
            self._listener.feed(pcm)
        elif self.res.asr is not None and len(self._early_audio) < 500:  # up to 10 s while the recognizer gets ready
            self._early_audio.append(pcm)

    def dtmf(self, digit: str) -> None:
        if self._message is not None and self._message.key(digit):
            return
        self._events.put_nowait(DtmfIn(digit))

    def mark(self, name: str) -> None:
        self.player.mark_played(name)

    async def persist_decision(self) -> None:
        """Store the decision before the line is handed back, so that any instance sharing the database can
        carry it out; a slow or unavailable database delays the hand-back by at most a second (the decision is
        in this instance's memory too, and in the database when the call is completed)."""
        if self.outcome is None:
            return
        try:
            await asyncio.wait_for(self.res.store.record_decision(self.call_id, self.outcome), DECISION_WRITE_S)
        except (StorageError, TimeoutError) as exc:
            self.log.error("the decision could not be stored before the hand-back: %s", exc or "timed out")

    def lose_line(self, why: str) -> None:
        """The media stream broke under the call (a protocol violation, a message too large, a network cut)."""
        self.lost = why
        self.hang_up()

    def hang_up(self) -> None:
        self._hung_up.set()
        if self._message is not None:
            self._message.end("hangup")
        self._events.put_nowait(HangUp())

    async def close(self) -> CallOutcome | None:
        """Stop every stage and store the outcome (None: the stream broke before a decision); safe to call more
        than once."""
        if self._dialogue is not None and not self._dialogue.done():
            self.hang_up()
            # shielded: a closer that is itself cancelled (its connection's task torn down) must not cancel a
            # decision being taken (it may be waiting for the shared queue counts); the dialogue then finishes
            # on its own and publishes its decision
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._dialogue), timeout=5)
        if self._listener is not None:
            await self._listener.close()
            rec = self._listener.recognizer
            self.res.metrics.engine_cpu.labels(rec.engine).inc(rec.cpu_seconds)
            if rec.audio_seconds > 0:
                self.res.metrics.asr_rtf.observe(rec.cpu_seconds / rec.audio_seconds)
        await self.player.stop()
        if self.outcome is None and self.lost is not None:
            await self._close_lost()
            return None
        outcome = self.outcome or self._hangup_outcome()
        self.outcome = outcome
        self.res.outcomes[self.call_id] = outcome
        await self.turns.close()
        try:
            await self.res.store.finish_call(self.call_id, outcome, self.first_audio_ms, self.degraded)
        except StorageError as exc:
            self.log.error("outcome %s could not be stored: %s", outcome, exc)
        self.res.metrics.calls.labels(outcome.outcome).inc()
        if self.counted:
            await self._count(outcome)
        self.closed.set()
        return outcome

    async def _close_lost(self) -> None:
        """The stream broke before the bot decided: the call is stored ``interrupted`` with no outcome, which
        sends the caller to the failover queue or the mailbox (Twilio's action callback, ARI)."""
        self.log.warning("the media stream broke before a decision (%s); the call goes to a human", self.lost)
        self.res.metrics.stage_failures.labels("stream").inc()
        self.degraded = sorted({*self.degraded, "stream_lost"})
        await self.turns.close()
        try:
            await self.res.store.interrupt_call(self.call_id, self.first_audio_ms, self.degraded)
        except StorageError as exc:
            self.log.error("the interrupted call could not be stored: %s", exc)
        self.closed.set()

    async def _count(self, outcome: CallOutcome) -> None:
        counts = counters(outcome, self.turns.turns)
        try:
            await asyncio.to_thread(record, self.res.store.engine, self._wall_start, counts)
        except StorageError as exc:
            self.log.warning("the dashboard's counters miss this call (database unavailable): %s", exc)

    # --- the dialogue ----------------------------------------------------------------------------------

    async def _run_dialogue(self) -> None:
        try:
            if self._mailbox_reason is not None:
                await self._mailbox_only(self._mailbox_reason)
                return
            await self._greet()
            while self.outcome is None:
                event = await self._next_event()
                if isinstance(event, HangUp):
                    if self.lost is None:  # a broken stream is no decision of the caller's
                        self.outcome = self._hangup_outcome()
                    break
                caller_event, started = await self._understand(event)
                if caller_event is None:
                    continue
                decision, placed = await self._decide(caller_event)
                await self._carry_out(decision, started, placed)
        except Exception as exc:
            # whatever broke, the caller goes to a human (or the mailbox) rather than into silence
            self.log.exception("dialogue failed, handing the call over: %s", exc)
            self.res.metrics.stage_failures.labels("dialogue").inc()
            self.outcome = await failover_outcome(self.res, self.call_id, "dialogue_error")
        finally:
            self.line_dropped = self._hung_up.is_set()
            if self.outcome is not None:  # for the provider's callback, even if this call's closer was torn down
                self.res.outcomes[self.call_id] = self.outcome
            self.ended.set()

    async def _greet(self) -> None:
        text = self.bot.prompts.greeting
        if self.res.asr is None:
            text = f"{text} {self.bot.menus['main'].prompt}"
            self.state = CallState(caller=self.state.caller, menu="main")
        first = await self._speak(text)
        if first is not None:
            self.first_audio_ms = (first - self._started_at) * 1000
            self.res.metrics.first_audio.observe(first - self._started_at)
        self.turns.add(
            TurnRecord(
                "bot",
                text,
                action="greeting",
                decision={"rule": "greeting", "speech": self.res.asr is not None},
                latency_ms=self.first_audio_ms,
            )
        )

    async def _next_event(self) -> SessionEvent | Silence:
        quiet_since = time.monotonic()
        timeout = self.bot.dialogue.silence_timeout_s
        while True:
            try:
                event = await asyncio.wait_for(self._events.get(), timeout=0.25)
            except TimeoutError:
                now = time.monotonic()
                if self.player.speaking or self._caller_speaking:
                    quiet_since = now
                elif now - quiet_since >= timeout:
                    return Silence()
                continue
            if isinstance(event, TranscriptPartial):
                self._caller_speaking = True
                if self.player.speaking:
                    await self._barge_in(f"caller speaks: {event.text!r}")
                continue
            if isinstance(event, TranscriptFinal) and not event.text:
                self._caller_speaking = False
                quiet_since = time.monotonic()
                continue
            return event

    async def _barge_in(self, why: str) -> None:
        self._speech_gen += 1
        await self.player.clear()
        self.log.info("barge-in (%s)", why)

    async def _understand(self, event: SessionEvent | Silence) -> tuple[CallerEvent | None, float]:
        started = time.monotonic()
        if isinstance(event, Silence):
            self.turns.add(TurnRecord("caller", "", action="silence"))
            return event, started
        if isinstance(event, DtmfIn):
            if self.player.speaking:
                await self._barge_in(f"key {event.digit}")
            self.turns.add(TurnRecord("dtmf", event.digit))
            return Pressed(event.digit), started
        if isinstance(event, RecognitionFailed):
            self.res.metrics.stage_failures.labels("asr").inc()
            self.degraded.append("asr")
            return SpeechLost(event.error), started
        if isinstance(event, TranscriptFinal):
            self._caller_speaking = False
            return await self._parse(event), started
        return None, started

    async def _parse(self, final: TranscriptFinal) -> CallerEvent:
        try:
            nlu = await understand(self.res.nlu, final.text, self.bot.language, self.res.folder.timezone)
        except NluUnavailableError as exc:
            self.log.warning("NLU unavailable for %r: %s", final.text, exc)
            self.res.metrics.stage_failures.labels("nlu").inc()
            self.turns.add(TurnRecord("caller", final.text, decision={"nlu_error": str(exc)}))
            return NluDown(final.text, str(exc))
        except CallbotError as exc:
            self.log.error("NLU answered badly for %r: %s", final.text, exc)
            self.turns.add(TurnRecord("caller", final.text, decision={"nlu_error": str(exc)}))
            return NluDown(final.text, str(exc))
        self.turns.add(
            TurnRecord(
                "caller",
                final.text,
                intent=nlu.intent,
                confidence=nlu.confidence,
                entities=nlu.entity_map,
                decision={
                    "nlu_text": nlu.text,
                    "ranking": [[name, round(conf, 4)] for name, conf in nlu.ranking[:3]],
                    "words": [[w.word, w.start, w.end, w.conf] for w in final.words],
                },
            )
        )
        return Heard(nlu)

    def _context(self) -> Context:
        return Context(self.bot, self.res.folder.router, datetime.now(UTC), self.res.live.snapshot())

    async def _decide(self, caller_event: CallerEvent) -> tuple[Decision, CallOutcome | None]:
        """The dialogue's decision on the waiting counts of every instance (as followed in the background), and
        for a transfer the call's place in the queue, taken atomically on the current count: a queue that filled
        on another instance meanwhile makes the bot decide again on fresh counts."""
        for attempt in range(1, DECISION_ATTEMPTS + 1):
            if attempt > 1:  # the first decision uses the counts followed every 2 s; the place is checked anyway
                await sync_waiting(self.res)
            decision, state = decide(caller_event, self.state, self._context())
            placed = None
            if (
                isinstance(decision, Transfer)
                and self.res.folder.routing.queues[decision.queue].target.type != "webhook"
            ):
                last = attempt == DECISION_ATTEMPTS
                placed = await transfer_outcome(decision, self.res, self.call_id, bounded=not last)
                if placed is None:
                    self.log.info("queue %s filled meanwhile, deciding again", decision.queue)
                    continue
            self.state = state
            return decision, placed
        raise AssertionError("the last attempt always places the call")

    async def _carry_out(self, decision: Decision, started: float, placed: CallOutcome | None) -> None:
        # the reasons may hold what the caller said (entities, words): only the rule at INFO
        self.log.info("decision %s (rule %s)", decision.action, decision.why.get("rule"))
        self.log.debug("decision %s: %s", decision.action, decision.why)
        handoff: asyncio.Task[CallOutcome | Overflow] | None = None
        if isinstance(decision, Transfer):
            if placed is None:
                # a webhook target: the hand-off request runs while the caller hears the announcement
                handoff = asyncio.create_task(
                    webhook_transfer(decision, self.res, self.call_id, self.state.caller, self.turns.turns, self.log)
                )
            else:
                self.outcome = placed
        elif isinstance(decision, Overflow):
            self.outcome = CallOutcome("overflow", reason=decision.reason)
        elif isinstance(decision, Hangup):
            self.outcome = self._hangup_outcome()
        await self._say_decision(decision, started)
        if handoff is not None:
            handed = await handoff
            if isinstance(handed, Overflow):
                self.outcome = CallOutcome("overflow", reason=handed.reason)
                await self._say_decision(handed, time.monotonic())
                decision = handed
            else:
                self.outcome = handed
        if isinstance(decision, Overflow):
            await self._take_message(decision.reason)
        elif isinstance(decision, ENDS_CALL):
            # let the announcement play out before the provider takes the call over (unless the caller left)
            await self._until_played(timeout=30)

    async def _mailbox_only(self, reason: str) -> None:
        """A stream opened only to take a message: the prompt (unless the provider said it), the beep, the message."""
        self.outcome = CallOutcome("overflow", reason=reason)
        if self.res.tts is not None:
            why = {"rule": "mailbox_stream", "reason": reason}
            await self._say_decision(Overflow(reason, self.bot.overflow_prompt(reason), why), time.monotonic())
        await self._take_message(reason)

    async def _take_message(self, reason: str) -> None:
        """After the overflow prompt: the beep, the caller's message to disk and to the mailbox, the thanks."""
        if not self._hung_up.is_set():
            # the beep follows the prompt without a gap: the caller hears one "prompt, beep", then speaks
            self.player.enqueue(self.sink.to_line(beep(), SAMPLE_RATE))
            self.player.end_of_utterance()
        taker = await start_message(self.res, self.call_id, self.state.caller, self._called, reason, self.log)
        self._message = taker  # from here on, the caller's audio goes to the message (its last second, until armed)
        await self._until_played(timeout=90)
        taker.arm()
        if self._hung_up.is_set():
            taker.end("hangup")
        try:
            ended_by = await taker.wait()
        finally:
            self._message = None
            await finish_message(self.res, taker, self.log)
        details = {"item_id": taker.recording.meta.item_id, "duration_s": round(taker.recording.duration_s, 2)}
        self.turns.add(TurnRecord("caller", "", action="message", decision={**details, "ended_by": ended_by}))
        if not self._hung_up.is_set():
            first = await self._speak(self.bot.prompts.message_saved)
            self.turns.add(TurnRecord("bot", self.bot.prompts.message_saved, action="message_saved"))
            if first is not None:
                await self._until_played(timeout=30)

    async def _until_played(self, timeout: float) -> None:
        idle = asyncio.create_task(self.player.wait_idle(timeout))
        gone = asyncio.create_task(self._hung_up.wait())
        _, pending = await asyncio.wait({idle, gone}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    async def _say_decision(self, decision: Decision, started: float) -> None:
        first = await self._speak(decision.text)
        latency_ms = (first - started) * 1000 if first is not None else None
        if latency_ms is not None:
            self.res.metrics.turn_latency.observe(latency_ms / 1000)
        self.turns.add(
            TurnRecord("bot", decision.text, action=decision.action, decision=decision.why, latency_ms=latency_ms)
        )

    async def _speak(self, text: str) -> float | None:
        """Synthesize and queue ``text``; the monotonic time of its first frame, or None if none was sent."""
        tts = self.res.tts
        if tts is None:
            return None
        generation = self._speech_gen
        cpu_before = tts.cpu_seconds
        first = self.player.first_frame()
        loop = asyncio.get_running_loop()
        cached = self._line_audio(text)
        chunks: Iterator[bytes | None] = iter(()) if cached is not None else tts.speak(text)
        for chunk in cached or ():  # fixed prompts: no synthesis, no thread hop, no resampling
            self.player.enqueue(chunk)
        try:
            while generation == self._speech_gen:
                next_chunk = await loop.run_in_executor(self.res.tts_pool, next, chunks, None)
                if next_chunk is None or generation != self._speech_gen:
                    break
                self.player.enqueue(self.sink.to_line(next_chunk, tts.sample_rate))
        except SpeechEngineError as exc:
            self.log.error("speech synthesis failed: %s", exc)
            self.res.metrics.stage_failures.labels("tts").inc()
            if self.outcome is None:
                self.outcome = await failover_outcome(self.res, self.call_id, "tts_error")
        self.player.end_of_utterance()
        self.res.metrics.engine_cpu.labels("piper").inc(max(tts.cpu_seconds - cpu_before, 0.0))
        try:
            return await asyncio.wait_for(asyncio.shield(first), timeout=2.0)
        except TimeoutError:
            return None

    def _line_audio(self, text: str) -> tuple[bytes, ...] | None:
        """A cached prompt in this line's format, converted once per line format rather than once per call."""
        tts = self.res.tts
        assert tts is not None
        key = (text, self.line or "")
        converted = self.res.line_audio.get(key)
        if converted is not None:
            tts.cached(text)  # counted as a hit, and kept fresh in the voice's cache
            return converted
        cached = tts.cached(text)
        if cached is None:
            return None
        converted = tuple(self.sink.to_line(chunk, tts.sample_rate) for chunk in cached)
        if self.line:
            self.res.line_audio[key] = converted
        return converted

    def _hangup_outcome(self) -> CallOutcome:
        return CallOutcome("answered" if self.state.answered else "hangup")
