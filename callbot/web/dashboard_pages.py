"""Operations' dashboard (what the bot did over a period, as charts) and the calls with their decision traces."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from callbot.errors import StorageError
from callbot.resources import Resources
from callbot.stats import compute
from callbot.storage.database import MAX_PAGE
from callbot.web.render import OpsPage, page

router = APIRouter(include_in_schema=False)
PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


@router.get("/dashboard")
async def dashboard(request: Request, principal: OpsPage, period: str = "24h") -> Response:
    resources: Resources = request.app.state.resources
    span = PERIODS.get(period, PERIODS["24h"])
    until = datetime.now(UTC)
    try:
        stats = await asyncio.to_thread(compute, resources.store.engine, until - span, until)
    except StorageError as exc:
        raise HTTPException(status_code=503, detail=f"database unavailable: {exc}") from exc
    return page(
        request,
        "dashboard.html",
        principal,
        stats=stats,
        period=period if period in PERIODS else "24h",
        periods=PERIODS,
    )


@router.get("/calls")
async def calls(
    request: Request, principal: OpsPage, page_number: int = Query(1, alias="page", ge=1, le=MAX_PAGE)
) -> Response:
    resources: Resources = request.app.state.resources
    rows = await resources.store.list_calls(50, (page_number - 1) * 50)
    zone = ZoneInfo(resources.folder.timezone)
    return page(request, "calls.html", principal, calls=rows, zone=zone, page_number=page_number)


@router.get("/calls/{call_id}")
async def call(request: Request, principal: OpsPage, call_id: str) -> Response:
    resources: Resources = request.app.state.resources
    row = await resources.store.get_call(call_id[:64])
    if row is None:
        raise HTTPException(status_code=404, detail="no such call")
    turns = [
        {"turn": turn, "trace": json.dumps(turn.decision, ensure_ascii=False, indent=1) if turn.decision else ""}
        for turn in row.turns
    ]
    zone = ZoneInfo(resources.folder.timezone)
    return page(request, "call.html", principal, call=row, turns=turns, zone=zone)
