"""The routing engine, table-driven: rules, caller lists, time windows, queue state, levels, priorities,
multiple queues per skill and fallbacks."""

from __future__ import annotations

import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter

from routing.actions import Action, AnswerAction, HangupAction, MenuAction
from routing.engine import NoPlacement, Placement, Routed, Router, RouteRequest
from routing.live import LiveState
from routing.routing_config import RoutingConfig

PARIS = ZoneInfo("Europe/Paris")

CONFIG: dict[str, Any] = {
    "timezone": "Europe/Paris",
    "skills": {
        "general": {},
        "premium": {"fallback": "general"},
        "fraud": {},
        "collections": {"fallback": "general"},
    },
    "calendars": {
        "office": {"weekly": {"mon-fri": ["09:00-18:00"]}, "public_holidays": "fr"},
        "late": {"weekly": {"mon-fri": ["08:00-20:00"]}, "public_holidays": "fr"},
    },
    "queues": {
        "advisors": {
            "skills": ["general"],
            "target": {"type": "queue", "value": "advisors"},
            "hours": "office",
            "max_length": 2,
            "max_wait_s": 500,
            "average_handle_s": 300,
        },
        "premium": {
            "skills": ["premium"],
            "target": {"type": "sip", "value": "sip:premium@pbx.example.com"},
            "hours": "office",
            "max_length": 0,
        },
        "fraud": {
            "skills": ["fraud"],
            "target": {"type": "sip", "value": "sip:fraud@pbx.example.com"},
            "max_length": 3,
            "max_wait_s": 3600,
        },
        "collections_a": {
            "skills": ["collections"],
            "target": {"type": "number", "value": "+33100000001"},
            "hours": "late",
            "average_handle_s": 120,
        },
        "collections_b": {
            "skills": ["collections"],
            "target": {"type": "queue", "value": "collections"},
            "hours": "office",
        },
    },
    "agents": {
        "g1": {"skills": {"general": 3}, "status": "available"},
        "g2": {"skills": {"general": 1}, "status": "available"},
        "p1": {"skills": {"premium": 5}, "status": "available"},
        "f1": {"skills": {"fraud": 5}, "status": "available"},
        "c1": {"skills": {"collections": 4}, "status": "available"},
        "c2": {"skills": {"collections": 2}, "status": "available"},
    },
    "caller_lists": {"vip": ["+33611111111"], "blocked": ["+33899*", "+33600000666"]},
    "rules": [
        {"id": "blocked", "when": {"caller_in": "blocked"}, "then": {"action": "hangup", "response": "utter_bye"}},
        {
            "id": "vip",
            "when": {"caller_in": ["vip"], "intent": "talk_to_advisor"},
            "then": {"action": "transfer", "skill": "premium", "priority": 5},
        },
        {
            "id": "big_amount",
            "when": {"intent": "early_repayment", "entities": ["amount"]},
            "then": {"action": "transfer", "skill": "general", "min_level": 3},
        },
        {
            "id": "unsure_complaint",
            "when": {"intent": "complaint", "confidence": {"max": 0.7}},
            "then": {"action": "menu", "menu": "main"},
        },
        {
            "id": "night_card",
            "when": {"intent": "lost_card", "time": {"days": ["mon-fri"], "between": "20:00-08:00"}},
            "then": {"action": "answer", "response": "utter_night"},
        },
        {
            "id": "collections_closed",
            "when": {"intent": "payment_difficulty", "queue": {"skill": "collections", "open": False}},
            "then": {"action": "answer", "response": "utter_collections_hours"},
        },
        {
            "id": "long_wait",
            "when": {"intent": "talk_to_advisor", "queue": {"queue": "advisors", "estimated_wait_s": {"min": 400}}},
            "then": {"action": "overflow", "reason": "queue_full"},
        },
        {
            "id": "struggling",
            "when": {"intent": "talk_to_advisor", "failed_turns": {"min": 2}},
            "then": {"action": "transfer", "skill": "general", "priority": 3},
        },
        {
            "id": "fallback_open",
            "when": {"intent": "nlu_fallback", "time": {"calendar": "office", "open": True}},
            "then": {"action": "transfer", "skill": "general"},
        },
    ],
    "default": {"action": "overflow", "reason": "not_understood"},
    "failover_skill": "general",
}
INTENTS = {
    "talk_to_advisor": {"action": "transfer", "skill": "general"},
    "fraud": {"action": "transfer", "skill": "fraud"},
    "payment_difficulty": {"action": "transfer", "skill": "collections"},
    "opening_hours": {"action": "answer", "response": "utter_hours"},
    "lost_card": {"action": "answer", "response": "utter_lost"},
    "early_repayment": {"action": "answer", "response": "utter_repay"},
}

ROUTING = RoutingConfig.model_validate(CONFIG)
ACTIONS = TypeAdapter(dict[str, Action]).validate_python(INTENTS)
ROUTER = Router(ROUTING, ACTIONS)

TUE_10 = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)
TUE_19 = datetime.datetime(2026, 12, 1, 19, 0, tzinfo=PARIS)
TUE_21 = datetime.datetime(2026, 12, 1, 21, 0, tzinfo=PARIS)
SAT_07 = datetime.datetime(2026, 12, 5, 7, 0, tzinfo=PARIS)
SUN_10 = datetime.datetime(2026, 12, 6, 10, 0, tzinfo=PARIS)
CHRISTMAS = datetime.datetime(2026, 12, 25, 10, 0, tzinfo=PARIS)


def route(
    intent: str | None,
    at: datetime.datetime = TUE_10,
    *,
    caller: str = "+33622334455",
    confidence: float = 0.9,
    entities: dict[str, str] | None = None,
    failed: int = 0,
    statuses: dict[str, str] | None = None,
    waiting: dict[str, list[int]] | None = None,
) -> Routed:
    live = LiveState(ROUTING)
    for agent, status in (statuses or {}).items():
        live.set_status(agent, status)  # type: ignore[arg-type]
    for queue, priorities in (waiting or {}).items():
        for n, priority in enumerate(priorities):
            live.enqueue(f"{queue}-{n}", queue, priority)
    request = RouteRequest(intent, confidence, entities or {}, caller, failed)
    return ROUTER.route(request, at, live.snapshot())


# (id, route() arguments, expected outcome, expected rule, expected trace fragments)
CASES: list[tuple[str, dict[str, Any], Any, str, dict[str, Any]]] = [
    (
        "intent_answer",
        {"intent": "opening_hours"},
        AnswerAction(action="answer", response="utter_hours"),
        "intent:opening_hours",
        {},
    ),
    (
        "blocked_prefix",
        {"intent": "opening_hours", "caller": "+33899123456"},
        HangupAction(action="hangup", response="utter_bye"),
        "blocked",
        {"matched": {"caller_in": "blocked"}},
    ),
    (
        "blocked_exact",
        {"intent": "talk_to_advisor", "caller": "+33600000666"},
        HangupAction(action="hangup", response="utter_bye"),
        "blocked",
        {},
    ),
    (
        "not_blocked_neighbour",
        {"intent": "opening_hours", "caller": "+33600000667"},
        AnswerAction(action="answer", response="utter_hours"),
        "intent:opening_hours",
        {},
    ),
    (
        "no_caller_id_is_not_blocked",
        {"intent": "opening_hours", "caller": ""},
        AnswerAction(action="answer", response="utter_hours"),
        "intent:opening_hours",
        {},
    ),
    (
        "vip_to_premium",
        {"intent": "talk_to_advisor", "caller": "+33611111111"},
        Placement("premium", "premium", 5, 0.0),
        "vip",
        {"matched": {"intent": "talk_to_advisor", "caller_in": "vip"}},
    ),
    (
        "vip_premium_busy_falls_back",
        {"intent": "talk_to_advisor", "caller": "+33611111111", "statuses": {"p1": "busy"}},
        Placement("advisors", "general", 5, 0.0),
        "vip",
        {"attempts": [("premium", "premium", "no_agent"), ("general", "advisors", "ok")]},
    ),
    (
        "vip_closed",
        {"intent": "talk_to_advisor", "caller": "+33611111111", "at": TUE_19},
        NoPlacement("closed"),
        "vip",
        {},
    ),
    (
        "plain_transfer",
        {"intent": "talk_to_advisor"},
        Placement("advisors", "general", 0, 0.0),
        "intent:talk_to_advisor",
        {},
    ),
    (
        "christmas_closed",
        {"intent": "talk_to_advisor", "at": CHRISTMAS},
        NoPlacement("closed"),
        "intent:talk_to_advisor",
        {"attempts": [("general", "advisors", "closed")]},
    ),
    ("sunday_closed", {"intent": "talk_to_advisor", "at": SUN_10}, NoPlacement("closed"), "intent:talk_to_advisor", {}),
    (
        "all_offline_no_agent",
        {"intent": "talk_to_advisor", "statuses": {"g1": "offline", "g2": "offline"}},
        NoPlacement("no_agent"),
        "intent:talk_to_advisor",
        {},
    ),
    (
        "all_busy_waits",
        {"intent": "talk_to_advisor", "statuses": {"g1": "busy", "g2": "wrap_up"}},
        Placement("advisors", "general", 0, 150.0),
        "intent:talk_to_advisor",
        {},
    ),
    (
        "queue_full_by_length",
        {"intent": "fraud", "statuses": {"f1": "busy"}, "waiting": {"fraud": [0, 0, 0]}},
        NoPlacement("queue_full"),
        "intent:fraud",
        {},
    ),
    (
        "queue_not_yet_full",
        {"intent": "fraud", "statuses": {"f1": "busy"}, "waiting": {"fraud": [0, 0]}},
        Placement("fraud", "fraud", 0, 900.0),
        "intent:fraud",
        {},
    ),
    (
        "queue_full_by_wait",
        {
            "intent": "early_repayment",
            "entities": {"amount": "5000 EUR"},
            "statuses": {"g1": "busy"},
            "waiting": {"advisors": [0]},
        },
        NoPlacement("queue_full"),
        "big_amount",
        {},
    ),
    (
        "long_wait_rule",
        {"intent": "talk_to_advisor", "statuses": {"g1": "busy", "g2": "busy"}, "waiting": {"advisors": [0, 0]}},
        NoPlacement("queue_full"),
        "long_wait",
        {"matched": {"intent": "talk_to_advisor"}},
    ),
    (
        "short_wait_no_rule",
        {"intent": "talk_to_advisor", "statuses": {"g1": "busy"}, "waiting": {"advisors": [0]}},
        Placement("advisors", "general", 0, 150.0),
        "intent:talk_to_advisor",
        {},
    ),
    (
        "priority_jumps_the_queue",
        {"intent": "talk_to_advisor", "failed": 2, "statuses": {"g2": "offline"}, "waiting": {"advisors": [0]}},
        Placement("advisors", "general", 3, 0.0),
        "struggling",
        {},
    ),
    (
        "same_call_without_priority_waits",
        {"intent": "talk_to_advisor", "statuses": {"g2": "offline"}, "waiting": {"advisors": [0]}},
        Placement("advisors", "general", 0, 300.0),
        "intent:talk_to_advisor",
        {},
    ),
    (
        "level_met",
        {"intent": "early_repayment", "entities": {"amount": "5000 EUR"}},
        Placement("advisors", "general", 0, 0.0),
        "big_amount",
        {"matched": {"entities": {"amount": "5000 EUR"}}},
    ),
    (
        "level_only_junior_free_waits",
        {"intent": "early_repayment", "entities": {"amount": "5000 EUR"}, "statuses": {"g1": "busy"}},
        Placement("advisors", "general", 0, 300.0),
        "big_amount",
        {},
    ),
    (
        "level_senior_offline",
        {"intent": "early_repayment", "entities": {"amount": "5000 EUR"}, "statuses": {"g1": "offline"}},
        NoPlacement("no_agent"),
        "big_amount",
        {},
    ),
    (
        "entity_missing_uses_intent_action",
        {"intent": "early_repayment"},
        AnswerAction(action="answer", response="utter_repay"),
        "intent:early_repayment",
        {},
    ),
    (
        "low_confidence_complaint_menu",
        {"intent": "complaint", "confidence": 0.6},
        MenuAction(action="menu", menu="main"),
        "unsure_complaint",
        {"matched": {"confidence": 0.6}},
    ),
    (
        "confident_complaint_default",
        {"intent": "complaint", "confidence": 0.8},
        NoPlacement("not_understood"),
        "default",
        {},
    ),
    (
        "night_window",
        {"intent": "lost_card", "at": TUE_21},
        AnswerAction(action="answer", response="utter_night"),
        "night_card",
        {},
    ),
    (
        "night_window_after_midnight_friday",
        {"intent": "lost_card", "at": SAT_07},
        AnswerAction(action="answer", response="utter_night"),
        "night_card",
        {},
    ),
    ("day_card", {"intent": "lost_card"}, AnswerAction(action="answer", response="utter_lost"), "intent:lost_card", {}),
    (
        "two_queues_pick_open_one",
        {"intent": "payment_difficulty", "at": TUE_19},
        Placement("collections_a", "collections", 0, 0.0),
        "intent:payment_difficulty",
        {"attempts": [("collections", "collections_a", "ok"), ("collections", "collections_b", "closed")]},
    ),
    (
        "two_queues_tie_first_listed",
        {"intent": "payment_difficulty"},
        Placement("collections_a", "collections", 0, 0.0),
        "intent:payment_difficulty",
        {},
    ),
    (
        "two_queues_shortest_wait",
        {"intent": "payment_difficulty", "statuses": {"c2": "offline"}, "waiting": {"collections_a": [0]}},
        Placement("collections_b", "collections", 0, 0.0),
        "intent:payment_difficulty",
        {},
    ),
    (
        "skill_closed_rule",
        {"intent": "payment_difficulty", "at": SUN_10},
        AnswerAction(action="answer", response="utter_collections_hours"),
        "collections_closed",
        {},
    ),
    ("fallback_open", {"intent": "nlu_fallback"}, Placement("advisors", "general", 0, 0.0), "fallback_open", {}),
    ("fallback_closed_default", {"intent": "nlu_fallback", "at": TUE_19}, NoPlacement("not_understood"), "default", {}),
    ("unknown_intent_default", {"intent": "weather"}, NoPlacement("not_understood"), "default", {}),
    (
        "fraud_around_the_clock",
        {"intent": "fraud", "at": CHRISTMAS},
        Placement("fraud", "fraud", 0, 0.0),
        "intent:fraud",
        {},
    ),
    (
        "summer_time_local_hours",
        {"intent": "talk_to_advisor", "at": datetime.datetime(2026, 7, 1, 7, 0, tzinfo=datetime.UTC)},
        Placement("advisors", "general", 0, 0.0),
        "intent:talk_to_advisor",
        {},
    ),
    (
        "winter_time_local_hours",
        {"intent": "talk_to_advisor", "at": datetime.datetime(2026, 12, 1, 7, 30, tzinfo=datetime.UTC)},
        NoPlacement("closed"),
        "intent:talk_to_advisor",
        {},
    ),
]


@pytest.mark.parametrize(("kwargs", "outcome", "rule", "trace"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_route(kwargs: dict[str, Any], outcome: Any, rule: str, trace: dict[str, Any]) -> None:
    routed = route(**kwargs)
    assert routed.outcome == outcome, routed.trace
    assert routed.rule == rule
    for key, expected in trace.items():
        if key == "attempts":
            assert [(a["skill"], a["queue"], a["verdict"]) for a in routed.trace["attempts"]] == expected
        else:
            assert expected.items() <= routed.trace[key].items()


def test_fallback_chain_reason_is_the_last_skill_tried() -> None:
    live = LiveState(ROUTING)
    for agent in ("c1", "c2"):
        live.set_status(agent, "offline")
    placed, attempts = ROUTER.place("collections", ROUTER.local(TUE_19), live.snapshot())
    assert placed == NoPlacement("closed")
    assert [(a["queue"], a["verdict"]) for a in attempts] == [
        ("collections_a", "no_agent"),
        ("collections_b", "closed"),
        ("advisors", "closed"),
    ]


def test_rule_fallback_overrides_the_first_hop() -> None:
    live = LiveState(ROUTING)
    live.set_status("p1", "offline")
    placed, attempts = ROUTER.place("premium", ROUTER.local(TUE_10), live.snapshot(), first="fraud")
    assert placed == Placement("fraud", "fraud", 0, 0.0)
    assert [a["skill"] for a in attempts] == ["premium", "fraud"]


def test_failover() -> None:
    live = LiveState(ROUTING).snapshot()
    assert ROUTER.failover(TUE_10, live, "nlu_unavailable").outcome == Placement("advisors", "general", 0, 0.0)
    routed = ROUTER.failover(CHRISTMAS, live, "nlu_unavailable")
    assert routed.outcome == NoPlacement("closed") and routed.rule == "nlu_unavailable"


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        ROUTER.route(RouteRequest("opening_hours"), datetime.datetime(2026, 12, 1, 10), LiveState(ROUTING).snapshot())


def test_live_state_expires_and_dequeues() -> None:
    live = LiveState(ROUTING, grace_s=60)
    live.enqueue("c1", "advisors", 0, now=1000.0)
    live.enqueue("c2", "advisors", 2, now=1100.0)
    assert live.snapshot(now=1200.0).waiting == {"advisors": (0, 2)}
    assert live.dequeue("c2", now=1250.0) == ("advisors", 150.0)
    assert live.dequeue("c2") is None
    # max_wait_s 500 + 60 s grace: the provider never reported c1's result
    assert live.snapshot(now=1000.0 + 559).waiting == {"advisors": (0,)}
    assert live.snapshot(now=1000.0 + 561).waiting == {}


def test_live_statuses_override_the_bot_folder() -> None:
    live = LiveState(ROUTING, {"g1": "offline", "ghost": "available"})
    assert live.status("g1") == "offline" and live.status("g2") == "available"
    with pytest.raises(KeyError):
        live.set_status("ghost", "busy")
