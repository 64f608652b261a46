"""Carrying out a routing decision that ends the bot's part of a call: the outcome the provider will act on,
the hand-off webhook for ``webhook`` targets, and the live queue state."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from callbot.call.outcome import CallOutcome
from callbot.resources import Resources
from callbot.storage.call_store import TurnRecord
from routing.decision import Overflow, Transfer
from routing.engine import NoPlacement, Placement
from routing.handoff import HandoffError, hand_off
from routing.routing_config import TransferTarget


def transfer_outcome(decision: Transfer, resources: Resources, call_id: str) -> CallOutcome:
    """The outcome of a transfer to a queue with a number, SIP or Twilio-queue target."""
    target = resources.folder.routing.queues[decision.queue].target
    return _placed(resources, call_id, decision.queue, decision.skill, decision.priority, target, _rule(decision))


def _placed(
    resources: Resources, call_id: str, queue: str, skill: str, priority: int, target: TransferTarget, reason: str
) -> CallOutcome:
    """The call goes to ``queue``, where it counts as waiting until the provider reports what became of it."""
    resources.live.enqueue(call_id, queue, priority)
    return CallOutcome("transfer", reason=reason, queue=queue, target=target, skill=skill)


def _rule(decision: Transfer) -> str:
    return str(decision.why.get("rule"))


def failover_outcome(resources: Resources, call_id: str, why: str) -> CallOutcome:
    """Where a call goes when a stage of the bot failed: the failover skill's queue, else the mailbox."""
    routed = resources.folder.router.failover(datetime.now(UTC), resources.live.snapshot(), why)
    placed = routed.outcome
    if isinstance(placed, NoPlacement):
        return CallOutcome("overflow", reason=placed.reason)
    assert isinstance(placed, Placement)
    target = resources.folder.routing.queues[placed.queue].target
    if target.type == "webhook":  # no time for a hand-off round trip: the mailbox keeps the caller
        return CallOutcome("overflow", reason="no_agent")
    return _placed(resources, call_id, placed.queue, placed.skill, placed.priority, target, why)


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
    return _placed(
        resources, call_id, decision.queue, decision.skill, decision.priority, result.connect, _rule(decision)
    )


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
