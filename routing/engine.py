"""The routing engine: which action a call gets, and which queue takes it.

``Router.route`` is a pure function of the request (intent, confidence, entities, caller, failed turns), the
time, and a snapshot of the queues and agents. Every result carries its trace: the rule that decided, the facts
it matched, and for a transfer each queue tried and why it could or could not take the call.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from routing.actions import (
    ActionType,
    AnswerAction,
    HangupAction,
    MenuAction,
    OverflowAction,
    OverflowReason,
    TransferAction,
)
from routing.calendars import in_window, is_open
from routing.live import LiveSnapshot
from routing.queue_state import AgentIndex, QueueStatus, queue_status
from routing.routing_config import FALLBACK_INTENT, RoutingConfig, When

# when no queue of a skill can take the call, the reason of the queue that came closest is kept
_CLOSENESS = {"closed": 0, "no_agent": 1, "queue_full": 2}


@dataclass(frozen=True, slots=True)
class RouteRequest:
    intent: str | None
    confidence: float = 1.0
    entities: Mapping[str, str] = field(default_factory=dict)
    caller: str = ""
    failed_turns: int = 0


@dataclass(frozen=True, slots=True)
class Placement:
    """Transfer the call to ``queue`` (which serves ``skill``)."""

    queue: str
    skill: str
    priority: int
    estimated_wait_s: float


@dataclass(frozen=True, slots=True)
class NoPlacement:
    """No queue can take the call: it goes to the overflow mailbox for ``reason``."""

    reason: OverflowReason


Outcome = AnswerAction | MenuAction | HangupAction | Placement | NoPlacement


@dataclass(frozen=True, slots=True)
class Routed:
    outcome: Outcome
    trace: dict[str, Any]

    @property
    def rule(self) -> str:
        return str(self.trace["rule"])


class Router:
    """The routing configuration, indexed once; ``route`` and ``place`` never change it."""

    def __init__(self, config: RoutingConfig, intent_actions: Mapping[str, ActionType]) -> None:
        self.config = config
        self.intent_actions = dict(intent_actions)
        self.zone = ZoneInfo(config.timezone)
        self.agents = AgentIndex(config)
        self._caller_lists = {
            name: (
                frozenset(n for n in numbers if not n.endswith("*")),
                tuple(n[:-1] for n in numbers if n.endswith("*")),
            )
            for name, numbers in config.caller_lists.items()
        }

    def local(self, now: datetime.datetime) -> datetime.datetime:
        if now.tzinfo is None:
            raise ValueError("routing needs an aware datetime (with its UTC offset)")
        return now.astimezone(self.zone)

    # --- decisions ------------------------------------------------------------------------------------------

    def route(self, request: RouteRequest, now: datetime.datetime, live: LiveSnapshot) -> Routed:
        """First matching rule; else the intent's own action (bot.yml); else the default rule."""
        local = self.local(now)
        statuses: dict[tuple[str, str], QueueStatus] = {}
        for rule in self.config.rules:
            facts = self._match(rule.when, request, local, live, statuses)
            if facts is not None and rule.then is not None:
                return self.carry_out(rule.then, local, live, {"rule": rule.id, "matched": facts})
        action = self.intent_actions.get(request.intent or "")
        if action is not None and request.intent != FALLBACK_INTENT:
            return self.carry_out(action, local, live, {"rule": f"intent:{request.intent}"})
        return self.carry_out(self.config.default, local, live, {"rule": "default", "intent": request.intent})

    def carry_out(
        self, action: ActionType, local: datetime.datetime, live: LiveSnapshot, trace: dict[str, Any]
    ) -> Routed:
        if isinstance(action, TransferAction):
            placed, attempts = self.place(
                action.skill, local, live, priority=action.priority, min_level=action.min_level, first=action.fallback
            )
            trace = {**trace, "skill": action.skill, "priority": action.priority, "attempts": attempts}
            return Routed(placed, trace)
        if isinstance(action, OverflowAction):
            return Routed(NoPlacement(action.reason), {**trace, "reason": action.reason})
        return Routed(action, trace)

    def failover(self, now: datetime.datetime, live: LiveSnapshot, why: str) -> Routed:
        """Where a call goes when a stage failed: the failover skill (and its fallbacks), else the mailbox."""
        local = self.local(now)
        placed, attempts = self.place(self.config.failover_skill, local, live)
        return Routed(placed, {"rule": why, "skill": self.config.failover_skill, "attempts": attempts})

    def place(
        self,
        skill: str,
        local: datetime.datetime,
        live: LiveSnapshot,
        *,
        priority: int = 0,
        min_level: int = 1,
        first: str | None = None,
    ) -> tuple[Placement | NoPlacement, list[dict[str, Any]]]:
        """The best queue for ``skill``, else for its fallbacks in order (``first`` is tried before the
        skill's own fallback chain); the trace lists every queue tried."""
        chain = [skill, *[s for s in self.config.fallback_chain(first) if s != skill]] if first else []
        chain = chain or self.config.fallback_chain(skill)
        attempts: list[dict[str, Any]] = []
        reason: OverflowReason = "no_agent"
        for candidate in chain:
            status, tried = self.skill_status(candidate, local, live, priority=priority, min_level=min_level)
            attempts += [{"skill": candidate, **each.facts()} for each in tried]
            if status.verdict == "ok":
                return Placement(status.queue, candidate, priority, status.estimated_wait_s), attempts
            reason = status.verdict
        return NoPlacement(reason), attempts

    def skill_status(
        self, skill: str, local: datetime.datetime, live: LiveSnapshot, *, priority: int = 0, min_level: int = 1
    ) -> tuple[QueueStatus, list[QueueStatus]]:
        """The queue serving ``skill`` that would take a call (shortest estimated wait) or, when none would,
        the one that came closest; and every queue looked at."""
        statuses = [
            queue_status(
                self.config, self.agents, queue, local, live, skill=skill, priority=priority, min_level=min_level
            )
            for queue in self.config.queues_for(skill)
        ]
        takers = [s for s in statuses if s.verdict == "ok"]
        if takers:
            # shortest wait; on a tie the most specialised queue (fewest skills), then the first listed
            return min(takers, key=lambda s: (s.estimated_wait_s, len(self.config.queues[s.queue].skills))), statuses
        return max(statuses, key=lambda s: _CLOSENESS[s.verdict]), statuses

    # --- rule conditions ------------------------------------------------------------------------------------

    def _match(
        self,
        when: When,
        request: RouteRequest,
        local: datetime.datetime,
        live: LiveSnapshot,
        statuses: dict[tuple[str, str], QueueStatus],
    ) -> dict[str, Any] | None:
        """The facts that made ``when`` hold, or None when it does not. Cheap conditions first."""
        facts: dict[str, Any] = {}
        if when.intent is not None:
            if request.intent not in when.intent:
                return None
            facts["intent"] = request.intent
        if when.failed_turns is not None:
            if not when.failed_turns.contains(request.failed_turns):
                return None
            facts["failed_turns"] = request.failed_turns
        if when.confidence is not None:
            if not when.confidence.contains(request.confidence):
                return None
            facts["confidence"] = round(request.confidence, 4)
        if when.entities is not None:
            if not all(name in request.entities for name in when.entities):
                return None
            facts["entities"] = {name: request.entities[name] for name in when.entities}
        if when.caller_in is not None:
            lists = [name for name in when.caller_in if self._caller_in(request.caller, name)]
            if not lists:
                return None
            facts["caller_in"] = lists[0]
        if when.caller_not_in is not None:
            if any(self._caller_in(request.caller, name) for name in when.caller_not_in):
                return None
            facts["caller_not_in"] = when.caller_not_in
        if when.time is not None:
            time_facts = self._time_facts(when, local)
            if time_facts is None:
                return None
            facts["time"] = time_facts
        if when.queue is not None:
            queue_facts = self._queue_facts(when, local, live, statuses)
            if queue_facts is None:
                return None
            facts["queue"] = queue_facts
        return facts

    def _caller_in(self, caller: str, list_name: str) -> bool:
        exact, prefixes = self._caller_lists[list_name]
        return bool(caller) and (caller in exact or caller.startswith(prefixes))

    def _time_facts(self, when: When, local: datetime.datetime) -> dict[str, Any] | None:
        condition = when.time
        assert condition is not None
        if (condition.days is not None or condition.window is not None) and not in_window(
            condition.days, condition.window, local
        ):
            return None
        facts: dict[str, Any] = {"local": local.strftime("%a %Y-%m-%d %H:%M %Z")}
        if condition.calendar is not None:
            is_open_now, why = is_open(self.config.calendars[condition.calendar], local)
            if is_open_now != condition.open:
                return None
            facts[condition.calendar] = why
        return facts

    def _queue_facts(
        self,
        when: When,
        local: datetime.datetime,
        live: LiveSnapshot,
        statuses: dict[tuple[str, str], QueueStatus],
    ) -> dict[str, Any] | None:
        condition = when.queue
        assert condition is not None
        key = (condition.queue or "", condition.skill or "")
        status = statuses.get(key)
        if status is None:
            if condition.queue is not None:
                status = queue_status(self.config, self.agents, condition.queue, local, live)
            else:
                assert condition.skill is not None
                status, _ = self.skill_status(condition.skill, local, live)
            statuses[key] = status
        if condition.open is not None and condition.open != status.open:
            return None
        if condition.available_agents is not None and not condition.available_agents.contains(status.available_agents):
            return None
        if condition.waiting is not None and not condition.waiting.contains(status.waiting):
            return None
        if condition.estimated_wait_s is not None and not condition.estimated_wait_s.contains(status.estimated_wait_s):
            return None
        return status.facts()
