"""``callbot routing explain``: the decision for a hypothetical call, and why, in words."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from routing.actions import AnswerAction, HangupAction, MenuAction
from routing.bot_folder import BotFolder
from routing.engine import NoPlacement, Placement, Routed, RouteRequest
from routing.live import LiveSnapshot


@dataclass(frozen=True)
class Hypothesis:
    intent: str
    at: datetime.datetime
    caller: str = ""
    confidence: float = 1.0
    entities: Mapping[str, str] = field(default_factory=dict)
    failed_turns: int = 0


def parse_time(text: str | None, zone: datetime.tzinfo) -> datetime.datetime:
    """ISO time; without an offset it is read in the centre's time zone. None: now."""
    if text is None:
        return datetime.datetime.now(datetime.UTC)
    moment = datetime.datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def explain(folder: BotFolder, hypothesis: Hypothesis, live: LiveSnapshot) -> Routed:
    request = RouteRequest(
        hypothesis.intent,
        hypothesis.confidence,
        dict(hypothesis.entities),
        hypothesis.caller,
        hypothesis.failed_turns,
    )
    return folder.router.route(request, hypothesis.at, live)


def describe(folder: BotFolder, routed: Routed) -> str:
    """One line saying what the caller gets."""
    outcome = routed.outcome
    if isinstance(outcome, Placement):
        target = folder.routing.queues[outcome.queue].target
        return (
            f"transfer to queue {outcome.queue} ({target.type} {target.value}) for skill {outcome.skill}, "
            f"priority {outcome.priority}, estimated wait {outcome.estimated_wait_s:.0f} s"
        )
    if isinstance(outcome, NoPlacement):
        return f"overflow to the mailbox, reason {outcome.reason}"
    if isinstance(outcome, AnswerAction):
        return f"answer with {outcome.response}: {folder.bot.responses[outcome.response][-1][:100]!r}"
    if isinstance(outcome, MenuAction):
        return f"keypad menu {outcome.menu}"
    assert isinstance(outcome, HangupAction)
    return f"hang up{f' after {outcome.response}' if outcome.response else ''}"


def format_explanation(folder: BotFolder, hypothesis: Hypothesis, routed: Routed) -> str:
    local = folder.router.local(hypothesis.at)
    lines = [
        f"call at {local:%A %Y-%m-%d %H:%M %Z} ({folder.timezone}), intent {hypothesis.intent}"
        + (f", caller {hypothesis.caller}" if hypothesis.caller else ""),
        f"decision: {describe(folder, routed)}",
        f"rule: {routed.rule}",
    ]
    trace = routed.trace
    if "matched" in trace:
        lines.append(f"  matched: {json.dumps(trace['matched'], ensure_ascii=False)}")
    for attempt in trace.get("attempts", []):
        lines.append(
            f"  tried skill {attempt['skill']} in queue {attempt['queue']}: {attempt['verdict']} "
            f"({attempt['hours']}; {attempt['available_agents']} available / {attempt['staffed_agents']} staffed, "
            f"{attempt['waiting']} waiting, estimated wait {attempt['estimated_wait_s']:.0f} s)"
        )
    return "\n".join(lines)


def trace_json(folder: BotFolder, hypothesis: Hypothesis, routed: Routed) -> dict[str, Any]:
    return {
        "at": folder.router.local(hypothesis.at).isoformat(),
        "intent": hypothesis.intent,
        "decision": describe(folder, routed),
        "trace": routed.trace,
    }
