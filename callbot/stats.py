"""What the bot did, for the dashboard: counters per hour, added when a call ends (``record``), read over a
period (``compute``) — the dashboard never scans every call and turn. Test calls from the console are not
counted. ``rebuild_in`` recomputes the counters from the stored calls (the migration that introduced them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from callbot.storage.call_store import CallOutcome, TurnRecord
from callbot.storage.database import in_transaction
from callbot.storage.tables import CallRow, MailboxItemRow, StatsHourRow, TurnRow

LATENCY_BUCKETS_MS = (50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000)
"""Turn latency is counted in these buckets (upper bounds); percentiles are read as the bucket they fall in."""


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
    """Upper bound of the bucket each percentile falls in."""
    messages: int = 0

    @property
    def containment(self) -> float:
        """Share of calls the bot answered without a transfer or a message."""
        return self.outcomes.get("answered", 0) / self.calls if self.calls else 0.0

    @property
    def not_understood_rate(self) -> float:
        return self.not_understood / self.utterances if self.utterances else 0.0


def hour_of(moment: datetime) -> datetime:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def counters(outcome: CallOutcome, turns: Iterable[TurnRecord]) -> Counter[str]:
    """What one call adds to the counters of the hour it began in."""
    counts: Counter[str] = Counter({"calls": 1, f"outcome:{outcome.outcome}": 1})
    if outcome.outcome == "transfer" and outcome.skill:
        counts[f"skill:{outcome.skill}"] += 1
    for turn in turns:
        counts.update(_turn_keys(turn.speaker, turn.text, turn.intent, turn.action, turn.latency_ms))
    return counts


def record(engine: Engine, started: datetime, counts: Counter[str]) -> None:
    """Add a call's counters (one upsert per key, in one transaction)."""
    hour = hour_of(started)
    dialect_insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert

    def upsert(s: Session) -> None:
        for key, value in counts.items():
            statement = dialect_insert(StatsHourRow).values(hour=hour, key=key[:96], count=value)
            s.execute(
                statement.on_conflict_do_update(
                    index_elements=["hour", "key"], set_={"count": StatsHourRow.count + statement.excluded.count}
                )
            )

    in_transaction(sessionmaker(engine), upsert)


def compute(engine: Engine, since: datetime, until: datetime) -> Stats:
    def work(s: Session) -> Stats:
        rows = s.execute(
            select(StatsHourRow.hour, StatsHourRow.key, StatsHourRow.count).where(
                StatsHourRow.hour >= hour_of(since), StatsHourRow.hour < until
            )
        )
        totals: Counter[str] = Counter()
        per_hour: Counter[datetime] = Counter()
        for hour, key, count in rows:
            totals[key] += count
            if key == "calls":
                per_hour[hour_of(hour)] += count
        stats = Stats()
        stats.calls = totals["calls"]
        stats.outcomes = _prefixed(totals, "outcome:")
        stats.per_hour = [(f"{h:%Y-%m-%d %H:00}", c) for h, c in sorted(per_hour.items())]
        stats.transfers_per_skill = _top(_prefixed(totals, "skill:"))
        stats.top_intents = _top(_prefixed(totals, "intent:"), 10)
        stats.utterances, stats.not_understood = totals["utterances"], totals["reprompts"]
        stats.latency_ms = _percentiles(_prefixed(totals, "latency:"))
        reasons = s.execute(
            select(MailboxItemRow.overflow_reason, func.count())
            .where(MailboxItemRow.created_at >= since, MailboxItemRow.created_at < until)
            .group_by(MailboxItemRow.overflow_reason)
        )
        stats.overflow_by_reason = _top({str(reason): int(count) for reason, count in reasons})
        stats.messages = sum(c for _, c in stats.overflow_by_reason)
        return stats

    return in_transaction(sessionmaker(engine), work)


def rebuild_in(connection: Connection) -> None:
    """Recompute every counter from the calls and turns stored (console test calls excluded)."""
    counts: dict[tuple[datetime, str], int] = Counter()
    calls = select(CallRow.id, CallRow.created_at, CallRow.outcome, CallRow.transfer_skill).where(
        CallRow.provider != "browser", CallRow.outcome.is_not(None)
    )
    started: dict[str, datetime] = {}
    for call_id, created, outcome, skill in connection.execute(calls):
        hour = hour_of(created)
        started[call_id] = hour
        counts[(hour, "calls")] += 1
        counts[(hour, f"outcome:{outcome}")] += 1
        if outcome == "transfer" and skill:
            counts[(hour, f"skill:{skill}")] += 1
    turns = select(TurnRow.call_id, TurnRow.speaker, TurnRow.text, TurnRow.intent, TurnRow.action, TurnRow.latency_ms)
    for call_id, speaker, text, intent, action, latency in connection.execute(turns):
        if call_id in started:
            for key in _turn_keys(speaker, text, intent, action, latency):
                counts[(started[call_id], key)] += 1
    connection.execute(delete(StatsHourRow))
    rows = [{"hour": hour, "key": key[:96], "count": value} for (hour, key), value in counts.items()]
    for start in range(0, len(rows), 5000):
        connection.execute(insert(StatsHourRow), rows[start : start + 5000])


def _turn_keys(speaker: str, text: str, intent: str | None, action: str | None, latency: float | None) -> list[str]:
    keys = []
    if speaker == "caller" and text:
        keys.append("utterances")
        if intent:
            keys.append(f"intent:{intent}")
    if action == "reprompt":
        keys.append("reprompts")
    if speaker == "bot" and latency is not None:
        bucket = next((b for b in LATENCY_BUCKETS_MS if latency <= b), None)
        keys.append(f"latency:{bucket if bucket is not None else 'inf'}")
    return keys


def _prefixed(totals: Counter[str], prefix: str) -> dict[str, int]:
    return {key.removeprefix(prefix): count for key, count in totals.items() if key.startswith(prefix)}


def _top(counts: dict[str, int], limit: int = 20) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


def _percentiles(buckets: dict[str, int]) -> dict[str, float]:
    total = sum(buckets.values())
    if not total:
        return {}
    order = [str(b) for b in LATENCY_BUCKETS_MS] + ["inf"]
    out: dict[str, float] = {}
    for name, share in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        seen = 0
        for bucket in order:
            seen += buckets.get(bucket, 0)
            if seen >= share * total:
                out[name] = float("inf") if bucket == "inf" else float(bucket)
                break
    return out
