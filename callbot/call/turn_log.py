"""Writes a call's turns to the database without holding up the call; keeps them when the database is down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from callbot.errors import StorageError
from callbot.storage.call_store import CallStore, TurnRecord


class TurnLog:
    def __init__(self, store: CallStore, call_id: str, log: logging.LoggerAdapter[logging.Logger]) -> None:
        self._store = store
        self._call_id = call_id
        self._log = log
        self._pending: list[TurnRecord] = []
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[bool]] = set()
        self.turns: list[TurnRecord] = []
        self.listeners: list[Callable[[TurnRecord], None]] = []
        """Told of each turn as it happens (the console's test call shows them live)."""

    def add(self, turn: TurnRecord) -> None:
        self.turns.append(turn)
        for listener in self.listeners:
            listener(turn)
        self._pending.append(turn)
        task = asyncio.create_task(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, attempts: int = 3) -> bool:
        """Write what is left, retrying; False (and logged) if the database stayed unreachable."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for attempt in range(attempts):
            if await self._flush():
                return True
            await asyncio.sleep(0.5 * (attempt + 1))
        self._log.error(
            "%d turns could not be stored: %s",
            len(self._pending),
            [(t.speaker, t.text) for t in self._pending],
        )
        return False

    async def _flush(self) -> bool:
        async with self._lock:
            if not self._pending:
                return True
            batch = list(self._pending)
            try:
                await self._store.add_turns(self._call_id, batch)
            except StorageError as exc:
                self._log.warning("turns kept in memory, database unavailable: %s", exc)
                return False
            del self._pending[: len(batch)]
            return True


class _Turn(Protocol):
    @property
    def speaker(self) -> str: ...
    @property
    def intent(self) -> str | None: ...
    @property
    def decision(self) -> dict[str, Any]: ...


def last_intent(turns: Sequence[_Turn]) -> str:
    """The last request the bot understood: what the NLU heard, or the intent of a keypad option."""
    for turn in reversed(turns):
        if turn.speaker == "caller" and turn.intent:
            return turn.intent
        if turn.speaker == "bot" and isinstance((turn.decision or {}).get("intent"), str):
            return str(turn.decision["intent"])
    return ""
