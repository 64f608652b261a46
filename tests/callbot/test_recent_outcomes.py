"""Call decisions kept in memory for the <Connect action> callback stay bounded."""

from callbot.resources import RecentOutcomes
from callbot.storage.call_store import CallOutcome


def test_oldest_decisions_are_forgotten_first():
    outcomes = RecentOutcomes(limit=3)
    for index in range(5):
        outcomes[f"call-{index}"] = CallOutcome("transfer", queue=f"q{index}")
    assert len(outcomes) == 3
    assert "call-0" not in outcomes and "call-1" not in outcomes
    assert outcomes.pop("call-4") == CallOutcome("transfer", queue="q4")
    assert outcomes.pop("call-4") is None
    outcomes["call-2"] = CallOutcome("hangup")  # refreshed: now the newest
    outcomes["call-5"] = CallOutcome("answered")
    outcomes["call-6"] = CallOutcome("answered")
    assert "call-2" in outcomes and "call-3" not in outcomes
