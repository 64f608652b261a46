"""The dashboard's hourly counters: added as calls end, equal to a recount from the stored calls, on SQLite and
PostgreSQL; console test calls are left out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callbot.stats import compute, counters, rebuild_in, record
from callbot.storage.call_store import CallOutcome, CallStore, TurnRecord
from callbot.storage.database import make_engine, migrate
from routing.routing_config import TransferTarget


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 's.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    migrate(engine)
    yield engine
    engine.dispose()


CALLS = [
    (
        "twilio",
        CallOutcome("answered"),
        [
            ("bot", "", "greeting", None, 40.0),
            ("caller", "horaires", None, "opening_hours", None),
            ("bot", "...", "answer", None, 180.0),
        ],
    ),
    (
        "twilio",
        CallOutcome("transfer", "intent:fraud", "fraud", TransferTarget(sip="sip:fraud@pbx"), "fraud"),
        [
            ("caller", "euh", None, None, None),
            ("bot", "pardon", "reprompt", None, 450.0),
            ("caller", "fraude", None, "fraud_suspicion", None),
        ],
    ),
    (
        "twilio",
        CallOutcome("overflow", "closed"),
        [("caller", "un conseiller", None, "talk_to_advisor", None), ("bot", "fermé", "overflow", None, 2500.0)],
    ),
    ("browser", CallOutcome("answered"), [("caller", "test", None, "opening_hours", None)]),
]


def test_counters_as_calls_end_equal_a_recount(engine: Any) -> None:
    store = CallStore(engine)
    now = datetime.now(UTC)

    async def place() -> None:
        for n, (provider, outcome, turns) in enumerate(CALLS):
            call_id = f"call{n}"
            await store.create_call(
                call_id,
                provider=provider,
                provider_call_id=call_id,
                from_number="",
                to_number="",
                bot="fr",
                language="fr",
            )
            records = [TurnRecord(s, t, intent=i, action=a, latency_ms=lat) for s, t, a, i, lat in turns]
            await store.add_turns(call_id, records)
            await store.finish_call(call_id, outcome, None)
            if provider != "browser":
                record(engine, now, counters(outcome, records))

    asyncio.run(place())
    live = compute(engine, now - timedelta(hours=1), now + timedelta(hours=1))
    assert live.calls == 3 and live.outcomes == {"answered": 1, "transfer": 1, "overflow": 1}
    assert live.containment == pytest.approx(1 / 3)
    assert live.transfers_per_skill == [("fraud", 1)]
    assert dict(live.top_intents) == {"opening_hours": 1, "fraud_suspicion": 1, "talk_to_advisor": 1}
    assert (live.utterances, live.not_understood) == (4, 1)
    assert live.latency_ms == {"p50": 200.0, "p90": 3000.0, "p99": 3000.0}
    assert sum(count for _, count in live.per_hour) == 3
    with engine.begin() as connection:
        rebuild_in(connection)
    recount = compute(engine, now - timedelta(hours=1), now + timedelta(hours=1))
    assert recount == live
    assert compute(engine, now - timedelta(days=3), now - timedelta(days=2)).calls == 0
