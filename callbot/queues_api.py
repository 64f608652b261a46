"""JSON API for live routing state: queues (open, waiting, agents, estimated wait) and agent statuses."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from callbot.access.guard import ACD, AcdUser, Require
from callbot.api_docs import CHANGES, STAFF, refusals
from callbot.errors import StorageError
from callbot.resources import Resources
from routing.queue_state import queue_status
from routing.routing_config import AgentStatus

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["routing"], dependencies=[Depends(Require(ACD))], responses=STAFF)


class QueueOut(BaseModel):
    name: str
    description: str
    skills: list[str]
    target_type: str
    open: bool
    hours: str
    waiting: int
    available_agents: int
    staffed_agents: int
    estimated_wait_s: float
    accepting: str
    """What a new call would get: ``ok``, or why not (``closed``, ``no_agent``, ``queue_full``)."""
    max_length: int
    max_wait_s: float


class AgentOut(BaseModel):
    id: str
    name: str
    skills: dict[str, int]
    status: str


class StatusIn(BaseModel):
    status: AgentStatus


class StatusOut(AgentOut):
    persisted: bool


@router.get("/queues", response_model=list[QueueOut])
async def list_queues(request: Request) -> list[QueueOut]:
    """Live state of every queue, as the routing engine sees it now."""
    resources: Resources = request.app.state.resources
    router_ = resources.folder.router
    local = router_.local(datetime.now(UTC))
    live = resources.live.snapshot()
    out = []
    for name, queue in resources.folder.routing.queues.items():
        status = queue_status(router_.config, router_.agents, name, local, live)
        out.append(
            QueueOut(
                name=name,
                description=queue.description,
                skills=queue.skills,
                target_type=queue.target.type,
                open=status.open,
                hours=status.hours,
                waiting=status.waiting,
                available_agents=status.available_agents,
                staffed_agents=status.staffed_agents,
                estimated_wait_s=round(status.estimated_wait_s, 1),
                accepting=status.verdict,
                max_length=queue.max_length,
                max_wait_s=queue.max_wait_s,
            )
        )
    return out


@router.get("/agents", response_model=list[AgentOut])
async def list_agents(request: Request) -> list[AgentOut]:
    resources: Resources = request.app.state.resources
    return [_agent_out(resources, agent_id) for agent_id in resources.folder.routing.agents]


@router.put("/agents/{agent_id}/status", response_model=StatusOut, responses={**refusals(404), **CHANGES})
async def set_agent_status(agent_id: str, body: StatusIn, request: Request, user: AcdUser) -> StatusOut:
    """Report an agent's status (``available``, ``busy``, ``wrap_up``, ``offline``), as an ACD or a softphone
    does on every change. Routing uses it at once; it is stored so that a restart keeps it."""
    resources: Resources = request.app.state.resources
    if agent_id not in resources.folder.routing.agents:
        raise HTTPException(status_code=404, detail=f"no agent {agent_id[:64]!r} in routing.yml")
    resources.live.set_status(agent_id, body.status)
    persisted = True
    try:
        await resources.store.set_agent_status(agent_id, body.status, by=user.username)
    except StorageError as exc:
        log.error("agent %s is %s now, but the status could not be stored: %s", agent_id, body.status, exc)
        persisted = False
    return StatusOut(**_agent_out(resources, agent_id).model_dump(), persisted=persisted)


def _agent_out(resources: Resources, agent_id: str) -> AgentOut:
    agent = resources.folder.routing.agents[agent_id]
    return AgentOut(id=agent_id, name=agent.name, skills=agent.skills, status=resources.live.status(agent_id))
