"""JSON API of the overflow mailbox: list and filter messages, read one, stream its audio (HTTP ranges),
work it (status, assignee, notes, corrected reason), export as CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, field_validator

from callbot.access.guard import EVERYONE, AnyStaff, OpsUser, Require
from callbot.access.users import User, UserStore
from callbot.api_docs import CHANGES, STAFF, content, refusals
from callbot.errors import StorageError
from callbot.mailbox.items import STATUSES, ItemFilter, TransitionError
from callbot.mailbox.service import resolve_audio
from callbot.mailbox.store import ItemNotFound, MailboxStore
from callbot.resources import Resources
from callbot.storage.database import MAX_PAGE
from callbot.storage.tables import MailboxItemRow
from routing.actions import AnswerAction
from routing.bot_config import BotConfig

router = APIRouter(prefix="/api/mailbox", tags=["mailbox"], dependencies=[Depends(Require(EVERYONE))], responses=STAFF)
_ITEM_ID = re.compile(r"^[0-9a-f]{32}$")
_RANGE = re.compile(r"bytes=(\d+-\d*|-\d+)(\s*,\s*(\d+-\d*|-\d+))*")


class ItemSummary(BaseModel):
    id: str
    created_at: str
    caller_number: str
    overflow_reason: str
    detected_reason: str | None
    reason_confidence: float | None
    corrected_reason: str | None
    duration_s: float
    status: str
    assignee: str | None
    transcription: str
    excerpt: str
    has_audio: bool


class WordOut(BaseModel):
    word: str
    start: float
    end: float
    conf: float


class EventOut(BaseModel):
    at: str
    actor: str
    action: str
    details: dict[str, Any]


class ItemDetail(ItemSummary):
    call_id: str
    called_number: str
    language: str
    transcript: str | None
    words: list[WordOut]
    masked: list[str]
    entities: dict[str, Any]
    transcription_error: str | None
    audio_state: str
    notify_state: str
    suggested_answer: str | None
    """What the bot answers for this reason (from the bot's responses), when it answers it."""
    events: list[EventOut]


class ItemPage(BaseModel):
    items: list[ItemSummary]
    total: int
    page: int
    per_page: int
    counts: dict[str, int]


class ItemChange(BaseModel):
    status: Literal["new", "assigned", "in_progress", "called_back", "closed"] | None = None
    assignee: str | None = Field(default=None, description="a username, 'me', or '' to unassign")
    note: str | None = Field(default=None, max_length=4000)
    corrected_reason: str | None = Field(default=None, description="the intent this message is really about")

    @field_validator("assignee", "note", "corrected_reason")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("NUL characters are not accepted")
        return value


def _store(request: Request) -> MailboxStore:
    resources: Resources = request.app.state.resources
    return resources.mailbox


def invalid(location: tuple[str, ...], message: str, value: object) -> RequestValidationError:
    """A 422 whose body has the shape the OpenAPI document declares for validation errors (a list under
    ``detail``), for checks the parameter types cannot express."""
    return RequestValidationError([{"type": "value_error", "loc": location, "msg": message, "input": value}])


def _filter(
    user: User,
    status: str | None,
    reason: str | None,
    assignee: str | None,
    since: date | None,
    until: date | None,
    q: str | None,
    caller: str | None,
    transcription: str | None,
) -> ItemFilter:
    if status is not None and status not in STATUSES:
        raise invalid(("query", "status"), f"status must be one of {', '.join(STATUSES)}", status)
    return ItemFilter(
        status=status,
        reason=reason,
        assignee=user.username if assignee == "me" else assignee,
        since=datetime.combine(since, time.min, UTC) if since else None,
        until=datetime.combine(until, time.max, UTC) if until else None,
        text=q.strip() if q and q.strip() else None,
        caller=caller,
        transcription=transcription,
    )


@router.get("", response_model=ItemPage)
async def list_items(
    request: Request,
    user: AnyStaff,
    status: str | None = None,
    reason: str | None = None,
    assignee: str | None = Query(None, description="a username, or 'me'"),
    since: date | None = None,
    until: date | None = None,
    q: str | None = Query(None, max_length=200, description="words to find in transcripts"),
    caller: str | None = None,
    transcription: str | None = None,
    sort: Literal["newest", "oldest", "longest"] = "newest",
    page: int = Query(1, ge=1, le=MAX_PAGE),
    per_page: int = Query(50, ge=1, le=200),
) -> ItemPage:
    where = _filter(user, status, reason, assignee, since, until, q, caller, transcription)
    found = await blocking(_store(request).page, where, sort, page, per_page)
    return ItemPage(
        items=[_summary(row) for row in found.items],
        total=found.total,
        page=page,
        per_page=per_page,
        counts=found.counts,
    )


@router.get(
    "/export.csv",
    response_class=Response,
    responses={200: content("text/csv", "one message per row, UTF-8 with a byte-order mark")},
)
async def export_csv(
    request: Request,
    user: OpsUser,
    status: str | None = None,
    reason: str | None = None,
    assignee: str | None = None,
    since: date | None = None,
    until: date | None = None,
    q: str | None = Query(None, max_length=200),
    delimiter: Literal[",", ";"] = Query(",", description="';' for spreadsheets set to French"),
) -> Response:
    """Every message matching the filters, one per row (transcripts as stored: masked), UTF-8 with a byte-order
    mark so that spreadsheets read accents right."""
    rows = await blocking(
        _store(request).all_matching, _filter(user, status, reason, assignee, since, until, q, None, None)
    )
    return Response(
        content="\ufeff" + items_csv(rows, delimiter),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="mailbox.csv"'},
    )


@router.get("/{item_id}", response_model=ItemDetail, responses=refusals(404))
async def get_item(item_id: str, request: Request) -> ItemDetail:
    row = await load_item(_store(request), item_id)
    return _detail(row, request.app.state.resources)


@router.get(
    "/{item_id}/audio",
    response_class=FileResponse,
    responses={
        **refusals(404),
        200: content("audio/wav", "the whole recording", {"type": "string", "format": "binary"}),
        206: {
            "description": "the requested range (several ranges: multipart/byteranges)",
            "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}, "multipart/byteranges": {}},
        },
        416: content("text/plain", "the requested range is not satisfiable"),
    },
)
async def get_audio(
    item_id: str,
    request: Request,
    range_: Annotated[str | None, Header(alias="range", description="bytes=START-END, to seek")] = None,
) -> FileResponse:
    """The recording (WAV, 16-bit PCM, 8 kHz), with HTTP range requests for seeking."""
    if range_ is not None and not _RANGE.fullmatch(range_.strip()):
        # RFC 9110: a Range header that does not parse is ignored, and the whole file is sent
        request.scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k != b"range"]
    row = await load_item(_store(request), item_id)
    resources: Resources = request.app.state.resources
    path = resolve_audio(resources.settings.recordings_dir, row.audio_path) if row.audio_path else None
    if path is None or row.audio_state == "recording" or not path.is_file():
        raise HTTPException(status_code=404, detail="no recording for this message (purged, or still recording)")
    return FileResponse(
        path, media_type="audio/wav", filename=f"message-{row.id[:8]}.wav", content_disposition_type="inline"
    )


@router.patch("/{item_id}", response_model=ItemDetail, responses={**refusals(404, 409), **CHANGES})
async def change_item(item_id: str, change: ItemChange, request: Request, user: AnyStaff) -> ItemDetail:
    """Work a message. Status changes follow the workflow (409 otherwise); every change is audited."""
    resources: Resources = request.app.state.resources
    await load_item(_store(request), item_id)
    assignee, unassign = None, False
    if change.assignee == "":
        unassign = True
    elif change.assignee is not None:
        assignee = user.username if change.assignee == "me" else change.assignee
        users: UserStore = request.app.state.users
        known = {u.username for u in await users.arun(users.list_users)}
        if assignee not in known:
            raise invalid(("body", "assignee"), f"no user '{assignee[:64]}' to assign the message to", assignee)
    if change.corrected_reason is not None and change.corrected_reason not in resources.bot.intents:
        reason = change.corrected_reason
        raise invalid(("body", "corrected_reason"), f"unknown intent '{reason[:64]}'", reason)
    try:
        row = await blocking(
            resources.mailbox.change,
            item_id,
            user.username,
            status=change.status,
            assignee=assignee,
            unassign=unassign,
            note=change.note.strip() if change.note else None,
            corrected_reason=change.corrected_reason,
        )
    except TransitionError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    return _detail(row, resources)


async def load_item(store: MailboxStore, item_id: str) -> MailboxItemRow:
    """The message ``item_id``, or 404 (also for anything that is not one of our ids)."""
    if not _ITEM_ID.match(item_id):
        raise HTTPException(status_code=404, detail="no such message")
    try:
        row: MailboxItemRow = await blocking(store.get, item_id)
    except ItemNotFound as exc:
        raise HTTPException(status_code=404, detail="no such message") from exc
    return row


async def blocking(function: Any, *args: Any, **kwargs: Any) -> Any:
    """A blocking store call off the event loop; a database outage is a 503."""
    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except StorageError as exc:
        raise HTTPException(status_code=503, detail=f"database unavailable: {exc}") from exc


def suggested_answer(bot: BotConfig, row: MailboxItemRow) -> str | None:
    """What the bot answers for the message's reason (corrected, else detected), when it answers it."""
    action = bot.intents.get(row.corrected_reason or row.detected_reason or "")
    return bot.pick_response(action.response, {}) if isinstance(action, AnswerAction) else None


def _summary(row: MailboxItemRow) -> ItemSummary:
    return ItemSummary(
        id=row.id,
        created_at=_iso(row.created_at),
        caller_number=row.caller_number,
        overflow_reason=row.overflow_reason,
        detected_reason=row.detected_reason,
        reason_confidence=row.reason_confidence,
        corrected_reason=row.corrected_reason,
        duration_s=row.duration_s,
        status=row.status,
        assignee=row.assignee,
        transcription=row.transcription,
        excerpt=(row.transcript or "")[:160],
        has_audio=bool(row.audio_path) and row.audio_state in ("complete", "recovered"),
    )


def _detail(row: MailboxItemRow, resources: Resources) -> ItemDetail:
    return ItemDetail(
        **_summary(row).model_dump(),
        call_id=row.call_id,
        called_number=row.called_number,
        language=row.language,
        transcript=row.transcript,
        words=[WordOut(word=w[0], start=w[1], end=w[2], conf=w[3]) for w in (row.words or [])],
        masked=list(row.masked or []),
        entities=dict(row.entities or {}),
        transcription_error=row.transcription_error,
        audio_state=row.audio_state,
        notify_state=row.notify_state,
        suggested_answer=suggested_answer(resources.bot, row),
        events=[EventOut(at=_iso(e.at), actor=e.actor, action=e.action, details=e.details) for e in row.events],
    )


def items_csv(rows: list[MailboxItemRow], delimiter: str = ",") -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(
        [
            "id",
            "received_at",
            "caller",
            "overflow_reason",
            "detected_reason",
            "confidence",
            "corrected_reason",
            "duration_s",
            "status",
            "assignee",
            "transcription",
            "transcript",
        ]
    )
    for row in rows:
        writer.writerow(
            [
                row.id,
                _iso(row.created_at),
                _csv_safe(row.caller_number),
                _csv_safe(row.overflow_reason),
                _csv_safe(row.detected_reason or ""),
                "" if row.reason_confidence is None else f"{row.reason_confidence:.3f}",
                _csv_safe(row.corrected_reason or ""),
                f"{row.duration_s:.1f}",
                row.status,
                _csv_safe(row.assignee or ""),
                row.transcription,
                _csv_safe(row.transcript or ""),
            ]
        )
    return out.getvalue()


_PHONE_NUMBER = re.compile(r"\+?[0-9]{1,20}")


def _csv_safe(text: str) -> str:
    """A cell starting with = + - @ (or a tab, a carriage return) runs as a formula in spreadsheets: what callers
    and their phones sent stays text. A plain phone number (``+33612345678``) cannot run and is left as it is."""
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _PHONE_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _iso(moment: datetime) -> str:
    return moment.isoformat()
