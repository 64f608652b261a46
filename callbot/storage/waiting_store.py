"""Calls waiting in the queues, shared by every instance on the database: a queue's ``max_length`` and
estimated wait count the calls every instance handed to it. Admission is atomic: on PostgreSQL under an
advisory lock per queue, so two instances deciding at the same instant cannot both take the last place."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import Engine, delete, select, text
from sqlalchemy.orm import Session, sessionmaker

from callbot.storage.database import in_transaction
from callbot.storage.tables import WaitingCallRow

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Waiting:
    call_id: str
    queue: str
    priority: int
    since: datetime


class WaitingStore:
    def __init__(self, engine: Engine, bot: str) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._postgres = engine.dialect.name == "postgresql"
        self._local = asyncio.Lock()
        """SQLite serves one instance: this lock alone makes admission atomic there."""
        self.bot = bot

    async def admit(
        self,
        call_id: str,
        queue: str,
        priority: int,
        *,
        fits: Callable[[tuple[int, ...]], bool] | None,
        expires_in: timedelta,
    ) -> bool:
        """Put the call in ``queue`` if ``fits`` says the queue still takes it, given the priorities of the calls
        waiting there now (None: placed without a choice, as the failover). False when the queue filled since
        the decision."""
        now = datetime.now(UTC)

        def enter(s: Session) -> bool:
            if self._postgres:
                key = zlib.crc32(f"callbot-queue:{self.bot}:{queue}".encode())
                s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            if fits is not None:
                priorities = s.scalars(
                    select(WaitingCallRow.priority).where(
                        WaitingCallRow.bot == self.bot,
                        WaitingCallRow.queue == queue,
                        WaitingCallRow.expires_at > now,
                        WaitingCallRow.call_id != call_id,
                    )
                )
                if not fits(tuple(priorities)):
                    return False
            s.merge(
                WaitingCallRow(
                    call_id=call_id,
                    bot=self.bot,
                    queue=queue,
                    priority=priority,
                    since=now,
                    expires_at=now + expires_in,
                )
            )
            return True

        async with self._local:
            return await self._run(enter)

    async def leave(self, call_id: str) -> tuple[str, float] | None:
        """The queue the call waited in and for how long (it has left it), or None if it was not waiting."""

        def remove(s: Session) -> tuple[str, float] | None:
            row = s.get(WaitingCallRow, call_id)
            if row is None:
                return None
            s.delete(row)
            return row.queue, (datetime.now(UTC) - row.since).total_seconds()

        return await self._run(remove)

    async def waiting(self) -> list[Waiting]:
        """Every call waiting in this bot's queues now, whichever instance placed it."""
        now = datetime.now(UTC)
        query = select(WaitingCallRow).where(WaitingCallRow.bot == self.bot, WaitingCallRow.expires_at > now)
        return await self._run(lambda s: [Waiting(r.call_id, r.queue, r.priority, r.since) for r in s.scalars(query)])

    async def expire(self) -> int:
        """Forget the calls the provider never reported on, past their queue's longest wait."""
        now = datetime.now(UTC)
        stmt = delete(WaitingCallRow).where(WaitingCallRow.expires_at <= now)
        return await self._run(lambda s: int(s.execute(stmt).rowcount))  # type: ignore[attr-defined]

    async def _run(self, work: Callable[[Session], T]) -> T:
        return await asyncio.to_thread(in_transaction, self._sessions, work)
