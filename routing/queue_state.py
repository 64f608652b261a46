"""Whether a queue can take a call now: hours, agents with the skill, waiting calls, estimated wait."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

from routing.calendars import is_open
from routing.live import LiveSnapshot
from routing.routing_config import STAFFED, RoutingConfig

Verdict = Literal["ok", "closed", "no_agent", "queue_full"]


@dataclass(frozen=True, slots=True)
class QueueStatus:
    queue: str
    skill: str | None
    open: bool
    hours: str
    """Why the queue is open or closed (``open mon 09:00-18:00``, ``public holiday Noël (2026-12-25)``...)."""
    available_agents: int
    staffed_agents: int
    waiting: int
    waiting_ahead: int
    estimated_wait_s: float
    verdict: Verdict

    def facts(self) -> dict[str, object]:
        return {
            "queue": self.queue,
            "verdict": self.verdict,
            "hours": self.hours,
            "available_agents": self.available_agents,
            "staffed_agents": self.staffed_agents,
            "waiting": self.waiting,
            "estimated_wait_s": round(self.estimated_wait_s, 1),
        }


class AgentIndex:
    """Agents by skill, best level first, computed once per configuration."""

    def __init__(self, routing: RoutingConfig) -> None:
        self.by_skill: dict[str, list[tuple[str, int]]] = {skill: [] for skill in routing.skills}
        for agent_id, agent in routing.agents.items():
            for skill, level in agent.skills.items():
                self.by_skill[skill].append((agent_id, level))
        for agents in self.by_skill.values():
            agents.sort(key=lambda pair: -pair[1])

    def count(self, skills: list[str], min_level: int, live: LiveSnapshot) -> tuple[int, int]:
        """(available, staffed) agents having one of ``skills`` at ``min_level`` or above."""
        seen: set[str] = set()
        available = staffed = 0
        for skill in skills:
            for agent_id, level in self.by_skill.get(skill, ()):
                if level < min_level:
                    break  # sorted by level
                if agent_id in seen:
                    continue
                seen.add(agent_id)
                status = live.agent_status.get(agent_id, "offline")
                if status == "available":
                    available += 1
                if status in STAFFED:
                    staffed += 1
        return available, staffed


def queue_status(
    routing: RoutingConfig,
    agents: AgentIndex,
    queue_name: str,
    local: datetime.datetime,
    live: LiveSnapshot,
    *,
    skill: str | None = None,
    priority: int = 0,
    min_level: int = 1,
) -> QueueStatus:
    """The state of ``queue_name`` for a call needing ``skill`` (any of the queue's skills when None) at
    ``priority``: only calls waiting at the same or a higher priority are ahead of it."""
    queue = routing.queues[queue_name]
    if queue.hours is None:
        is_open_now, hours = True, "open around the clock"
    else:
        is_open_now, hours = is_open(routing.calendars[queue.hours], local)
    available, staffed = agents.count([skill] if skill else queue.skills, min_level, live)
    priorities = live.waiting.get(queue_name, ())
    ahead = sum(1 for p in priorities if p >= priority)
    wait = 0.0 if available > ahead else (ahead - available + 1) * queue.average_handle_s / max(staffed, 1)
    verdict: Verdict
    if not is_open_now:
        verdict = "closed"
    elif available > ahead:
        verdict = "ok"
    elif staffed == 0 or queue.max_length == 0:
        verdict = "no_agent"
    elif len(priorities) >= queue.max_length or wait > queue.max_wait_s:
        verdict = "queue_full"
    else:
        verdict = "ok"
    return QueueStatus(queue_name, skill, is_open_now, hours, available, staffed, len(priorities), ahead, wait, verdict)
