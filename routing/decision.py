"""The dialogue decision: a pure function of what the caller did, the call's state, the bot and the routing
context (time, queue and agent states).

``decide`` never does I/O; the call session carries out what it returns. Every decision carries ``why``:
the rule and the facts it was based on, recorded with the turn.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace
from typing import Any

from callbot.frames import NluResult
from routing.actions import AnswerAction, HangupAction, MenuAction
from routing.bot_config import BotConfig
from routing.engine import NoPlacement, Placement, Routed, Router, RouteRequest
from routing.live import LiveSnapshot
from routing.routing_config import FALLBACK_INTENT

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
    menu: str
    text: str
    why: dict[str, Any] = field(default_factory=dict)
    action: str = "menu"


@dataclass(frozen=True, slots=True)
class Transfer:
    queue: str
    skill: str
    priority: int
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
    caller: str = ""
    turns: int = 0
    failed_turns: int = 0
    menu_attempts: int = 0
    menu: str | None = None
    """The keypad menu the caller is in, if any."""
    answered: int = 0
    last_bot_text: str = ""


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a decision depends on besides the caller's event and the call's state."""

    bot: BotConfig
    router: Router
    now: datetime.datetime
    live: LiveSnapshot


def decide(event: CallerEvent, state: CallState, ctx: Context) -> tuple[Decision, CallState]:
    """The bot's next move and the call state after it."""
    state = replace(state, turns=state.turns + 1)
    if state.turns > ctx.bot.dialogue.max_turns:
        routed = ctx.router.failover(ctx.now, ctx.live, "max_turns")
        return _from_routing(routed, {"turns": state.turns}, state, ctx)
    match event:
        case Heard(nlu=nlu):
            return _heard(nlu, state, ctx)
        case Pressed(digit=digit):
            return _pressed(digit, state, ctx)
        case NluDown(error=error):
            routed = ctx.router.failover(ctx.now, ctx.live, "nlu_unavailable")
            decision, state = _from_routing(routed, {"error": error}, state, ctx)
            if isinstance(decision, Transfer):
                decision = replace(decision, text=ctx.bot.prompts.technical_issue)
            return decision, state
        case SpeechLost(error=error):
            return _menu("main", {"rule": "speech_unavailable", "error": error}, state, ctx)
        case Silence():
            return _not_understood(state, ctx, {"rule": "silence"})
    raise TypeError(f"unknown caller event {event!r}")


def _heard(nlu: NluResult, state: CallState, ctx: Context) -> tuple[Decision, CallState]:
    policy = ctx.bot.nlu
    facts: dict[str, Any] = {
        "intent": nlu.intent,
        "confidence": round(nlu.confidence, 4),
        "margin": round(nlu.margin, 4),
        "threshold": policy.threshold,
        "ambiguity_margin": policy.ambiguity_margin,
    }
    if nlu.intent is None or nlu.confidence < policy.threshold:
        return _not_understood(state, ctx, {"rule": "low_confidence", **facts})
    if len(nlu.ranking) > 1 and nlu.margin < policy.ambiguity_margin:
        return _not_understood(state, ctx, {"rule": "ambiguous", **facts})
    if nlu.intent == "repeat_please" and state.last_bot_text:
        return Say(state.last_bot_text, "repeat", {"rule": "repeat", **facts}), state
    request = RouteRequest(nlu.intent, nlu.confidence, nlu.entity_map, state.caller, state.failed_turns)
    routed = ctx.router.route(request, ctx.now, ctx.live)
    return _from_routing(routed, facts, state, ctx, nlu.entity_map)


def _pressed(digit: str, state: CallState, ctx: Context) -> tuple[Decision, CallState]:
    menu_id = state.menu or "main"
    option = ctx.bot.menus[menu_id].options.get(digit)
    if option is None:
        attempts = state.menu_attempts + 1
        why = {"rule": "menu_invalid_digit", "menu": menu_id, "digit": digit, "menu_attempts": attempts}
        if attempts >= ctx.bot.dialogue.max_menu_attempts:
            return _give_up({**why, "rule": "menu_exhausted"}, state, ctx)
        text = f"{ctx.bot.prompts.menu_invalid} {ctx.bot.menus[menu_id].prompt}"
        return Menu(menu_id, text, why), replace(state, menu_attempts=attempts, menu=menu_id)
    facts = {"menu": menu_id, "digit": digit, "label": option.label}
    state = replace(state, menu=None, failed_turns=0, menu_attempts=0)
    if option.intent is not None:
        request = RouteRequest(option.intent, 1.0, {}, state.caller, 0)
        routed = ctx.router.route(request, ctx.now, ctx.live)
        return _from_routing(routed, {**facts, "intent": option.intent}, state, ctx, via=f"menu:{digit}")
    assert option.action is not None
    routed = ctx.router.carry_out(option.action, ctx.router.local(ctx.now), ctx.live, {"rule": f"menu:{digit}"})
    return _from_routing(routed, facts, state, ctx)


def _not_understood(state: CallState, ctx: Context, why: dict[str, Any]) -> tuple[Decision, CallState]:
    dialogue = ctx.bot.dialogue
    if state.menu is not None:
        attempts = state.menu_attempts + 1
        why = {**why, "menu": state.menu, "menu_attempts": attempts}
        if attempts >= dialogue.max_menu_attempts:
            return _give_up({**why, "rule": "menu_exhausted"}, state, ctx)
        return Menu(state.menu, ctx.bot.menus[state.menu].prompt, why), replace(state, menu_attempts=attempts)
    failed = state.failed_turns + 1
    why = {**why, "failed_turns": failed, "max_reprompts": dialogue.max_reprompts}
    if failed > dialogue.max_reprompts:
        return _menu("main", why, replace(state, failed_turns=failed), ctx)
    return Reprompt(ctx.bot.prompts.reprompt, why), replace(state, failed_turns=failed)


def _give_up(why: dict[str, Any], state: CallState, ctx: Context) -> tuple[Decision, CallState]:
    """Reprompts and menu are spent: the routing rules decide, seeing the intent ``nlu_fallback``."""
    request = RouteRequest(FALLBACK_INTENT, 0.0, {}, state.caller, state.failed_turns)
    routed = ctx.router.route(request, ctx.now, ctx.live)
    return _from_routing(routed, why, state, ctx, via=str(why["rule"]))


def _menu(menu_id: str, why: dict[str, Any], state: CallState, ctx: Context) -> tuple[Decision, CallState]:
    return Menu(menu_id, ctx.bot.menus[menu_id].prompt, why), replace(state, menu=menu_id, menu_attempts=0)


def _from_routing(
    routed: Routed,
    facts: dict[str, Any],
    state: CallState,
    ctx: Context,
    entities: dict[str, str] | None = None,
    via: str | None = None,
) -> tuple[Decision, CallState]:
    """The routing engine's outcome as something the bot says and does; ``why`` keeps the whole trace."""
    why = {**facts, **routed.trace}
    if via is not None:
        why = {**why, "via": via}
    outcome = routed.outcome
    bot = ctx.bot
    if isinstance(outcome, AnswerAction):
        text = f"{bot.pick_response(outcome.response, entities or {})} {bot.prompts.anything_else}"
        state = replace(state, failed_turns=0, answered=state.answered + 1, last_bot_text=text)
        return Say(text, outcome.response, why), state
    if isinstance(outcome, MenuAction):
        return _menu(outcome.menu, why, state, ctx)
    if isinstance(outcome, HangupAction):
        text = bot.pick_response(outcome.response, entities or {}) if outcome.response else bot.prompts.goodbye
        return Hangup(text, why), state
    if isinstance(outcome, Placement):
        config = ctx.router.config
        text = (
            config.queues[outcome.queue].announcement
            or config.skills[outcome.skill].announcement
            or bot.prompts.transfer
        )
        why = {**why, "queue": outcome.queue, "estimated_wait_s": round(outcome.estimated_wait_s, 1)}
        return Transfer(outcome.queue, outcome.skill, outcome.priority, text, why), state
    assert isinstance(outcome, NoPlacement)
    return Overflow(outcome.reason, bot.overflow_prompt(outcome.reason), {**why, "reason": outcome.reason}), state
