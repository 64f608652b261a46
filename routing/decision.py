"""The dialogue decision: a pure function of what the caller did, the call's state and the bot's config.

``decide`` never does I/O; the call session carries out what it returns. Every decision carries ``why``:
the facts it was based on, recorded with the turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from callbot.frames import NluResult
from routing.bot_config import (
    AnswerAction,
    BotConfig,
    HangupAction,
    OverflowAction,
    TransferAction,
)

# --- what the caller did -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heard:
    """An utterance, as the NLU understood it."""

    nlu: NluResult


@dataclass(frozen=True, slots=True)
class NluDown:
    """An utterance the NLU could not process (Rasa down, slow or broken)."""

    text: str
    error: str


@dataclass(frozen=True, slots=True)
class Silence:
    """The caller said nothing for the silence timeout after the bot finished speaking."""


@dataclass(frozen=True, slots=True)
class Pressed:
    digit: str


@dataclass(frozen=True, slots=True)
class SpeechLost:
    """Speech recognition is unavailable or failed mid-call: only the keypad is left."""

    error: str


CallerEvent = Heard | NluDown | Silence | Pressed | SpeechLost

# --- what the bot does ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Say:
    """Answer and keep listening."""

    text: str
    response_id: str
    why: dict[str, Any] = field(default_factory=dict)
    action: str = "answer"


@dataclass(frozen=True, slots=True)
class Reprompt:
    text: str
    why: dict[str, Any] = field(default_factory=dict)
    action: str = "reprompt"


@dataclass(frozen=True, slots=True)
class Menu:
    text: str
    why: dict[str, Any] = field(default_factory=dict)
    action: str = "menu"


@dataclass(frozen=True, slots=True)
class Transfer:
    queue: str
    text: str
    why: dict[str, Any] = field(default_factory=dict)
    action: str = "transfer"


@dataclass(frozen=True, slots=True)
class Overflow:
    reason: str
    text: str
    why: dict[str, Any] = field(default_factory=dict)
    action: str = "overflow"


@dataclass(frozen=True, slots=True)
class Hangup:
    text: str
    why: dict[str, Any] = field(default_factory=dict)
    action: str = "hangup"


Decision = Say | Reprompt | Menu | Transfer | Overflow | Hangup
ENDS_CALL = (Transfer, Overflow, Hangup)


@dataclass(frozen=True, slots=True)
class CallState:
    turns: int = 0
    failed_turns: int = 0
    menu_attempts: int = 0
    in_menu: bool = False
    answered: int = 0
    last_bot_text: str = ""


def decide(event: CallerEvent, state: CallState, bot: BotConfig) -> tuple[Decision, CallState]:
    """The bot's next move and the call state after it."""
    state = replace(state, turns=state.turns + 1)
    if state.turns > bot.dialogue.max_turns:
        return _transfer(bot, bot.default_queue, {"rule": "max_turns", "turns": state.turns}), state
    match event:
        case Heard(nlu=nlu):
            return _heard(nlu, state, bot)
        case Pressed(digit=digit):
            return _pressed(digit, state, bot)
        case NluDown(error=error):
            why = {"rule": "nlu_unavailable", "error": error}
            return _transfer(bot, bot.default_queue, why, bot.prompts.technical_issue), state
        case SpeechLost(error=error):
            menu = Menu(bot.prompts.menu, {"rule": "speech_unavailable", "error": error})
            return menu, replace(state, in_menu=True)
        case Silence():
            return _not_understood(state, bot, {"rule": "silence"})
    raise TypeError(f"unknown caller event {event!r}")


def _heard(nlu: NluResult, state: CallState, bot: BotConfig) -> tuple[Decision, CallState]:
    facts: dict[str, Any] = {
        "intent": nlu.intent,
        "confidence": round(nlu.confidence, 4),
        "margin": round(nlu.margin, 4),
        "threshold": bot.nlu.threshold,
        "ambiguity_margin": bot.nlu.ambiguity_margin,
    }
    if nlu.intent is None or nlu.confidence < bot.nlu.threshold:
        return _not_understood(state, bot, {"rule": "low_confidence", **facts})
    if len(nlu.ranking) > 1 and nlu.margin < bot.nlu.ambiguity_margin:
        return _not_understood(state, bot, {"rule": "ambiguous", **facts})
    if nlu.intent not in bot.intents:
        return _not_understood(state, bot, {"rule": "intent_not_configured", **facts})
    return _act_on_intent(nlu.intent, nlu.entity_map, state, bot, {"rule": f"intent:{nlu.intent}", **facts})


def _pressed(digit: str, state: CallState, bot: BotConfig) -> tuple[Decision, CallState]:
    option = bot.menu.get(digit)
    if option is None:
        attempts = state.menu_attempts + 1
        why = {"rule": "menu_invalid_digit", "digit": digit, "menu_attempts": attempts}
        if attempts >= bot.dialogue.max_menu_attempts:
            return _transfer(bot, bot.default_queue, {**why, "rule": "menu_exhausted"}), state
        text = f"{bot.prompts.menu_invalid} {bot.prompts.menu}"
        return Menu(text, why), replace(state, menu_attempts=attempts, in_menu=True)
    why = {"rule": f"menu:{digit}", "digit": digit, "label": option.label}
    state = replace(state, in_menu=False, failed_turns=0, menu_attempts=0)
    if option.intent is not None:
        return _act_on_intent(option.intent, {}, state, bot, {**why, "intent": option.intent})
    assert option.action is not None
    return _carry_out(option.action, {}, state, bot, why)


def _not_understood(state: CallState, bot: BotConfig, why: dict[str, Any]) -> tuple[Decision, CallState]:
    if state.in_menu:
        attempts = state.menu_attempts + 1
        why = {**why, "menu_attempts": attempts}
        if attempts >= bot.dialogue.max_menu_attempts:
            return _transfer(bot, bot.default_queue, {**why, "rule": "menu_exhausted"}), state
        return Menu(bot.prompts.menu, why), replace(state, menu_attempts=attempts)
    failed = state.failed_turns + 1
    why = {**why, "failed_turns": failed, "max_reprompts": bot.dialogue.max_reprompts}
    if failed > bot.dialogue.max_reprompts:
        return Menu(bot.prompts.menu, why), replace(state, failed_turns=failed, in_menu=True)
    return Reprompt(bot.prompts.reprompt, why), replace(state, failed_turns=failed)


def _act_on_intent(
    intent: str, entities: dict[str, str], state: CallState, bot: BotConfig, why: dict[str, Any]
) -> tuple[Decision, CallState]:
    if intent == "repeat_please" and state.last_bot_text:
        return Say(state.last_bot_text, "repeat", why), state
    return _carry_out(bot.intents[intent], entities, state, bot, why)


def _carry_out(
    action: AnswerAction | TransferAction | OverflowAction | HangupAction,
    entities: dict[str, str],
    state: CallState,
    bot: BotConfig,
    why: dict[str, Any],
) -> tuple[Decision, CallState]:
    if isinstance(action, AnswerAction):
        text = f"{bot.pick_response(action.response, entities)} {bot.prompts.anything_else}"
        state = replace(state, failed_turns=0, answered=state.answered + 1, last_bot_text=text)
        return Say(text, action.response, why), state
    if isinstance(action, TransferAction):
        return _transfer(bot, action.queue, why), state
    if isinstance(action, OverflowAction):
        return Overflow(action.reason, bot.prompts.overflow, {**why, "reason": action.reason}), state
    text = bot.pick_response(action.response, entities) if action.response else bot.prompts.goodbye
    return Hangup(text, why), state


def _transfer(bot: BotConfig, queue: str, why: dict[str, Any], text: str | None = None) -> Transfer:
    return Transfer(queue, text or bot.prompts.transfer, {**why, "queue": queue})
