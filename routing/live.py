"""Live queue and agent state: what the routing engine needs to know about right now.

``LiveState`` is the service's mutable record (agent statuses reported through the API, calls we transferred
that still wait in a queue); the routing engine only ever sees an immutable ``LiveSnapshot`` of it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from routing.routing_config import AgentStatus, RoutingConfig


@dataclass(frozen=True, slots=True)
class LiveSnapshot:
    agent_status: Mapping[str, str] = field(default_factory=dict)
    waiting: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """Per queue, the priorities of the calls waiting in it."""


@dataclass(slots=True)
class _Waiting:
    queue: str
    priority: int
    since: float


class LiveState:
    """Agent statuses and waiting calls. Calls leave a queue when the provider reports the transfer's result,
    or, when it never does, once they have waited longer than the queue's ``max_wait_s`` (plus a grace)."""

    def __init__(self, routing: RoutingConfig, statuses: Mapping[str, str] | None = None, *, grace_s: float = 60.0):
        self._routing = routing
        self._status: dict[str, str] = {agent_id: agent.status for agent_id, agent in routing.agents.items()}
        for agent_id, status in (statuses or {}).items():
            if agent_id in self._status:
                self._status[agent_id] = status
        self._waiting: dict[str, _Waiting] = {}
        self._grace_s = grace_s
        self._snapshot: LiveSnapshot | None = None

    def rebase(self, routing: RoutingConfig) -> LiveState:
        """The same live state for a new routing configuration: statuses of the agents it still has, calls
        waiting in the queues it still has; new agents start with their configured status."""
        statuses = {agent_id: status for agent_id, status in self._status.items() if agent_id in routing.agents}
        rebased = LiveState(routing, statuses, grace_s=self._grace_s)
        rebased._waiting = {c: w for c, w in self._waiting.items() if w.queue in routing.queues}
        return rebased

    def set_status(self, agent_id: str, status: AgentStatus) -> None:
        if agent_id not in self._status:
            raise KeyError(agent_id)
        self._status[agent_id] = status
        self._snapshot = None

    def status(self, agent_id: str) -> str:
        return self._status[agent_id]

    def enqueue(self, call_id: str, queue: str, priority: int, now: float | None = None) -> None:
        self._waiting[call_id] = _Waiting(queue, priority, time.monotonic() if now is None else now)
        self._snapshot = None

    def replace_waiting(self, entries: list[tuple[str, str, int, float]], now: float | None = None) -> None:
        """The waiting calls as the shared record has them: (call id, queue, priority, seconds waited so far)."""
        at = time.monotonic() if now is None else now
        self._waiting = {
            call_id: _Waiting(queue, priority, at - waited)
            for call_id, queue, priority, waited in entries
            if queue in self._routing.queues
        }
        self._snapshot = None

    def dequeue(self, call_id: str, now: float | None = None) -> tuple[str, float] | None:
        """The queue ``call_id`` waited in and for how long, or None if it was not waiting."""
        entry = self._waiting.pop(call_id, None)
        if entry is None:
            return None
        self._snapshot = None
        return entry.queue, (time.monotonic() if now is None else now) - entry.since

    def snapshot(self, now: float | None = None) -> LiveSnapshot:
        """The current state, as an immutable value (cached until something changes)."""
        if self._expire(time.monotonic() if now is None else now) or self._snapshot is None:
            waiting: dict[str, list[int]] = {}
            for entry in self._waiting.values():
                waiting.setdefault(entry.queue, []).append(entry.priority)
            self._snapshot = LiveSnapshot(
                MappingProxyType(dict(self._status)),
                MappingProxyType({queue: tuple(priorities) for queue, priorities in waiting.items()}),
            )
        return self._snapshot

    def _expire(self, now: float) -> bool:
        stale = [
            call_id
            for call_id, entry in self._waiting.items()
            if entry.queue not in self._routing.queues
            or now - entry.since > self._routing.queues[entry.queue].max_wait_s + self._grace_s
        ]
        for call_id in stale:
            del self._waiting[call_id]
        return bool(stale)
