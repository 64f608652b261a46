"""JSON API, health and metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from callbot.access.guard import OPS, Require
from callbot.api_docs import STAFF, content, refusals
from callbot.errors import StorageError
from callbot.resources import Component, Resources
from callbot.storage.tables import CallRow

router = APIRouter()


class TurnOut(BaseModel):
    seq: int
    speaker: str
    text: str
    intent: str | None
    confidence: float | None
    entities: dict[str, Any]
    action: str | None
    decision: dict[str, Any]
    latency_ms: float | None
    at: str


class CallOut(BaseModel):
    id: str
    provider: str
    provider_call_id: str
    from_number: str
    to_number: str
    bot: str
    language: str
    status: str
    outcome: str | None
    outcome_reason: str | None
    transfer_queue: str | None
    transfer_target: str | None
    transfer_skill: str | None
    transfer_result: str | None
    transfer_wait_s: float | None
    created_at: str
    stream_started_at: str | None
    ended_at: str | None
    duration_s: float | None
    first_audio_ms: float | None
    degraded: list[str]
    transport: str | None = None
    line_codec: str | None = None
    transfer: dict[str, Any] | None = None
    """The transfer's whole target (type, value, caller id), as the telephony carried it out."""
    turns: list[TurnOut] | None = None


def _call_out(row: CallRow, with_turns: bool) -> CallOut:
    duration = (row.ended_at - row.created_at).total_seconds() if row.ended_at else None
    turns = (
        [
            TurnOut(
                seq=t.seq,
                speaker=t.speaker,
                text=t.text,
                intent=t.intent,
                confidence=t.confidence,
                entities=t.entities,
                action=t.action,
                decision=t.decision,
                latency_ms=t.latency_ms,
                at=t.created_at.isoformat(),
            )
            for t in row.turns
        ]
        if with_turns
        else None
    )
    return CallOut(
        id=row.id,
        provider=row.provider,
        provider_call_id=row.provider_call_id,
        from_number=row.from_number,
        to_number=row.to_number,
        bot=row.bot,
        language=row.language,
        status=row.status,
        outcome=row.outcome,
        outcome_reason=row.outcome_reason,
        transfer_queue=row.transfer_queue,
        transfer_target=row.transfer_target,
        transfer_skill=row.transfer_skill,
        transfer_result=row.transfer_result,
        transfer_wait_s=row.transfer_wait_s,
        created_at=row.created_at.isoformat(),
        stream_started_at=row.stream_started_at.isoformat() if row.stream_started_at else None,
        ended_at=row.ended_at.isoformat() if row.ended_at else None,
        duration_s=duration,
        first_audio_ms=row.first_audio_ms,
        degraded=list(row.degraded or []),
        transport=row.transport,
        line_codec=row.line_codec,
        transfer=row.transfer,
        turns=turns,
    )


@router.get(
    "/api/calls/{call_id}",
    response_model=CallOut,
    tags=["calls"],
    dependencies=[Depends(Require(OPS))],
    responses={**STAFF, **refusals(404)},
)
async def get_call(call_id: str, request: Request) -> CallOut:
    resources: Resources = request.app.state.resources
    try:
        row = await resources.store.get_call(call_id)
    except StorageError as exc:
        raise HTTPException(status_code=503, detail=f"database unavailable: {exc}") from exc
    if row is None:
        raise HTTPException(status_code=404, detail=f"no call with id {call_id[:64]!r}")
    return _call_out(row, with_turns=True)


@router.get(
    "/api/calls", response_model=list[CallOut], tags=["calls"], dependencies=[Depends(Require(OPS))], responses=STAFF
)
async def list_calls(
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000_000),
    provider_call_id: str | None = Query(
        None, max_length=64, description="the provider's id (Twilio CallSid, Asterisk channel)"
    ),
) -> list[CallOut]:
    resources: Resources = request.app.state.resources
    try:
        rows = await resources.store.list_calls(limit, offset, provider_call_id)
    except StorageError as exc:
        raise HTTPException(status_code=503, detail=f"database unavailable: {exc}") from exc
    return [_call_out(row, with_turns=False) for row in rows]


@router.get(
    "/healthz",
    tags=["ops"],
    responses={503: {"description": "calls cannot be taken (the database is unavailable); the same report"}},
)
async def healthz(request: Request, response: Response) -> dict[str, Any]:
    """Each component's state. 200 while calls can be taken (even degraded), 503 when they cannot."""
    resources: Resources = request.app.state.resources
    components = await _components(resources)
    states = {name: c.state for name, c in components.items()}
    if states["database"] == "unavailable":
        status = "unavailable"
        response.status_code = 503
    elif all(state == "up" for state in states.values()):
        status = "ok"
    else:
        status = "degraded"
    return {
        "status": status,
        "active_calls": len(resources.active_calls),
        "answers_cached": resources.warmed,
        "components": {name: {"state": c.state, "detail": c.detail} for name, c in components.items()},
    }


async def _components(resources: Resources) -> dict[str, Component]:
    """Each component's state now (the database is pinged, the sidecar asked)."""
    components = dict(resources.health)
    try:
        await resources.store.ping()
        components["database"] = Component("up", components["database"].detail)
    except StorageError as exc:
        components["database"] = Component("unavailable", str(exc))
    sidecar = resources.sidecar
    if sidecar is not None and components["nlu"].state == "up" and sidecar.state != "up":
        components["nlu"] = Component(sidecar.state, f"Rasa sidecar is {sidecar.state}; calls go to the default queue")
    elif sidecar is not None and components["nlu"].state != "up" and sidecar.state == "up":  # a retry succeeded
        components["nlu"] = Component("up", f"Rasa sidecar on {sidecar.url} with {sidecar.model_path.name}")
    return components


class Readiness(BaseModel):
    ready: bool
    reasons: list[str]
    """Why not, when not ready: the database, capacity."""
    active_calls: int
    max_calls: int


@router.get("/livez", tags=["ops"])
async def livez() -> dict[str, str]:
    """The process answers (its event loop runs): a supervisor restarts it otherwise."""
    return {"status": "alive"}


@router.get(
    "/readyz",
    tags=["ops"],
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "send no new calls here: the reasons say why"}},
)
async def readyz(request: Request, response: Response) -> Readiness:
    """Whether a load balancer should send new calls here: the database answers, calls are below
    ``CALLBOT_MAX_CALLS`` and the instance is not draining (stopping). Degraded speech or NLU does not make an
    instance unready (calls go to queues)."""
    resources: Resources = request.app.state.resources
    reasons = []
    try:
        await resources.store.ping()
    except StorageError as exc:
        reasons.append(f"database unavailable: {exc}")
    if resources.at_capacity():
        reasons.append(f"at capacity: {len(resources.active_calls)} calls (CALLBOT_MAX_CALLS)")
    if resources.draining:
        reasons.append(f"draining: stopping once its {len(resources.active_calls)} call(s) in progress end")
    if reasons:
        response.status_code = 503
    return Readiness(
        ready=not reasons,
        reasons=reasons,
        active_calls=len(resources.active_calls),
        max_calls=resources.settings.max_calls,
    )


@router.get(
    "/metrics",
    tags=["ops"],
    response_class=Response,
    responses={200: content("text/plain", "Prometheus text exposition format")},
)
async def metrics(request: Request) -> Response:
    """Calls, latencies, engines, protocol errors, the mailbox backlog, each component's state, and the
    standard process and Python metrics."""
    resources: Resources = request.app.state.resources
    metrics = resources.metrics
    for name, component in (await _components(resources)).items():
        metrics.component_up.labels(name).set(_UP.get(component.state, 0.5))
    try:
        for kind, count in (await asyncio.to_thread(resources.mailbox.backlog)).items():
            metrics.mailbox_backlog.labels(kind).set(count)
    except StorageError:
        pass  # the database is down: callbot_component_up{component="database"} says so
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


_UP = {"up": 1.0, "unavailable": 0.0, "down": 0.0}
