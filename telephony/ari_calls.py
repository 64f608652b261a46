"""Calls on Asterisk, controlled through ARI: the dialplan sends a call to the ``Stasis(callbot)`` application;
we answer it, record the call (caller and called number), bridge it with an external-media channel that carries
its audio to the media loop (AudioSocket or chan_websocket), and when the bot has decided, carry the decision
out on the caller's channel — continue in the dialplan to a queue, an extension or a dial, or hang up. The mailbox
stays ours: a message is taken on the same media before the channel is let go.

Whatever fails (media that never connects, a stream lost without a decision), the caller's channel goes back to
the dialplan after ``Stasis()`` — the centre's own fallback — rather than into silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from callbot.call.handover import failover_outcome
from callbot.call.outcome import CallOutcome
from callbot.call.session import CallSession
from callbot.call.stream import Identified
from callbot.call.turn_log import last_intent
from callbot.errors import StorageError
from callbot.frames import StreamStart
from callbot.resources import Component, Resources
from telephony.ari_client import AriClient, AriError
from telephony.asterisk_targets import dialplan_place, transfer_variables
from telephony.chan_websocket_media import connect_media

log = logging.getLogger(__name__)

MEDIA_PREFIX = "callbot-media-"
"""Our external-media channels' ids: their own StasisStart is not a caller's."""
GONE_EVENTS = frozenset({"StasisEnd", "ChannelDestroyed", "ChannelHangupRequest"})


@dataclass
class AriCall:
    call_id: str
    channel_id: str
    media: str
    caller: str = ""
    bridge_id: str = ""
    media_channel_id: str = ""
    intent: str = ""
    """The last request the bot understood (the dialplan and the agent's whisper get it)."""
    media_connected: bool = False
    gone: asyncio.Event = field(default_factory=asyncio.Event)


class AriCalls:
    """The ``callbot`` Stasis application."""

    def __init__(self, resources: Resources, client: AriClient) -> None:
        self.res = resources
        self.ari = client
        self.calls: dict[str, AriCall] = {}
        """By the caller's channel id."""
        self.connected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def _state(self, connected: bool, detail: str) -> None:
        self.res.health["ari"] = Component("up" if connected else "unavailable", detail)
        if connected:
            self.connected.set()
        else:
            self.connected.clear()

    async def run(self) -> None:
        async for event in self.ari.events(self._state):
            try:
                self._dispatch(event)
            except Exception:
                log.exception("ARI event %s not handled", event.get("type"))

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        channel = event.get("channel")
        if not isinstance(channel, dict) or not isinstance(channel.get("id"), str):
            return
        channel_id = channel["id"]
        if kind == "StasisStart":
            if channel_id.startswith(MEDIA_PREFIX) or channel_id in self.calls:
                return
            args = event.get("args")
            self._spawn(self._handle(channel, [str(a) for a in args] if isinstance(args, list) else []))
        elif kind in GONE_EVENTS and channel_id in self.calls:
            call = self.calls[channel_id]
            if not call.gone.is_set():
                call.gone.set()
                session = self.res.active_calls.get(call.call_id)
                if session is not None:
                    session.hang_up()
        elif kind == "ChannelDtmfReceived" and channel_id in self.calls:
            call = self.calls[channel_id]
            session = self.res.active_calls.get(call.call_id)
            digit = event.get("digit")
            # chan_audiosocket passes no DTMF on to its socket: the caller's keys come from ARI's event instead
            if session is not None and call.media == "audiosocket" and isinstance(digit, str) and len(digit) == 1:
                session.dtmf(digit)

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, channel: dict[str, Any], args: list[str]) -> None:
        """One caller, from StasisStart to the channel leaving the application."""
        call_id = uuid.uuid4().hex
        media = args[0] if args and args[0] in ("audiosocket", "websocket") else self.res.settings.ari_media
        caller = str((channel.get("caller") or {}).get("number", ""))[:64]
        call = AriCall(call_id, channel["id"], media, caller)
        if self.res.draining:
            await self._back_to_dialplan(call, "draining")
            return
        self.calls[call.channel_id] = call
        called = str((channel.get("dialplan") or {}).get("exten", ""))[:64]
        details = {"caller": caller, "called": called}
        if "mailbox" in args:  # Stasis(callbot,mailbox,<reason>): a transfer that failed, back for a message
            reason = args[args.index("mailbox") + 1] if len(args) > args.index("mailbox") + 1 else "no_agent"
            details |= {"mode": "mailbox", "reason": reason}
        log.info("[call %s] Asterisk channel %s (%s media)", call_id, call.channel_id, media)
        log.debug("[call %s] from %s to %s", call_id, caller or "?", called or "?")
        try:
            await self._record(call, caller, called)
            await self.ari.answer(call.channel_id)
            outcome = await self._converse(call, details)
            if outcome is None and not call.gone.is_set():
                # no media, or a stream lost without a decision: a human, or a stream that only takes a message
                why = "stream_lost" if call.media_connected else "media_unavailable"
                outcome = await failover_outcome(self.res, call.call_id, why)
                log.warning("[call %s] no decision (%s): %s", call.call_id, why, outcome)
                if outcome.outcome == "overflow":
                    outcome = await self._converse(call, {**details, "mode": "mailbox", "reason": outcome.reason or ""})
            await self._carry_out(call, outcome)
        except AriError as exc:
            log.error("[call %s] ARI request failed: %s; handing the channel back to the dialplan", call_id, exc)
            await self._back_to_dialplan(call, "ari_error")
        finally:
            await self._release(call)
            self.calls.pop(call.channel_id, None)
            self.res.expected_streams.pop(call_id, None)

    async def _converse(self, call: AriCall, details: dict[str, str]) -> CallOutcome | None:
        """Attach the media and let the bot talk; the outcome once the stream has ended (None if it came to
        nothing: the caller left, the media never connected, the stream was lost undecided)."""
        await self._attach_media(call, details)
        session = await self._session(call)
        if session is None:
            return None
        call.media_connected = True
        # carried out as soon as the bot has decided: the media closes meanwhile, the caller waits for nothing
        decided = asyncio.ensure_future(session.ended.wait())
        closed = asyncio.ensure_future(session.closed.wait())
        await asyncio.wait({decided, closed}, return_when=asyncio.FIRST_COMPLETED)
        decided.cancel()
        closed.cancel()
        call.intent = last_intent(session.turns.turns) or call.intent
        if session.line_dropped and not call.gone.is_set():
            # the media went: the caller hanging up (ARI says so in a moment), or the media alone was lost
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.gone.wait(), 1.0)
            if not call.gone.is_set() and session.outcome is not None and session.outcome.outcome != "transfer":
                log.warning("[call %s] the media was lost while the caller is still there", call.call_id)
                return None
        return session.outcome

    async def _session(self, call: AriCall) -> CallSession | None:
        """The call's session once its media stream has started (None if the caller left or it never did)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.res.settings.ari_media_timeout_s
        while (session := self.res.active_calls.get(call.call_id)) is None:
            if call.gone.is_set():
                return None
            if loop.time() > deadline:
                log.error(
                    "[call %s] the external media did not connect within %.0f s",
                    call.call_id,
                    self.res.settings.ari_media_timeout_s,
                )
                return None
            await asyncio.sleep(0.05)
        return session

    async def _record(self, call: AriCall, caller: str, called: str) -> None:
        try:
            await self.res.store.create_call(
                call.call_id,
                provider="asterisk",
                provider_call_id=call.channel_id[:64],
                from_number=caller,
                to_number=called,
                bot=self.res.bot.name[:64],
                language=self.res.bot.language,
            )
        except StorageError as exc:
            log.error("[call %s] database unavailable at call start: %s", call.call_id, exc)

    async def _attach_media(self, call: AriCall, details: dict[str, str]) -> None:
        """A bridge with the caller and an external-media channel whose audio reaches our media loop."""
        settings = self.res.settings
        await self._release(call)  # a second attempt (a stream to take a message) starts afresh
        call.bridge_id = f"callbot-{call.call_id}"
        call.media_channel_id = f"{MEDIA_PREFIX}{call.call_id}"
        await self.ari.create_bridge(call.bridge_id)
        await self.ari.add_to_bridge(call.bridge_id, call.channel_id)
        self.res.expected_streams[call.call_id] = details
        if call.media == "audiosocket":
            address = settings.ari_audiosocket_address or settings.audiosocket_listen or ""
            params = {
                "external_host": address,
                "encapsulation": "audiosocket",
                "transport": "tcp",
                "format": settings.ari_media_format if settings.ari_media_format.startswith("slin") else "slin",
                "data": str(uuid.UUID(call.call_id)),
            }
            await self.ari.external_media(call.media_channel_id, params)
        else:
            params = {
                "external_host": "INCOMING",
                "encapsulation": "none",
                "transport": "websocket",
                "connection_type": "server",
                "format": settings.ari_media_format,
            }
            answer = await self.ari.external_media(call.media_channel_id, params)
            connection_id = str((answer.get("channelvars") or {}).get("MEDIA_WEBSOCKET_CONNECTION_ID", ""))
            if not connection_id:
                raise AriError("externalMedia answered without channelvars.MEDIA_WEBSOCKET_CONNECTION_ID")
            self._spawn(self._websocket_media(call, connection_id, details))
        await self.ari.add_to_bridge(call.bridge_id, call.media_channel_id)

    async def _websocket_media(self, call: AriCall, connection_id: str, details: dict[str, str]) -> None:
        async def identify(start: StreamStart) -> Identified:
            return call.call_id, details

        try:
            await connect_media(self.ari.media_url(connection_id), self.res, identify, call.call_id)
        except Exception as exc:
            log.error("[call %s] media WebSocket to Asterisk failed: %s", call.call_id, exc)

    async def _carry_out(self, call: AriCall, outcome: CallOutcome | None) -> None:
        await self._release(call)
        if call.gone.is_set():
            return
        if outcome is None:  # no media at all: the centre's dialplan takes the caller
            await self._back_to_dialplan(call, "media_unavailable")
        elif outcome.outcome == "transfer" and outcome.target is not None:
            variables = transfer_variables(call.call_id, outcome, self.res.folder.routing, call.intent, call.caller)
            await asyncio.gather(*(self.ari.set_variable(call.channel_id, k, v) for k, v in variables.items()))
            context, extension, priority = dialplan_place(outcome.target, self.res.settings.ari_transfer_context)
            await self.ari.continue_in_dialplan(call.channel_id, context, extension, priority)
            log.info("[call %s] continued in the dialplan at %s,%s,%s", call.call_id, context, extension, priority)
        else:  # answered, message taken, goodbye
            await self.ari.hangup(call.channel_id)
            log.info("[call %s] hung up (%s)", call.call_id, outcome.outcome)

    async def _back_to_dialplan(self, call: AriCall, why: str) -> None:
        """The priority after Stasis(): the centre's own fallback (a queue, a voicemail)."""
        if call.gone.is_set():
            return
        with contextlib.suppress(AriError):
            await self.ari.set_variable(call.channel_id, "CALLBOT_ACTION", "failover")
            await self.ari.set_variable(call.channel_id, "CALLBOT_REASON", why)
            await self.ari.continue_in_dialplan(call.channel_id)
            log.warning("[call %s] handed back to the dialplan after Stasis() (%s)", call.call_id, why)

    async def _release(self, call: AriCall) -> None:
        """Our external-media channel and bridge go (the caller's channel stays where it is)."""
        if call.media_channel_id:
            with contextlib.suppress(AriError):
                await self.ari.hangup(call.media_channel_id)
            call.media_channel_id = ""
        if call.bridge_id:
            with contextlib.suppress(AriError):
                await self.ari.destroy_bridge(call.bridge_id)
            call.bridge_id = ""

    async def close(self) -> None:
        """At shutdown: callers still with us go back to the dialplan, not into silence."""
        for call in list(self.calls.values()):
            await self._back_to_dialplan(call, "callbot_stopping")
        for task in list(self._tasks):
            task.cancel()
