"""The mailbox in the database: items, their audit trail, and the persistent queues of transcription and
e-mail notification work (a restart resumes them). Blocking: call from a thread (``asyncio.to_thread``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from callbot.mailbox.items import STATUSES, ItemFilter, check_transition
from callbot.mailbox.recording import MessageMeta
from callbot.storage.database import in_transaction
from callbot.storage.tables import CallRow, MailboxEventRow, MailboxItemRow

T = TypeVar("T")
MAX_TRANSCRIPTION_ATTEMPTS = 3
LEASE = timedelta(minutes=10)
NOTIFY_LEASE = timedelta(minutes=2)
"""Longer than an SMTP exchange with its timeouts: an e-mail is taken again only when its sender died."""


class ItemNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class TranscriptionJob:
    item_id: str
    audio_path: str
    language: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Transcribed:
    transcript: str
    words: list[list[Any]]
    masked: list[str]
    transcript_raw: str | None
    words_raw: list[list[Any]] | None


@dataclass(frozen=True, slots=True)
class Classified:
    reason: str | None
    confidence: float | None
    entities: dict[str, str]


@dataclass(frozen=True, slots=True)
class Page:
    items: list[MailboxItemRow]
    total: int
    counts: dict[str, int]


class MailboxStore:
    def __init__(self, engine: Engine, *, notify: bool = False) -> None:
        self.engine = engine
        self.notify = notify
        """Whether new messages are queued for e-mail notification (SMTP configured)."""
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # --- recording -------------------------------------------------------------------------------------------

    def create(self, meta: MessageMeta, audio_path: str) -> None:
        """The item exists as soon as recording starts, so that a crash leaves a trace to recover."""
        now = _now()
        row = MailboxItemRow(
            id=meta.item_id,
            call_id=meta.call_id,
            caller_number=meta.caller[:64],
            called_number=meta.called[:64],
            language=meta.language,
            created_at=datetime.fromisoformat(meta.started_at),
            overflow_reason=meta.reason,
            duration_s=0.0,
            audio_path=audio_path,
            audio_state="recording",
            status="new",
            transcription="pending_transcription",
            transcription_attempts=0,
            classified=False,
            entities={},
            masked=[],
            notify_state="off",
            notify_attempts=0,
            updated_at=now,
        )

        def insert(s: Session) -> None:
            s.add(row)
            s.add(_event(meta.item_id, "system", "created", {"reason": meta.reason, "call_id": meta.call_id}))

        self._run(insert)

    def finish_recording(self, item_id: str, duration_s: float, *, recovered: bool = False) -> None:
        def done(s: Session) -> None:
            row = self._get(s, item_id)
            row.duration_s = round(duration_s, 3)
            row.audio_state = "recovered" if recovered else "complete"
            row.transcription_next_at = _now()
            row.updated_at = _now()
            if self.notify and row.notify_state == "off":
                row.notify_state = "pending"
            action = "recovered" if recovered else "recorded"
            s.add(_event(item_id, "system", action, {"duration_s": round(duration_s, 2)}))

        self._run(done)

    def recover(self, meta: MessageMeta, audio_path: str, duration_s: float) -> bool:
        """File a message recorded while the database was down, or finish one a crash interrupted. True when
        something was done."""
        existing = self._run(lambda s: s.get(MailboxItemRow, meta.item_id))
        if existing is None:
            self.create(meta, audio_path)
        elif existing.audio_state != "recording":
            return False
        self.finish_recording(meta.item_id, duration_s, recovered=True)
        return True

    def calls_in_progress(self, call_ids: list[str]) -> set[str]:
        """Those of ``call_ids`` an instance still carries (their messages may still be being recorded)."""
        if not call_ids:
            return set()
        query = select(CallRow.id).where(CallRow.id.in_(call_ids), CallRow.status == "in_progress")
        return self._run(lambda s: set(s.scalars(query)))

    def recording_items(self) -> list[tuple[str, str]]:
        """(item id, audio path) of messages still marked as being recorded."""
        query = select(MailboxItemRow.id, MailboxItemRow.audio_path).where(MailboxItemRow.audio_state == "recording")
        return self._run(lambda s: [(i, p or "") for i, p in s.execute(query)])

    # --- transcription queue ---------------------------------------------------------------------------------

    def claim_transcription(self, readable: Callable[[str], bool] | None = None) -> TranscriptionJob | None:
        """The next message to transcribe, leased to this worker (a worker that dies releases it when the lease
        ends). ``readable``: only a message whose recording this instance can read (several instances without
        shared storage: the one that recorded it transcribes it)."""
        now = _now()

        def claim(s: Session) -> TranscriptionJob | None:
            due = and_(
                MailboxItemRow.audio_state.in_(("complete", "recovered")),
                or_(
                    MailboxItemRow.transcription == "pending_transcription",
                    and_(
                        MailboxItemRow.transcription == "transcribing", MailboxItemRow.transcription_lease_until < now
                    ),
                ),
                or_(MailboxItemRow.transcription_next_at.is_(None), MailboxItemRow.transcription_next_at <= now),
            )
            candidates = s.scalars(
                select(MailboxItemRow)
                .where(due)
                .order_by(MailboxItemRow.created_at)
                .limit(1 if readable is None else 50)
            )
            candidate = next((c for c in candidates if readable is None or readable(c.audio_path or "")), None)
            if candidate is None:
                return None
            claimed = s.execute(
                update(MailboxItemRow)
                .where(MailboxItemRow.id == candidate.id, due)
                .values(
                    transcription="transcribing",
                    transcription_lease_until=now + LEASE,
                    transcription_attempts=MailboxItemRow.transcription_attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(claimed, "rowcount", 0) != 1:  # another worker took it
                return None
            return TranscriptionJob(
                candidate.id, candidate.audio_path or "", candidate.language, candidate.transcription_attempts + 1
            )

        return self._run(claim)

    def save_transcription(self, item_id: str, result: Transcribed, classified: Classified | None) -> None:
        def save(s: Session) -> None:
            row = self._get(s, item_id)
            row.transcription = "transcribed"
            row.transcript, row.words = result.transcript, result.words
            row.transcript_raw, row.words_raw = result.transcript_raw, result.words_raw
            row.masked = result.masked
            row.transcription_error = None
            row.transcription_lease_until = None
            _apply_classification(row, classified)
            row.updated_at = _now()
            details = {"words": len(result.words), "masked": result.masked}
            s.add(_event(item_id, "system", "transcribed", details))
            if classified is not None:
                s.add(_event(item_id, "system", "classified", _classification_details(classified)))

        self._run(save)

    def fail_transcription(self, item_id: str, error: str, *, retry_in: timedelta | None) -> str:
        """Record a failed attempt: retried later, or ``transcription_failed`` when the attempts are spent."""

        def fail(s: Session) -> str:
            row = self._get(s, item_id)
            final = retry_in is None or row.transcription_attempts >= MAX_TRANSCRIPTION_ATTEMPTS
            row.transcription = "transcription_failed" if final else "pending_transcription"
            row.transcription_error = error[:2000]
            row.transcription_lease_until = None
            row.transcription_next_at = None if final or retry_in is None else _now() + retry_in
            row.updated_at = _now()
            s.add(
                _event(
                    item_id,
                    "system",
                    "transcription_failed" if final else "transcription_retry",
                    {"error": error[:500]},
                )
            )
            return row.transcription

        return self._run(fail)

    def unclassified(self, limit: int = 20) -> list[tuple[str, str, str]]:
        """(item id, transcript, language) of transcribed messages the NLU has not classified yet."""
        query = (
            select(MailboxItemRow.id, MailboxItemRow.transcript, MailboxItemRow.language)
            .where(MailboxItemRow.transcription == "transcribed", MailboxItemRow.classified.is_(False))
            .order_by(MailboxItemRow.created_at)
            .limit(limit)
        )
        return self._run(lambda s: [(i, t or "", lang) for i, t, lang in s.execute(query)])

    def save_classification(self, item_id: str, classified: Classified) -> None:
        def save(s: Session) -> None:
            row = self._get(s, item_id)
            _apply_classification(row, classified)
            row.updated_at = _now()
            s.add(_event(item_id, "system", "classified", _classification_details(classified)))

        self._run(save)

    # --- notifications ---------------------------------------------------------------------------------------

    def claim_notifications(self, limit: int = 10, *, transcribed: bool = False) -> list[MailboxItemRow]:
        """Messages whose e-mail is due, each leased to this worker so that whichever instance claims it sends it
        and no other does (one whose sender died is taken again when the lease ends). ``transcribed``: only once
        transcription has ended (a speech model is installed, so the transcript may still come)."""
        now = _now()
        due = and_(
            MailboxItemRow.audio_state.in_(("complete", "recovered")),
            or_(
                and_(
                    MailboxItemRow.notify_state == "pending",
                    or_(MailboxItemRow.notify_next_at.is_(None), MailboxItemRow.notify_next_at <= now),
                ),
                and_(MailboxItemRow.notify_state == "sending", MailboxItemRow.notify_lease_until < now),
            ),
        )
        if transcribed:
            due = and_(due, MailboxItemRow.transcription.in_(("transcribed", "transcription_failed")))

        def claim(s: Session) -> list[MailboxItemRow]:
            ids = list(s.scalars(select(MailboxItemRow.id).where(due).order_by(MailboxItemRow.created_at).limit(limit)))
            claimed = []
            for item_id in ids:
                taken = s.execute(
                    update(MailboxItemRow)
                    .where(MailboxItemRow.id == item_id, due)
                    .values(notify_state="sending", notify_lease_until=now + NOTIFY_LEASE)
                    .execution_options(synchronize_session=False)
                )
                if getattr(taken, "rowcount", 0) == 1:  # else another instance took it
                    claimed.append(item_id)
            return list(s.scalars(select(MailboxItemRow).where(MailboxItemRow.id.in_(claimed)))) if claimed else []

        return self._run(claim)

    def notification_result(self, item_id: str, error: str | None, retry_in: timedelta | None) -> None:
        def save(s: Session) -> None:
            row = self._get(s, item_id)
            row.notify_attempts += 1
            row.notify_lease_until = None
            if error is None:
                row.notify_state, row.notify_error = "sent", None
                s.add(_event(item_id, "system", "notified", {"attempts": row.notify_attempts}))
            elif retry_in is None:
                row.notify_state, row.notify_error = "failed", error[:1000]
                s.add(_event(item_id, "system", "notification_failed", {"error": error[:500]}))
            else:
                row.notify_state = "pending"
                row.notify_error, row.notify_next_at = error[:1000], _now() + retry_in

        self._run(save)

    # --- staff -----------------------------------------------------------------------------------------------

    def page(self, where: ItemFilter, sort: str = "newest", page: int = 1, per_page: int = 50) -> Page:
        conditions = _conditions(where)
        orders: dict[str, Any] = {
            "newest": MailboxItemRow.created_at.desc(),
            "oldest": MailboxItemRow.created_at.asc(),
            "longest": MailboxItemRow.duration_s.desc(),
        }
        order = orders.get(sort, orders["newest"])

        def load(s: Session) -> Page:
            base = select(MailboxItemRow).where(*conditions)
            total = s.scalar(select(func.count()).select_from(base.subquery())) or 0
            rows = list(
                s.scalars(base.order_by(order, MailboxItemRow.id).offset((page - 1) * per_page).limit(per_page))
            )
            count_conditions = _conditions(replace(where, status=None))
            counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
            for status, count in s.execute(
                select(MailboxItemRow.status, func.count()).where(*count_conditions).group_by(MailboxItemRow.status)
            ):
                counts[status] = count
            return Page(rows, int(total), counts)

        return self._run(load)

    def backlog(self) -> dict[str, int]:
        """Messages waiting for work, by kind: ``new`` (nobody took them), ``transcription`` (pending or being
        transcribed), ``notification`` (an e-mail not sent yet)."""

        def count(s: Session) -> dict[str, int]:
            def n(*where: Any) -> int:
                return int(s.scalar(select(func.count()).select_from(MailboxItemRow).where(*where)) or 0)

            return {
                "new": n(MailboxItemRow.status == "new"),
                "transcription": n(MailboxItemRow.transcription.in_(("pending_transcription", "transcribing"))),
                "notification": n(MailboxItemRow.notify_state.in_(("pending", "sending"))),
            }

        return self._run(count)

    def handled_reasons(self, username: str) -> dict[str, int]:
        """Messages ``username`` brought to called back or closed, by reason (corrected, detected, overflow)."""
        reason = func.coalesce(
            MailboxItemRow.corrected_reason, MailboxItemRow.detected_reason, MailboxItemRow.overflow_reason
        )
        query = (
            select(reason, func.count())
            .where(MailboxItemRow.assignee == username, MailboxItemRow.status.in_(("called_back", "closed")))
            .group_by(reason)
        )
        return self._run(lambda s: {str(r): int(c) for r, c in s.execute(query)})

    def all_matching(self, where: ItemFilter) -> list[MailboxItemRow]:
        query = select(MailboxItemRow).where(*_conditions(where)).order_by(MailboxItemRow.created_at.desc())
        return self._run(lambda s: list(s.scalars(query)))

    def get(self, item_id: str) -> MailboxItemRow:
        def load(s: Session) -> MailboxItemRow:
            row = s.scalar(
                select(MailboxItemRow).options(selectinload(MailboxItemRow.events)).where(MailboxItemRow.id == item_id)
            )
            if row is None:
                raise ItemNotFound(item_id)
            return row

        return self._run(load)

    def change(
        self,
        item_id: str,
        actor: str,
        *,
        status: str | None = None,
        assignee: str | None = None,
        unassign: bool = False,
        note: str | None = None,
        corrected_reason: str | None = None,
    ) -> MailboxItemRow:
        """Apply a staff change; every field changed leaves an audit event. Raises TransitionError (nothing is
        changed) when the status change is not allowed."""

        def apply(s: Session) -> MailboxItemRow:
            row = self._get(s, item_id)
            events: list[MailboxEventRow] = []
            new_status = status
            if assignee is not None and assignee != row.assignee:
                events.append(_event(item_id, actor, "assigned", {"from": row.assignee, "to": assignee}))
                row.assignee = assignee
                if new_status is None and row.status == "new":
                    new_status = "assigned"
            if unassign and row.assignee is not None:
                events.append(_event(item_id, actor, "unassigned", {"from": row.assignee}))
                row.assignee = None
                if new_status is None and row.status == "assigned":
                    new_status = "new"
            if new_status is not None and new_status != row.status:
                check_transition(row.status, new_status)
                events.append(_event(item_id, actor, "status", {"from": row.status, "to": new_status}))
                row.status = new_status
            if corrected_reason is not None and corrected_reason != row.corrected_reason:
                events.append(
                    _event(item_id, actor, "reason_corrected", {"from": row.detected_reason, "to": corrected_reason})
                )
                row.corrected_reason = corrected_reason
            if note:
                events.append(_event(item_id, actor, "note", {"text": note[:4000]}))
            if events:
                row.updated_at = _now()
                s.add_all(events)
            return row

        self._run(apply)
        return self.get(item_id)

    # --- retention and personal data ------------------------------------------------------------------------

    def audio_older_than(self, moment: datetime) -> list[tuple[str, str]]:
        query = select(MailboxItemRow.id, MailboxItemRow.audio_path).where(
            MailboxItemRow.created_at < moment,
            MailboxItemRow.audio_path.is_not(None),
            MailboxItemRow.audio_state != "recording",
        )
        return self._run(lambda s: [(i, p) for i, p in s.execute(query) if p])

    def forget_audio(self, item_id: str) -> None:
        def forget(s: Session) -> None:
            row = self._get(s, item_id)
            row.audio_path, row.audio_state = None, "purged"
            s.add(_event(item_id, "system", "audio_purged", {}))

        self._run(forget)

    def purge_transcripts(self, moment: datetime) -> int:
        def purge(s: Session) -> int:
            rows = list(
                s.scalars(
                    select(MailboxItemRow).where(
                        MailboxItemRow.created_at < moment, MailboxItemRow.transcript.is_not(None)
                    )
                )
            )
            for row in rows:
                row.transcript = row.words = row.transcript_raw = row.words_raw = None
                row.entities = {}
                s.add(_event(row.id, "system", "transcript_purged", {}))
            return len(rows)

        return self._run(purge)

    def items_of_caller(self, number: str) -> list[MailboxItemRow]:
        query = (
            select(MailboxItemRow)
            .options(selectinload(MailboxItemRow.events))
            .where(MailboxItemRow.caller_number == number)
            .order_by(MailboxItemRow.created_at)
        )
        return self._run(lambda s: list(s.scalars(query)))

    def delete_items(self, item_ids: list[str]) -> None:
        def delete_all(s: Session) -> None:
            for item_id in item_ids:
                row = s.get(MailboxItemRow, item_id)
                if row is not None:
                    s.delete(row)

        self._run(delete_all)

    # --- plumbing --------------------------------------------------------------------------------------------

    def _get(self, s: Session, item_id: str) -> MailboxItemRow:
        row = s.get(MailboxItemRow, item_id)
        if row is None:
            raise ItemNotFound(item_id)
        return row

    def _run(self, work: Callable[[Session], T]) -> T:
        return in_transaction(self._sessions, work)


def _conditions(where: ItemFilter) -> list[Any]:
    conditions: list[Any] = []
    if where.status:
        conditions.append(MailboxItemRow.status == where.status)
    if where.reason:
        conditions.append(
            or_(
                MailboxItemRow.overflow_reason == where.reason,
                MailboxItemRow.corrected_reason == where.reason,
                and_(MailboxItemRow.corrected_reason.is_(None), MailboxItemRow.detected_reason == where.reason),
            )
        )
    if where.assignee:
        conditions.append(MailboxItemRow.assignee == where.assignee)
    if where.since:
        conditions.append(MailboxItemRow.created_at >= where.since)
    if where.until:
        conditions.append(MailboxItemRow.created_at < where.until)
    if where.caller:
        conditions.append(MailboxItemRow.caller_number == where.caller)
    if where.transcription:
        conditions.append(MailboxItemRow.transcription == where.transcription)
    if where.text:
        pattern = "%" + where.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(func.lower(MailboxItemRow.transcript).like(pattern, escape="\\"))
    return conditions


def _apply_classification(row: MailboxItemRow, classified: Classified | None) -> None:
    if classified is None:
        row.classified = False
        return
    row.classified = True
    row.detected_reason, row.reason_confidence = classified.reason, classified.confidence
    row.entities = dict(classified.entities)


def _classification_details(classified: Classified) -> dict[str, Any]:
    return {"reason": classified.reason, "confidence": classified.confidence, "entities": sorted(classified.entities)}


def _event(item_id: str, actor: str, action: str, details: dict[str, Any]) -> MailboxEventRow:
    return MailboxEventRow(item_id=item_id, at=_now(), actor=actor[:64], action=action, details=details)


def _now() -> datetime:
    return datetime.now(UTC)
