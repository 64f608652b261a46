"""The pure dialogue decision, and bot.yml validation, on a small French bot built in the test."""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from callbot.errors import ConfigError
from callbot.frames import NluResult
from routing.bot_config import BotConfig, load_bot_config
from routing.decision import (
    CallState,
    Context,
    Hangup,
    Heard,
    Menu,
    NluDown,
    Overflow,
    Pressed,
    Reprompt,
    Say,
    Silence,
    SpeechLost,
    Transfer,
    decide,
)
from routing.engine import Router
from routing.live import LiveState
from routing.routing_config import RoutingConfig

PROMPTS = {
    "greeting": "P-greeting",
    "reprompt": "P-reprompt",
    "menu_invalid": "P-menu-invalid",
    "anything_else": "P-anything-else",
    "transfer": "P-transfer",
    "goodbye": "P-goodbye",
    "overflow": {
        "closed": "P-closed",
        "no_agent": "P-no-agent",
        "queue_full": "P-queue-full",
        "not_understood": "P-not-understood",
        "caller_request": "P-caller-request",
    },
    "message_saved": "P-saved",
    "technical_issue": "P-technical",
}

BOT_DICT: dict[str, Any] = {
    "language": "fr",
    "prompts": PROMPTS,
    "responses": {
        "utter_hours": ["R-hours"],
        "utter_balance": ["R-balance {contract_number}", "R-balance-generic"],
        "utter_repeat": ["R-repeat"],
    },
    "intents": {
        "opening_hours": {"action": "answer", "response": "utter_hours"},
        "balance": {"action": "answer", "response": "utter_balance"},
        "talk_to_advisor": {"action": "transfer", "skill": "general"},
        "leave_message": {"action": "overflow", "reason": "caller_request"},
        "goodbye": {"action": "hangup"},
        "repeat_please": {"action": "answer", "response": "utter_repeat"},
    },
    "menus": {
        "main": {
            "prompt": "P-menu",
            "options": {
                "1": {"label": "Horaires", "intent": "opening_hours"},
                "0": {"label": "Conseiller", "action": {"action": "transfer", "skill": "general"}},
                "9": {"label": "Message", "action": {"action": "overflow", "reason": "caller_request"}},
            },
        }
    },
    "nlu": {"threshold": 0.5, "ambiguity_margin": 0.1},
    "dialogue": {"max_reprompts": 2, "max_menu_attempts": 2, "max_turns": 6},
}

ROUTING_DICT: dict[str, Any] = {
    "timezone": "Europe/Paris",
    "skills": {"general": {}},
    "calendars": {"office": {"weekly": {"mon-fri": ["09:00-18:00"]}, "public_holidays": "fr"}},
    "queues": {
        "advisors": {"skills": ["general"], "target": {"type": "queue", "value": "advisors"}, "hours": "office"}
    },
    "agents": {"a1": {"skills": {"general": 3}, "status": "available"}},
    "rules": [
        {
            "id": "not_understood_open",
            "when": {"intent": "nlu_fallback", "time": {"calendar": "office"}},
            "then": {"action": "transfer", "skill": "general"},
        },
        {
            "id": "not_understood_closed",
            "when": {"intent": "nlu_fallback"},
            "then": {"action": "overflow", "reason": "not_understood"},
        },
    ],
    "default": {"action": "overflow", "reason": "not_understood"},
    "failover_skill": "general",
}

BOT = BotConfig.model_validate(BOT_DICT)
ROUTING = RoutingConfig.model_validate(ROUTING_DICT)
ROUTER = Router(ROUTING, BOT.intents)
OPEN = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))  # a Tuesday morning
CLOSED = datetime.datetime(2026, 12, 1, 20, 0, tzinfo=ZoneInfo("Europe/Paris"))
LIVE = LiveState(ROUTING).snapshot()


def ctx(now: datetime.datetime = OPEN) -> Context:
    return Context(BOT, ROUTER, now, LIVE)


def heard(
    intent: str | None,
    confidence: float = 0.9,
    ranking: tuple[tuple[str, float], ...] = (),
    entities: tuple[tuple[str, str], ...] = (),
) -> Heard:
    return Heard(NluResult("some words", intent, confidence, ranking=ranking, entities=entities))


def answer(response: str) -> str:
    return f"{response} {PROMPTS['anything_else']}"


FAIL = heard(None, 0.0)
MENU_STATE = CallState(turns=3, failed_turns=3, menu="main")

# (id, initial state, events, time, expected decision type, expected decision fields, expected state fields)
CASES: list[tuple[str, CallState, list[Any], datetime.datetime, type, dict[str, Any], dict[str, Any]]] = [
    (
        "confident_answer",
        CallState(failed_turns=2),
        [heard("opening_hours")],
        OPEN,
        Say,
        {"text": answer("R-hours"), "response_id": "utter_hours", "why.rule": "intent:opening_hours"},
        {"answered": 1, "failed_turns": 0, "last_bot_text": answer("R-hours"), "turns": 1},
    ),
    (
        "answer_when_closed_too",
        CallState(),
        [heard("opening_hours")],
        CLOSED,
        Say,
        {"text": answer("R-hours")},
        {"answered": 1},
    ),
    (
        "slot_filled",
        CallState(),
        [heard("balance", entities=(("contract_number", "A42"),))],
        OPEN,
        Say,
        {"text": answer("R-balance A42"), "response_id": "utter_balance"},
        {"answered": 1},
    ),
    (
        "slot_missing_fallback",
        CallState(),
        [heard("balance")],
        OPEN,
        Say,
        {"text": answer("R-balance-generic")},
        {"answered": 1},
    ),
    (
        "transfer_intent_open",
        CallState(),
        [heard("talk_to_advisor")],
        OPEN,
        Transfer,
        {"queue": "advisors", "skill": "general", "text": PROMPTS["transfer"], "why.rule": "intent:talk_to_advisor"},
        {},
    ),
    (
        "transfer_intent_closed_overflows",
        CallState(),
        [heard("talk_to_advisor")],
        CLOSED,
        Overflow,
        {"reason": "closed", "text": PROMPTS["overflow"]["closed"], "why.rule": "intent:talk_to_advisor"},
        {},
    ),
    (
        "overflow_intent",
        CallState(),
        [heard("leave_message")],
        OPEN,
        Overflow,
        {"reason": "caller_request", "text": PROMPTS["overflow"]["caller_request"]},
        {},
    ),
    ("goodbye_hangup", CallState(), [heard("goodbye")], OPEN, Hangup, {"text": PROMPTS["goodbye"]}, {}),
    (
        "at_threshold_understood",
        CallState(),
        [heard("opening_hours", 0.5)],
        OPEN,
        Say,
        {"text": answer("R-hours")},
        {"answered": 1},
    ),
    (
        "below_threshold",
        CallState(),
        [heard("opening_hours", 0.49)],
        OPEN,
        Reprompt,
        {"text": PROMPTS["reprompt"], "why.rule": "low_confidence"},
        {"failed_turns": 1, "menu": None},
    ),
    (
        "ambiguous",
        CallState(),
        [heard("opening_hours", 0.6, ranking=(("opening_hours", 0.6), ("balance", 0.55)))],
        OPEN,
        Reprompt,
        {"why.rule": "ambiguous"},
        {"failed_turns": 1},
    ),
    (
        "clear_margin",
        CallState(),
        [heard("opening_hours", 0.6, ranking=(("opening_hours", 0.6), ("balance", 0.3)))],
        OPEN,
        Say,
        {"text": answer("R-hours")},
        {},
    ),
    ("intent_none", CallState(), [heard(None, 0.9)], OPEN, Reprompt, {"why.rule": "low_confidence"}, {}),
    (
        "intent_without_action_goes_to_default_rule",
        CallState(),
        [heard("weather", 0.9)],
        OPEN,
        Overflow,
        {"reason": "not_understood", "why.rule": "default"},
        {},
    ),
    (
        "silence",
        CallState(),
        [Silence()],
        OPEN,
        Reprompt,
        {"text": PROMPTS["reprompt"], "why.rule": "silence"},
        {"failed_turns": 1},
    ),
    (
        "third_failure_menu",
        CallState(),
        [FAIL, Silence(), FAIL],
        OPEN,
        Menu,
        {"text": "P-menu", "menu": "main"},
        {"menu": "main", "failed_turns": 3},
    ),
    (
        "menu_press_intent",
        MENU_STATE,
        [Pressed("1")],
        OPEN,
        Say,
        {"text": answer("R-hours"), "why.via": "menu:1", "why.rule": "intent:opening_hours"},
        {"menu": None, "failed_turns": 0, "answered": 1},
    ),
    (
        "menu_press_action",
        MENU_STATE,
        [Pressed("0")],
        OPEN,
        Transfer,
        {"queue": "advisors", "text": PROMPTS["transfer"], "why.rule": "menu:0"},
        {},
    ),
    (
        "menu_press_transfer_when_closed",
        MENU_STATE,
        [Pressed("0")],
        CLOSED,
        Overflow,
        {"reason": "closed", "why.rule": "menu:0"},
        {},
    ),
    (
        "menu_press_message",
        MENU_STATE,
        [Pressed("9")],
        OPEN,
        Overflow,
        {"reason": "caller_request", "text": PROMPTS["overflow"]["caller_request"]},
        {},
    ),
    (
        "menu_invalid_digit",
        MENU_STATE,
        [Pressed("7")],
        OPEN,
        Menu,
        {"text": f"{PROMPTS['menu_invalid']} P-menu", "why.rule": "menu_invalid_digit"},
        {"menu_attempts": 1, "menu": "main"},
    ),
    (
        "menu_invalid_twice_open_transfers",
        MENU_STATE,
        [Pressed("7"), Pressed("8")],
        OPEN,
        Transfer,
        {"queue": "advisors", "why.rule": "not_understood_open", "why.via": "menu_exhausted"},
        {},
    ),
    (
        "menu_invalid_twice_closed_overflows",
        MENU_STATE,
        [Pressed("7"), Pressed("8")],
        CLOSED,
        Overflow,
        {"reason": "not_understood", "why.rule": "not_understood_closed", "why.via": "menu_exhausted"},
        {},
    ),
    (
        "menu_silence_counts",
        MENU_STATE,
        [Silence()],
        OPEN,
        Menu,
        {"text": "P-menu"},
        {"menu_attempts": 1, "menu": "main"},
    ),
    (
        "menu_silence_then_invalid",
        MENU_STATE,
        [Silence(), Pressed("7")],
        OPEN,
        Transfer,
        {"why.via": "menu_exhausted"},
        {},
    ),
    (
        "menu_silence_twice",
        MENU_STATE,
        [Silence(), Silence()],
        OPEN,
        Transfer,
        {"queue": "advisors", "why.via": "menu_exhausted"},
        {},
    ),
    (
        "nlu_down_failover",
        CallState(),
        [NluDown("hi", "connection refused")],
        OPEN,
        Transfer,
        {"queue": "advisors", "text": PROMPTS["technical_issue"], "why.rule": "nlu_unavailable"},
        {},
    ),
    (
        "nlu_down_closed_takes_a_message",
        CallState(),
        [NluDown("hi", "connection refused")],
        CLOSED,
        Overflow,
        {"reason": "closed", "text": PROMPTS["overflow"]["closed"], "why.rule": "nlu_unavailable"},
        {},
    ),
    (
        "speech_lost",
        CallState(),
        [SpeechLost("vosk crashed")],
        OPEN,
        Menu,
        {"text": "P-menu", "why.rule": "speech_unavailable"},
        {"menu": "main"},
    ),
    (
        "max_turns",
        CallState(),
        [heard("opening_hours")] * 7,
        OPEN,
        Transfer,
        {"queue": "advisors", "text": PROMPTS["transfer"], "why.rule": "max_turns"},
        {"turns": 7},
    ),
    (
        "within_max_turns",
        CallState(),
        [heard("opening_hours")] * 6,
        OPEN,
        Say,
        {"text": answer("R-hours")},
        {"turns": 6, "answered": 6},
    ),
    (
        "repeat_after_answer",
        CallState(),
        [heard("balance", entities=(("contract_number", "B7"),)), heard("repeat_please")],
        OPEN,
        Say,
        {"text": answer("R-balance B7"), "response_id": "repeat"},
        {"answered": 1},
    ),
    (
        "repeat_without_history",
        CallState(),
        [heard("repeat_please")],
        OPEN,
        Say,
        {"text": answer("R-repeat"), "response_id": "utter_repeat"},
        {},
    ),
]


def run(state: CallState, events: list[Any], now: datetime.datetime) -> tuple[Any, CallState, list[Any]]:
    decisions = []
    for event in events:
        decision, state = decide(event, state, ctx(now))
        decisions.append(decision)
    return decisions[-1], state, decisions


@pytest.mark.parametrize(
    ("state", "events", "now", "kind", "fields", "state_fields"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decide(
    state: CallState,
    events: list[Any],
    now: datetime.datetime,
    kind: type,
    fields: dict[str, Any],
    state_fields: dict[str, Any],
) -> None:
    decision, after, decisions = run(state, events, now)
    assert type(decision) is kind, decision
    for name, value in fields.items():
        actual = decision.why[name.removeprefix("why.")] if name.startswith("why.") else getattr(decision, name)
        assert actual == value, name
    for name, value in state_fields.items():
        assert getattr(after, name) == value, name
    for each in decisions:
        assert "rule" in each.why, each


def test_decision_does_not_mutate_state() -> None:
    state = CallState()
    decide(heard("opening_hours"), state, ctx())
    assert state == CallState()


def test_transfer_records_the_queue_it_tried() -> None:
    decision, _ = decide(heard("talk_to_advisor"), CallState(), ctx())
    assert isinstance(decision, Transfer)
    [attempt] = decision.why["attempts"]
    assert attempt["queue"] == "advisors" and attempt["verdict"] == "ok"
    assert attempt["hours"] == "open tue 09:00-18:00"
    assert decision.why["confidence"] == 0.9


# --- bot.yml validation --------------------------------------------------------------------------------


def _defect(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BOT_DICT)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def _menu_key_12() -> dict[str, Any]:
    data = copy.deepcopy(BOT_DICT)
    data["menus"]["main"]["options"]["12"] = data["menus"]["main"]["options"].pop("1")
    return data


CONFIG_DEFECTS = [
    (
        "unknown_response",
        _defect(("intents", "opening_hours"), {"action": "answer", "response": "utter_nope"}),
        ["opening_hours", "utter_nope"],
    ),
    ("menu_key_12", _menu_key_12(), ["menus.main.options.12"]),
    (
        "menu_intent_and_action",
        _defect(("menus", "main", "options", "1"), {"intent": "opening_hours", "action": {"action": "hangup"}}),
        ["menus.main.options.1", "intent", "action"],
    ),
    ("no_main_menu", _defect(("menus",), {"other": BOT_DICT["menus"]["main"]}), ["menus.main"]),
    (
        "unknown_menu",
        _defect(("intents", "opening_hours"), {"action": "menu", "menu": "billing"}),
        ["intents.opening_hours.menu", "billing"],
    ),
    ("missing_overflow_prompt", _defect(("prompts", "overflow"), {"closed": "x"}), ["prompts.overflow.no_agent"]),
    ("unknown_key", _defect(("dialogue", "max_repromts"), 3), ["dialogue.max_repromts", "unknown key"]),
    ("invalid_yaml", "language: fr\nprompts: [unclosed\n", ["line"]),
    ("missing_file", None, ["not found"]),
]


@pytest.mark.parametrize(("content", "expected"), [c[1:] for c in CONFIG_DEFECTS], ids=[c[0] for c in CONFIG_DEFECTS])
def test_bot_config_defects(tmp_path: Path, content: Any, expected: list[str]) -> None:
    if content is not None:
        text = content if isinstance(content, str) else yaml.safe_dump(content, allow_unicode=True)
        (tmp_path / "bot.yml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo:
        load_bot_config(tmp_path)
    message = str(excinfo.value)
    assert "bot.yml" in message
    for fragment in expected:
        assert fragment in message


def test_bot_config_valid_round_trip(tmp_path: Path) -> None:
    (tmp_path / "bot.yml").write_text(yaml.safe_dump(BOT_DICT, allow_unicode=True), encoding="utf-8")
    assert load_bot_config(tmp_path) == BOT
