"""The pure dialogue decision, and bot.yml validation, on a small French bot built in the test."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from callbot.errors import ConfigError
from callbot.frames import NluResult
from routing.bot_config import BotConfig, load_bot_config
from routing.decision import (
    CallState,
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

PROMPTS = {
    "greeting": "P-greeting",
    "reprompt": "P-reprompt",
    "menu": "P-menu",
    "menu_invalid": "P-menu-invalid",
    "anything_else": "P-anything-else",
    "transfer": "P-transfer",
    "goodbye": "P-goodbye",
    "overflow": "P-overflow",
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
        "talk_to_advisor": {"action": "transfer", "queue": "advisors"},
        "leave_message": {"action": "overflow", "reason": "caller_request"},
        "goodbye": {"action": "hangup"},
        "repeat_please": {"action": "answer", "response": "utter_repeat"},
    },
    "menu": {
        "1": {"label": "Horaires", "intent": "opening_hours"},
        "0": {"label": "Conseiller", "action": {"action": "transfer", "queue": "advisors"}},
    },
    "queues": {
        "advisors": {"target": {"type": "queue", "value": "advisors"}},
        "collections": {"target": {"type": "number", "value": "+33100000001"}},
    },
    "default_queue": "advisors",
    "nlu": {"threshold": 0.5, "ambiguity_margin": 0.1},
    "dialogue": {"max_reprompts": 2, "max_menu_attempts": 2, "max_turns": 6},
}

BOT = BotConfig.model_validate(BOT_DICT)


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
MENU_STATE = CallState(turns=3, failed_turns=3, in_menu=True)

# (id, initial state, events, expected decision type, expected decision fields, expected state fields)
CASES: list[tuple[str, CallState, list[Any], type, dict[str, Any], dict[str, Any]]] = [
    (
        "confident_answer",
        CallState(failed_turns=2),
        [heard("opening_hours")],
        Say,
        {"text": answer("R-hours"), "response_id": "utter_hours"},
        {"answered": 1, "failed_turns": 0, "last_bot_text": answer("R-hours"), "turns": 1},
    ),
    (
        "slot_filled",
        CallState(),
        [heard("balance", entities=(("contract_number", "A42"),))],
        Say,
        {"text": answer("R-balance A42"), "response_id": "utter_balance"},
        {"answered": 1},
    ),
    (
        "slot_missing_fallback",
        CallState(),
        [heard("balance")],
        Say,
        {"text": answer("R-balance-generic")},
        {"answered": 1},
    ),
    (
        "transfer_intent",
        CallState(),
        [heard("talk_to_advisor")],
        Transfer,
        {"queue": "advisors", "text": PROMPTS["transfer"]},
        {},
    ),
    (
        "overflow_intent",
        CallState(),
        [heard("leave_message")],
        Overflow,
        {"reason": "caller_request", "text": PROMPTS["overflow"]},
        {},
    ),
    ("goodbye_hangup", CallState(), [heard("goodbye")], Hangup, {"text": PROMPTS["goodbye"]}, {}),
    (
        "at_threshold_understood",
        CallState(),
        [heard("opening_hours", 0.5)],
        Say,
        {"text": answer("R-hours")},
        {"answered": 1},
    ),
    (
        "below_threshold",
        CallState(),
        [heard("opening_hours", 0.49)],
        Reprompt,
        {"text": PROMPTS["reprompt"], "why.rule": "low_confidence"},
        {"failed_turns": 1, "in_menu": False},
    ),
    (
        "ambiguous",
        CallState(),
        [heard("opening_hours", 0.6, ranking=(("opening_hours", 0.6), ("balance", 0.55)))],
        Reprompt,
        {"why.rule": "ambiguous"},
        {"failed_turns": 1},
    ),
    (
        "clear_margin",
        CallState(),
        [heard("opening_hours", 0.6, ranking=(("opening_hours", 0.6), ("balance", 0.3)))],
        Say,
        {"text": answer("R-hours")},
        {},
    ),
    ("intent_none", CallState(), [heard(None, 0.9)], Reprompt, {"why.rule": "low_confidence"}, {}),
    (
        "intent_not_configured",
        CallState(),
        [heard("weather", 0.9)],
        Reprompt,
        {"why.rule": "intent_not_configured"},
        {"failed_turns": 1},
    ),
    (
        "silence",
        CallState(),
        [Silence()],
        Reprompt,
        {"text": PROMPTS["reprompt"], "why.rule": "silence"},
        {"failed_turns": 1},
    ),
    (
        "third_failure_menu",
        CallState(),
        [FAIL, Silence(), FAIL],
        Menu,
        {"text": PROMPTS["menu"]},
        {"in_menu": True, "failed_turns": 3},
    ),
    (
        "menu_press_intent",
        MENU_STATE,
        [Pressed("1")],
        Say,
        {"text": answer("R-hours"), "why.rule": "menu:1"},
        {"in_menu": False, "failed_turns": 0, "answered": 1},
    ),
    (
        "menu_press_action",
        MENU_STATE,
        [Pressed("0")],
        Transfer,
        {"queue": "advisors", "text": PROMPTS["transfer"], "why.rule": "menu:0"},
        {},
    ),
    (
        "menu_invalid_digit",
        MENU_STATE,
        [Pressed("7")],
        Menu,
        {"text": f"{PROMPTS['menu_invalid']} {PROMPTS['menu']}", "why.rule": "menu_invalid_digit"},
        {"menu_attempts": 1, "in_menu": True},
    ),
    (
        "menu_invalid_twice",
        MENU_STATE,
        [Pressed("7"), Pressed("8")],
        Transfer,
        {"queue": "advisors", "text": PROMPTS["transfer"], "why.rule": "menu_exhausted"},
        {},
    ),
    (
        "menu_silence_counts",
        MENU_STATE,
        [Silence()],
        Menu,
        {"text": PROMPTS["menu"]},
        {"menu_attempts": 1, "in_menu": True},
    ),
    (
        "menu_silence_then_invalid",
        MENU_STATE,
        [Silence(), Pressed("7")],
        Transfer,
        {"why.rule": "menu_exhausted"},
        {},
    ),
    (
        "menu_silence_twice",
        MENU_STATE,
        [Silence(), Silence()],
        Transfer,
        {"queue": "advisors", "why.rule": "menu_exhausted"},
        {},
    ),
    (
        "nlu_down",
        CallState(),
        [NluDown("hi", "connection refused")],
        Transfer,
        {"queue": "advisors", "text": PROMPTS["technical_issue"], "why.rule": "nlu_unavailable"},
        {},
    ),
    (
        "speech_lost",
        CallState(),
        [SpeechLost("vosk crashed")],
        Menu,
        {"text": PROMPTS["menu"], "why.rule": "speech_unavailable"},
        {"in_menu": True},
    ),
    (
        "max_turns",
        CallState(),
        [heard("opening_hours")] * 7,
        Transfer,
        {"queue": "advisors", "text": PROMPTS["transfer"], "why.rule": "max_turns"},
        {"turns": 7},
    ),
    (
        "within_max_turns",
        CallState(),
        [heard("opening_hours")] * 6,
        Say,
        {"text": answer("R-hours")},
        {"turns": 6, "answered": 6},
    ),
    (
        "repeat_after_answer",
        CallState(),
        [heard("balance", entities=(("contract_number", "B7"),)), heard("repeat_please")],
        Say,
        {"text": answer("R-balance B7"), "response_id": "repeat"},
        {"answered": 1},
    ),
    (
        "repeat_without_history",
        CallState(),
        [heard("repeat_please")],
        Say,
        {"text": answer("R-repeat"), "response_id": "utter_repeat"},
        {},
    ),
]


def run(state: CallState, events: list[Any]) -> tuple[Any, CallState, list[Any]]:
    decisions = []
    for event in events:
        decision, state = decide(event, state, BOT)
        decisions.append(decision)
    return decisions[-1], state, decisions


@pytest.mark.parametrize(
    ("state", "events", "kind", "fields", "state_fields"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decide(
    state: CallState, events: list[Any], kind: type, fields: dict[str, Any], state_fields: dict[str, Any]
) -> None:
    decision, after, decisions = run(state, events)
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
    decide(heard("opening_hours"), state, BOT)
    assert state == CallState()


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
    data["menu"]["12"] = data["menu"].pop("1")
    return data


CONFIG_DEFECTS = [
    (
        "unknown_queue",
        _defect(("intents", "talk_to_advisor"), {"action": "transfer", "queue": "nowhere"}),
        ["talk_to_advisor", "nowhere"],
    ),
    (
        "unknown_response",
        _defect(("intents", "opening_hours"), {"action": "answer", "response": "utter_nope"}),
        ["opening_hours", "utter_nope"],
    ),
    ("default_queue_undefined", _defect(("default_queue",), "billing"), ["default_queue", "billing"]),
    ("menu_key_12", _menu_key_12(), ["menu.12"]),
    (
        "menu_intent_and_action",
        _defect(("menu", "1"), {"intent": "opening_hours", "action": {"action": "hangup"}}),
        ["menu.1", "intent", "action"],
    ),
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
