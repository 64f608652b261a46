"""The trainee's console: the mailbox list, one message (audio with the transcript beside it), working it, and
the trainee's progress."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from callbot.folder_edits import FolderEditor
from callbot.mailbox.items import STATUSES, TRANSITIONS, ItemFilter, TransitionError
from callbot.mailbox_api import blocking, load_item, suggested_answer
from callbot.resources import Resources
from callbot.storage.database import MAX_PAGE
from callbot.storage.tables import MailboxItemRow
from callbot.web.render import StaffPage, page, redirect

router = APIRouter(include_in_schema=False)
PER_PAGE = 50
LOW_CONFIDENCE = 0.6
"""Words Vosk was less sure of are underlined, so that the trainee listens to them."""


def _resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


@router.get("/mailbox")
async def mailbox(
    request: Request,
    principal: StaffPage,
    status: str = "",
    reason: str = "",
    since: date | None = None,
    until: date | None = None,
    q: str = "",
    mine: bool = False,
    page_number: int = Query(1, alias="page", ge=1, le=MAX_PAGE),
) -> Response:
    resources = _resources(request)
    where = ItemFilter(
        status=status if status in STATUSES else None,
        reason=reason or None,
        assignee=principal.user.username if mine else None,
        since=datetime.combine(since, time.min, UTC) if since else None,
        until=datetime.combine(until, time.max, UTC) if until else None,
        text=q.strip()[:200] or None,
    )
    number = page_number
    found = await blocking(resources.mailbox.page, where, "newest", number, PER_PAGE)
    params = {"status": status, "reason": reason, "q": q, "mine": "1" if mine else ""}
    params |= {"since": since.isoformat() if since else "", "until": until.isoformat() if until else ""}
    base = {k: v for k, v in params.items() if v}
    return page(
        request,
        "mailbox_list.html",
        principal,
        rows=[_row(r, resources.folder.timezone) for r in found.items],
        total=found.total,
        counts=found.counts,
        statuses=STATUSES,
        filters=params,
        reasons=_reasons(resources),
        page_number=number,
        pages=max(1, -(-found.total // PER_PAGE)),
        link=lambda **changes: "/mailbox?" + urlencode({k: v for k, v in {**base, **changes}.items() if v}),
    )


@router.get("/mailbox/{item_id}")
async def message(request: Request, principal: StaffPage, item_id: str, error: str = "") -> Response:
    resources = _resources(request)
    row = await load_item(resources.mailbox, item_id)
    allowed = sorted(TRANSITIONS.get(row.status, frozenset()))
    return page(
        request,
        "mailbox_item.html",
        principal,
        item=_row(row, resources.folder.timezone),
        words=[{"w": w[0], "s": w[1], "e": w[2], "low": w[3] < LOW_CONFIDENCE} for w in (row.words or [])],
        transcript=row.transcript,
        transcription=row.transcription,
        entities=row.entities or {},
        masked=row.masked or [],
        suggested=suggested_answer(resources.bot, row),
        allowed=allowed,
        intents=sorted(resources.bot.intents),
        notes=[e for e in row.events if e.action == "note"],
        events=[e for e in row.events if e.action != "note"],
        local=lambda moment: _local(moment, resources.folder.timezone),
        error=error,
        has_audio=bool(row.audio_path) and row.audio_state in ("complete", "recovered"),
    )


@router.post("/mailbox/{item_id}/work")
async def work(
    request: Request,
    principal: StaffPage,
    item_id: str,
    action: Annotated[str, Form()],
    value: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """One form for every change of a message: take, release, status, note, reason."""
    resources = _resources(request)
    row = await load_item(resources.mailbox, item_id)
    me = principal.user.username
    changes: dict[str, Any] = {}
    if action == "take":
        changes["assignee"] = me
    elif action == "release":
        changes["unassign"] = True
    elif action == "status" and value in STATUSES:
        changes["status"] = value
    elif action == "note" and value.strip():
        changes["note"] = value.strip()
    elif action == "reason" and value in resources.bot.intents:
        changes["corrected_reason"] = value
    else:
        return redirect(f"/mailbox/{item_id}?" + urlencode({"error": "nothing to change"}))
    try:
        await blocking(resources.mailbox.change, item_id, me, **changes)
    except TransitionError as exc:
        return redirect(f"/mailbox/{item_id}?" + urlencode({"error": str(exc)}))
    if action == "reason" and row.transcript:
        editor: FolderEditor = request.app.state.editor
        await blocking(editor.propose, item_id, row.transcript, value, me)
    return redirect(f"/mailbox/{item_id}")


@router.get("/progress")
async def progress(request: Request, principal: StaffPage) -> Response:
    resources = _resources(request)
    me = principal.user.username
    handled: dict[str, int] = await blocking(resources.mailbox.handled_reasons, me)
    editor: FolderEditor = request.app.state.editor
    corrections = await blocking(editor.correction_counts, me)
    return page(
        request,
        "progress.html",
        principal,
        handled=sum(handled.values()),
        reasons=Counter(handled).most_common(),
        proposed=sum(corrections.values()),
        accepted=corrections.get("accepted", 0),
        rejected=corrections.get("rejected", 0),
    )


def _local(moment: datetime, timezone: str, pattern: str = "%d/%m %H:%M") -> str:
    """A stored time on the centre's clock."""
    return moment.astimezone(ZoneInfo(timezone)).strftime(pattern)


def _row(row: MailboxItemRow, timezone: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "received": _local(row.created_at, timezone, "%d/%m/%Y %H:%M"),
        "caller": row.caller_number,
        "overflow_reason": row.overflow_reason,
        "reason": row.corrected_reason or row.detected_reason,
        "corrected": row.corrected_reason is not None,
        "confidence": row.reason_confidence,
        "duration": f"{int(row.duration_s) // 60}:{int(row.duration_s) % 60:02d}",
        "status": row.status,
        "assignee": row.assignee,
        "transcription": row.transcription,
        "excerpt": (row.transcript or "")[:140],
    }


def _reasons(resources: Resources) -> list[str]:
    overflow = ["closed", "no_agent", "queue_full", "not_understood", "caller_request"]
    return overflow + sorted(resources.bot.intents)
