"""Carrying out a routing decision that ends the bot's part of a call: the outcome the provider will act on,
the hand-off webhook for ``webhook`` targets, and the queues' waiting calls, shared by every instance."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from callbot.call.outcome import CallOutcome
from callbot.errors import StorageError
from callbot.resources import Resources
from callbot.storage.call_store import TurnRecord
from routing.decision import Overflow, Transfer
from routing.engine import NoPlacement, Placement
from routing.handoff import HandoffError, hand_off
from routing.live import LiveSnapshot
from routing.queue_state import queue_status
from routing.routing_config import TransferTarget

module_log = logging.getLogger(__name__)

WAITING_GRACE_S = 60.0
"""A waiting call the provider never reports on is forgotten this long after its queue's longest wait."""


async def sync_waiting(resources: Resources) -> None:
    """This instance's view of the calls waiting in the queues, from the shared record (what it knew is kept
    while the database is down)."""
    try:
        rows = await resources.waiting.waiting()
    except StorageError as exc:
        module_log.warning("waiting calls of other instances unknown, database unavailable: %s", exc)
        return
    now = datetime.now(UTC)
    resources.live.replace_waiting([(w.call_id, w.queue, w.priority, (now - w.since).total_seconds()) for w in rows])


async def transfer_outcome(
    decision: Transfer, resources: Resources, call_id: str, *, bounded: bool = True
) -> CallOutcome | None:
    """The outcome of a transfer to a queue with a number, SIP or Twilio-queue target; None when the queue
    filled on another instance since the decision (decide again)."""
    target = resources.folder.routing.queues[decision.queue].target
    return await _placed(
        resources, call_id, decision.queue, decision.skill, decision.priority, target, _rule(decision), bounded
    )


async def _placed(
    resources: Resources,
    call_id: str,
    queue: str,
    skill: str,
    priority: int,
    target: TransferTarget,
    reason: str,
    bounded: bool = False,
) -> CallOutcome | None:
    """The call goes to ``queue``, where it counts as waiting until the provider reports what became of it.
    ``bounded``: only if the queue still takes it, counting every instance's waiting calls."""
    routing, router = resources.folder.routing, resources.folder.router
    statuses = resources.live.snapshot().agent_status

    def fits(priorities: tuple[int, ...]) -> bool:
        local = router.local(datetime.now(UTC))
        live = LiveSnapshot(statuses, {queue: priorities})
        status = queue_status(routing, router.agents, queue, local, live, skill=skill, priority=priority)
        return status.verdict == "ok"

    expires = timedelta(seconds=routing.queues[queue].max_wait_s + WAITING_GRACE_S)
    try:
        admitted = await resources.waiting.admit(
            call_id, queue, priority, fits=fits if bounded else None, expires_in=expires
        )
    except StorageError as exc:
        # the caller is not held back by the database: placed on what this instance knows
        module_log.error("[call %s] queue %s taken without the shared waiting count: %s", call_id, queue, exc)
        admitted = True
    if not admitted:
        return None
    resources.live.enqueue(call_id, queue, priority)
    return CallOutcome("transfer", reason=reason, queue=queue, target=target, skill=skill)


async def leave_queue(resources: Resources, call_id: str) -> tuple[str, float] | None:
    """The call left its queue (the provider reported the transfer's result): the queue and how long it
    waited, or None if it was not waiting."""
    local = resources.live.dequeue(call_id)
    try:
        return await resources.waiting.leave(call_id) or local
    except StorageError as exc:
        module_log.error("[call %s] left its queue; the shared waiting count not updated: %s", call_id, exc)
        return local


def _rule(decision: Transfer) -> str:
    return str(decision.why.get("rule"))


async def failover_outcome(resources: Resources, call_id: str, why: str) -> CallOutcome:
    """Where a call goes when a stage of the bot failed: the failover skill's queue, else the mailbox."""
    await sync_waiting(resources)
    routed = resources.folder.router.failover(datetime.now(UTC), resources.live.snapshot(), why)
    placed = routed.outcome
    if isinstance(placed, NoPlacement):
        return CallOutcome("overflow", reason=placed.reason)
    assert isinstance(placed, Placement)
    target = resources.folder.routing.queues[placed.queue].target
    if target.type == "webhook":  # no time for a hand-off round trip: the mailbox keeps the caller
        return CallOutcome("overflow", reason="no_agent")
    outcome = await _placed(resources, call_id, placed.queue, placed.skill, placed.priority, target, why)
    assert outcome is not None  # unbounded: always placed
    return outcome


async def webhook_transfer(
    decision: Transfer,
    resources: Resources,
    call_id: str,
    caller: str,
    turns: list[TurnRecord],
    log: logging.LoggerAdapter[logging.Logger],
) -> CallOutcome | Overflow:
    """Hand the call's context to the queue's webhook: the outcome (connect where it says), or, when it does
    not take the call, the overflow decision that replaces the transfer."""
    target = resources.folder.routing.queues[decision.queue].target
    context = handoff_context(decision, resources, call_id, caller, turns)
    try:
        result = await hand_off(target, context, resources.http)
    except HandoffError as exc:
        log.error("hand-off to queue %s failed, taking a message instead: %s", decision.queue, exc)
        resources.metrics.stage_failures.labels("handoff").inc()
        why = {**decision.why, "rule": "handoff_failed", "error": str(exc)}
        return Overflow("no_agent", resources.bot.overflow_prompt("no_agent"), why)
    log.info("hand-off to queue %s accepted after %d attempt(s): %s", decision.queue, result.attempts, result.connect)
    # the far end accepted the call: it waits there whatever the count says
    outcome = await _placed(
        resources, call_id, decision.queue, decision.skill, decision.priority, result.connect, _rule(decision)
    )
    assert outcome is not None
    return outcome


def handoff_context(
    decision: Transfer, resources: Resources, call_id: str, caller: str, turns: list[TurnRecord]
) -> dict[str, Any]:
    understood = [t for t in turns if t.speaker == "caller" and t.intent]
    last = understood[-1] if understood else None
    return {
        "event": "callbot.handoff",
        "call_id": call_id,
        "caller": caller,
        "language": resources.bot.language,
        "queue": decision.queue,
        "skill": decision.skill,
        "priority": decision.priority,
        "rule": decision.why.get("rule"),
        "intent": last.intent if last else decision.why.get("intent"),
        "confidence": last.confidence if last else None,
        "entities": {k: v for t in understood for k, v in t.entities.items()},
        "transcript": [
            {"speaker": t.speaker, "text": t.text, "at": t.at.isoformat()} for t in turns if t.speaker != "dtmf"
        ],
        "at": datetime.now(UTC).isoformat(),
    }
