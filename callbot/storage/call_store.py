"""Recording calls and turns. Async methods run the blocking database work off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from callbot.call.outcome import CallOutcome, target_to_json
from callbot.errors import StorageError
from callbot.storage.database import in_transaction
from callbot.storage.tables import AgentStatusRow, CallRow, TurnRow

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TurnRecord:
    speaker: str  # "caller", "bot" or "dtmf"
    text: str
    intent: str | None = None
    confidence: float | None = None
    entities: dict[str, Any] = field(default_factory=dict)
    action: str | None = None
    decision: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


__all__ = ["CallOutcome", "CallStore", "TurnRecord"]


class CallStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    async def create_call(
        self,
        call_id: str,
        *,
        provider: str,
        provider_call_id: str,
        from_number: str,
        to_number: str,
        bot: str,
        language: str,
        streams_allowed: int = 0,
    ) -> None:
        """A new call, ``ringing``; ``streams_allowed`` media streams may be opened for it later (a transport
        whose stream creates the call has already opened its one)."""
        row = CallRow(
            id=call_id,
            provider=provider,
            provider_call_id=provider_call_id,
            from_number=from_number,
            to_number=to_number,
            bot=bot,
            language=language,
            status="ringing",
            created_at=datetime.now(UTC),
            degraded=[],
            streams_allowed=streams_allowed,
        )
        await self._run(lambda s: s.add(row))

    async def claim_stream(self, call_id: str) -> bool:
        """Use up one of the call's granted media streams; False when none is left (a replayed or second
        stream, a call that ended). Atomic, whichever instance asks."""

        def claim(s: Session) -> bool:
            claimed = s.execute(
                update(CallRow)
                .where(CallRow.id == call_id, CallRow.streams_allowed > 0)
                .values(streams_allowed=CallRow.streams_allowed - 1)
            )
            return bool(claimed.rowcount)  # type: ignore[attr-defined]

        return await self._run(claim)

    async def grant_stream(self, call_id: str) -> None:
        """Let the call open one more media stream (to take a message after its dialogue ended)."""
        await self._run(lambda s: s.execute(update(CallRow).where(CallRow.id == call_id).values(streams_allowed=1)))

    async def still_on(self, call_ids: list[str]) -> None:
        """The calls this instance carries are still on (see ``expire_stale``)."""
        if call_ids:
            now = datetime.now(UTC)
            await self._run(lambda s: s.execute(update(CallRow).where(CallRow.id.in_(call_ids)).values(seen_at=now)))

    async def expire_stale(self, ringing_before: datetime, unseen_before: datetime) -> tuple[int, int]:
        """Close the calls that will never end on their own: ``ringing`` since before ``ringing_before`` (the
        webhook came, no stream ever did) become ``expired``; ``in_progress`` ones no instance has reported
        since ``unseen_before`` (the instance carrying them crashed) become ``interrupted``. How many of each."""
        now = datetime.now(UTC)

        def close(s: Session) -> tuple[int, int]:
            expired = s.execute(
                update(CallRow)
                .where(CallRow.status == "ringing", CallRow.created_at < ringing_before)
                .values(status="expired", ended_at=now, streams_allowed=0)
            )
            interrupted = s.execute(
                update(CallRow)
                .where(
                    CallRow.status == "in_progress",
                    func.coalesce(CallRow.seen_at, CallRow.stream_started_at, CallRow.created_at) < unseen_before,
                )
                .values(status="interrupted", ended_at=now, streams_allowed=0)
            )
            return expired.rowcount, interrupted.rowcount  # type: ignore[attr-defined]

        return await self._run(close)

    async def close_instance_calls(self, instance: str | None) -> int:
        """At startup: the calls this instance carried when it stopped (all of them with ``None``, one instance
        on SQLite) are closed as ``interrupted``; how many."""
        now = datetime.now(UTC)
        carried = [CallRow.status == "in_progress"]
        if instance is not None:
            carried.append(CallRow.instance == instance)
        stmt = update(CallRow).where(*carried).values(status="interrupted", ended_at=now, streams_allowed=0)
        return await self._run(lambda s: int(s.execute(stmt).rowcount))  # type: ignore[attr-defined]

    async def ringing_call(self, provider: str, provider_call_id: str) -> str | None:
        """Our id of the provider's call when it is still ringing here (a webhook sent again for it)."""

        def find(s: Session) -> str | None:
            query = select(CallRow.id).where(
                CallRow.provider == provider, CallRow.provider_call_id == provider_call_id, CallRow.status == "ringing"
            )
            return s.scalar(query.limit(1))

        return await self._run(find)

    async def call_exists(self, call_id: str) -> bool:
        return await self._run(lambda s: s.get(CallRow, call_id) is not None)

    async def mark_started(
        self,
        call_id: str,
        degraded: list[str],
        transport: str | None = None,
        line_codec: str | None = None,
        instance: str | None = None,
    ) -> None:
        def update(s: Session) -> None:
            row = _get(s, call_id)
            row.status = "in_progress"
            row.instance = instance
            row.stream_started_at = row.seen_at = datetime.now(UTC)
            row.degraded = degraded
            row.transport = transport or row.transport
            row.line_codec = line_codec or row.line_codec

        await self._run(update)

    async def add_turns(self, call_id: str, turns: list[TurnRecord]) -> None:
        def insert(s: Session) -> None:
            last = s.scalar(select(func.max(TurnRow.seq)).where(TurnRow.call_id == call_id)) or 0
            for offset, turn in enumerate(turns, start=1):
                s.add(
                    TurnRow(
                        call_id=call_id,
                        seq=last + offset,
                        speaker=turn.speaker,
                        text=turn.text,
                        intent=turn.intent,
                        confidence=turn.confidence,
                        entities=turn.entities,
                        action=turn.action,
                        decision=turn.decision,
                        latency_ms=turn.latency_ms,
                        created_at=turn.at,
                    )
                )

        await self._run(insert)

    async def record_decision(self, call_id: str, outcome: CallOutcome) -> None:
        """The bot's decision, stored before the line is handed back: whichever instance the provider's callback
        reaches carries it out (the call is completed later, when its stream has closed)."""
        await self._run(lambda s: _set_outcome(_get(s, call_id), outcome))

    async def finish_call(
        self, call_id: str, outcome: CallOutcome, first_audio_ms: float | None, degraded: list[str] | None = None
    ) -> None:
        """Record the outcome; ``degraded`` replaces the components recorded as unavailable at the start
        (a stage may have failed during the call)."""

        def update(s: Session) -> None:
            row = _get(s, call_id)
            row.status = "completed"
            _set_outcome(row, outcome)
            row.ended_at = datetime.now(UTC)
            if first_audio_ms is not None:
                row.first_audio_ms = first_audio_ms
            if degraded is not None:
                row.degraded = sorted(set(degraded))

        await self._run(update)

    async def interrupt_call(self, call_id: str, first_audio_ms: float | None, degraded: list[str]) -> None:
        """The call's media stream broke before a decision: no outcome yet (the failover that takes the caller
        on records one)."""

        def mark(s: Session) -> None:
            row = _get(s, call_id)
            row.status = "interrupted"
            row.ended_at = datetime.now(UTC)
            if first_audio_ms is not None:
                row.first_audio_ms = first_audio_ms
            row.degraded = sorted(set(degraded))

        await self._run(mark)

    async def record_transfer_result(self, call_id: str, result: str, wait_s: float | None) -> None:
        """What became of a transfer, as the provider reported it (answered, busy, no-answer, bridged...)."""

        def update(s: Session) -> None:
            row = _get(s, call_id)
            row.transfer_result = result[:32]
            row.transfer_wait_s = wait_s

        await self._run(update)

    async def agent_statuses(self) -> dict[str, str]:
        return await self._run(lambda s: {row.agent_id: row.status for row in s.scalars(select(AgentStatusRow))})

    async def set_agent_status(self, agent_id: str, status: str, by: str) -> None:
        def upsert(s: Session) -> None:
            row = s.get(AgentStatusRow, agent_id)
            if row is None:
                row = AgentStatusRow(agent_id=agent_id)
                s.add(row)
            row.status, row.updated_at, row.updated_by = status, datetime.now(UTC), by[:64]

        await self._run(upsert)

    async def get_call(self, call_id: str) -> CallRow | None:
        def load(s: Session) -> CallRow | None:
            return s.scalar(select(CallRow).options(selectinload(CallRow.turns)).where(CallRow.id == call_id))

        return await self._run(load)

    async def list_calls(self, limit: int = 50, offset: int = 0, provider_call_id: str | None = None) -> list[CallRow]:
        def load(s: Session) -> list[CallRow]:
            query = select(CallRow).order_by(CallRow.created_at.desc()).limit(limit).offset(offset)
            if provider_call_id is not None:
                query = query.where(CallRow.provider_call_id == provider_call_id)
            return list(s.scalars(query))

        return await self._run(load)

    async def calls_of_caller(self, number: str) -> list[CallRow]:
        """Every call from ``number``, with its turns (a caller's data, for an access request)."""

        def load(s: Session) -> list[CallRow]:
            query = (
                select(CallRow)
                .options(selectinload(CallRow.turns))
                .where(CallRow.from_number == number)
                .order_by(CallRow.created_at)
            )
            return list(s.scalars(query))

        return await self._run(load)

    async def erase_caller(self, number: str) -> int:
        """Delete every call from ``number`` with its turns; how many calls."""

        def erase(s: Session) -> int:
            rows = list(s.scalars(select(CallRow).where(CallRow.from_number == number)))
            for row in rows:
                s.delete(row)
            return len(rows)

        return await self._run(erase)

    async def purge_turn_texts(self, before: datetime) -> int:
        """Blank what was said in calls older than ``before`` (transcript retention); how many turns."""

        def purge(s: Session) -> int:
            old = select(CallRow.id).where(CallRow.created_at < before)
            turns = list(s.scalars(select(TurnRow).where(TurnRow.call_id.in_(old), TurnRow.text != "")))
            for turn in turns:
                turn.text = ""
                turn.entities = {}
                if "words" in turn.decision or "nlu_text" in turn.decision:
                    turn.decision = {k: v for k, v in turn.decision.items() if k not in ("words", "nlu_text")}
            return len(turns)

        return await self._run(purge)

    async def ping(self) -> None:
        await self._run(lambda s: s.execute(text("SELECT 1")))

    async def _run(self, work: Callable[[Session], T]) -> T:
        return await asyncio.to_thread(self._transaction, work)

    def _transaction(self, work: Callable[[Session], T]) -> T:
        return in_transaction(self._sessions, work)


def _set_outcome(row: CallRow, outcome: CallOutcome) -> None:
    row.outcome = outcome.outcome
    row.outcome_reason = outcome.reason
    row.transfer_queue = outcome.queue
    row.transfer_target = outcome.target_text
    row.transfer = target_to_json(outcome.target)
    row.transfer_skill = outcome.skill


def _get(session: Session, call_id: str) -> CallRow:
    row = session.get(CallRow, call_id)
    if row is None:
        raise StorageError(f"call {call_id} does not exist")
    return row
