"""A bot folder as one validated whole: ``bot.yml``, ``routing.yml`` and the intents of ``nlu.yml``.

Each file is validated alone, then their references to each other: the skills intents transfer to, the intents,
responses and menus that routing rules name, the intents that the training data must define.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from callbot.errors import ConfigError
from nlu.training_data import load_training_data
from routing.actions import ActionType
from routing.bot_config import BotConfig, load_bot_config
from routing.engine import Router
from routing.routing_config import FALLBACK_INTENT, RoutingConfig, load_routing_config


@dataclass(frozen=True)
class BotFolder:
    path: Path
    bot: BotConfig
    routing: RoutingConfig
    router: Router

    @property
    def timezone(self) -> str:
        return self.routing.timezone


def load_bot_folder(bot_dir: Path) -> BotFolder:
    """Read and validate the whole bot folder; raises ConfigError naming the file, key and fix."""
    bot = load_bot_config(bot_dir)
    routing = load_routing_config(bot_dir)
    trained = set(load_training_data(bot_dir / "nlu.yml").intents)
    problems = [
        *(f"{bot_dir / 'bot.yml'}: {p}" for p in _bot_problems(bot, routing, trained)),
        *(f"{bot_dir / 'routing.yml'}: {p}" for p in _routing_problems(bot, routing, trained)),
    ]
    if problems:
        raise ConfigError("; ".join(problems))
    return BotFolder(bot_dir, bot, routing, Router(routing, bot.intents))


def _bot_problems(bot: BotConfig, routing: RoutingConfig, trained: set[str]) -> Iterator[str]:
    for name, action in bot.intents.items():
        if name not in trained:
            yield f"intents.{name}: no such intent in nlu.yml; add training examples for it or remove it"
        yield from routing.action_problems(f"intents.{name}", action)
    for menu_id, menu in bot.menus.items():
        for digit, option in menu.options.items():
            if option.action is not None:
                yield from routing.action_problems(f"menus.{menu_id}.options.{digit}.action", option.action)


def _routing_problems(bot: BotConfig, routing: RoutingConfig, trained: set[str]) -> Iterator[str]:
    actions: list[tuple[str, ActionType]] = [("default", routing.default)]
    for index, rule in enumerate(routing.rules):
        where = f"rules[{index}] '{rule.id}'"
        for intent in rule.when.intent or ():
            if intent not in trained and intent != FALLBACK_INTENT:
                yield (
                    f"{where}.when.intent: no intent '{intent}' in nlu.yml; "
                    f"use one of its intents or '{FALLBACK_INTENT}' (the caller was not understood)"
                )
        if rule.then is not None:
            actions.append((f"{where}.then", rule.then))
    for where, action in actions:
        yield from bot.action_problems(where, action)
