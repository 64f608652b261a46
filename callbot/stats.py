"""What the bot did over a period, for the dashboard: aggregates computed in the database (SQLite or PostgreSQL)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session, sessionmaker

from callbot.storage.database import in_transaction
from callbot.storage.tables import CallRow, MailboxItemRow, TurnRow


@dataclass
class Stats:
    calls: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    per_hour: list[tuple[str, int]] = field(default_factory=list)
    transfers_per_skill: list[tuple[str, int]] = field(default_factory=list)
    overflow_by_reason: list[tuple[str, int]] = field(default_factory=list)
    top_intents: list[tuple[str, int]] = field(default_factory=list)
    utterances: int = 0
    not_understood: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)
    messages: int = 0

    @property
    def containment(self) -> float:
        """Share of calls the bot answered without a transfer or a message."""
        return self.outcomes.get("answered", 0) / self.calls if self.calls else 0.0

    @property
    def not_understood_rate(self) -> float:
        return self.not_understood / self.utterances if self.utterances else 0.0


def _hour(engine: Engine, column: Any) -> Any:
    if engine.dialect.name == "postgresql":
        return func.to_char(func.date_trunc("hour", column), "YYYY-MM-DD HH24:00")
    return func.strftime("%Y-%m-%d %H:00", column)


def compute(engine: Engine, since: datetime, until: datetime, latency_sample: int = 20_000) -> Stats:
    sessions = sessionmaker(engine)

    def work(s: Session) -> Stats:
        stats = Stats()
        in_period = (CallRow.created_at >= since, CallRow.created_at < until)
        stats.outcomes = {
            outcome or "in_progress": count
            for outcome, count in s.execute(
                select(CallRow.outcome, func.count()).where(*in_period).group_by(CallRow.outcome)
            )
        }
        stats.calls = sum(stats.outcomes.values())
        hour = _hour(engine, CallRow.created_at)
        stats.per_hour = [
            (str(h), c)
            for h, c in s.execute(select(hour, func.count()).where(*in_period).group_by(hour).order_by(hour))
        ]
        stats.transfers_per_skill = _grouped(s, CallRow.transfer_skill, CallRow.outcome == "transfer", *in_period)
        stats.overflow_by_reason = _grouped(
            s, MailboxItemRow.overflow_reason, MailboxItemRow.created_at >= since, MailboxItemRow.created_at < until
        )
        stats.messages = sum(c for _, c in stats.overflow_by_reason)
        turn_period = (TurnRow.created_at >= since, TurnRow.created_at < until)
        stats.top_intents = _grouped(
            s, TurnRow.intent, TurnRow.speaker == "caller", TurnRow.intent.is_not(None), *turn_period, limit=10
        )
        utterances, reprompts = s.execute(
            select(
                func.count(case((TurnRow.speaker == "caller", 1))),
                func.count(case((TurnRow.action == "reprompt", 1))),
            ).where(*turn_period)
        ).one()
        stats.utterances, stats.not_understood = int(utterances), int(reprompts)
        latencies: list[float] = [
            value
            for value in s.scalars(
                select(TurnRow.latency_ms)
                .where(TurnRow.speaker == "bot", TurnRow.latency_ms.is_not(None), *turn_period)
                .order_by(TurnRow.id.desc())
                .limit(latency_sample)
            )
            if value is not None
        ]
        if latencies:
            ordered = sorted(latencies)
            stats.latency_ms = {
                "p50": statistics.median(ordered),
                "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
                "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            }
        return stats

    return in_transaction(sessions, work)


def _grouped(s: Session, column: Any, *conditions: Any, limit: int = 20) -> list[tuple[str, int]]:
    count = func.count()
    query = select(column, count).where(*conditions).group_by(column).order_by(count.desc()).limit(limit)
    return [(str(key) if key is not None else "—", int(n)) for key, n in s.execute(query)]
